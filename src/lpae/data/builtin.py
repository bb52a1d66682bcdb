"""Built-in real data sets that ship inside installed packages (no network)."""

from __future__ import annotations

from typing import Any

import numpy as np

from lpae.data.dataset import Dataset
from lpae.data.registry import DATASETS


def load_digits(**_: Any) -> Dataset:
    """scikit-learn's 1797 handwritten digits, 8 x 8 pixels valued 0..16, kept as 64 features."""
    from sklearn.datasets import load_digits as sk_load

    bunch = sk_load()
    return Dataset(
        "digits",
        bunch.data.astype(np.float32),
        bunch.target.astype(np.int64),
        kind="tabular",
        info={"image_shape": [1, 8, 8]},
    )


DATASETS.register(
    "digits",
    load_digits,
    summary="scikit-learn handwritten digits, 1797 x 64 (8x8 images), 10 classes",
    shape=(64,),
    kind="tabular",
    labels=True,
    requires=None,
)
