"""Real tabular sets that ship inside scikit-learn (no network): ``sklearn.datasets.load_*``.

| spec | samples x features | values | labels |
|---|---|---|---|
| digits | 1797 x 64 | 8x8 images, 0..16 (quantized: integers, bins of width 1) | 10 digits |
| breast_cancer | 569 x 30 | continuous, scales 1e-3..1e3 | malignant / benign |
| wine | 178 x 13 | continuous | 3 cultivars |
| diabetes | 442 x 10 | continuous, already centred and scaled | none (the target is a regression target) |
| iris | 150 x 4 | continuous, cm | 3 species |
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from lpae.data.dataset import Dataset
from lpae.data.quantization import Quantization
from lpae.data.registry import DATASETS


def sklearn_loader(
    name: str, labels: bool, info: dict[str, Any] | None = None, levels: tuple[float, float] | None = None
) -> Callable[..., Dataset]:
    """A loader of ``sklearn.datasets.load_NAME``; ``levels`` (low, high): integer values in that
    range (digits: grey levels 0..16), declared as a lattice of step 1; None: continuous."""

    def load(**_: Any) -> Dataset:
        import sklearn.datasets

        bunch = getattr(sklearn.datasets, f"load_{name}")()
        y = bunch.target.astype(np.int64) if labels else None
        extra = {"classes": [str(c) for c in bunch.target_names]} if labels else {}
        x = bunch.data.astype(np.float32)
        quantization = None if levels is None else Quantization.uniform(x.shape[1:], 1.0, *levels)
        return Dataset(
            name,
            x,
            y,
            kind="tabular",
            info={"source": f"sklearn.datasets.load_{name}", "columns": list(map(str, bunch.feature_names))}
            | extra
            | (info or {}),
            quantization=quantization,
        )

    return load


SETS = [
    (
        "digits",
        64,
        True,
        "handwritten digits, 1797 x 64 (8x8 images, 0..16), 10 classes",
        {"image_shape": [1, 8, 8]},
        (0.0, 16.0),
    ),
    ("breast_cancer", 30, True, "Wisconsin breast cancer, 569 x 30 continuous, 2 classes", None, None),
    ("wine", 13, True, "wine recognition, 178 x 13 continuous, 3 classes", None, None),
    (
        "diabetes",
        10,
        False,
        "diabetes, 442 x 10 continuous (regression target not used as labels)",
        None,
        None,
    ),
    ("iris", 4, True, "Fisher's iris, 150 x 4 continuous, 3 classes", None, None),
]

# Class labels are 0 .. n - 1; grids check normal_classes against this count before anything runs.
CLASS_COUNTS = {"digits": 10, "breast_cancer": 2, "wine": 3, "iris": 3}

for _name, _features, _labels, _summary, _info, _levels in SETS:
    DATASETS.register(
        _name,
        sklearn_loader(_name, _labels, _info, _levels),
        summary=f"scikit-learn {_summary}",
        shape=(_features,),
        kind="tabular",
        labels=_labels,
        classes=CLASS_COUNTS.get(_name),
        requires=None,
    )
