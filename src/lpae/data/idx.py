"""IDX files (the format of the original MNIST distribution), optionally gzip-compressed.

Layout (LeCun et al., http://yann.lecun.com/exdb/mnist/): two zero bytes, a type byte
(0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64), the number of
dimensions, then each dimension as a big-endian uint32, then the values, big-endian, row-major.

An images file ``...-images-idx3-ubyte[.gz]`` takes its labels from the sibling
``...-labels-idx1-ubyte[.gz]`` when that file exists.
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import numpy as np

from lpae.data.convert import FileOptions, Raw

IDX_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
IDX_NAME = re.compile(r"(\.idx\d?|[-.]idx\d-ubyte|-ubyte)(\.gz)?$", re.IGNORECASE)


def is_idx_name(path: Path) -> bool:
    return IDX_NAME.search(path.name) is not None


def read_idx_array(path: Path) -> np.ndarray:
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rb") as handle:
            raw = handle.read()
    except (gzip.BadGzipFile, EOFError) as error:
        raise ValueError(f"{path}: not a readable gzip file ({error})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_TYPES:
        raise ValueError(f"{path}: not an IDX file (bad magic number {raw[:4].hex() or 'none'})")
    dtype, ndim = IDX_TYPES[raw[2]], raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise ValueError(
            f"{path}: IDX header says shape {shape} ({expected} bytes) but {len(raw) - header} bytes follow"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)


def labels_sibling(path: Path) -> Path | None:
    """The labels file next to an images file, if it exists."""
    for images, labels in (("images-idx3", "labels-idx1"), ("images.idx3", "labels.idx1")):
        if images in path.name:
            name = path.name.replace(images, labels)
            for candidate in (name, name.removesuffix(".gz"), name + ".gz"):
                if (path.parent / candidate).is_file():
                    return path.parent / candidate
    return None


def read_idx(path: Path, options: FileOptions) -> Raw:
    x = read_idx_array(path)
    labels_path = labels_sibling(path)
    if labels_path is None:
        return Raw(x, info={"labels_file": None})
    labels = read_idx_array(labels_path)
    return Raw(x, labels=labels, labels_source=str(labels_path), info={"labels_file": str(labels_path)})
