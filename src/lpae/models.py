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

Each model class owns its training objective, written once for a group of K members of its kind
(:meth:`Autoencoder.member_objective`): it sees them through the small :class:`Members` protocol
(encoder output, decoding, per-sample criterion and point reconstruction; one member's part of a
tensor). lpae.train presents one model as a group of one (:class:`GroupOfOne`), lpae.fused the
stacked members of a fused group, so solo and fused training run the same objective; validation's
objective and point reconstruction come from :meth:`Autoencoder.member_validation` in both. A
new model kind overrides ``member_objective`` (and ``point_code`` if its noiseless code is not
the whole encoder output), never the trainers.

Determinism (the fused trainer relies on it): parameters are created, and so initialised by
PyTorch's default initialisers from the global RNG, in this order: the criterion's (it is built
first), then the encoder's layers from input to code, then the decoder's from code to output.
All randomness of a training step comes from the member's one ``noise`` generator passed to the
objective: a DAE draws one tensor of x's shape for its corruption, a VAE one standard normal
tensor of shape (B, latent) for its reparameterisation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol, cast

import numpy as np
import torch
from torch import Tensor, nn

from lpae.config import DEFAULT_CORRUPTION, ModelSettings
from lpae.corruption import Corruption, build_corruption
from lpae.criteria import Criterion

ACTIVATION_LAYERS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "elu": nn.ELU,
    "tanh": nn.Tanh,
    "silu": nn.SiLU,
}


def mlp(sizes: Sequence[int], activation: str) -> nn.Sequential:
    """Linear layers of the given sizes with the activation between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(ACTIVATION_LAYERS[activation]())
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
        layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), ACTIVATION_LAYERS[activation]()]
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
        ACTIVATION_LAYERS[activation](),
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
            layers.append(ACTIVATION_LAYERS[activation]())
    return nn.Sequential(*layers)


class Members(Protocol):
    """K models of one kind seen as one batched model: what an objective is written against
    (:meth:`Autoencoder.member_objective`).

    Member tensors hold every member's batch: (K, B, ...) in a fused group
    (lpae.fused.stacked.StackedAutoencoders); a :class:`GroupOfOne` (a model alone, lpae.train)
    has no member axis, (B, ...), so that it runs exactly the model's own operations. An objective
    therefore reaches one member's part only through ``unbind`` and ``stack``, and works on the
    trailing dimensions (a code's is dim=-1; per-sample terms are (K, B), alone (B,)).
    """

    @property
    def models(self) -> Sequence[Autoencoder]:
        """The model of each member, in order: where per-member settings (a corruption) live."""
        ...

    def unbind(self, t: Tensor) -> Sequence[Tensor]:
        """Each member's part of a member tensor, in order: (B, ...) each."""
        ...

    def stack(self, parts: Sequence[Tensor]) -> Tensor:
        """The member tensor of the members' parts, in order (the inverse of ``unbind``)."""
        ...

    def encoder_output(self, x: Tensor) -> Tensor:
        """Each member's encoder on its batch of x: the code (..., B, code_size)."""
        ...

    def decode(self, z: Tensor) -> Tensor:
        """Each member's decoder on its codes (..., B, latent): outputs laid out as the group
        keeps them (only ``loss`` and ``reconstruct`` read them)."""
        ...

    def loss(self, x: Tensor, out: Tensor) -> Tensor:
        """Each member's criterion: per-sample losses (..., B) of x given decoder outputs."""
        ...

    def reconstruct(self, out: Tensor) -> Tensor:
        """Each member's point reconstruction of its decoder outputs, shaped like x."""
        ...


class GroupOfOne:
    """One model as a group of one member, without a member axis: the :class:`Members` view
    lpae.train trains through. Every call is the model's own, so the arithmetic is its alone."""

    def __init__(self, model: Autoencoder) -> None:
        self.model = model
        self.models = (model,)

    def unbind(self, t: Tensor) -> tuple[Tensor]:
        return (t,)

    def stack(self, parts: Sequence[Tensor]) -> Tensor:
        (part,) = parts
        return part

    def encoder_output(self, x: Tensor) -> Tensor:
        return self.model.encoder_output(x)

    def decode(self, z: Tensor) -> Tensor:
        return self.model.decode(z)

    def loss(self, x: Tensor, out: Tensor) -> Tensor:
        return self.model.criterion(x, out)

    def reconstruct(self, out: Tensor) -> Tensor:
        return self.model.criterion.reconstruct(out)


def member_weights(values: Sequence[float], like: Tensor) -> float | Tensor:
    """Per-member weights of per-sample terms (K, B): one number when all members share it (the
    arithmetic of a member alone, and always for a group of one), else a column (K, 1)."""
    if len(set(values)) == 1:
        return float(values[0])
    return torch.tensor(list(values), dtype=like.dtype, device=like.device).unsqueeze(1)


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

    @staticmethod
    def point_code(code: Tensor) -> Tensor:
        """The code (..., latent) a noiseless pass decodes, from the encoder output (..., code_size):
        all of it; for a VAE the posterior mean."""
        return code

    def encode(self, x: Tensor) -> Tensor:
        """The latent code (B, latent); for a VAE the posterior mean."""
        return self.point_code(self.encoder_output(x))

    def decode(self, z: Tensor) -> Tensor:
        out = self.decoder(z)  # (B, n_outputs * D) or (B, n_outputs * C, H, W)
        # Channels of one output stay contiguous along dim 1: (B, n_outputs * C, H, W) for images.
        return out.reshape(len(out), self.shape[0] * self.criterion.n_outputs, *self.shape[1:])

    def forward(self, x: Tensor) -> Tensor:
        """The decoder output for x, without noise (a VAE decodes its posterior mean)."""
        return self.decode(self.encode(x))

    @classmethod
    def member_objective(
        cls,
        members: Members,
        x: Tensor,
        noises: Sequence[torch.Generator | None],
        kl_weights: Sequence[float],
    ) -> tuple[Tensor, Tensor | None]:
        """Per-sample training objective (K, B) of member batches x (K, B, *shape) (a group of
        one: (B,) of x (B, *shape)), member k drawing from ``noises[k]`` and weighting a KL term
        by ``kl_weights[k]``; and the decoder output of the noiseless pass of x if the objective
        computed it on the way (else None).

        AE: criterion(x, dec(enc(x))), whose decoder output is the noiseless one.
        """
        out = members.decode(members.encoder_output(x))
        return members.loss(x, out), out

    @classmethod
    def member_validation(
        cls,
        members: Members,
        x: Tensor,
        noises: Sequence[torch.Generator | None],
        kl_weights: Sequence[float],
    ) -> tuple[Tensor, Tensor]:
        """The objective (K, B) and the point reconstruction (K, B, *shape) of member batches x
        (a group of one: (B,) and (B, *shape)): what validation records. The reconstruction
        decodes ``point_code`` of the encoder output, reusing the objective's decoder output when
        it is that pass (an AE: one forward pass)."""
        objective, out = cls.member_objective(members, x, noises, kl_weights)
        if out is None:  # a noisy objective decoded other inputs or codes
            out = members.decode(cls.point_code(members.encoder_output(x)))
        return objective, members.reconstruct(out)

    def objective(self, x: Tensor, noise: torch.Generator | None = None, kl_weight: float = 1.0) -> Tensor:
        """Per-sample training objective (B,) of a batch x: :meth:`member_objective` of this model
        as a group of one; ``noise`` feeds every random draw."""
        objective, _ = self.member_objective(GroupOfOne(self), x, [noise], [kl_weight])
        return objective

    def kl_weight(self, epoch: int | None = None) -> float:
        """Weight of the KL term at a 1-based epoch (None: after any warm-up); 0 without one."""
        return 0.0

    def objective_pass(self, x: Tensor, noise: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """What the training objective scores for a batch x (B, *shape): the decoder output it
        compares with x, and the per-sample term it adds, (B,) (the weighted KL of a VAE after any
        warm-up; zeros here). The objective is criterion(x, output) + term; the own-metric check
        (lpae.study.health) scores every model of a comparison this way under each criterion.
        AE: the noiseless pass."""
        return self(x), x.new_zeros(len(x))

    @torch.no_grad()
    def reconstruct(self, x: Tensor) -> Tensor:
        """Point reconstruction of x, shaped like x."""
        return self.criterion.reconstruct(self(x))


class DenoisingAutoencoder(Autoencoder):
    """Encodes a corrupted x_tilde, reconstructs the clean x (Vincent et al. 2010)."""

    def __init__(self, shape: Sequence[int], settings: ModelSettings, criterion: Criterion) -> None:
        super().__init__(shape, settings, criterion)
        self.corruption: Corruption = build_corruption(self.settings.corruption or DEFAULT_CORRUPTION)

    @classmethod
    def member_objective(
        cls,
        members: Members,
        x: Tensor,
        noises: Sequence[torch.Generator | None],
        kl_weights: Sequence[float],
    ) -> tuple[Tensor, Tensor | None]:
        """criterion(x, dec(enc(x_tilde))) (K, B), member k's x_tilde its own corruption of its
        batch x_k (one tensor of x_k's shape drawn from ``noises[k]``)."""
        models = cast(Sequence[DenoisingAutoencoder], members.models)
        parts = zip(models, members.unbind(x), noises, strict=True)
        x_tilde = members.stack([model.corruption.corrupt(part, noise) for model, part, noise in parts])
        return members.loss(x, members.decode(members.encoder_output(x_tilde))), None

    def objective_pass(self, x: Tensor, noise: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """The decoding of a corruption of x drawn from ``noise`` (no added term)."""
        return self(self.corruption.corrupt(x, noise)), x.new_zeros(len(x))


class VariationalAutoencoder(Autoencoder):
    """Gaussian-posterior VAE; the encoder emits (mu, log_var) stacked along its last dim."""

    @property
    def code_size(self) -> int:
        return 2 * self.settings.latent

    def posterior(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and log-variance of q(z|x), each (B, latent)."""
        mu, log_var = self.encoder_output(x).chunk(2, dim=-1)
        return mu, log_var

    @staticmethod
    def point_code(code: Tensor) -> Tensor:
        return code.chunk(2, dim=-1)[0]  # the posterior mean

    @staticmethod
    def kl(mu: Tensor, log_var: Tensor) -> Tensor:
        """KL(N(mu, exp(log_var)) || N(0, I)) per sample, in nats: (..., latent) -> (...)."""
        return 0.5 * (mu.square() + log_var.exp() - 1.0 - log_var).sum(dim=-1)

    @staticmethod
    def sample(mu: Tensor, log_var: Tensor, eps: Tensor) -> Tensor:
        """The reparameterisation z = mu + sigma * eps, sigma = exp(log_var / 2), eps ~ N(0, I)
        broadcasting with mu."""
        return mu + (0.5 * log_var).exp() * eps

    @classmethod
    def member_objective(
        cls,
        members: Members,
        x: Tensor,
        noises: Sequence[torch.Generator | None],
        kl_weights: Sequence[float],
    ) -> tuple[Tensor, Tensor | None]:
        """criterion(x, dec(z)) + kl_weight * KL(q(z|x) || p(z)) (K, B), z = mu + sigma * eps with
        member k's eps one standard normal (B, latent) drawn from ``noises[k]``."""
        mu, log_var = members.encoder_output(x).chunk(2, dim=-1)  # (K, B, latent) each
        size = mu.shape[-2:]  # (B, latent): one member's
        eps = members.stack(
            [torch.randn(size, generator=g, device=mu.device, dtype=mu.dtype) for g in noises]
        )  # (K, B, latent)
        nll = members.loss(x, members.decode(cls.sample(mu, log_var, eps)))  # (K, B)
        return nll + member_weights(kl_weights, mu) * cls.kl(mu, log_var), None

    def objective_pass(self, x: Tensor, noise: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """The decoding of one z ~ q(z|x) drawn from ``noise``, and beta * KL(q(z|x) || p(z))."""
        mu, log_var = self.posterior(x)  # (B, latent) each
        eps = torch.randn(mu.shape, generator=noise, device=mu.device, dtype=mu.dtype)
        return self.decode(self.sample(mu, log_var, eps)), self.kl_weight() * self.kl(mu, log_var)

    def kl_weight(self, epoch: int | None = None) -> float:
        s = self.settings
        if epoch is None or s.kl_warmup == 0:
            return s.beta
        return s.beta * min(1.0, epoch / s.kl_warmup)

    def elbo(
        self, x: Tensor, n_samples: int = 1, noise: torch.Generator | None = None, eps: Tensor | None = None
    ) -> Tensor:
        """ELBO per sample (B,): E_q[log p(x|z)] (Monte Carlo, n_samples) - KL (closed form).

        ``eps``: the standard normal draws (n_samples, B, L) to use instead of drawing them from
        ``noise``. A ``scale=calibrated`` criterion calibrates over the rows of x, so for a bound
        of a whole split hold one scale (lpae.metrics.likelihood.vae_bounds)."""
        mu, log_var = self.posterior(x)
        log_likelihood = torch.zeros(len(x), device=x.device, dtype=mu.dtype)
        for i in range(n_samples):
            if eps is None:
                draw = torch.randn(mu.shape, generator=noise, device=mu.device, dtype=mu.dtype)  # (B, L)
            else:
                draw = eps[i]
            log_likelihood -= self.criterion(x, self.decode(self.sample(mu, log_var, draw)))
        return log_likelihood / n_samples - self.kl(mu, log_var)

    def iwae(
        self, x: Tensor, k: int, noise: torch.Generator | None = None, eps: Tensor | None = None
    ) -> Tensor:
        """Importance-weighted bound per sample (B,) with k samples from q(z|x); ``eps``: the
        standard normal draws (k, B, L) to use instead of drawing them from ``noise``."""
        if k < 1:
            raise ValueError(f"iwae needs k >= 1 importance samples, got {k}")
        mu, log_var = self.posterior(x)  # (B, L)
        if eps is None:
            eps = torch.randn((k, *mu.shape), generator=noise, device=mu.device, dtype=mu.dtype)  # (k, B, L)
        z = self.sample(mu, log_var, eps)  # (k, B, L)
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


# Weights, their gradients and Adam's two moments: four float32 copies of every parameter.
TRAINING_COPIES = 4


def physical_memory() -> int | None:
    """This machine's memory in bytes (None where the system does not say)."""
    import os

    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        return None


def check_fits_memory(shape: Sequence[int], settings: ModelSettings, criterion: Criterion) -> None:
    """Refuse a model whose training state could not fit in this machine's memory, before any of
    it is allocated: the model is built on torch's meta device (shapes only) and counted."""
    with torch.device("meta"):
        model = build_model(shape, settings, criterion)
    n_params = sum(p.numel() for p in model.parameters())
    need = TRAINING_COPIES * 4 * n_params
    total = physical_memory()
    if total is not None and need > total:
        raise ValueError(
            f"the model (hidden {list(settings.hidden or ())}, latent {settings.latent}) has "
            f"{n_params:.3g} parameters, {need / 2**30:.3g} GiB to train (weights, gradients, Adam "
            f"state), more than this machine's {total / 2**30:.3g} GiB; use smaller --hidden sizes"
        )
