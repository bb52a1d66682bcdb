"""CIFAR-10 (Krizhevsky 2009) from a user's local copy of its binary version: ``cifar10:path=DIR``.

The binary version (https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz, unpacked into
``cifar-10-batches-bin/``) holds five training batches ``data_batch_1.bin`` .. ``data_batch_5.bin``
and ``test_batch.bin``, 10,000 records each. A record is 3073 bytes: the label (0..9), then 3072
pixels, the 1024 red values, then the green, then the blue, each plane 32x32 row-major: so a
record's pixels reshape to (3, 32, 32) as they are. ``batches.meta.txt`` names the ten classes,
one a line. DIR may be that folder or the folder it was unpacked into.

The "python version" (``data_batch_1`` without ``.bin``) is pickled and is refused: lpae never
unpickles. ``split`` means what it means for ``mnist``: ``all`` (the default) is the training
batches then the test batch, the test batch being every run's test split (``Dataset.test_rows``);
``train`` or ``test`` is that part alone, split at random. Samples are (3, 32, 32), values 0..255
on a lattice of width 1. The record count is not checked (a subset in the same format loads); a
file that is not whole records is refused. Parsing is a read and a reshape (about 180 MB,
well under a second from the page cache), so nothing is cached. Nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lpae.data.dataset import Dataset
from lpae.data.quantization import Quantization
from lpae.data.registry import DATASETS, PATH_PARAM
from lpae.spec import Choice, Param, Text

SHAPE = (3, 32, 32)
RECORD_BYTES = 1 + 3 * 32 * 32  # a label byte, then the R, G and B planes
SUBFOLDER = "cifar-10-batches-bin"
PARTS = {"train": [f"data_batch_{i}.bin" for i in range(1, 6)], "test": ["test_batch.bin"]}
SPLITS = ("train", "test", "all")
META = "batches.meta.txt"
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
BINARY_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"


def parts_of(split: str) -> list[str]:
    return ["train", "test"] if split == "all" else [split]


def batches_folder(path: str) -> Path:
    """The folder holding the .bin batches: DIR, or DIR/cifar-10-batches-bin."""
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise ValueError(
            f"data set 'cifar10': path={path}: no such folder (give the folder of the .bin batches)"
        )
    if not (folder / PARTS["train"][0]).is_file() and (folder / SUBFOLDER).is_dir():
        folder = folder / SUBFOLDER
    pickled = [p for p in (folder / "data_batch_1", folder / "cifar-10-batches-py") if p.exists()]
    if not (folder / PARTS["train"][0]).is_file() and pickled:
        raise ValueError(
            f"data set 'cifar10': {pickled[0]} is CIFAR-10's pickled python version, which lpae does not "
            f"read (it never unpickles); download the binary version ({BINARY_URL}) and give its "
            f"{SUBFOLDER} folder"
        )
    return folder


def batch_files(path: str, split: str) -> list[Path]:
    """The .bin files a split reads, in order (training batches 1..5, then the test batch)."""
    folder = batches_folder(path)
    files = [folder / name for part in parts_of(split) for name in PARTS[part]]
    for file in files:
        if not file.is_file():
            raise ValueError(
                f"data set 'cifar10': {file} is missing; the folder needs data_batch_1.bin .. "
                f"data_batch_5.bin and test_batch.bin of the binary version ({BINARY_URL})"
            )
    return files


def read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 3, 32, 32) uint8 and labels (N,) uint8 of one batch file."""
    raw = np.fromfile(path, dtype=np.uint8)
    if len(raw) == 0 or len(raw) % RECORD_BYTES:
        raise ValueError(
            f"{path}: {len(raw)} bytes is not a whole number of {RECORD_BYTES}-byte records (1 label "
            "byte + 3072 pixels); the file is truncated or not a CIFAR-10 binary batch"
        )
    records = raw.reshape(-1, RECORD_BYTES)  # (N, 3073)
    labels = records[:, 0]
    if labels.max() > 9:
        row = int(np.argmax(labels > 9))
        raise ValueError(f"{path}: record {row} has label {labels[row]}; CIFAR-10 labels are 0..9")
    return records[:, 1:].reshape(-1, *SHAPE), labels


def class_names(folder: Path) -> tuple[str, ...]:
    """The class names of batches.meta.txt (one a line, blank lines ignored), else the standard ones."""
    meta = folder / META
    if not meta.is_file():
        return CLASSES
    names = tuple(line.strip() for line in meta.read_text(errors="replace").splitlines() if line.strip())
    if len(names) != len(CLASSES):
        raise ValueError(f"{meta}: expected {len(CLASSES)} class names, one a line; found {len(names)}")
    return names


def load_cifar10(path: str, split: str) -> Dataset:
    files = batch_files(path, split)
    loaded = [read_batch(file) for file in files]
    images = np.concatenate([x for x, _ in loaded])  # (N, 3, 32, 32)
    labels = np.concatenate([y for _, y in loaded]).astype(np.int64)
    n_test = len(loaded[-1][0])
    # With both parts, the test batch (read last) is every run's test split.
    test_rows = np.arange(len(images) - n_test, len(images)) if split == "all" else None
    folder = files[0].parent
    info = {"source": str(folder.resolve()), "split": split, "class_names": list(class_names(folder))}
    pixels = Quantization.uniform(SHAPE, 1.0, 0.0, 255.0)  # 8-bit colour values
    return Dataset(
        f"cifar10-{split}", images, labels, kind="image", info=info, test_rows=test_rows, quantization=pixels
    )


DATASETS.register(
    "cifar10",
    load_cifar10,
    params=[
        Param(PATH_PARAM, Text(), help="the folder of the binary version's .bin batches"),
        Param("split", Choice(SPLITS), "all", "all: standard 10k test split"),
    ],
    summary="CIFAR-10 from path=DIR of its binary batches (50k train / standard 10k test), 3x32x32 "
    "values 0..255",
    shape=SHAPE,
    kind="image",
    labels=True,
    classes=10,  # CLASSES
    files=lambda path: batch_files(path, "all"),
)
