"""Look inside a trained CNN: its layers as data, its filters, its feature maps for one
image, and where it looked to give its answer.

Everything takes a Sequential model as `cnn.models.make_model` builds it (uint8 pixels in,
softmax probabilities out; augmentation, batch norm, dropout and the mixed_bfloat16 policy
allowed) and uint8 images (H, W, C) exactly as the network takes them. `Explainer` wraps
one model in a single multi-output Keras model whose call is traced once, so explaining
another image costs one forward pass (plus one gradient pass for the gradient maps).

"Where it looked" comes in four kinds. The default, occlusion, is measured rather than
estimated: on images whose label is the quadrant holding a bright square, its peak fell in
that quadrant for 40 of 40 held-out images on the tutorial, efficient and strong nets, where
Grad-CAM's did for 32-40 and, on the batch-norm net, 0 (benchmarks/bench_explain.py).
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cnn import runtime
from cnn.errors import StorageError
from cnn.store import atomic_write_bytes

tf = runtime.start_tensorflow()  # before Keras imports it: no start-up chatter
import keras  # noqa: E402
import numpy as np  # noqa: E402

# TensorFlow-free pictures and snapshots, re-exported here (see cnn/pictures.py).
from cnn.pictures import (  # noqa: F401
    GAP_COLOUR,
    FeatureMaps,
    Filters,
    Snapshot,
    enlarge,
    feature_map_grid,
    filter_grid,
    kernel_filters,
    png_bytes,
    read_snapshot,
    sorted_maps,
    tile_grid,
)

# --- the layers as data --------------------------------------------------------------------

# Active only while training (Keras skips them at inference): drawn in the table, but they
# do nothing to the image being explained.
TRAINING_ONLY_KINDS = frozenset({
    "RandomFlip", "RandomTranslation", "RandomRotation", "RandomZoom", "RandomContrast",
    "RandomBrightness", "Dropout", "SpatialDropout2D", "GaussianNoise", "GaussianDropout",
})
# Layers that act on each position alone: they keep the receptive field.
POINTWISE_KINDS = TRAINING_ONLY_KINDS | {
    "Rescaling", "Normalization", "BatchNormalization", "LayerNormalization", "ReLU",
    "LeakyReLU", "Activation",
}
WINDOW_KINDS = frozenset({"Conv2D", "MaxPooling2D", "AveragePooling2D"})
# Layers whose outputs are shown as feature maps.
FEATURE_KINDS = frozenset({"Conv2D", "ReLU", "LeakyReLU", "Activation", "MaxPooling2D",
                           "AveragePooling2D"})


@dataclass(frozen=True)
class LayerInfo:
    """One layer of the network, with where its outputs look in the input image."""

    name: str
    kind: str  # the Keras layer class, e.g. "Conv2D"
    output_shape: tuple[int, ...]  # without the batch dimension
    parameters: int
    # (rows, cols) of input pixels that one output position depends on; None after the
    # flatten, where every output depends on the whole image.
    receptive_field: tuple[int, int] | None
    jump: tuple[int, int] | None  # input pixels between two neighbouring output positions
    # input pixel (row, col) at the centre of output position (0, 0)'s field; "same"
    # padding and pooling shift it, so maps are drawn over the input at the right place
    centre: tuple[float, float] | None
    training_only: bool  # augmentation or dropout: active while training, a no-op here


def network_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """The model's layers in order (no InputLayer). Only plain stacks are supported: every
    network of this app is a Sequential."""
    if not isinstance(model, keras.Sequential):
        raise TypeError(f"only Sequential networks can be explained, not {type(model).__name__}")
    return [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]


def layer_table(model: keras.Model) -> list[LayerInfo]:
    """Every layer with its output shape, parameters and receptive field.

    The receptive field follows the standard recurrence, per axis, for a window of k
    (dilated: d·(k−1)+1), stride s and p pixels of padding before the first position:
    field += (k−1)·jump; centre += ((k−1)/2 − p)·jump; jump *= s. Padding moves the centre,
    not the size; "same" pads like TensorFlow (the smaller half before).
    """
    rows = []
    field_: list[int] | None = [1, 1]
    jump: list[int] | None = [1, 1]
    centre: list[float] | None = [0.0, 0.0]
    shape = tuple(model.input_shape[1:])
    for layer in network_layers(model):
        kind = type(layer).__name__
        out_shape = tuple(int(d) for d in layer.output.shape[1:])
        if field_ is not None and kind in WINDOW_KINDS:
            kernel, strides, padding, dilation = _window(layer)
            for axis in (0, 1):
                k = dilation[axis] * (kernel[axis] - 1) + 1
                pad = _pad_before(shape[axis], k, strides[axis], padding)
                centre[axis] += ((k - 1) / 2 - pad) * jump[axis]
                field_[axis] += (k - 1) * jump[axis]
                jump[axis] *= strides[axis]
        elif kind not in POINTWISE_KINDS:
            # Flatten, Dense, global pooling, or a layer this table does not know: from here
            # on an output depends on the whole image (or on an unknown region).
            field_ = jump = centre = None
        rows.append(LayerInfo(
            name=layer.name, kind=kind, output_shape=out_shape,
            parameters=int(layer.count_params()),
            receptive_field=None if field_ is None else (field_[0], field_[1]),
            jump=None if jump is None else (jump[0], jump[1]),
            centre=None if centre is None else (centre[0], centre[1]),
            training_only=kind in TRAINING_ONLY_KINDS,
        ))
        shape = out_shape
    return rows


def _window(layer) -> tuple[tuple[int, int], tuple[int, int], str, tuple[int, int]]:
    """(kernel, strides, padding, dilation) of a conv or pooling layer."""
    if isinstance(layer, keras.layers.Conv2D):
        return (tuple(layer.kernel_size), tuple(layer.strides), layer.padding,
                tuple(layer.dilation_rate))
    strides = layer.strides or layer.pool_size
    return tuple(layer.pool_size), tuple(strides), layer.padding, (1, 1)


def _pad_before(size: int, kernel: int, stride: int, padding: str) -> int:
    if padding != "same":
        return 0
    out = math.ceil(size / stride)
    return max((out - 1) * stride + kernel - size, 0) // 2


# --- filters -------------------------------------------------------------------------------


def filters(model: keras.Model, layer_name: str) -> Filters:
    """The kernels of conv layer `layer_name` as pictures (see `Filters`)."""
    layer = model.get_layer(layer_name)
    if not isinstance(layer, keras.layers.Conv2D):
        raise TypeError(f"{layer_name} is a {type(layer).__name__}, not a conv layer")
    convs = [x for x in network_layers(model) if isinstance(x, keras.layers.Conv2D)]
    kernel = layer.get_weights()[0]
    colour = layer is convs[0] and kernel.shape[2] == 3
    return kernel_filters(kernel, layer.name, colour)


def all_filters(model: keras.Model) -> dict[str, Filters]:
    """`filters` of every conv layer, by layer name, in order."""
    return {layer.name: filters(model, layer.name) for layer in network_layers(model)
            if isinstance(layer, keras.layers.Conv2D)}


# --- feature maps and heatmaps -------------------------------------------------------------


OCCLUSION, GRADCAM, HIRESCAM, SMOOTHGRAD = "occlusion", "gradcam", "hirescam", "smoothgrad"
METHODS = (OCCLUSION, GRADCAM, HIRESCAM, SMOOTHGRAD)
DEFAULT_METHOD = OCCLUSION  # the one that passes the known-region test (see the module doc)
TITLES = {
    OCCLUSION: "Occlusion",
    GRADCAM: "Grad-CAM",
    HIRESCAM: "HiResCAM",
    SMOOTHGRAD: "SmoothGrad saliency",
}
CAPTIONS = {
    OCCLUSION: "How much less sure the network is of this answer when each part of the "
    "image is hidden — measured, not estimated.",
    GRADCAM: "A quick estimate from the last conv layer's gradients (Grad-CAM): coarse, and "
    "it can point to the wrong place.",
    HIRESCAM: "Gradient × activation at each position of the last conv layer (HiResCAM): "
    "more faithful than Grad-CAM, still an estimate.",
    SMOOTHGRAD: "Pixels that would change the answer most if nudged (input gradients "
    "averaged over noisy copies): sensitivity, not proof of use.",
}
# SmoothGrad (Smilkov et al. 2017): noise of 10-20 % of the input range works best; the
# map settles after a few dozen samples. Fixed seed: the same image gives the same map.
SMOOTHGRAD_SAMPLES = 24
SMOOTHGRAD_NOISE = 0.15 * 255
SMOOTHGRAD_CLIP_PERCENTILE = 99  # their visualisation clips the few extreme gradients


@dataclass
class Heatmap:
    """Where the network looked for one class, at the network's input size."""

    method: str  # one of METHODS
    class_index: int
    values: np.ndarray  # float32 (H, W) in [0, 1]; 1 = most important
    # The raw value that 1.0 stands for: for occlusion the drop in the class's log-odds
    # log(p / (1 − p)) when the most important part is hidden (natural log: 0.69 = odds
    # halved); for the others the map's unnormalised maximum.
    # 0 means nothing mattered (the map is all zeros).
    scale: float

    @property
    def title(self) -> str:
        return TITLES[self.method]

    @property
    def caption(self) -> str:
        return CAPTIONS[self.method]


def occlusion_geometry(height: int, width: int) -> tuple[int, int]:
    """(patch side, stride) for an image: a quarter of the shorter side, half-overlapping —
    8 and 4 on 32×32 (49 positions), 7 and 3 on 28×28 (64): one batch of ~50-60 copies."""
    patch = max(1, round(min(height, width) / 4))
    return patch, max(1, patch // 2)


def _positions(size: int, patch: int, stride: int) -> list[int]:
    starts = list(range(0, max(size - patch, 0) + 1, stride))
    if starts[-1] != max(size - patch, 0):  # the last patch reaches the far edge
        starts.append(max(size - patch, 0))
    return starts


def _normalise(values: np.ndarray) -> tuple[np.ndarray, float]:
    values = np.maximum(np.asarray(values, dtype=np.float32), 0.0)
    top = float(values.max(initial=0.0))
    return (values / top if top > 0 else np.zeros_like(values)), top


def _interpolation_matrix(size: int, centres: np.ndarray) -> np.ndarray:
    """(size, len(centres)): row y linearly interpolates between the two cells whose centres
    surround input pixel y, holding the edge cell's value beyond the outer centres."""
    eye = np.eye(len(centres))
    pixels = np.arange(size, dtype=np.float64)
    return np.stack([np.interp(pixels, centres, eye[i]) for i in range(len(centres))], axis=1)


def upsample(grid: np.ndarray, info: LayerInfo, height: int, width: int) -> np.ndarray:
    """A layer's (h, w) map at the input size: each cell placed at the centre of its
    receptive field (`info`), bilinear between centres. A plain image resize would spread
    the cells over the whole image, but with "valid" padding the last conv of the tutorial
    net only sees centres from pixel 8.5 to 20.5 of 32."""
    rows = info.centre[0] + info.jump[0] * np.arange(grid.shape[0])
    cols = info.centre[1] + info.jump[1] * np.arange(grid.shape[1])
    out = _interpolation_matrix(height, rows) @ grid @ _interpolation_matrix(width, cols).T
    return out.astype(np.float32)


@dataclass
class Explanation:
    """Everything the "inside the network" view shows for one image."""

    image: np.ndarray  # uint8 (H, W, C), as the network took it
    probabilities: np.ndarray  # float64 (classes,)
    predicted: int  # the class with the highest probability
    class_index: int  # the class the heatmaps explain (the predicted one unless asked)
    layers: list[LayerInfo]
    filters: dict[str, Filters]  # every conv layer, in order
    feature_maps: list[FeatureMaps]  # every conv / activation / pooling output, in order
    heatmap: Heatmap  # the default (first requested) "where it looked" map
    heatmaps: dict[str, Heatmap] = field(default_factory=dict)  # every requested map


class Explainer:
    """A model's inside for any image, fast: one Keras model with every feature map and
    the probabilities as outputs, called through traced functions (one trace per model).

    The model's own layers are reused, so weights that change (a model still training)
    are seen at the next call. Inputs are fed as float32 pixels 0-255: the same values the
    uint8 model gets (its Rescaling casts them), and differentiable for saliency.
    """

    def __init__(self, model: keras.Model):
        chain = network_layers(model)
        self.layers = layer_table(model)
        self.image_shape = tuple(int(d) for d in model.input_shape[1:])
        self.num_classes = int(model.output_shape[-1])
        self._infos = {info.name: info for info in self.layers}
        self.conv_layers = [layer for layer in chain if isinstance(layer, keras.layers.Conv2D)]

        pixels = keras.Input(self.image_shape, dtype="float32", name="explain_pixels")
        x, penultimate, maps, self.map_layers = pixels, pixels, [], []
        for layer in chain:
            penultimate = x
            x = layer(x)
            if type(layer).__name__ in FEATURE_KINDS and len(x.shape) == 4:
                maps.append(x)
                self.map_layers.append(layer.name)
        # Activations are what the next block sees: a conv with its own ReLU, or the ReLU
        # after batch norm. The last of them is where Grad-CAM and HiResCAM look.
        self.activation_layers = [name for name in self.map_layers if _is_activation(
            model.get_layer(name))]
        self.cam_layer = self.activation_layers[-1] if self.activation_layers else None
        self._cam_index = (self.map_layers.index(self.cam_layer)
                           if self.cam_layer is not None else None)
        self._graph = keras.Model(pixels, [*maps, penultimate, x], name="explain")
        last = chain[-1]
        self._logits_layer = last if (isinstance(last, keras.layers.Dense)
                                      and _activation_name(last) == "softmax") else None

        spec = tf.TensorSpec((None, *self.image_shape), tf.float32)
        self._forward = tf.function(self._forward_graph, input_signature=[spec])
        self._gradients = tf.function(
            self._gradient_graph, input_signature=[spec, tf.TensorSpec((), tf.int32)])

    # --- traced functions ------------------------------------------------------------------
    def _forward_graph(self, x):
        outputs = self._graph(x, training=False)
        # Feature maps of the first image only: the other rows are occluded copies, whose
        # maps would only be copied out for nothing.
        maps = [tf.cast(out[:1], tf.float32) for out in outputs[:-2]]
        return maps, tf.cast(outputs[-1], tf.float32), self._scores(outputs)

    def _scores(self, outputs):
        """Class scores: the logits (as Grad-CAM prescribes), rebuilt from the softmax
        layer's weights; log p for a model without a softmax Dense at the end."""
        if self._logits_layer is None:
            return tf.math.log(tf.cast(outputs[-1], tf.float32) + 1e-30)
        hidden = tf.cast(outputs[-2], tf.float32)
        scores = tf.matmul(hidden, tf.cast(self._logits_layer.kernel, tf.float32))
        if self._logits_layer.use_bias:
            scores += tf.cast(self._logits_layer.bias, tf.float32)
        return scores

    def _gradient_graph(self, x, class_index):
        with tf.GradientTape() as tape:
            tape.watch(x)
            outputs = self._graph(x, training=False)
            scores = self._scores(outputs)
            # Rows are independent at inference, so the gradient of the sum is each row's own.
            total = tf.reduce_sum(tf.gather(scores, class_index, axis=1))
        targets = [x] if self._cam_index is None else [x, outputs[self._cam_index]]
        grads = tape.gradient(total, targets)
        result = {"input": grads[0], "probabilities": tf.cast(outputs[-1], tf.float32)}
        if self._cam_index is not None:
            result["activation"] = tf.cast(outputs[self._cam_index][0], tf.float32)
            result["activation_gradient"] = tf.cast(grads[1][0], tf.float32)
        return result

    # --- single views ----------------------------------------------------------------------
    def check_image(self, image: np.ndarray) -> np.ndarray:
        """`image` as uint8 (H, W, C) of the network's shape; ValueError otherwise."""
        image = np.asarray(image)
        if image.ndim == 2:
            image = image[..., np.newaxis]
        if image.dtype != np.uint8 or image.shape != self.image_shape:
            raise ValueError(f"expected a uint8 image of shape {self.image_shape}, "
                             f"got {image.dtype} {image.shape}")
        return image

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """float32 (N, classes) for uint8 (N, H, W, C) images."""
        return self._forward(np.asarray(images, dtype=np.float32))[1].numpy()

    def feature_maps(self, image: np.ndarray) -> list[FeatureMaps]:
        """Every conv / activation / pooling output for one image, strongest channels first."""
        maps, _, _ = self._forward(self.check_image(image)[np.newaxis].astype(np.float32))
        return self._sorted(maps)

    def _sorted(self, maps) -> list[FeatureMaps]:
        return [sorted_maps(name, self._kind(name), out.numpy()[0])
                for name, out in zip(self.map_layers, maps)]

    def _kind(self, name: str) -> str:
        return self._infos[name].kind

    def filters(self) -> dict[str, Filters]:
        """Every conv layer's kernels as pictures, by layer name (current weights)."""
        result = {}
        for i, layer in enumerate(self.conv_layers):
            kernel = layer.get_weights()[0]
            result[layer.name] = kernel_filters(kernel, layer.name,
                                                colour=i == 0 and kernel.shape[2] == 3)
        return result

    def occlusion_batch(self, image: np.ndarray) -> tuple[np.ndarray, list[tuple[int, int, int]]]:
        """The image followed by its occluded copies (float32, one batch), and each copy's
        (top, left, side). A patch is filled with the image's mean colour: a fixed grey
        would add a shape of its own on dark MNIST-like backgrounds."""
        height, width, _ = image.shape
        patch, stride = occlusion_geometry(height, width)
        fill = image.reshape(-1, image.shape[-1]).mean(axis=0)
        boxes = [(top, left, patch) for top in _positions(height, patch, stride)
                 for left in _positions(width, patch, stride)]
        batch = np.repeat(image[np.newaxis].astype(np.float32), len(boxes) + 1, axis=0)
        for row, (top, left, side) in enumerate(boxes, start=1):
            batch[row, top:top + side, left:left + side] = fill
        return batch, boxes

    def _occlusion_map(self, scores: np.ndarray, boxes, class_index: int) -> Heatmap:
        """Each pixel: the mean drop of `scores` (the class's log-probability or probability
        for the image, then for each occluded copy) over the patches that hide it."""
        height, width, _ = self.image_shape
        drops = scores[0] - scores[1:]
        total = np.zeros((height, width), np.float64)
        count = np.zeros((height, width), np.float64)
        for drop, (top, left, side) in zip(drops, boxes):
            total[top:top + side, left:left + side] += drop
            count[top:top + side, left:left + side] += 1
        values, scale = _normalise(total / np.maximum(count, 1))
        return Heatmap(OCCLUSION, class_index, values, scale)

    def occlusion(self, image: np.ndarray, class_index: int | None = None,
                  measure: str = "log_odds") -> Heatmap:
        """Occlusion sensitivity, all occluded copies in one forward pass.

        The drop is measured in log-odds, log(p / (1 − p)), by default: a confident
        network's probability is 1.0 in float32 even with half the evidence hidden (4 maps
        of 40 on the quadrant test came out blank that way), and so is its log-probability,
        while the log-odds, computed from the logits, still moves. `measure="probability"`
        gives the textbook drop of p."""
        batch, boxes = self.occlusion_batch(self.check_image(image))
        _, probabilities, logits = self._forward(batch)
        probabilities = probabilities.numpy()
        class_index = self._class(probabilities[0], class_index)
        if measure == "probability":
            scores = probabilities[:, class_index].astype(np.float64)
        else:
            scores = log_odds(logits.numpy(), class_index)
        return self._occlusion_map(scores, boxes, class_index)

    def input_gradients(self, images: np.ndarray, class_index: int) -> np.ndarray:
        """d(class score)/d(pixel) for float (N, H, W, C) pixels on the 0-255 scale, where the
        score is the class's logit (log-probability for a model without a softmax Dense)."""
        result = self._gradients(np.asarray(images, np.float32), np.int32(class_index))
        return result["input"].numpy()

    def gradient_maps(self, image: np.ndarray, class_index: int | None = None,
                      methods: Sequence[str] = (GRADCAM, HIRESCAM, SMOOTHGRAD),
                      samples: int = SMOOTHGRAD_SAMPLES,
                      noise: float = SMOOTHGRAD_NOISE) -> dict[str, Heatmap]:
        """Grad-CAM, HiResCAM and SmoothGrad from one gradient pass over the image and its
        noisy copies. The CAMs use the last activation layer (`cam_layer`) and are placed on
        the input by `upsample`; SmoothGrad averages the signed input gradients of `samples`
        noisy copies (Gaussian, `noise` on the 0-255 scale), sums |·| over colour channels
        and clips the top 1 %, as its authors visualise it."""
        image = self.check_image(image)
        wanted = [m for m in methods if m in (GRADCAM, HIRESCAM, SMOOTHGRAD)]
        if self.cam_layer is None and (GRADCAM in wanted or HIRESCAM in wanted):
            raise ValueError("this network has no conv layer for Grad-CAM or HiResCAM")
        copies = samples if SMOOTHGRAD in wanted else 0
        rng = np.random.default_rng(0)
        batch = np.repeat(image[np.newaxis].astype(np.float32), copies + 1, axis=0)
        batch[1:] += rng.normal(0.0, noise, batch[1:].shape).astype(np.float32)
        if class_index is None:
            class_index = int(np.argmax(self.probabilities(image[np.newaxis])[0]))
        class_index = self._class(None, class_index)
        result = self._gradients(batch, np.int32(class_index))
        height, width, _ = self.image_shape
        maps = {}
        if GRADCAM in wanted or HIRESCAM in wanted:
            activation = result["activation"].numpy()  # (h, w, channels)
            gradient = result["activation_gradient"].numpy()
            info = self._infos[self.cam_layer]
            if GRADCAM in wanted:  # channel weights = mean gradient over positions
                grid = activation @ gradient.mean(axis=(0, 1))
                values, _ = _normalise(upsample(np.maximum(grid, 0), info, height, width))
                maps[GRADCAM] = Heatmap(GRADCAM, class_index, values, float(max(grid.max(), 0.0)))
            if HIRESCAM in wanted:  # gradient × activation at each position
                grid = (activation * gradient).sum(axis=-1)
                values, _ = _normalise(upsample(np.maximum(grid, 0), info, height, width))
                maps[HIRESCAM] = Heatmap(HIRESCAM, class_index, values, float(max(grid.max(), 0.0)))
        if SMOOTHGRAD in wanted:
            gradients = result["input"].numpy()[1:].mean(axis=0)
            magnitude = np.abs(gradients).sum(axis=-1)
            top = np.percentile(magnitude, SMOOTHGRAD_CLIP_PERCENTILE)
            values, scale = _normalise(np.minimum(magnitude, top))
            maps[SMOOTHGRAD] = Heatmap(SMOOTHGRAD, class_index, values, scale)
        return {m: maps[m] for m in wanted}

    def heatmap(self, image: np.ndarray, method: str = DEFAULT_METHOD,
                class_index: int | None = None) -> Heatmap:
        """One "where it looked" map (see METHODS)."""
        if method == OCCLUSION:
            return self.occlusion(image, class_index)
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
        return self.gradient_maps(image, class_index, methods=(method,))[method]

    # --- everything at once ----------------------------------------------------------------
    def explain(self, image: np.ndarray, class_index: int | None = None,
                methods: Sequence[str] = (DEFAULT_METHOD,)) -> Explanation:
        """Everything for one image. The feature maps, the probabilities and occlusion come
        from a single forward pass (the image + its occluded copies); gradient maps cost
        one gradient pass more, only when `methods` asks for them. `methods[0]` is the
        `heatmap` shown by default."""
        image = self.check_image(image)
        methods = list(methods) or [DEFAULT_METHOD]
        for method in methods:
            if method not in METHODS:
                raise ValueError(f"unknown method {method!r}; choose one of "
                                 f"{', '.join(METHODS)}")
        if OCCLUSION in methods:
            batch, boxes = self.occlusion_batch(image)
        else:
            batch, boxes = image[np.newaxis].astype(np.float32), []
        maps, probabilities, logits = self._forward(batch)
        probabilities = probabilities.numpy()
        predicted = int(np.argmax(probabilities[0]))
        class_index = self._class(probabilities[0], class_index)
        heatmaps = {}
        if OCCLUSION in methods:
            scores = log_odds(logits.numpy(), class_index)
            heatmaps[OCCLUSION] = self._occlusion_map(scores, boxes, class_index)
        gradient_methods = [m for m in methods if m != OCCLUSION]
        if gradient_methods:
            heatmaps.update(self.gradient_maps(image, class_index, gradient_methods))
        return Explanation(
            image=image,
            probabilities=probabilities[0].astype(np.float64),
            predicted=predicted,
            class_index=class_index,
            layers=self.layers,
            filters=self.filters(),
            feature_maps=self._sorted(maps),
            heatmap=heatmaps[methods[0]],
            heatmaps={m: heatmaps[m] for m in methods},
        )

    def _class(self, probabilities: np.ndarray | None, class_index: int | None) -> int:
        """`class_index`, checked; the most probable class when it is None."""
        if class_index is None:
            return int(np.argmax(probabilities))
        if not 0 <= class_index < self.num_classes:
            raise ValueError(f"class_index must be in 0..{self.num_classes - 1}")
        return int(class_index)


def log_odds(logits: np.ndarray, class_index: int) -> np.ndarray:
    """log(p / (1 − p)) of class `class_index` for each row of (N, classes) logits:
    z_c − logsumexp(z_k, k ≠ c), in float64, exact where p rounds to 1 in float32."""
    logits = np.asarray(logits, dtype=np.float64)
    others = np.delete(logits, class_index, axis=1)
    top = others.max(axis=1, keepdims=True)
    rest = top[:, 0] + np.log(np.exp(others - top).sum(axis=1))
    return logits[:, class_index] - rest


def explain(model: keras.Model | Explainer, image: np.ndarray, class_index: int | None = None,
            methods: Sequence[str] = (DEFAULT_METHOD,)) -> Explanation:
    """`Explainer(model).explain(...)`. Building an Explainer traces its functions (a few
    hundred ms): for more than one image, keep one (e.g. in `st.cache_resource`)."""
    explainer = model if isinstance(model, Explainer) else Explainer(model)
    return explainer.explain(image, class_index, methods)


def _is_activation(layer) -> bool:
    kind = type(layer).__name__
    if kind in ("ReLU", "LeakyReLU", "Activation"):
        return True
    return kind == "Conv2D" and _activation_name(layer) not in ("linear", None)


def _activation_name(layer) -> str | None:
    activation = getattr(layer, "activation", None)
    return getattr(activation, "__name__", None)


# --- pictures ------------------------------------------------------------------------------

# Matplotlib's "inferno" (perceptually uniform, readable in grey and by colour-blind
# students) at 9 evenly spaced points, linear in between: black-purple for 0, yellow-white
# for 1.
INFERNO = np.array([
    [0, 0, 4], [31, 12, 72], [85, 15, 109], [136, 34, 106], [186, 54, 85],
    [227, 89, 51], [249, 140, 10], [249, 201, 50], [252, 255, 164],
], dtype=np.float64)


def colorize(values: np.ndarray, table: np.ndarray = INFERNO) -> np.ndarray:
    """uint8 (..., 3) colours for values in [0, 1] (clipped)."""
    values = np.clip(np.asarray(values, dtype=np.float64), 0.0, 1.0)
    points = np.linspace(0.0, 1.0, len(table))
    rgb = np.stack([np.interp(values, points, table[:, c]) for c in range(3)], axis=-1)
    return np.rint(rgb).astype(np.uint8)


def _rgb(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[..., np.newaxis]
    return np.repeat(image, 3, axis=-1) if image.shape[-1] == 1 else image


def overlay(image: np.ndarray, heatmap: Heatmap | np.ndarray, alpha: float = 0.5,
            factor: int = 1) -> np.ndarray:
    """uint8 RGB: (1 − alpha)·image + alpha·inferno(heatmap), enlarged `factor` times."""
    values = heatmap.values if isinstance(heatmap, Heatmap) else np.asarray(heatmap)
    base = _rgb(image).astype(np.float64)
    if base.shape[:2] != values.shape:
        raise ValueError(f"heatmap {values.shape} does not match the image {base.shape[:2]}")
    mixed = (1 - alpha) * base + alpha * colorize(values)
    return enlarge(np.rint(mixed).astype(np.uint8), factor)


# --- live snapshots while training ---------------------------------------------------------


def _snapshot_arrays(model: keras.Model, image: np.ndarray, epoch: int,
                     initial_kernel: np.ndarray | None) -> dict[str, np.ndarray]:
    chain = network_layers(model)
    shape = tuple(int(d) for d in model.input_shape[1:])
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.shape != shape:
        raise ValueError(f"expected a uint8 image of shape {shape}, got {image.dtype} "
                         f"{image.shape}")
    first_conv = next(layer for layer in chain if isinstance(layer, keras.layers.Conv2D))
    activations = [layer for layer in chain if _is_activation(layer)]
    first, last = activations[0], activations[-1]
    # The model's own layers called eagerly on one image: a few milliseconds, no tracing
    # and no second graph built on a model that is training.
    outputs, x = {}, tf.constant(image[np.newaxis], dtype=tf.float32)
    for layer in chain:
        x = layer(x, training=False)
        if layer is first or layer is last:
            outputs[layer.name] = np.asarray(tf.cast(x[0], tf.float32))
    kernel = first_conv.get_weights()[0].astype(np.float32)
    arrays = {
        "epoch": np.int64(epoch),
        "image": image,
        "probabilities": np.asarray(tf.cast(x[0], tf.float32)),
        "conv_layer": np.array(first_conv.name),
        "kernel": kernel,
        "colour": np.bool_(kernel.shape[2] == 3),
        "first_layer": np.array(first.name),
        "first_kind": np.array(type(first).__name__),
        # float16 halves the file; a picture of an activation needs 3 significant digits
        "first_maps": outputs[first.name].astype(np.float16),
        "last_layer": np.array(last.name),
        "last_kind": np.array(type(last).__name__),
        "last_maps": outputs[last.name].astype(np.float16),
    }
    if initial_kernel is not None:
        arrays["initial_kernel"] = np.asarray(initial_kernel, np.float32)
    return arrays


def first_kernel(model: keras.Model) -> np.ndarray:
    """The first conv layer's kernel (kernel_h, kernel_w, in_channels, filters)."""
    return next(layer for layer in network_layers(model)
                if isinstance(layer, keras.layers.Conv2D)).get_weights()[0]


def write_snapshot(model: keras.Model, image: np.ndarray, path: str | Path, epoch: int = 0,
                   initial_kernel: np.ndarray | None = None) -> None:
    """Write a small .npz (~75 kB for the tutorial net on CIFAR-10): the first conv layer's
    kernel (and `initial_kernel`, the one before training, when given), the image's
    activations after the first and the last conv block, its probabilities, and `epoch`.
    Atomic: a temp file in the same folder renamed over `path`, so a reader in another
    process sees the old snapshot or the new one, never half of one."""
    buffer = io.BytesIO()
    np.savez(buffer, **_snapshot_arrays(model, image, epoch, initial_kernel))
    atomic_write_bytes(Path(path), buffer.getvalue())


class SnapshotWriter(keras.callbacks.Callback):
    """Writes a `write_snapshot` of the model before training and after every epoch, so a
    page can show the first filters turning from noise into edge detectors while it trains.

    Costs one eager forward pass of one image and a ~75 kB file per epoch: under 1 % of
    training time in benchmarks/bench_explain.py.

    Args:
        path: the .npz file, replaced atomically each time.
        image: uint8 (H, W, C), e.g. a test image, whose feature maps are recorded.
    """

    def __init__(self, path: str | Path, image: np.ndarray):
        super().__init__()
        self.path = Path(path)
        self.image = np.asarray(image)

    def on_train_begin(self, logs=None):
        self.initial_kernel = first_kernel(self.model)
        self.snapshots_written = 0
        self._write(0)

    def on_epoch_end(self, epoch, logs=None):
        self._write(epoch + 1)

    def _write(self, epoch: int) -> None:
        try:
            write_snapshot(self.model, self.image, self.path, epoch, self.initial_kernel)
        except StorageError:
            return  # a picture for the page, not part of the run: never fail training for it
        self.snapshots_written += 1
