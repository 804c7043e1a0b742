import numpy as np

from cnn.explore import class_counts, mosaic, pixel_stats, samples_per_class


def test_samples_per_class_are_of_that_class_and_reproducible():
    labels = np.array([0, 1, 1, 2, 2, 2, 0, 1])
    picks = samples_per_class(labels, per_class=2, seed=3)
    assert sorted(picks) == [0, 1, 2]
    for label, indices in picks.items():
        assert len(indices) == 2 and (labels[indices] == label).all()
    assert {k: v.tolist() for k, v in samples_per_class(labels, 2, seed=3).items()} == \
        {k: v.tolist() for k, v in picks.items()}
    assert len(samples_per_class(labels, per_class=10)[0]) == 2  # only two zeros exist


def test_class_counts_include_empty_classes():
    assert class_counts(np.array([0, 2, 2]), ["a", "b", "c", "d"]) == [1, 0, 2, 0]


def test_pixel_stats_before_and_after_scaling():
    images = np.array([[[[0]], [[255]]], [[[51]], [[102]]]], dtype=np.uint8)  # (2, 2, 1, 1)
    stats = pixel_stats(images)
    assert stats["raw"]["min"] == 0 and stats["raw"]["max"] == 255
    assert stats["raw"]["mean"] == (0 + 255 + 51 + 102) / 4
    assert stats["scaled"]["max"] == 1.0 and stats["scaled"]["min"] == 0.0
    assert abs(stats["scaled"]["mean"] - stats["raw"]["mean"] / 255) < 1e-12
    assert stats["raw"]["dtype"] == "uint8"


def test_mosaic_places_enlarged_images_in_a_grid():
    images = np.stack([np.full((2, 3, 1), v, np.uint8) for v in (10, 20, 30)])
    out = mosaic(images, scale=2, gap=1, columns=2, background=255)
    assert out.shape == (2 * 4 + 1, 2 * 6 + 1, 1)
    assert (out[:4, :6] == 10).all() and (out[:4, 7:13] == 20).all()
    assert (out[5:9, :6] == 30).all() and (out[5:9, 7:] == 255).all()  # empty cell
    assert (out[4] == 255).all()  # the gap row
