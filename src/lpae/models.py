"""Autoencoders: an encoder to a latent code z and a decoder back to the criterion's outputs.

Three models share one encoder/decoder pair:

- ``ae``: deterministic, objective = criterion(x, dec(enc(x))).
- ``dae``: denoising (Vincent et al. 2010): objective = criterion(x, dec(enc(x_tilde))), with
  x_tilde drawn from a corruption (lpae.corruption) and the *clean* x as the target.
- ``vae``: Gaussian posterior q(z|x) = N(mu, diag(exp(log_var))), prior N(0, I) (Kingma & Welling
  2014). Per-sample objective = criterion(x, dec(z)) + beta * KL(q(z|x) || p(z)), z = mu + sigma *
  eps, with KL = 0.5 * sum_j (mu_j^2 + sigma_j^2 - 1 - log sigma_j^2). With a likelihood criterion
  and beta = 1 this is the negative ELBO in nats. An optional KL warm-up scales beta by
  min(1, epoch / kl_warmup) over the first ``kl_warmup`` epochs (Bowman et al. 2016).

For evaluation the VAE offers ``elbo(x)`` and the importance-weighted bound ``iwae(x, k)``
(Burda et al. 2016): log (1/k) sum_i p(x|z_i) p(z_i) / q(z_i|x), z_i ~ q(z|x); ELBO <= IWAE_k <=
log p(x), and IWAE_k increases with k. Both are in nats per sample when the criterion is a
normalised likelihood (``criterion.is_likelihood``).

Architectures: ``mlp`` (Linear layers of the ``hidden`` sizes with the activation between them)
and ``conv`` for (C, H, W) images (``hidden`` = channels of 3x3 stride-2 convolutions, each halving
H and W rounding up, then one Linear to the code; the decoder mirrors it with transposed
convolutions whose output padding restores the exact size, so 8x8, 28x28 and odd sizes work).
``arch="auto"`` picks conv when a sample has shape (C, H, W), else mlp.

The decoder emits ``criterion.n_outputs`` channels per input feature, stacked along dim 1
(lpae.criteria.base), so every criterion works with every model.

Determinism (the fused trainer relies on it): parameters are created, and so initialised by
PyTorch's default initialisers from the global RNG, in this order: the criterion's (it is built
first), then the encoder's layers from input to code, then the decoder's from code to output.
All randomness of a training step comes from the one ``noise`` generator passed to
``objective``: a DAE draws one tensor of x's shape for its corruption, a VAE one standard normal
tensor of shape (B, latent) for its reparameterisation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import Tensor, nn

from lpae.corruption import Corruption, build_corruption, normalize_corruption
from lpae.criteria import Criterion

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "elu": nn.ELU,
    "tanh": nn.Tanh,
    "silu": nn.SiLU,
}
MODELS = ("ae", "dae", "vae")
ARCHS = ("auto", "mlp", "conv")
DEFAULT_HIDDEN = {"mlp": (256, 128), "conv": (32, 64)}
DEFAULT_CORRUPTION = "gaussian:std=0.1"


@dataclass(frozen=True)
class ModelSettings:
    """What it takes to rebuild a model; stored in config.json.

    ``hidden`` = None takes the architecture's default (mlp 256,128; conv channels 32,64);
    ``corruption`` = None takes gaussian:std=0.1 for a dae; ``image_shape`` is the (C, H, W) view
    a conv model puts on flat samples (such as digits' 64 features as 1x8x8).
    """

    model: str = "ae"
    arch: str = "auto"
    hidden: tuple[int, ...] | None = None
    latent: int = 16
    activation: str = "relu"
    corruption: str | None = None  # dae only
    beta: float = 1.0  # vae only: weight of the KL term
    kl_warmup: int = 0  # vae only: epochs over which the KL weight ramps up to beta
    image_shape: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ValueError(f"unknown model {self.model!r}; allowed: {', '.join(MODELS)}")
        if self.arch not in ARCHS:
            raise ValueError(f"unknown arch {self.arch!r}; allowed: {', '.join(ARCHS)}")
        if isinstance(self.latent, bool) or not isinstance(self.latent, int) or self.latent <= 0:
            raise ValueError(f"latent size must be a positive integer, got {self.latent}")
        if self.hidden is not None:
            object.__setattr__(self, "hidden", tuple(self.hidden))
            if any(not isinstance(h, int) or h <= 0 for h in self.hidden):
                raise ValueError(f"hidden sizes must be positive integers, got {list(self.hidden)}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {self.activation!r}; allowed: {', '.join(ACTIVATIONS)}")
        if self.corruption is not None:
            if self.model != "dae":
                raise ValueError(f"corruption applies to model dae only, not {self.model!r}")
            object.__setattr__(self, "corruption", normalize_corruption(self.corruption))
        if not (math.isfinite(self.beta) and self.beta >= 0):
            raise ValueError(f"beta must be a number >= 0, got {self.beta}")
        if isinstance(self.kl_warmup, bool) or not isinstance(self.kl_warmup, int) or self.kl_warmup < 0:
            raise ValueError(f"kl_warmup must be an integer number of epochs >= 0, got {self.kl_warmup}")
        if self.model != "vae" and (self.beta != 1.0 or self.kl_warmup != 0):
            raise ValueError(f"beta and kl_warmup apply to model vae only, not {self.model!r}")
        if self.image_shape is not None:
            object.__setattr__(self, "image_shape", tuple(self.image_shape))
            if len(self.image_shape) != 3 or any(s <= 0 for s in self.image_shape):
                raise ValueError(f"image_shape must be (C, H, W) of positive sizes, got {self.image_shape}")

    def resolve(self, shape: Sequence[int], image_shape: Sequence[int] | None = None) -> ModelSettings:
        """Every default made explicit for data whose samples have ``shape``.

        ``image_shape`` is a (C, H, W) view of flat samples that the data set offers; it is used
        only when the arch is conv and the samples are not (C, H, W) already.
        """
        shape = tuple(shape)
        arch = self.arch
        if arch == "auto":
            arch = "conv" if len(shape) == 3 else "mlp"
        view = self.image_shape
        if arch == "conv" and view is None:
            view = conv_view(shape, image_shape)
        hidden = DEFAULT_HIDDEN[arch] if self.hidden is None else self.hidden
        if arch == "conv" and not hidden:
            raise ValueError("arch conv needs at least one channel count in hidden, e.g. 32,64")
        corruption = self.corruption
        if self.model == "dae" and corruption is None:
            corruption = DEFAULT_CORRUPTION
        return replace(self, arch=arch, hidden=hidden, corruption=corruption, image_shape=view)


def conv_view(shape: tuple[int, ...], image_shape: Sequence[int] | None) -> tuple[int, ...] | None:
    """The (C, H, W) a conv model reads samples of ``shape`` as; None when they already are images."""
    if len(shape) == 3:
        return None
    if len(shape) == 2:
        return (1, *shape)
    if image_shape is not None and int(np.prod(image_shape)) == int(np.prod(shape)):
        return tuple(int(s) for s in image_shape)
    raise ValueError(
        f"arch conv needs image data with samples of shape (C, H, W); this data has shape {shape} "
        "and no image shape (use --arch mlp)"
    )


def mlp(sizes: Sequence[int], activation: str) -> nn.Sequential:
    """Linear layers of the given sizes with the activation between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


def conv_sizes(height: int, width: int, n_layers: int) -> list[tuple[int, int]]:
    """Spatial size before each stride-2 convolution and after the last: ceil-halving."""
    sizes = [(height, width)]
    for _ in range(n_layers):
        h, w = sizes[-1]
        sizes.append(((h + 1) // 2, (w + 1) // 2))
    return sizes


def conv_encoder(
    image_shape: Sequence[int], channels: Sequence[int], n_code: int, activation: str
) -> nn.Sequential:
    """(B, C, H, W) -> (B, n_code): 3x3 stride-2 convolutions, then one Linear."""
    n_channels, height, width = image_shape
    sizes = conv_sizes(height, width, len(channels))
    layers: list[nn.Module] = []
    for c_in, c_out in zip([n_channels, *channels[:-1]], channels, strict=True):
        layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), ACTIVATIONS[activation]()]
    h, w = sizes[-1]
    layers += [nn.Flatten(), nn.Linear(channels[-1] * h * w, n_code)]
    return nn.Sequential(*layers)


def conv_decoder(
    image_shape: Sequence[int], channels: Sequence[int], n_code: int, n_out_channels: int, activation: str
) -> nn.Sequential:
    """(B, n_code) -> (B, n_out_channels, H, W): the mirror of :func:`conv_encoder`."""
    _, height, width = image_shape
    sizes = conv_sizes(height, width, len(channels))
    h, w = sizes[-1]
    layers: list[nn.Module] = [
        nn.Linear(n_code, channels[-1] * h * w),
        ACTIVATIONS[activation](),
        nn.Unflatten(1, (channels[-1], h, w)),
    ]
    targets = [*reversed(channels[:-1]), n_out_channels]
    for i, c_out in enumerate(targets):
        c_in = channels[-1 - i]
        (h_in, w_in), (h_out, w_out) = sizes[-1 - i], sizes[-2 - i]
        # A stride-2 transposed conv (k=3, p=1) gives 2n - 1 + output_padding: pad to the exact size.
        padding = (h_out - (2 * h_in - 1), w_out - (2 * w_in - 1))
        layers.append(nn.ConvTranspose2d(c_in, c_out, 3, stride=2, padding=1, output_padding=padding))
        if i < len(targets) - 1:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


class Autoencoder(nn.Module):
    """Deterministic autoencoder: x (B, *shape) -> z (B, latent) -> out (B, n_outputs * C, ...)."""

    def __init__(self, shape: Sequence[int], settings: ModelSettings, criterion: Criterion) -> None:
        super().__init__()
        self.shape = tuple(shape)
        self.settings = settings.resolve(self.shape)
        self.criterion = criterion
        s = self.settings
        hidden = tuple(s.hidden or ())
        n_outputs = criterion.n_outputs
        if s.arch == "conv":
            self.net_shape = s.image_shape or self.shape  # (C, H, W) the convolutions see
            self.encoder = conv_encoder(self.net_shape, hidden, self.code_size, s.activation)
            self.decoder = conv_decoder(
                self.net_shape, hidden, s.latent, self.net_shape[0] * n_outputs, s.activation
            )
        else:
            n_features = int(np.prod(self.shape))
            self.net_shape = (n_features,)
            self.encoder = mlp([n_features, *hidden, self.code_size], s.activation)
            self.decoder = mlp([s.latent, *reversed(hidden), n_features * n_outputs], s.activation)

    @property
    def code_size(self) -> int:
        """Width of the encoder's last layer."""
        return self.settings.latent

    def encoder_output(self, x: Tensor) -> Tensor:
        return self.encoder(x.reshape(len(x), *self.net_shape))

    def encode(self, x: Tensor) -> Tensor:
        """The latent code (B, latent); for a VAE the posterior mean."""
        return self.encoder_output(x)

    def decode(self, z: Tensor) -> Tensor:
        out = self.decoder(z)  # (B, n_outputs * D) or (B, n_outputs * C, H, W)
        # Channels of one output stay contiguous along dim 1: (B, n_outputs * C, H, W) for images.
        return out.reshape(len(out), self.shape[0] * self.criterion.n_outputs, *self.shape[1:])

    def forward(self, x: Tensor) -> Tensor:
        """The decoder output for x, without noise (a VAE decodes its posterior mean)."""
        return self.decode(self.encode(x))

    def objective(self, x: Tensor, noise: torch.Generator | None = None, kl_weight: float = 1.0) -> Tensor:
        """Per-sample training objective (B,) of a batch x; ``noise`` feeds every random draw."""
        return self.criterion(x, self(x))

    def kl_weight(self, epoch: int | None = None) -> float:
        """Weight of the KL term at a 1-based epoch (None: after any warm-up); 0 without one."""
        return 0.0

    def validation_terms(
        self, x: Tensor, noise: torch.Generator | None = None, kl_weight: float = 1.0
    ) -> tuple[Tensor, Tensor]:
        """The objective (B,) and the point reconstruction of x; an AE shares one forward pass."""
        if type(self).objective is not Autoencoder.objective:  # noisy objectives decode other inputs
            return self.objective(x, noise, kl_weight), self.criterion.reconstruct(self(x))
        out = self(x)
        return self.criterion(x, out), self.criterion.reconstruct(out)

    @torch.no_grad()
    def reconstruct(self, x: Tensor) -> Tensor:
        """Point reconstruction of x, shaped like x."""
        return self.criterion.reconstruct(self(x))


class DenoisingAutoencoder(Autoencoder):
    """Encodes a corrupted x_tilde, reconstructs the clean x (Vincent et al. 2010)."""

    def __init__(self, shape: Sequence[int], settings: ModelSettings, criterion: Criterion) -> None:
        super().__init__(shape, settings, criterion)
        self.corruption: Corruption = build_corruption(self.settings.corruption or DEFAULT_CORRUPTION)

    def objective(self, x: Tensor, noise: torch.Generator | None = None, kl_weight: float = 1.0) -> Tensor:
        x_tilde = self.corruption.corrupt(x, noise)
        return self.criterion(x, self(x_tilde))


class VariationalAutoencoder(Autoencoder):
    """Gaussian-posterior VAE; the encoder emits (mu, log_var) stacked along dim 1."""

    @property
    def code_size(self) -> int:
        return 2 * self.settings.latent

    def posterior(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and log-variance of q(z|x), each (B, latent)."""
        mu, log_var = self.encoder_output(x).chunk(2, dim=1)
        return mu, log_var

    def encode(self, x: Tensor) -> Tensor:
        return self.posterior(x)[0]

    @staticmethod
    def kl(mu: Tensor, log_var: Tensor) -> Tensor:
        """KL(N(mu, exp(log_var)) || N(0, I)) per sample (B,), in nats."""
        return 0.5 * (mu.square() + log_var.exp() - 1.0 - log_var).sum(dim=1)

    @staticmethod
    def sample(mu: Tensor, log_var: Tensor, noise: torch.Generator | None = None) -> Tensor:
        """z = mu + sigma * eps with eps ~ N(0, I) drawn from ``noise``: (B, latent)."""
        eps = torch.randn(mu.shape, generator=noise, device=mu.device, dtype=mu.dtype)
        return mu + (0.5 * log_var).exp() * eps

    def objective(self, x: Tensor, noise: torch.Generator | None = None, kl_weight: float = 1.0) -> Tensor:
        mu, log_var = self.posterior(x)
        z = self.sample(mu, log_var, noise)
        return self.criterion(x, self.decode(z)) + kl_weight * self.kl(mu, log_var)

    def kl_weight(self, epoch: int | None = None) -> float:
        s = self.settings
        if epoch is None or s.kl_warmup == 0:
            return s.beta
        return s.beta * min(1.0, epoch / s.kl_warmup)

    def elbo(self, x: Tensor, n_samples: int = 1, noise: torch.Generator | None = None) -> Tensor:
        """ELBO per sample (B,): E_q[log p(x|z)] (Monte Carlo, n_samples) - KL (closed form)."""
        mu, log_var = self.posterior(x)
        log_likelihood = torch.zeros(len(x), device=x.device, dtype=mu.dtype)
        for _ in range(n_samples):
            log_likelihood -= self.criterion(x, self.decode(self.sample(mu, log_var, noise)))
        return log_likelihood / n_samples - self.kl(mu, log_var)

    def iwae(self, x: Tensor, k: int, noise: torch.Generator | None = None) -> Tensor:
        """Importance-weighted bound per sample (B,) with k samples from q(z|x)."""
        if k < 1:
            raise ValueError(f"iwae needs k >= 1 importance samples, got {k}")
        mu, log_var = self.posterior(x)  # (B, L)
        eps = torch.randn((k, *mu.shape), generator=noise, device=mu.device, dtype=mu.dtype)  # (k, B, L)
        z = mu + (0.5 * log_var).exp() * eps  # (k, B, L)
        x_rep = x.unsqueeze(0).expand(k, *x.shape).reshape(k * len(x), *x.shape[1:])  # (k * B, ...)
        log_px_z = -self.criterion(x_rep, self.decode(z.reshape(k * len(x), -1))).reshape(k, len(x))
        half_log_2pi = 0.5 * math.log(2 * math.pi)
        log_pz = (-0.5 * z.square() - half_log_2pi).sum(dim=2)  # (k, B)
        log_qz = (-0.5 * eps.square() - 0.5 * log_var - half_log_2pi).sum(dim=2)  # (k, B)
        return torch.logsumexp(log_px_z + log_pz - log_qz, dim=0) - math.log(k)


MODEL_CLASSES: dict[str, type[Autoencoder]] = {
    "ae": Autoencoder,
    "dae": DenoisingAutoencoder,
    "vae": VariationalAutoencoder,
}


def build_model(shape: Sequence[int], settings: ModelSettings, criterion: Criterion) -> Autoencoder:
    """Build the model ``settings`` name for samples of ``shape``, initialised from the global RNG."""
    return MODEL_CLASSES[settings.model](shape, settings, criterion)
