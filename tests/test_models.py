"""Models: shapes for mlp and conv (8x8, 28x28, odd sizes), corruptions, the VAE's KL, ELBO and IWAE
against closed forms, settings validation and deterministic initialisation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal
from torch import Tensor

from lpae import criteria
from lpae.config import ModelSettings
from lpae.corruption import build_corruption, normalize_corruption
from lpae.criteria import Criterion
from lpae.models import VariationalAutoencoder, build_model


class TwoChannel(Criterion):
    """A stand-in heteroscedastic criterion (n_outputs = 2): squared error scaled by exp(log_s)."""

    name = "lp"  # only for printing; never registered
    n_outputs = 2

    def forward(self, x: Tensor, out: Tensor) -> Tensor:
        mu, log_s = out.chunk(2, dim=1)
        return (((x - mu) / log_s.exp()).square() + 2 * log_s).reshape(len(x), -1).sum(1)


def criterion_with(n_outputs: int) -> Criterion:
    return criteria.build("lp:2") if n_outputs == 1 else TwoChannel(p=2)


SHAPES = [
    ((1, 8, 8), None),
    ((1, 28, 28), None),
    ((3, 7, 5), None),
    ((64,), (1, 8, 8)),  # flat digits read as 1x8x8 images
]


@pytest.mark.parametrize("model", ["ae", "dae", "vae"])
@pytest.mark.parametrize(("shape", "image_shape"), SHAPES)
@pytest.mark.parametrize("n_outputs", [1, 2])
def test_conv_shapes(
    model: str, shape: tuple[int, ...], image_shape: tuple[int, ...] | None, n_outputs: int
) -> None:
    settings = ModelSettings(model=model, arch="conv", hidden=(4, 8), latent=3).resolve(shape, image_shape)
    net = build_model(shape, settings, criterion_with(n_outputs))
    x = torch.randn(5, *shape)
    out = net(x)
    assert out.shape == (5, n_outputs * shape[0], *shape[1:])
    assert net.encode(x).shape == (5, 3)
    assert net.reconstruct(x).shape == x.shape
    objective = net.objective(x, torch.Generator().manual_seed(0))
    assert objective.shape == (5,)
    objective.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())


@pytest.mark.parametrize("model", ["ae", "dae", "vae"])
def test_mlp_shapes(model: str) -> None:
    net = build_model((30,), ModelSettings(model=model, hidden=(16, 8), latent=4), criterion_with(2))
    x = torch.randn(7, 30)
    assert net(x).shape == (7, 60)
    assert net.objective(x).shape == (7,)
    assert net.settings.arch == "mlp"
    # the architecture the docstring promises: 30-16-8-code and 4-8-16-60
    sizes = [m.out_features for m in net.encoder if isinstance(m, torch.nn.Linear)]
    assert sizes == [16, 8, 8 if model == "vae" else 4]
    assert [m.out_features for m in net.decoder if isinstance(m, torch.nn.Linear)] == [8, 16, 60]


def test_conv_28x28_downsamples_to_7x7() -> None:
    net = build_model((1, 28, 28), ModelSettings(arch="conv", hidden=(8, 16)), criterion_with(1))
    convs = [m for m in net.encoder if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 2
    assert net.encoder[:4](torch.zeros(1, 1, 28, 28)).shape == (1, 16, 7, 7)


def test_auto_arch_follows_the_data_shape() -> None:
    assert ModelSettings().resolve((1, 8, 8)).arch == "conv"
    assert ModelSettings().resolve((1, 8, 8)).hidden == (32, 64)
    assert ModelSettings().resolve((30,)).arch == "mlp"
    assert ModelSettings().resolve((30,)).hidden == (256, 128)
    assert ModelSettings(model="dae").resolve((30,)).corruption == "gaussian:std=0.1"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"model": "gan"}, "unknown model 'gan'; allowed: ae, dae, vae"),
        ({"arch": "rnn"}, "unknown arch 'rnn'"),
        ({"latent": 0}, "latent size must be a positive integer"),
        ({"hidden": (8, -1)}, "hidden sizes must be positive integers"),
        ({"corruption": "mask:rate=0.2"}, "corruption applies to model dae only"),
        ({"model": "dae", "corruption": "mask:rate=1"}, "out of range"),
        ({"model": "dae", "corruption": "blur:1"}, "unknown corruption 'blur'"),
        ({"beta": 2.0}, "apply to model vae only"),
        ({"model": "vae", "beta": -1.0}, "beta must be a number >= 0"),
        ({"model": "vae", "kl_warmup": -2}, "kl_warmup must be an integer"),
        ({"activation": "sigmoid"}, "unknown activation"),
    ],
)
def test_bad_settings_name_the_problem(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ModelSettings(**kwargs)


def test_conv_on_flat_data_without_image_shape_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"arch conv needs image data .* shape \(30,\)"):
        ModelSettings(arch="conv").resolve((30,))


def test_same_seed_same_initial_weights() -> None:
    def build(seed: int) -> dict[str, Tensor]:
        torch.manual_seed(seed)
        return build_model((1, 8, 8), ModelSettings(model="vae"), criterion_with(1)).state_dict()

    first, again, other = build(3), build(3), build(4)
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert not all(torch.equal(first[k], other[k]) for k in first)


# --- corruptions -------------------------------------------------------------------------------


def test_gaussian_corruption_adds_noise_of_the_given_std() -> None:
    x = torch.randn(400, 250)
    x_tilde = build_corruption("gaussian:std=0.3").corrupt(x, torch.Generator().manual_seed(0))
    noise = (x_tilde - x).numpy().ravel()
    assert abs(noise.mean()) < 0.005 and noise.std() == pytest.approx(0.3, rel=0.01)


def test_mask_corruption_zeroes_the_given_fraction() -> None:
    x = torch.rand(400, 250) + 1  # no zeros of its own
    x_tilde = build_corruption("mask:rate=0.25").corrupt(x, torch.Generator().manual_seed(0))
    zeroed = x_tilde == 0
    assert zeroed.float().mean().item() == pytest.approx(0.25, abs=0.005)
    assert torch.equal(x_tilde[~zeroed], x[~zeroed])


def test_saltpepper_sets_the_samples_min_and_max() -> None:
    x = torch.rand(400, 250)
    x_tilde = build_corruption("saltpepper:rate=0.2").corrupt(x, torch.Generator().manual_seed(0))
    low, high = x.min(dim=1, keepdim=True).values, x.max(dim=1, keepdim=True).values
    changed = x_tilde != x
    assert changed.float().mean().item() == pytest.approx(0.2, abs=0.005)
    is_low, is_high = x_tilde == low, x_tilde == high
    assert bool((is_low | is_high)[changed].all())
    assert (is_low & changed).float().mean().item() == pytest.approx(0.1, abs=0.005)
    fixed = build_corruption("saltpepper:rate=0.5,low=-1,high=2").corrupt(x, torch.Generator().manual_seed(1))
    assert set(torch.unique(fixed[fixed != x]).tolist()) == {-1.0, 2.0}


@pytest.mark.parametrize("spec", ["gaussian:std=0.2", "mask:rate=0.3", "saltpepper:rate=0.1"])
def test_corruption_is_reproduced_by_its_generator(spec: str) -> None:
    x = torch.randn(3, 1, 8, 8)
    corruption = build_corruption(spec)
    first = corruption.corrupt(x, torch.Generator().manual_seed(5))
    again = corruption.corrupt(x, torch.Generator().manual_seed(5))
    assert torch.equal(first, again) and first.shape == x.shape and not torch.equal(first, x)


def test_corruption_specs_print_canonically() -> None:
    assert normalize_corruption("gaussian:0.50") == "gaussian:std=0.5"
    assert normalize_corruption("saltpepper:0.1,low=auto") == "saltpepper:rate=0.1"
    with pytest.raises(ValueError, match="std=0"):
        build_corruption("gaussian:std=0")


def test_dae_reconstructs_the_clean_input() -> None:
    """The DAE's objective is the criterion of the clean x given the decoding of the corrupted x."""
    torch.manual_seed(0)
    net = build_model(
        (12,), ModelSettings(model="dae", corruption="mask:rate=0.5", hidden=(8,)), criterion_with(1)
    )
    x = torch.randn(6, 12)
    got = net.objective(x, torch.Generator().manual_seed(9))
    x_tilde = net.corruption.corrupt(x, torch.Generator().manual_seed(9))
    assert torch.allclose(got, ((net(x_tilde) - x) ** 2).sum(1))


# --- the VAE -----------------------------------------------------------------------------------


def test_kl_matches_torch_distributions() -> None:
    mu, log_var = torch.randn(5, 3, dtype=torch.float64), torch.randn(5, 3, dtype=torch.float64)
    q = torch.distributions.Normal(mu, (0.5 * log_var).exp())
    p = torch.distributions.Normal(torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64))
    expected = torch.distributions.kl_divergence(q, p).sum(1)
    assert torch.allclose(VariationalAutoencoder.kl(mu, log_var), expected, rtol=1e-12)


def test_vae_objective_is_nll_plus_weighted_kl() -> None:
    torch.manual_seed(0)
    net = build_model((10,), ModelSettings(model="vae", hidden=(8,), latent=2, beta=0.5), criterion_with(1))
    assert isinstance(net, VariationalAutoencoder)
    x = torch.randn(4, 10)
    got = net.objective(x, torch.Generator().manual_seed(2), kl_weight=0.5)
    mu, log_var = net.posterior(x)
    eps = torch.randn(mu.shape, generator=torch.Generator().manual_seed(2))
    z = mu + (0.5 * log_var).exp() * eps
    expected = ((net.decode(z) - x) ** 2).sum(1) + 0.5 * net.kl(mu, log_var)
    assert torch.allclose(got, expected)


def test_kl_warmup_ramps_linearly_to_beta() -> None:
    net = build_model((4,), ModelSettings(model="vae", beta=2.0, kl_warmup=4, hidden=()), criterion_with(1))
    assert [net.kl_weight(e) for e in (1, 2, 4, 9)] == [0.5, 1.0, 2.0, 2.0]
    assert net.kl_weight(None) == 2.0
    assert build_model((4,), ModelSettings(model="ae"), criterion_with(1)).kl_weight(1) == 0.0


def linear_gaussian_vae(mean_shift: float = 0.0, log_var_shift: float = 0.0) -> VariationalAutoencoder:
    """A VAE with a closed-form marginal likelihood and posterior.

    The decoder is one Linear layer z -> W z + b with orthogonal columns, W^T W = diag(s^2). With
    lp:2 = sum r^2, the Gaussian NLL of variance 1/2 less (D/2) log(pi), the model is
    p(x) = N(b, W W^T + I/2), and the exact posterior is N(m, S) with S = diag(1 / (1 + 2 s^2)) and
    m = 2 S W^T (x - b): a linear encoder can hold it, here shifted by the given amounts.
    """
    net = build_model((3,), ModelSettings(model="vae", hidden=(), latent=2), criteria.build("lp:2"))
    assert isinstance(net, VariationalAutoencoder)
    net = net.double()
    q, _ = torch.linalg.qr(torch.randn(3, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0)))
    scales = torch.tensor([1.5, 0.7], dtype=torch.float64)
    weight, bias = q * scales, torch.tensor([0.3, -0.2, 0.5], dtype=torch.float64)
    posterior_var = 1 / (1 + 2 * scales**2)
    to_mean = 2 * posterior_var[:, None] * weight.T  # (2, 3)
    with torch.no_grad():
        net.decoder[0].weight.copy_(weight)
        net.decoder[0].bias.copy_(bias)
        net.encoder[0].weight.copy_(torch.cat([to_mean, torch.zeros(2, 3, dtype=torch.float64)]))
        net.encoder[0].bias.copy_(
            torch.cat([-to_mean @ bias + mean_shift, posterior_var.log() + log_var_shift])
        )
    return net


def closed_form_log_likelihood(net: VariationalAutoencoder, x: Tensor) -> np.ndarray:
    weight, bias = net.decoder[0].weight.detach().numpy(), net.decoder[0].bias.detach().numpy()
    # (D/2) log(pi) turns lp:2 into the normalised Gaussian log-likelihood of variance 1/2.
    offset = 1.5 * math.log(math.pi)
    return multivariate_normal(bias, weight @ weight.T + 0.5 * np.eye(3)).logpdf(x.numpy()) + offset


@torch.no_grad()
def test_elbo_and_iwae_equal_log_likelihood_at_the_exact_posterior() -> None:
    net = linear_gaussian_vae()
    x = torch.randn(6, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    log_px = closed_form_log_likelihood(net, x)
    noise = torch.Generator().manual_seed(2)
    # Every importance weight p(x|z) p(z) / q(z|x) equals p(x) here: IWAE is exact for any k.
    np.testing.assert_allclose(net.iwae(x, 7, noise).numpy(), log_px, rtol=1e-10)
    # The ELBO's expectation is exact; its Monte Carlo part has error ~ 1/sqrt(n_samples).
    np.testing.assert_allclose(net.elbo(x, n_samples=20000, noise=noise).numpy(), log_px, atol=0.05)


@torch.no_grad()
def test_iwae_tightens_with_k_towards_the_log_likelihood() -> None:
    net = linear_gaussian_vae(mean_shift=0.4, log_var_shift=0.6)
    x = torch.randn(6, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    log_px = closed_form_log_likelihood(net, x)
    noise = torch.Generator().manual_seed(2)
    elbo = net.elbo(x, n_samples=4000, noise=noise).numpy()
    iwae_8 = torch.stack([net.iwae(x, 8, noise) for _ in range(500)]).mean(0).numpy()
    iwae_big = net.iwae(x, 50000, noise).numpy()
    assert (elbo < iwae_8).all() and (iwae_8 < log_px).all()
    np.testing.assert_allclose(iwae_big, log_px, atol=0.01)
    assert (log_px - elbo).min() > 0.05  # the shifted posterior leaves a real gap


def test_iwae_needs_at_least_one_sample() -> None:
    net = linear_gaussian_vae()
    with pytest.raises(ValueError, match="k >= 1"):
        net.iwae(torch.zeros(1, 3, dtype=torch.float64), 0)
