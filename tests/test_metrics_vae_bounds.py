"""VAE bounds of a whole split: independent of chunking, one calibrated scale per split.

elbo and iwae of lpae.metrics.vae_bounds are checked against an independent computation with
scipy (Gaussian decoder densities, the prior and the posterior as scipy.stats.norm, the IWAE's
log-mean-exp by scipy.special.logsumexp), with sigma the ML scale of the ELBO draws' residuals
over the whole split, and give the same numbers for chunks of 1, 7 and all rows.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats
from scipy.special import logsumexp

from lpae import criteria
from lpae.config import ModelSettings
from lpae.criteria.likelihood import LocationScale
from lpae.metrics import likelihood, vae_bounds
from lpae.metrics.likelihood import posterior_noise
from lpae.models import VariationalAutoencoder, build_model

N_ROWS, N_FEATURES, LATENT, K = 23, 5, 2, 6


def tiny_vae(spec: str, dtype: torch.dtype = torch.float64) -> VariationalAutoencoder:
    torch.manual_seed(0)
    settings = ModelSettings(model="vae", hidden=(8,), latent=LATENT)
    net = build_model((N_FEATURES,), settings, criteria.build(spec))
    assert isinstance(net, VariationalAutoencoder)
    return net.to(dtype).eval()


def split(dtype: torch.dtype = torch.float64) -> torch.Tensor:
    rng = np.random.default_rng(1)
    feature_scales = np.array([0.2, 0.5, 1.0, 2.0, 4.0])  # the model cannot fit them: a real scale
    return torch.from_numpy(rng.standard_normal((N_ROWS, N_FEATURES)) * feature_scales).to(dtype)


@pytest.mark.parametrize(
    "spec",
    [
        "gaussian:scale=calibrated",
        "gennorm:p=1.5,scale=calibrated",
        "student_t:df=3,scale=calibrated",
        "gaussian:scale=learned",
    ],
)
def test_bounds_do_not_depend_on_the_chunk_size(spec: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(likelihood, "NOISE_BLOCK_ROWS", 5)  # chunks cross the noise blocks
    net, x = tiny_vae(spec), split()
    found = [vae_bounds(net, x, seed=3, k=K, chunk_rows=rows) for rows in (1, 7, N_ROWS)]
    for other in found[1:]:
        assert other["elbo"] == pytest.approx(found[0]["elbo"], rel=1e-12)
        assert other["iwae"] == pytest.approx(found[0]["iwae"], rel=1e-12)
    assert found[0]["iwae"] > found[0]["elbo"]


def test_bounds_do_not_depend_on_the_chunk_size_in_float32() -> None:
    net, x = tiny_vae("gaussian:scale=calibrated", torch.float32), split(torch.float32)
    one, whole = (vae_bounds(net, x, seed=3, k=K, chunk_rows=rows) for rows in (1, N_ROWS))
    # float32 rounding differs between batch shapes; a scale per chunk moves the bounds by nats
    assert one["elbo"] == pytest.approx(whole["elbo"], rel=1e-5)
    assert one["iwae"] == pytest.approx(whole["iwae"], rel=1e-5)


@torch.no_grad()
def test_calibrated_bounds_equal_an_independent_computation_with_one_scale() -> None:
    net, x = tiny_vae("gaussian:scale=calibrated"), split()
    found = vae_bounds(net, x, seed=3, k=K, chunk_rows=4)

    eps = posterior_noise(3, 0, N_ROWS, K, LATENT)  # (1 + K, N, L): the ELBO's draw, then the IWAE's
    mu, log_var = (t.numpy() for t in net.posterior(x))
    sigma_q = np.exp(0.5 * log_var)
    z = mu + sigma_q * eps  # (1 + K, N, L)
    decoded = net.decode(torch.from_numpy(z.reshape(-1, LATENT))).numpy().reshape(1 + K, N_ROWS, N_FEATURES)
    x_np = x.numpy()
    # sigma: ML over every residual of the ELBO's draw, through the soft floor -6 + softplus(. + 6)
    log_sigma = 0.5 * math.log(np.mean((decoded[0] - x_np) ** 2))
    sigma = math.exp(-6 + np.logaddexp(0.0, log_sigma + 6))
    log_px_z = stats.norm(decoded, sigma).logpdf(x_np).sum(axis=-1)  # (1 + K, N)
    kl = 0.5 * (mu**2 + sigma_q**2 - 1 - log_var).sum(axis=-1)
    elbo = log_px_z[0] - kl
    log_pz = stats.norm().logpdf(z[1:]).sum(axis=-1)
    log_qz = stats.norm(mu, sigma_q).logpdf(z[1:]).sum(axis=-1)
    iwae = logsumexp(log_px_z[1:] + log_pz - log_qz, axis=0) - math.log(K)
    assert found["elbo"] == pytest.approx(elbo.mean(), rel=1e-10)
    assert found["iwae"] == pytest.approx(iwae.mean(), rel=1e-10)

    # per chunk, the scale (and with it the bound) would differ: the check above can fail
    per_row = np.mean(
        [float(net.elbo(x[i : i + 1], eps=torch.from_numpy(eps[:1, i : i + 1]))) for i in range(N_ROWS)]
    )
    assert abs(per_row - found["elbo"]) > 1.0


def test_the_held_scale_is_released() -> None:
    net, x = tiny_vae("gaussian:scale=calibrated"), split()
    vae_bounds(net, x, seed=3, k=K)
    criterion = net.criterion
    assert isinstance(criterion, LocationScale) and str(criterion) == "gaussian:scale=calibrated"
    assert criterion.scale.mode == "calibrated" and criterion.scale.fixed is None
    with torch.no_grad():  # a batch calibrates its own scale again: sigma^2 = mean r^2
        nll = criterion(x, torch.zeros_like(x)).sum()
    log_sigma = 0.5 * math.log(float(x.square().mean()))
    sigma = math.exp(-6 + np.logaddexp(0.0, log_sigma + 6))  # through the soft floor
    assert float(nll) == pytest.approx(-stats.norm(0, sigma).logpdf(x.numpy()).sum(), rel=1e-12)


def test_posterior_noise_does_not_depend_on_the_chunk() -> None:
    whole = posterior_noise(5, 0, 150, 3, 2)
    assert whole.shape == (4, 150, 2)
    for start, stop in [(4, 7), (60, 70), (63, 129), (149, 150)]:  # inside and across blocks
        np.testing.assert_array_equal(posterior_noise(5, start, stop, 3, 2), whole[:, start:stop])
    assert not np.array_equal(posterior_noise(6, 0, 150, 3, 2), whole)


def test_chunk_rows_must_be_positive() -> None:
    with pytest.raises(ValueError, match="chunk_rows must be at least 1"):
        vae_bounds(tiny_vae("gaussian:scale=calibrated"), split(), chunk_rows=0)
