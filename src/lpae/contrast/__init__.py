"""Distance concentration: relative contrast and neighbour class agreement of L_k metrics.

Three modes (Aggarwal, Hinneburg & Keim 2001; see docs/contrast.md):

- ``synthetic_contrast``: i.i.d. uniform or normal data over a range of dimensions;
- ``data_contrast``: every point of a data set as a query against the rest;
- ``latent_contrast``: the same on a trained model's latent codes, beside its raw features.

Distances are exact for every k > 0 and k = inf (``lk_distances``, ``power_sums``).
"""

from lpae.contrast.data import analyse, data_contrast, dataset_features
from lpae.contrast.distances import k_json, k_label, lk_distances, parse_k_values, power_sums
from lpae.contrast.latent import latent_contrast
from lpae.contrast.neighbours import nearest_by_key, scan
from lpae.contrast.synthetic import synthetic_contrast

__all__ = [
    "analyse",
    "data_contrast",
    "dataset_features",
    "k_json",
    "k_label",
    "latent_contrast",
    "lk_distances",
    "nearest_by_key",
    "parse_k_values",
    "power_sums",
    "scan",
    "synthetic_contrast",
]
