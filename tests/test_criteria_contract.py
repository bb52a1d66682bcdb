"""The Criterion contract, table-driven over every registered criterion and each of its modes.

Shapes, float32 and float64, finite values and gradients (learned parameters included), the
minimum of every plain loss at a perfect reconstruction, the canonical spec round trip, and what
learned() reports. The table is imported by the other criteria tests.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats
import torch

from lpae import criteria

PLAIN_SPECS = [
    "lp:0.5",
    "lp:1",
    "lp:1.5",
    "lp:2",
    "lp:3",
    "lp:p=0.3,eps=0.01",
    "lp:p=1.2,eps=0.1",
    "lpnorm:0.5",
    "lpnorm:2",
    "lpnorm:p=1,eps=0.01",
    "huber",
    "huber:delta=0.5",
    "l1l2",
    "l1l2:w=0.2",
    "charbonnier",
    "charbonnier:eps=0.1",
    "logcosh",
    "cauchy",
    "cauchy:c=2",
    "barron:alpha=1",
    "barron:alpha=0",
    "barron:alpha=2",
    "barron:alpha=-2",
    "barron:alpha=-inf",
    "barron:alpha=inf",
    "barron:alpha=0.5,c=0.5",
    "barron:alpha=learned,c=0.5",
]
LIKELIHOOD_SPECS = [
    "gaussian",
    "gaussian:scale=0.5",
    "gaussian:scale=learned_per_feature",
    "gaussian:scale=calibrated",
    "gaussian:scale=predicted",
    "laplace",
    "laplace:scale=2",
    "laplace:scale=learned_per_feature",
    "laplace:scale=calibrated",
    "laplace:scale=predicted",
    "gennorm",
    "gennorm:p=3,scale=2",
    "gennorm:p=1.5,scale=calibrated",
    "gennorm:p=learned,scale=calibrated",
    "gennorm:p=0.8,scale=learned_per_feature",
    "gennorm:scale=predicted",
    "student_t",
    "student_t:df=1,scale=0.5",
    "student_t:df=3,scale=calibrated",
    "student_t:scale=calibrated",
    "student_t:df=5,scale=learned_per_feature",
    "student_t:df=2,scale=predicted",
    "barron_nll",
    "barron_nll:alpha=2,scale=1",
    "barron_nll:alpha=0,scale=calibrated",
    "barron_nll:scale=calibrated",
    "barron_nll:alpha=0.5,scale=predicted",
    "barron_nll:alpha=10,scale=learned_per_feature",
]
UNIT_SPECS = [
    "cbernoulli",
    "beta",
    "beta:concentration=5",
    "beta:concentration=learned_per_feature",
    "beta:concentration=predicted",
    "bernoulli",
]
ALL_SPECS = PLAIN_SPECS + LIKELIHOOD_SPECS + UNIT_SPECS
FEATURES = (3, 5)  # one sample is 3 channels x 5: predicted scales stack along dim 1


def sample(spec: str, dtype: torch.dtype = torch.float32, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Data x (4, 3, 5), inside (0, 1) for unit families, and a decoder output for ``spec``."""
    generator = torch.Generator().manual_seed(seed)
    crit = criteria.build(spec, feature_shape=FEATURES)
    if crit.support == "unit":
        x = 0.05 + 0.9 * torch.rand(4, *FEATURES, generator=generator, dtype=dtype)
    else:
        x = torch.randn(4, *FEATURES, generator=generator, dtype=dtype)
    out = torch.randn(4, FEATURES[0] * crit.n_outputs, FEATURES[1], generator=generator, dtype=dtype)
    return x, out


def test_table_covers_every_registered_criterion() -> None:
    covered = {criteria.CRITERIA.resolve(spec)[0].name for spec in ALL_SPECS}
    assert covered == set(criteria.available())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("spec", ALL_SPECS)
def test_shapes_dtypes_finite_values_and_gradients(spec: str, dtype: torch.dtype) -> None:
    crit = criteria.build(spec, feature_shape=FEATURES).to(dtype)
    x, out = sample(spec, dtype)
    out.requires_grad_(True)
    value = crit(x, out)
    assert value.shape == (4,)
    assert value.dtype == dtype
    assert torch.isfinite(value).all()
    value.sum().backward()
    assert out.grad is not None and torch.isfinite(out.grad).all()
    assert float(out.grad.abs().sum()) > 0
    for name, parameter in crit.named_parameters():
        assert parameter.grad is not None, f"{spec}: no gradient for {name}"
        assert torch.isfinite(parameter.grad).all(), f"{spec}: non-finite gradient for {name}"
    assert crit.reconstruct(out.detach()).shape == x.shape


@pytest.mark.parametrize("spec", ALL_SPECS)
def test_spec_round_trip(spec: str) -> None:
    crit = criteria.build(spec, feature_shape=FEATURES)
    text = str(crit)
    again = criteria.build(text, feature_shape=FEATURES)
    assert str(again) == text
    assert criteria.normalize(spec) == text
    assert type(again) is type(crit) and again.n_outputs == crit.n_outputs


@pytest.mark.parametrize("spec", PLAIN_SPECS)
def test_plain_loss_is_zero_and_stationary_at_perfect_reconstruction(spec: str) -> None:
    crit = criteria.build(spec)
    x = torch.randn(6, 40, generator=torch.Generator().manual_seed(1))
    x_hat = x.clone().requires_grad_(True)
    at_optimum = crit(x, x_hat)
    assert torch.equal(at_optimum, torch.zeros(6))
    at_optimum.sum().backward()
    assert x_hat.grad is not None and torch.equal(x_hat.grad, torch.zeros_like(x))
    for scale in (1e-3, 0.1, 3.0):
        nearby = x + scale * torch.randn(6, 40, generator=torch.Generator().manual_seed(2))
        assert (crit(x, nearby) > 0).all()
    assert crit.is_likelihood is False


@pytest.mark.parametrize("spec", LIKELIHOOD_SPECS + UNIT_SPECS)
def test_likelihood_flags(spec: str) -> None:
    crit = criteria.build(spec, feature_shape=FEATURES)
    tags = criteria.describe(spec)
    assert crit.is_likelihood == (tags.name != "bernoulli")
    assert tags.likelihood == crit.is_likelihood
    assert tags.support == crit.support


@pytest.mark.parametrize(
    ("spec", "keys"),
    [
        ("gennorm", {"learned_p", "learned_scale"}),
        ("gennorm:p=1.5,scale=learned_per_feature", {"learned_scale"}),
        ("gennorm:p=learned,scale=calibrated", {"learned_p"}),
        ("student_t", {"learned_df", "learned_scale"}),
        ("barron_nll", {"learned_alpha", "learned_scale"}),
        ("barron:alpha=learned", {"learned_alpha"}),
        ("gaussian:scale=calibrated", set()),
        ("gaussian:scale=predicted", set()),
        ("lp:0.5", set()),
        ("beta", set()),
    ],
)
def test_learned_reports_what_the_criterion_learns(spec: str, keys: set[str]) -> None:
    learned = criteria.build(spec, feature_shape=FEATURES).learned()
    assert set(learned) == keys
    assert all(isinstance(v, float) and math.isfinite(v) for v in learned.values())


def test_learned_starting_values() -> None:
    assert criteria.build("gennorm").learned() == pytest.approx({"learned_p": 2.0, "learned_scale": 1.0})
    assert criteria.build("student_t").learned() == pytest.approx({"learned_df": 4.0, "learned_scale": 1.0})
    assert criteria.build("barron_nll").learned() == pytest.approx(
        {"learned_alpha": 1.0, "learned_scale": 1.0}
    )


def test_learned_per_feature_needs_the_feature_shape() -> None:
    with pytest.raises(ValueError, match="learned_per_feature needs the shape of one sample"):
        criteria.build("gaussian:scale=learned_per_feature")
    crit = criteria.build("gaussian:scale=learned_per_feature", feature_shape=(3,))
    with pytest.raises(ValueError, match="built for samples of shape"):
        crit(torch.zeros(2, 4), torch.zeros(2, 4))


@pytest.mark.parametrize("spec", ["lp:2", "gaussian:scale=predicted", "beta:concentration=predicted"])
def test_decoder_output_of_the_wrong_shape_is_refused(spec: str) -> None:
    crit = criteria.build(spec)
    x = torch.rand(4, 6) * 0.5 + 0.25
    wrong = torch.zeros(4, 6 * crit.n_outputs + 1)
    with pytest.raises(ValueError, match="does not fit data of shape"):
        crit(x, wrong)


def test_learned_scale_has_a_soft_floor() -> None:
    crit = criteria.build("gaussian")
    with torch.no_grad():
        crit.scale.raw.fill_(-1e4)
    assert crit.learned()["learned_scale"] == pytest.approx(math.exp(-6.0))


def test_calibrated_forward_is_the_nll_at_the_soft_floored_ml_scale() -> None:
    x, out = sample("gaussian:scale=calibrated", torch.float64)
    crit = criteria.build("gaussian:scale=calibrated")
    residual = (out - x).numpy()
    mse = float((residual**2).mean())
    assert float(crit.calibrate(out - x)) == pytest.approx(math.sqrt(mse), rel=1e-12)
    # the sigma-VAE soft floor: log sigma = -6 + softplus(log sigma* + 6)
    log_sigma = -6 + math.log1p(math.exp(0.5 * math.log(mse) + 6))
    expected = scipy.stats.norm(0, math.exp(log_sigma)).logpdf(residual).reshape(4, -1).sum(axis=1)
    np.testing.assert_allclose(crit(x, out).detach().numpy(), -expected, rtol=1e-12)
    # far above the floor that is the closed form (D/2) log MSE + D/2 + (D/2) log(2 pi), to 2nd order
    n_features = x[0].numel()
    closed_form = 0.5 * n_features * (math.log(mse) + 1 + math.log(2 * math.pi))
    assert float(crit(x, out).mean()) == pytest.approx(closed_form, rel=1e-5)
