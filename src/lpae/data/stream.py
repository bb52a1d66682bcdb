"""Training batches read from disk: a memory-mapped ``.npy`` file, shuffled by seeded blocks.

When the data exceed the memory budget (``--stream auto``, the default, with
``--memory-budget``; or ``--stream on``), a run keeps its data file memory-mapped
(``numpy.load(mmap_mode="r")``) instead of loading it: the operating system reads pages on
demand and may drop them again, so the data never need to fit in memory. Only the row indices of
the split (8 bytes a row), a few blocks of rows and the model are held.

Block shuffling, one epoch (:meth:`StreamedRows.shuffled_batches`):

1. the file's rows are cut into blocks of BLOCK_ROWS consecutive rows; the training rows of a
   block are the split's training indices that fall in it (the split itself is the in-memory
   one, lpae.data.split_indices, so both paths train, validate and test on the same rows);
2. the order of the blocks is a seeded permutation (``torch.randperm`` with the run's shuffle
   generator; not drawn when there is a single block);
3. BUFFER_BLOCKS blocks at a time, in that order, are read, preprocessed and concatenated, and
   their rows permuted (``torch.randperm``, the same generator); batches are consecutive slices
   of the permuted rows, the last rows of a buffer carried into the next so every batch but the
   epoch's last is full.

This differs from a full permutation: rows of one buffer meet only each other within a few
batches, and a batch never mixes rows from blocks far apart in the block order. With a single
block (the data shorter than BLOCK_ROWS, or ``block_rows`` set that large) step 2 draws nothing
and step 3 is the in-memory path's ``torch.randperm`` of the training rows: the batches, and so
the weights, are identical to training in memory with the same seed (tests/test_data_stream.py).

Validation and test rows are read in order, in slices (``rows[a:b]``), preprocessed on the fly.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from lpae.config import STREAM_MODES, parse_size
from lpae.data.preprocess import Preprocessor

BLOCK_ROWS = 65536  # rows per block: 16 MiB of 64 float32 features
BUFFER_BLOCKS = 4  # blocks shuffled together
GATHER_ROWS = 65536  # rows gathered at once from an in-memory tensor (:func:`shuffled_batches`)
STREAMED_SUFFIXES = (".npy",)


def streamable_path(spec: str) -> Path | None:
    """The file of a data spec that can be streamed (a .npy file, with or without options), else None."""
    name, _, _ = spec.partition(":")
    path = Path(name.strip())
    return path if path.suffix.lower() in STREAMED_SUFFIXES and path.is_file() else None


def resolve_stream(mode: str, spec: str, budget: str) -> str:
    """``on`` or ``off`` for a run: auto streams a .npy file larger than the memory budget."""
    if mode not in STREAM_MODES:
        raise ValueError(f"stream {mode!r} is not allowed; choose one of {', '.join(STREAM_MODES)}")
    limit = parse_size(budget)
    path = streamable_path(spec)
    if mode == "on" and path is None:
        raise ValueError(
            f"--stream on: data {spec!r} is not a .npy file; streaming reads memory-mapped .npy files "
            "(save the table with numpy.save, or use --stream off)"
        )
    if mode == "auto":
        return "on" if path is not None and path.stat().st_size > limit else "off"
    return mode


def shuffled_batches(x: Tensor | StreamedRows, batch_size: int, shuffle: torch.Generator) -> Iterator[Tensor]:
    """One epoch's batches of x in a fresh seeded order.

    In memory: the rows in the order ``torch.randperm(len(x), generator=shuffle)``, gathered
    GATHER_ROWS (rounded up to whole batches) at a time, so no second copy of x is made.
    Streamed: block shuffling (module docstring)."""
    if isinstance(x, StreamedRows):
        yield from x.shuffled_batches(batch_size, shuffle)
        return
    order = torch.randperm(len(x), generator=shuffle).to(x.device)
    chunk = -(-GATHER_ROWS // batch_size) * batch_size
    for begin in range(0, len(x), chunk):
        gathered = x[order[begin : begin + chunk]]  # (chunk, *shape)
        for start in range(0, len(gathered), batch_size):
            yield gathered[start : start + batch_size]


class StreamedRows:
    """Some rows of a (memory-mapped) array, preprocessed when read: a stand-in for their tensor.

    ``len``, ``numel``, ``device``, ``to`` and slicing ``rows[a:b]`` (a preprocessed tensor of
    those rows, in order) behave as on the tensor of the rows; :meth:`shuffled_batches` is an
    epoch of block-shuffled batches (module docstring)."""

    def __init__(
        self,
        x: np.ndarray,
        rows: np.ndarray,
        preprocessor: Preprocessor,
        block_rows: int | None = None,
        buffer_blocks: int | None = None,
        device: torch.device | str = "cpu",
    ) -> None:
        block_rows = BLOCK_ROWS if block_rows is None else block_rows  # read when called: tests set them
        buffer_blocks = BUFFER_BLOCKS if buffer_blocks is None else buffer_blocks
        if block_rows < 1 or buffer_blocks < 1:
            raise ValueError(f"block_rows and buffer_blocks must be >= 1, got {block_rows}, {buffer_blocks}")
        self.x = x
        self.rows = np.asarray(rows, dtype=np.int64)  # sorted row indices into x
        self.preprocessor = preprocessor
        self.block_rows = block_rows
        self.buffer_blocks = buffer_blocks
        self.device = torch.device(device)
        # row positions where each block's rows start: block b holds rows[bounds[b]:bounds[b + 1]]
        n_blocks = -(-len(x) // block_rows)
        self.bounds = np.searchsorted(self.rows, np.arange(n_blocks + 1) * block_rows)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.rows), *self.x.shape[1:])

    def numel(self) -> int:
        return int(np.prod(self.shape))

    def to(self, device: torch.device | str) -> StreamedRows:
        self.device = torch.device(device)
        return self

    def read(self, rows: np.ndarray) -> Tensor:
        """The preprocessed samples at ``rows`` (sorted indices into x), on the device."""
        return torch.from_numpy(self.preprocessor.transform(self.x[rows])).to(self.device)

    def __getitem__(self, part: slice) -> Tensor:
        if not isinstance(part, slice) or part.step not in (None, 1):
            raise TypeError("streamed rows are read in contiguous slices, rows[a:b]")
        return self.read(self.rows[part])

    def shuffled_batches(self, batch_size: int, shuffle: torch.Generator) -> Iterator[Tensor]:
        """One epoch of block-shuffled batches (module docstring, steps 1-3)."""
        blocks = [b for b in range(len(self.bounds) - 1) if self.bounds[b + 1] > self.bounds[b]]
        if len(blocks) > 1:
            blocks = [blocks[int(i)] for i in torch.randperm(len(blocks), generator=shuffle)]
        carried: Tensor | None = None
        for begin in range(0, len(blocks), self.buffer_blocks):
            chosen = blocks[begin : begin + self.buffer_blocks]
            rows = np.concatenate([self.rows[self.bounds[b] : self.bounds[b + 1]] for b in chosen])
            buffer = self.read(rows)
            buffer = buffer[torch.randperm(len(buffer), generator=shuffle).to(self.device)]
            if carried is not None:
                buffer = torch.cat([carried, buffer])
            full = len(buffer) - len(buffer) % batch_size
            for start in range(0, full, batch_size):
                yield buffer[start : start + batch_size]
            carried = buffer[full:]
        if carried is not None and len(carried):
            yield carried
