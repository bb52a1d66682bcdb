"""lpae: autoencoders under any L_p reconstruction loss or decoder likelihood, and the evidence
for choosing between them."""

from typing import Any

__version__ = "0.1.0"

# Imported on first use: `import lpae` stays cheap (no torch, no scikit-learn) for the CLI.
LAZY = {"LpAutoencoder": "lpae.estimator", "LpAnomalyDetector": "lpae.anomaly"}

__all__ = ["LpAnomalyDetector", "LpAutoencoder", "__version__"]


def __getattr__(name: str) -> Any:
    if name in LAZY:
        import importlib

        return getattr(importlib.import_module(LAZY[name]), name)
    raise AttributeError(f"module 'lpae' has no attribute {name!r}")
