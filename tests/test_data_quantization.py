"""Quantization of data sets: declared by built-ins, detected in files, carried through preprocessing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lpae.data import Preprocessor, fit_preprocessor, load
from lpae.data.preprocess import UNIT_EPS
from lpae.data.quantization import STEP_FRACTION, Quantization, detect, float_gcd, lattice_step


def write_csv(path: Path, columns: dict[str, np.ndarray], decimals: int | None = None) -> str:
    frame = pd.DataFrame(columns)
    frame.to_csv(path, index=False, float_format=None if decimals is None else f"%.{decimals}f")
    return str(path)


def test_six_decimals_of_continuous_data_are_continuous(tmp_path: Path) -> None:
    """Every value lies on a lattice of 1e-6, a step far below a thousandth of the std."""
    rng = np.random.default_rng(0)
    path = write_csv(tmp_path / "c.csv", {"a": rng.normal(size=400), "b": rng.normal(size=400) * 5}, 6)
    assert load(path).quantization is None


def test_integer_counts_are_quantized(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    counts = rng.poisson(4.0, size=400)
    path = write_csv(tmp_path / "n.csv", {"count": counts, "x": rng.normal(size=400)}, None)
    found = load(path).quantization
    assert found is not None
    np.testing.assert_array_equal(found.step, [1.0, 0.0])  # the count, not the continuous column
    assert found.low[0] == counts.min() and found.high[0] == counts.max()


@pytest.mark.parametrize(("fraction", "quantized"), [(2.0, True), (0.5, False)])
def test_the_rule_on_both_sides_of_a_thousandth_of_the_std(fraction: float, quantized: bool) -> None:
    """A lattice counts when its step exceeds STEP_FRACTION of the feature's std."""
    rng = np.random.default_rng(2)
    step = fraction * STEP_FRACTION  # values of std about 1
    x = (np.round(rng.normal(size=(3000, 1)) / step) * step).astype(np.float32)
    assert lattice_step(x[:, 0]) == pytest.approx(step, rel=1e-3)  # the lattice itself is found
    found = detect(x, image=False)
    assert (found is not None) == quantized


def test_lattice_step_is_the_gcd_of_the_gaps() -> None:
    assert lattice_step(np.array([0.0, 0.3, 1.0, 0.3])) == pytest.approx(0.1)
    assert lattice_step(np.array([2.0, 5.0, 11.0])) == pytest.approx(3.0)
    assert lattice_step(np.random.default_rng(7).normal(size=200)) == 0.0  # continuous: no lattice
    assert lattice_step(np.array([7.0, 7.0])) == 0.0  # one value has no step
    assert float_gcd(np.array([0.75, 1.25]), 1e-9) == pytest.approx(0.25)


def test_images_share_one_lattice(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, size=(20, 5, 5)).astype(np.uint8)
    images[:, 0, 0] = 7  # a constant pixel still gets the images' step
    np.save(tmp_path / "im.npy", images)
    found = load(str(tmp_path / "im.npy")).quantization
    assert found is not None and found.step.shape == (1, 5, 5)
    assert (
        (found.step == 1.0).all() and (found.low == images.min()).all() and (found.high == images.max()).all()
    )


def test_the_spec_declares_or_disables_it(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    halves = np.round(rng.normal(size=300) * 4) / 2
    path = write_csv(tmp_path / "h.csv", {"h": halves, "n": rng.poisson(3.0, size=300)}, None)
    assert load(path).quantization.step.tolist() == [0.5, 1.0]  # detected
    assert load(path + ":quantized=none").quantization is None
    declared = load(path + ":quantized=0.5")  # integers lie on a lattice of 0.5 too
    assert declared.quantization is not None
    assert declared.quantization.step.tolist() == [0.5, 0.5]
    with pytest.raises(ValueError, match=r"quantized=0\.3, but feature\(s\) 0, 1 have values off a lattice"):
        load(path + ":quantized=0.3")
    with pytest.raises(ValueError, match=r"quantized='fine' is not allowed; use auto"):
        load(path + ":quantized=fine")


def test_builtins_declare_theirs() -> None:
    digits = load("digits").quantization
    assert digits is not None
    assert (digits.step == 1).all() and (digits.low == 0).all() and (digits.high == 16).all()
    assert load("iris").quantization is None
    assert load("synthetic:dim=4,n=50").quantization is None


@pytest.mark.parametrize("method", ["standard", "minmax", "none"])
def test_preprocessing_carries_it_into_the_model_space(method: str) -> None:
    """Standardising divides the step by the std, min-max scaling by the range (times 1 - 2 eps);
    the lattice's ends transform like the data, and data on the lattice stay on it."""
    rng = np.random.default_rng(5)
    x = rng.integers(0, 10, size=(200, 3)).astype(np.float32) * np.array([1.0, 2.0, 0.5], np.float32)
    raw = Quantization(np.array([1.0, 2.0, 0.5]), x.min(axis=0).astype(float), x.max(axis=0).astype(float))
    fitted = fit_preprocessor(x, method, raw)
    assert fitted.quantization is not None
    if method == "standard":
        expected = raw.step / x.std(axis=0)
    elif method == "minmax":
        expected = raw.step / (x.max(axis=0) - x.min(axis=0)) * (1 - 2 * UNIT_EPS)
    else:
        expected = raw.step
    np.testing.assert_allclose(fitted.quantization.step, expected, rtol=1e-6)
    z = fitted.transform(x).astype(np.float64)
    k = (z - fitted.quantization.low) / fitted.quantization.step
    np.testing.assert_allclose(k, np.round(k), atol=1e-4)
    np.testing.assert_allclose(fitted.quantization.high, z.max(axis=0), rtol=1e-6)
    back = Preprocessor.from_json(json.loads(json.dumps(fitted.to_json())))  # config.json round trip
    assert back.quantization is not None
    np.testing.assert_array_equal(back.quantization.step, fitted.quantization.step)


def test_a_preprocessing_written_before_quantization_reads_as_continuous() -> None:
    old = {"method": "standard", "shape": [2], "shift": [0.0, 1.0], "scale": [1.0, 2.0], "eps": 1e-3}
    assert Preprocessor.from_json(old).quantization is None
    assert fit_preprocessor(np.eye(3, 2, dtype=np.float32), "standard").quantization is None


def test_bin_offsets_open_the_edge_bins() -> None:
    grid = Quantization(np.array([1.0, 0.0]), np.array([0.0, 0.0]), np.array([3.0, 0.0]))
    x = np.array([[0.0, 0.2], [1.0, -4.0], [3.0, 9.0], [-2.0, 1.0]])
    lower, upper = grid.bin_offsets(x)
    np.testing.assert_array_equal(lower[:, 0], [-np.inf, -0.5, -0.5, -np.inf])
    np.testing.assert_array_equal(upper[:, 0], [0.5, 0.5, np.inf, 2.5])  # below the range: lowest bin
    np.testing.assert_array_equal(lower[:, 1], 0.0)  # continuous: no bin
    np.testing.assert_array_equal(upper[:, 1], 0.0)


def test_resizing_images_drops_the_lattice(tmp_path: Path) -> None:
    images = np.random.default_rng(6).integers(0, 256, size=(6, 8, 8)).astype(np.uint8)
    np.save(tmp_path / "im.npy", images)
    assert load(str(tmp_path / "im.npy"), image_size=4).quantization is None


def test_the_run_setting_overrides_the_data_sets_own_lattice() -> None:
    from lpae.config import RunSpec, TrainSettings
    from lpae.experiment import prepare_run

    dataset = load("digits")
    tiny = {"train": TrainSettings(epochs=1), "loss": "gaussian:scale=calibrated"}
    auto = prepare_run(RunSpec(data="digits", **tiny), dataset)[0].data.preprocess["quantization"]
    assert auto is not None  # digits declare one grey level
    off = prepare_run(RunSpec(data="digits", quantized="none", **tiny), dataset)[0]
    assert off.data.preprocess.get("quantization") is None
    one = prepare_run(RunSpec(data="digits", quantized="1", **tiny), dataset)[0]
    # the same bin width as digits declare (their edge bins come from the declared range 0..16,
    # a declared STEP's from the values seen)
    assert one.data.preprocess["quantization"]["step"] == auto["step"]
    with pytest.raises(ValueError, match="--quantized for 'digits'"):
        prepare_run(RunSpec(data="digits", quantized="3", **tiny), dataset)  # not their lattice
    with pytest.raises(ValueError, match="quantized must be auto, none or a positive bin width"):
        RunSpec(quantized="coarse")
