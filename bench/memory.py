"""Peak memory of ``lpae train`` against data size, and training from a file larger than a memory limit.

For each row count it writes a float32 ``.npy`` of ROWS x ``--features`` (rank-8 Gaussian
signal plus noise, seed 0) into ``--workdir``, runs ``lpae train --data FILE --epochs 1`` (train
+ evaluation, the CLI as a user calls it) in a child process and reads the child's peak resident
set size from ``os.wait4`` (ru_maxrss, baseline libraries included: torch, numpy, scikit-learn;
pages of a memory-mapped file count in it while mapped, though the kernel may drop them).
The ratio ``peak / data`` says how many copies of the data the process held at its peak.

``--limit 2GB`` runs each child inside a memory cgroup of that size (cgroup v2 ``memory.max``,
or v1 ``memory.limit_in_bytes``; needs a writable /sys/fs/cgroup, e.g. root): a child that
exceeds it is killed by the kernel (status ``oom``). ``ulimit -v`` does not suit torch, which
reserves large virtual ranges. Page-cache pages of a memory-mapped file count towards a cgroup
but are reclaimed under pressure; anonymous memory is what must fit. The file's pages are evicted
from the page cache after it is written (they would be charged to this process, not the child),
and the cgroup's own peak (``cgroup_peak_mib``) is reported beside ru_maxrss.

Each data file is deleted after its run (the 3 GB case needs the disk only while it runs).

    .venv/bin/python bench/memory.py --rows 20000,200000,2000000
    .venv/bin/python bench/memory.py --rows 12000000 --limit 2GB \
        --train-args "--stream on --test-fraction 0.02"

Last line: ``RESULT rows_N_peak_mib=... rows_N_copies=... rows_N_s=... rows_N_status=...``.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

MIB = 2**20
CHUNK_ROWS = 1_000_000
CGROUP_ROOTS = (Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup/memory"))


def write_data(path: Path, n_rows: int, n_features: int) -> None:
    """A float32 (n_rows, n_features) .npy written in chunks (never all in memory)."""
    rng = np.random.default_rng(0)
    mixing = rng.standard_normal((8, n_features)).astype(np.float32)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n_rows, n_features))
    for start in range(0, n_rows, CHUNK_ROWS):
        stop = min(start + CHUNK_ROWS, n_rows)
        signal = rng.standard_normal((stop - start, 8), dtype=np.float32) @ mixing
        out[start:stop] = signal + 0.1 * rng.standard_normal((stop - start, n_features), dtype=np.float32)
    out.flush()
    del out
    # The pages just written are cached and charged to this process's cgroup, not the child's:
    # evict them, so the child reads the file from disk and its page cache counts against its limit.
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())
        os.posix_fadvise(handle.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)


def parse_size(text: str) -> int:
    """'2GB', '512MiB', '3e9' -> bytes (K, M, G, T binary), as lpae's --memory-budget reads them."""
    match = re.fullmatch(r"([0-9.e+]+)\s*([KMGT]?)I?B?", text.strip().upper())
    if match is None:
        raise SystemExit(f"bench/memory.py: cannot read the size {text!r} (e.g. 2GB)")
    return int(float(match[1]) * 1024 ** " KMGT".index(match[2] or " "))


def make_cgroup(limit: int) -> Path:
    """A fresh memory cgroup of ``limit`` bytes (v2 memory.max, else v1 memory.limit_in_bytes)."""
    for root in CGROUP_ROOTS:
        v2 = (root / "cgroup.controllers").is_file()
        if not v2 and not (root / "memory.limit_in_bytes").is_file():
            continue
        group = root / f"lpae-bench-memory-{os.getpid()}"
        group.mkdir()
        if v2:
            (group / "memory.max").write_text(str(limit))
            (group / "memory.swap.max").write_text("0") if (group / "memory.swap.max").exists() else None
        else:
            (group / "memory.limit_in_bytes").write_text(str(limit))
        return group
    raise SystemExit("bench/memory.py: no writable memory cgroup under /sys/fs/cgroup (--limit needs one)")


def cgroup_peak(group: Path) -> float:
    """The cgroup's peak charged memory in MiB (anonymous memory and page cache; v2 memory.peak,
    v1 memory.max_usage_in_bytes), nan when the kernel does not report it."""
    for name in ("memory.peak", "memory.max_usage_in_bytes"):
        if (group / name).is_file():
            return int((group / name).read_text()) / MIB
    return float("nan")


def run_child(command: list[str], group: Path | None) -> tuple[int, float, float]:
    """Run ``command`` (inside ``group`` when given); return (exit status, peak RSS MiB, seconds)."""

    def enter_group() -> None:
        if group is not None:
            (group / "cgroup.procs").write_text(str(os.getpid()))

    started = time.perf_counter()
    child = subprocess.Popen(command, preexec_fn=enter_group, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    return os.waitstatus_to_exitcode(status), usage.ru_maxrss / 1024, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", default="20000,200000,2000000", help="comma-separated row counts")
    parser.add_argument("--features", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--limit", default=None, help="memory cgroup limit for each child, e.g. 2GB")
    parser.add_argument("--train-args", default="", help="more lpae train options, e.g. '--stream on'")
    parser.add_argument("--workdir", default=None, help="folder for the data files (default: a temp dir)")
    args = parser.parse_args()
    limit = parse_size(args.limit) if args.limit else None
    found: list[str] = []
    with tempfile.TemporaryDirectory(dir=args.workdir, prefix="lpae-memory-") as tmp:
        for n_rows in [int(r) for r in args.rows.split(",")]:
            data = Path(tmp) / f"x{n_rows}.npy"
            write_data(data, n_rows, args.features)
            data_mib = n_rows * args.features * 4 / MIB
            command = [sys.executable, "-m", "lpae", "train", "--data", str(data)]
            command += ["--epochs", str(args.epochs), "--out", str(Path(tmp) / f"run{n_rows}")]
            command += shlex.split(args.train_args)
            group = make_cgroup(limit) if limit else None
            charged = float("nan")
            try:
                code, peak, seconds = run_child(command, group)
                if group is not None:
                    charged = cgroup_peak(group)
            finally:
                data.unlink()
                if group is not None:
                    group.rmdir()
            status = "ok" if code == 0 else ("oom" if code in (-9, 137) else f"exit{code}")
            cgroup_note = f" cgroup_peak_mib={charged:.0f}" if limit else ""
            print(
                f"rows={n_rows} data_mib={data_mib:.0f} peak_mib={peak:.0f} copies={peak / data_mib:.2f} "
                f"seconds={seconds:.1f} status={status}{cgroup_note}",
                flush=True,
            )
            found += [
                f"rows_{n_rows}_peak_mib={peak:.0f}",
                f"rows_{n_rows}_copies={peak / data_mib:.2f}",
                f"rows_{n_rows}_s={seconds:.1f}",
                f"rows_{n_rows}_status={status}",
            ]
            found += [f"rows_{n_rows}_cgroup_peak_mib={charged:.0f}"] if limit else []
    limit_note = [f"limit_mib={limit / MIB:.0f}"] if limit else []
    print("RESULT " + " ".join(found + limit_note))


if __name__ == "__main__":
    main()
