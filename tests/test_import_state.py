"""Importing lpae changes no process-wide setting: a notebook user's backend, threads, dtype, ...

A fresh interpreter records the settings a library could change on import, imports every lpae
module (the command line's included; not ``lpae.__main__``, which runs the command line), records
them again and prints what differs.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

SCRIPT = r"""
import importlib, json, logging, os, pkgutil, sys, warnings

import matplotlib
import numpy as np
import torch

# Third-party libraries that lpae uses and that change globals on their own import: scipy.special
# adds an "always" filter for its SpecialFunctionWarning, scikit-learn sets KMP_DUPLICATE_LIB_OK
# and KMP_INIT_AT_FORK in os.environ. Imported first, so that what differs is lpae's doing.
import scipy.special, sklearn


def settings():
    rc = matplotlib.rcParams
    return {
        # dict.__getitem__ reads the raw value: rcParams["backend"] would resolve (and set) it
        "matplotlib_rc": {key: repr(dict.__getitem__(rc, key)) for key in rc},
        "pyplot_imported": "matplotlib.pyplot" in sys.modules,
        "torch_threads": torch.get_num_threads(),
        "torch_dtype": str(torch.get_default_dtype()),
        "torch_deterministic": torch.are_deterministic_algorithms_enabled(),
        "warnings_filters": [repr(f) for f in warnings.filters],
        "numpy_printoptions": repr(np.get_printoptions()),
        "numpy_errstate": np.geterr(),
        "logging_root": [repr(logging.root.handlers), logging.root.level],
        "environ": dict(os.environ),
    }


def fail(name):
    raise ImportError(f"cannot import {name}")


before = settings()
import lpae

names = []
for info in pkgutil.walk_packages(lpae.__path__, "lpae.", onerror=fail):
    if info.name != "lpae.__main__":
        importlib.import_module(info.name)
        names.append(info.name)
after = settings()
changed = {key: [before[key], after[key]] for key in before if before[key] != after[key]}
print(json.dumps({"modules": names, "changed": changed}, default=repr))
"""


@pytest.mark.slow
def test_importing_every_module_leaves_global_settings_alone() -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    for name in ("lpae.cli", "lpae.cli.train", "lpae.contrast.plot", "lpae.study.report.plots"):
        assert name in result["modules"]
    assert result["changed"] == {}
