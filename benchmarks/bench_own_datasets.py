"""Adding a dataset of one's own: how long 1,000 photos take. Not a test: run it by hand.

    python benchmarks/bench_own_datasets.py [--count 1000] [--repeats 3]

Makes `count` JPEG photos (300-600 px, quality 90) in 10 classes from scikit-image's own
photographs (random crops, scales and mirror flips), then times `cnn.own_datasets.add` on
them as a folder and as a zip, and measures what the stored images.npz costs to load,
uncompressed (what `add` writes) against np.savez_compressed, for these photos and for
light-on-dark drawings (scikit-learn's digits). Results land in bench-out/own_datasets.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

# Ten photos, one per class; a few are grey (camera, coins, moon): the dataset stays colour.
SOURCES = ("chelsea", "astronaut", "coffee", "rocket", "camera",
           "immunohistochemistry", "hubble_deep_field", "coins", "brick", "colorwheel")


def make_photos(folder: Path, count: int, seed: int = 0) -> int:
    """`count` JPEGs in folder/<class>/; returns their total size in bytes."""
    import numpy as np
    from PIL import Image
    from skimage import data as skdata

    rng = np.random.default_rng(seed)
    total = 0
    for index in range(count):
        name = SOURCES[index % len(SOURCES)]
        picture = Image.fromarray(getattr(skdata, name)())
        side = int(rng.integers(300, 601))  # the longer side of the photo made
        aspect = float(rng.uniform(0.6, 1.0))
        scale = float(rng.uniform(1.0, 1.6)) * side / min(picture.size)
        big = picture.resize((round(picture.width * scale), round(picture.height * scale)))
        width, height = side, max(8, round(side * aspect))
        if rng.random() < 0.5:
            width, height = height, width
        width, height = min(width, big.width), min(height, big.height)
        left = int(rng.integers(0, big.width - width + 1))
        top = int(rng.integers(0, big.height - height + 1))
        photo = big.crop((left, top, left + width, top + height))
        if rng.random() < 0.5:
            photo = photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        target = folder / name / f"{index:05d}.jpg"
        target.parent.mkdir(parents=True, exist_ok=True)
        photo.save(target, quality=90)
        total += target.stat().st_size
    return total


def zip_folder(folder: Path, target: Path) -> None:
    with zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as archive:  # JPEGs don't deflate
        for path in sorted(folder.rglob("*.jpg")):
            archive.write(path, f"photos/{path.relative_to(folder)}")


def time_add(source, data_dir: Path, repeats: int) -> dict:
    from cnn import own_datasets

    seconds = []
    report = None
    for attempt in range(repeats):
        start = time.perf_counter()
        report = own_datasets.add("bench", source, data_dir, replace=attempt > 0)
        seconds.append(time.perf_counter() - start)
    assert report is not None
    images = sum(report.kept.values())
    return {
        "seconds_median": round(statistics.median(seconds), 3),
        "seconds_all": [round(s, 3) for s in seconds],
        "images": images,
        "images_per_second": round(images / statistics.median(seconds), 1),
        "image_shape": list(report.image_shape),
        "stored_bytes": (report.folder / own_datasets.IMAGES_FILE).stat().st_size,
    }


def storage_choice(arrays: dict, folder: Path, repeats: int = 7) -> dict:
    """Size and load time of the arrays as np.savez against np.savez_compressed."""
    import numpy as np

    out = {}
    for label, save in (("uncompressed", np.savez), ("compressed", np.savez_compressed)):
        path = folder / f"{label}.npz"
        start = time.perf_counter()
        save(path, **arrays)
        write = time.perf_counter() - start
        loads = []
        for _ in range(repeats):
            start = time.perf_counter()
            with np.load(path) as npz:
                _ = [npz[key] for key in npz.files]
            loads.append(time.perf_counter() - start)
        out[label] = {
            "bytes": path.stat().st_size,
            "write_seconds": round(write, 4),
            "load_seconds_median": round(statistics.median(loads), 4),
        }
    return out


def digits_arrays() -> dict:
    from cnn import dataset_formats

    x_train, y_train, x_test, y_test = dataset_formats.load_digits()
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=REPO / "bench-out" / "own_datasets.json")
    args = parser.parse_args()

    from cnn import own_datasets

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        photos = tmp / "photos"
        start = time.perf_counter()
        jpeg_bytes = make_photos(photos, args.count)
        made = time.perf_counter() - start
        zip_folder(photos, tmp / "photos.zip")
        print(f"made {args.count} JPEGs ({jpeg_bytes / 1e6:.1f} MB) in {made:.1f} s",
              file=sys.stderr)

        folder = time_add(photos, tmp / "data-folder", args.repeats)
        print(f"add from a folder: {folder}", file=sys.stderr)
        from_zip = time_add(tmp / "photos.zip", tmp / "data-zip", args.repeats)
        print(f"add from a zip: {from_zip}", file=sys.stderr)

        stored = own_datasets.locate("bench", tmp / "data-folder")
        photo_arrays = dict(zip(("x_train", "y_train", "x_test", "y_test"),
                                own_datasets.load_arrays(stored)))
        choice = {
            "photos_64x64x3": storage_choice(photo_arrays, tmp),
            "digits_32x32x1": storage_choice(digits_arrays(), tmp),
        }
        print(f"storage: {json.dumps(choice)}", file=sys.stderr)

    result = {
        "what": f"cnn.own_datasets.add of {args.count} JPEG photos (300-600 px) in 10 classes",
        "photos": {"count": args.count, "jpeg_megabytes": round(jpeg_bytes / 1e6, 1)},
        "add_from_folder": folder,
        "add_from_zip": from_zip,
        "storage": choice,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version(), "nice": os.nice(0)},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
