"""MNIST and Fashion-MNIST from a user's local copy of their IDX files: ``mnist:path=DIR``,
``fashion_mnist:path=DIR``.

Both distributions ship the same four files (MNIST: LeCun, Cortes & Burges,
http://yann.lecun.com/exdb/mnist/; Fashion-MNIST: Xiao, Rasul & Vollgraf 2017,
https://github.com/zalandoresearch/fashion-mnist), each gzipped or not::

    train-images-idx3-ubyte[.gz]   (60000, 28, 28) uint8     train-labels-idx1-ubyte[.gz]  (60000,)
    t10k-images-idx3-ubyte[.gz]    (10000, 28, 28) uint8     t10k-labels-idx1-ubyte[.gz]   (10000,)

(also found with a dot before ``idx``, ``train-images.idx3-ubyte``, as some mirrors name them).
The IDX layout is lpae.data.idx's. ``split`` has the meaning of the built-in ``mnist``: ``all``
(the default) is the training images then the test images, the test images being every run's test
split (``Dataset.test_rows``); ``train`` or ``test`` is that part alone, split at random. Samples
are (1, 28, 28), values 0..255 on a lattice of width 1 (8-bit grey levels), labels 0..9. The
counts are not checked (a subset in the same format loads), the image size and the labels are.
Parsing is a gzip decompression and a reshape (well under a second for 70,000 images), so
nothing is cached. Nothing is downloaded: docs/data.md says where the files come from.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lpae.data.dataset import Dataset
from lpae.data.idx import read_idx_array
from lpae.data.quantization import Quantization
from lpae.data.registry import DATASETS, PATH_PARAM
from lpae.spec import Choice, Param, Text

SIDE = 28
PARTS = {"train": "train", "test": "t10k"}  # split -> the files' name prefix
SPLITS = ("train", "test", "all")
FASHION_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)


def parts_of(split: str) -> list[str]:
    return ["train", "test"] if split == "all" else [split]


def folder_of(set_name: str, path: str) -> Path:
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise ValueError(
            f"data set {set_name!r}: path={path}: no such folder (give the folder of its IDX files)"
        )
    return folder


def idx_file(folder: Path, part: str, kind: str, set_name: str) -> Path:
    """The file of one part ('train', 'test') and kind ('images', 'labels'), gzipped or not."""
    rank = 3 if kind == "images" else 1
    stem = f"{PARTS[part]}-{kind}"
    names = [f"{stem}-idx{rank}-ubyte", f"{stem}.idx{rank}-ubyte"]
    for name in names:
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    raise ValueError(
        f"data set {set_name!r}: {folder / names[0]}[.gz] is missing; the folder needs the four IDX "
        "files train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and "
        "t10k-labels-idx1-ubyte (each may be .gz; see docs/data.md for where to download them)"
    )


def idx_files(set_name: str, path: str, split: str) -> list[Path]:
    """The files a split reads: images then labels of each part."""
    folder = folder_of(set_name, path)
    return [
        idx_file(folder, part, kind, set_name) for part in parts_of(split) for kind in ("images", "labels")
    ]


def read_part(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 28, 28) uint8 and labels (N,) uint8 of one part, checked against each other."""
    images, labels = read_idx_array(images_path), read_idx_array(labels_path)
    if images.ndim != 3 or images.shape[1:] != (SIDE, SIDE) or images.dtype != np.uint8:
        raise ValueError(
            f"{images_path}: expected uint8 images of shape (N, {SIDE}, {SIDE}), found {images.dtype} "
            f"{images.shape}"
        )
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise ValueError(
            f"{labels_path}: expected uint8 labels of shape (N,), found {labels.dtype} {labels.shape}"
        )
    if len(labels) != len(images):
        raise ValueError(f"{labels_path}: {len(labels)} labels for the {len(images)} images of {images_path}")
    if len(labels) and labels.max() > 9:
        raise ValueError(f"{labels_path}: labels must be classes 0..9, found {labels.max()}")
    return images, labels


def load_idx_folder(set_name: str, path: str, split: str, class_names: tuple[str, ...] | None) -> Dataset:
    files = idx_files(set_name, path, split)
    loaded = [read_part(files[i], files[i + 1]) for i in range(0, len(files), 2)]
    images = np.concatenate([x for x, _ in loaded])[:, None]  # (N, 1, 28, 28)
    labels = np.concatenate([y for _, y in loaded]).astype(np.int64)
    # With both parts, the test images (after the training images) are every run's test split.
    test_rows = np.arange(len(loaded[0][0]), len(images)) if split == "all" else None
    info: dict[str, object] = {"source": str(folder_of(set_name, path).resolve()), "split": split}
    if class_names is not None:
        info["class_names"] = list(class_names)
    grey = Quantization.uniform(images.shape[1:], 1.0, 0.0, 255.0)  # 8-bit grey levels
    return Dataset(
        f"{set_name}-{split}", images, labels, kind="image", info=info, test_rows=test_rows, quantization=grey
    )


def load_fashion_mnist(path: str, split: str) -> Dataset:
    return load_idx_folder("fashion_mnist", path, split, FASHION_CLASSES)


DATASETS.register(
    "fashion_mnist",
    load_fashion_mnist,
    params=[
        Param(PATH_PARAM, Text(), help="the folder of Fashion-MNIST's four IDX files"),
        Param("split", Choice(SPLITS), "all", "all: standard 10k test split"),
    ],
    summary="Fashion-MNIST from path=DIR of its IDX files (60k train / standard 10k test), 28x28 "
    "values 0..255",
    shape=(1, SIDE, SIDE),
    kind="image",
    labels=True,
    classes=10,  # FASHION_CLASSES
    files=lambda path: idx_files("fashion_mnist", path, "all"),
)
