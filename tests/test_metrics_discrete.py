"""NLL of quantized data (lpae.metrics.discrete): known answers, bounds, and the spike that cannot win."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from lpae.criteria import build
from lpae.data.quantization import Quantization
from lpae.metrics.discrete import own_sample_nll
from lpae.metrics.likelihood import bits_per_dim, gennorm_nll, own_nll_bpd


def quantized_gaussian(step: float, n: int = 4000, d: int = 8, seed: int = 0) -> tuple[np.ndarray, ...]:
    """signal + N(0, 1) noise rounded to a lattice of ``step``: (x, signal, lower, upper)."""
    rng = np.random.default_rng(seed)
    signal = rng.normal(size=(n, d)) * 3
    x = np.round((signal + rng.normal(size=(n, d))) / step) * step
    grid = Quantization.uniform((d,), step, float(x.min()), float(x.max()))
    lower, upper = grid.bin_offsets(x)
    return x, signal, lower, upper


def test_known_answer_fine_lattice_adds_log2_one_over_delta() -> None:
    """Noise of scale 1 on a lattice of 0.01: discrete bpd = continuous bpd + log2(1 / delta)."""
    step = 0.01
    x, signal, lower, upper = quantized_gaussian(step)
    residual = signal - x  # x_hat = the signal
    continuous = gennorm_nll(residual)["nll_gennorm_bpd"]
    discrete = gennorm_nll(residual, (lower, upper))
    assert discrete["nll_gennorm_bpd"] == pytest.approx(continuous + math.log2(1 / step), abs=0.01)
    assert discrete["nll_gennorm_p"] == pytest.approx(2.0, abs=0.1)  # Gaussian noise
    assert discrete["nll_quantized_fraction"] == 1.0


def test_known_answer_for_the_own_criterion() -> None:
    step = 0.01
    x, signal, lower, upper = quantized_gaussian(step, seed=1)
    criterion = build("gaussian:scale=1")
    xt, out = torch.from_numpy(x), torch.from_numpy(signal)
    continuous = float(criterion(xt, out).mean())
    discrete = own_nll_bpd(criterion, xt, out, (lower, upper))["nll_own_bpd"]
    assert discrete == pytest.approx(bits_per_dim(continuous, 8) + math.log2(1 / step), abs=0.01)


@pytest.mark.parametrize(
    ("spec", "dist"),
    [
        ("gaussian:scale=0.7", stats.norm(scale=0.7)),
        ("laplace:scale=0.7", stats.laplace(scale=0.7)),
        ("gennorm:p=0.6,scale=0.7", stats.gennorm(0.6, scale=0.7)),
        ("student_t:df=3,scale=0.7", stats.t(3, scale=0.7)),
    ],
)
def test_own_nll_is_the_scipy_bin_probability(spec: str, dist) -> None:
    """Coarse bins (step 1 on noise of scale 0.7), edge bins open: against scipy.stats CDFs."""
    x, signal, lower, upper = quantized_gaussian(1.0, n=200, d=3, seed=2)
    nll = own_sample_nll(build(spec), torch.from_numpy(x), torch.from_numpy(signal), lower, upper)
    low, high = x + lower - signal, x + upper - signal  # bin edges relative to the location
    probability = dist.cdf(high) - dist.cdf(low)
    np.testing.assert_allclose(nll, -np.log(probability).sum(axis=1), rtol=1e-7)


def test_criteria_without_a_cdf_keep_their_density() -> None:
    x, signal, lower, upper = quantized_gaussian(1.0, n=50, d=3)
    xt = torch.from_numpy((x - x.min() + 1) / (x.max() - x.min() + 2))  # into (0, 1)
    assert own_sample_nll(build("cbernoulli"), xt, xt, lower, upper) is None
    assert own_sample_nll(build("barron_nll:alpha=1,scale=1"), torch.from_numpy(x), xt, lower, upper) is None


def test_a_spike_on_the_lattice_cannot_win() -> None:
    """Most residuals exactly 0 (the right grey level), the rest off by whole steps: a continuous
    density rewards a collapsing scale with a negative bpd; the bins' NLL is >= 0 and ranks a
    model that is right less often behind one that is right more often."""
    rng = np.random.default_rng(3)
    n, d = 2000, 16
    x = rng.integers(0, 17, size=(n, d)).astype(np.float64)
    grid = Quantization.uniform((d,), 1.0, 0.0, 16.0)
    bins = grid.bin_offsets(x)

    def residuals(share_exact: float) -> np.ndarray:
        off = rng.integers(-3, 4, size=(n, d)).astype(np.float64)
        return np.where(rng.random((n, d)) < share_exact, 0.0, off + rng.normal(size=(n, d)) * 0.3)

    spiky = residuals(0.6) * (rng.random((n, d)) < 0.999)
    spiky[spiky == 0] = rng.normal(size=int((spiky == 0).sum())) * 1e-7  # a spike of width 1e-7
    better = residuals(0.8)
    better[better == 0] = rng.normal(size=int((better == 0).sum())) * 0.05
    assert gennorm_nll(spiky)["nll_gennorm_bpd"] < gennorm_nll(better)["nll_gennorm_bpd"]  # the trap
    spiky_bins, better_bins = gennorm_nll(spiky, bins), gennorm_nll(better, bins)
    assert spiky_bins["nll_gennorm_bpd"] >= 0 and better_bins["nll_gennorm_bpd"] >= 0
    assert better_bins["nll_gennorm_bpd"] < spiky_bins["nll_gennorm_bpd"]
    assert spiky_bins["nll_gennorm_scale"] > 1e-3  # no collapse onto the lattice


def test_calibrated_own_scale_maximises_the_bins_likelihood() -> None:
    """scale=calibrated: the discrete-ML scale scores at least as well as any fixed scale."""
    x, signal, lower, upper = quantized_gaussian(0.5, n=300, d=4, seed=4)
    xt, out = torch.from_numpy(x), torch.from_numpy(signal)
    calibrated = own_sample_nll(build("laplace:scale=calibrated"), xt, out, lower, upper)
    assert calibrated is not None
    for scale in (0.3, 0.7, 0.75, 0.8, 1.5):
        fixed = own_sample_nll(build(f"laplace:scale={scale}"), xt, out, lower, upper)
        assert fixed is not None
        assert calibrated.mean() <= fixed.mean() + 1e-9


def test_evaluation_on_other_data_uses_that_data_s_lattice(tmp_path) -> None:
    """A run's own split uses the lattice in its config.json; ``evaluate(run, data=...)`` that of
    the other data set (here the same digits saved as .npy, declared continuous)."""
    from lpae.config import ModelSettings, RunSpec, TrainSettings
    from lpae.data import load
    from lpae.experiment import train_run
    from lpae.metrics import evaluate

    settings = TrainSettings(epochs=1, checkpoint_every=0)
    own = train_run(
        RunSpec(data="digits", model=ModelSettings(hidden=(8,), latent=2), train=settings), tmp_path / "r"
    )
    assert own["nll_quantized_fraction"] == 1.0 and own["nll_gennorm_bpd"] >= 0
    pixels = load("digits").x.copy()
    pixels[0, pixels.max(axis=0) == 0] = 1  # no constant column, so the file keeps all 64
    np.save(tmp_path / "digits.npy", pixels)
    continuous = evaluate(tmp_path / "r", data=f"{tmp_path / 'digits.npy'}:quantized=none")
    assert "nll_quantized_fraction" not in continuous
    detected = evaluate(tmp_path / "r", data=str(tmp_path / "digits.npy"))  # integers: detected
    assert detected["nll_quantized_fraction"] == 1.0


def test_calibrated_own_scale_on_a_large_split_is_fitted_on_a_subsample() -> None:
    """24,000 elements: the scale is fitted on 10,000 of them; the whole split's NLL at it is
    within 1e-3 nats per element of the best fixed scale on a fine grid (the profile is flat)."""
    x, signal, lower, upper = quantized_gaussian(0.5, n=3000, d=8, seed=6)
    xt, out = torch.from_numpy(x), torch.from_numpy(signal)
    calibrated = own_sample_nll(build("gaussian:scale=calibrated"), xt, out, lower, upper)
    assert calibrated is not None
    grid = [
        own_sample_nll(build(f"gaussian:scale={s:.3f}"), xt, out, lower, upper)
        for s in np.linspace(0.9, 1.1, 21)
    ]
    best = min(float(values.mean()) for values in grid if values is not None)
    assert float(calibrated.mean()) / 8 <= best / 8 + 1e-3
