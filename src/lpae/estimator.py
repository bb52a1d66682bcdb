"""``LpAutoencoder``: a scikit-learn transformer that trains an lpae autoencoder under any criterion.

    ae = LpAutoencoder(loss="lp:0.5", hidden=(64, 32), latent=8, epochs=50, random_state=0).fit(X)
    Z = ae.transform(X)              # latent codes (n_samples, latent)
    X_hat = ae.inverse_transform(Z)  # reconstructions in the units of X
    ll = ae.score_samples(X)         # per-sample log-likelihood log p(x), nats, calibrated

It follows scikit-learn's conventions: ``__init__`` only stores its arguments, ``fit`` validates
X with ``sklearn.utils.validation.validate_data``, fitted attributes end in ``_``, the same
``random_state`` gives the same model. Training is :func:`lpae.train.fit` itself on a seeded
split of X into training and validation rows (``validation_fraction``; the best validation epoch
is kept); preprocessing is :func:`lpae.data.fit_preprocessor` fitted on the training rows
("auto" follows the criterion's support: standard, or minmax for unit-interval families).

Calibrated log-likelihood (``score_samples``). With z = T(x) the preprocessing (an affine map per
feature, log-Jacobian J = sum_i log |dz_i / dx_i|) and r = x_hat(z) - z the residual,

    log p(x) = -NLL(z) + J,

and NLL(z), summed over features, is the one of the fitted decoder at a scale set once, at the
end of ``fit``, to its maximum-likelihood value for the residuals of all rows given to ``fit``:

- plain losses (lp, lpnorm, huber, barron, ...): every L_p loss is the generalized-normal NLL of
  shape p at some fixed scale (REFERENCES.md), so the decoder is gennorm(p) with the closed-form
  ML scale alpha = (p mean|r|^p)^(1/p), via :func:`lpae.criteria.calibrated_nll`; losses without
  an exponent p (huber, logcosh, cauchy, barron, l1l2, charbonnier, bernoulli) get the
  generalized normal whose shape p is fitted by maximum likelihood too;
- likelihoods with one shared scale (fixed, learned or calibrated): the family itself, with its
  learned shape (p, df, alpha) and its ML scale (``criterion.log_ml_scale``, exact: without the
  soft floor training uses; at least 1e-12) frozen after fit;
- likelihoods with per-feature or predicted scales, and the unit-interval families: the
  criterion's own NLL, which is already a normalised per-sample density.

The scale is frozen, so each sample's score is independent of the others in the batch. For a
VAE the decoder is evaluated at the posterior mean: the score is log p(x | z = mu(x)), not a
bound on the marginal log p(x). ``score`` is the mean of ``score_samples``, so GridSearchCV over
``loss`` compares every criterion by held-out log-likelihood in the units of X.

Inference runs in float64 (a float64 copy of the trained weights), so outputs do not depend on
the batch a sample comes in; outputs keep the input's floating dtype.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_array, check_is_fitted, validate_data
from torch import Tensor

from lpae import criteria
from lpae.criteria import Criterion, calibrated_nll
from lpae.criteria.likelihood import LocationScale
from lpae.data import Preprocessor, default_method, fit_preprocessor
from lpae.models import Autoencoder, ModelSettings, build_model
from lpae.spec import format_number
from lpae.train import TrainSettings, fit

PREPROCESS = ("auto", "standard", "minmax", "none")
INFERENCE_BATCH = 4096
MIN_SCALE = 1e-12  # the frozen ML scale of a (near) perfect reconstruction, instead of 0
FLOAT_DTYPES = [np.float64, np.float32]


def as_seed(random_state: Any) -> int:
    """An int seed from a scikit-learn random_state: an int is used as is, else one is drawn."""
    if isinstance(random_state, int | np.integer) and not isinstance(random_state, bool):
        if random_state < 0:
            raise ValueError(f"random_state must be a non-negative integer, got {random_state}")
        return int(random_state)
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


def split_rows(n_samples: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded (train, validation) row indices; the validation rows are the training rows when
    ``fraction`` leaves no row for validation (tiny data, or fraction 0)."""
    if isinstance(fraction, bool) or not isinstance(fraction, int | float) or not 0 <= fraction < 1:
        raise ValueError(f"validation_fraction must be a number in [0, 1), got {fraction!r}")
    n_val = int(math.floor(n_samples * fraction))
    rows = np.arange(n_samples)
    if n_val == 0 or n_val == n_samples:
        return rows, rows
    order = np.random.default_rng(seed).permutation(n_samples)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def log_jacobian(preprocessor: Preprocessor) -> float:
    """sum_i log |dz_i / dx_i| of the preprocessing x -> z (affine per feature)."""
    scale = preprocessor.scale.astype(np.float64)
    if preprocessor.method == "none":
        return 0.0
    slope = 1.0 / scale
    if preprocessor.method == "minmax":
        slope = slope * (1.0 - 2.0 * preprocessor.eps)
    return float(np.sum(np.log(np.abs(slope))))


def exponent(criterion: Criterion) -> float | None:
    """The exponent p of a plain L_p-type loss (lp, lpnorm), else None."""
    p = criterion.spec_values.get("p")
    return float(p) if isinstance(p, int | float) and not isinstance(p, bool) else None


class LpAutoencoder(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """An autoencoder under any lpae criterion, as a scikit-learn transformer (module docstring).

    Parameters: ``loss`` a criterion spec (``lpae losses``); ``model`` ae, dae or vae; ``hidden``
    the MLP hidden sizes; ``latent`` the code size; ``activation``; ``corruption`` (dae) and
    ``beta`` (vae) as in ``lpae train``; training: ``epochs``, ``lr``, ``batch_size``,
    ``weight_decay``, ``optimizer``, ``schedule``, ``clip``, ``patience``,
    ``validation_fraction``, ``device``; ``preprocess`` auto, standard, minmax or none;
    ``random_state`` an int, a RandomState or None.

    Fitted attributes: ``model_`` (the torch model, float64, eval mode), ``criterion_`` (its
    canonical spec), ``preprocessor_``, ``n_features_in_``, ``feature_names_in_`` (when X has
    column names), ``fit_status_`` ("done" or "diverged"), ``n_iter_`` (epochs run),
    ``best_epoch_``, ``history_``, ``learned_`` (learned shape and scale parameters),
    ``calibration_`` (the family, scale and shape ``score_samples`` uses), ``log_jacobian_``.
    """

    def __init__(
        self,
        loss: str = "l2",
        model: str = "ae",
        hidden: Sequence[int] = (64, 32),
        latent: int = 8,
        activation: str = "relu",
        corruption: str | None = None,
        beta: float = 1.0,
        epochs: int = 50,
        lr: float = 1e-3,
        batch_size: int = 128,
        weight_decay: float = 0.0,
        optimizer: str = "adam",
        schedule: str = "none",
        clip: float | None = None,
        patience: int | None = None,
        validation_fraction: float = 0.1,
        preprocess: str = "auto",
        device: str = "cpu",
        random_state: Any = None,
    ) -> None:
        self.loss = loss
        self.model = model
        self.hidden = hidden
        self.latent = latent
        self.activation = activation
        self.corruption = corruption
        self.beta = beta
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.weight_decay = weight_decay
        self.optimizer = optimizer
        self.schedule = schedule
        self.clip = clip
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.preprocess = preprocess
        self.device = device
        self.random_state = random_state

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        if tags.transformer_tags is not None:
            tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    # --- settings -------------------------------------------------------------------------------

    def model_settings(self) -> ModelSettings:
        hidden = (self.hidden,) if isinstance(self.hidden, int) else tuple(self.hidden)
        return ModelSettings(
            model=self.model,
            arch="mlp",
            hidden=hidden,
            latent=self.latent,
            activation=self.activation,
            corruption=self.corruption,
            beta=self.beta,
        )

    def train_settings(self, seed: int) -> TrainSettings:
        return TrainSettings(
            epochs=self.epochs,
            lr=self.lr,
            batch_size=self.batch_size,
            seed=seed,
            weight_decay=self.weight_decay,
            patience=self.patience,
            optimizer=self.optimizer,
            schedule=self.schedule,
            clip=self.clip,
            checkpoint_every=0,
            device=self.device,
        )

    # --- fit --------------------------------------------------------------------------------------

    def fit(self, X: Any, y: Any = None) -> LpAutoencoder:
        """Train on the rows of X (n_samples, n_features); ``y`` is ignored."""
        X = validate_data(self, X, dtype=FLOAT_DTYPES)
        if self.preprocess not in PREPROCESS:
            raise ValueError(f"unknown preprocess {self.preprocess!r}; allowed: {', '.join(PREPROCESS)}")
        if not isinstance(self.loss, str):
            raise TypeError(f"loss must be a criterion spec string such as 'lp:0.5', got {self.loss!r}")
        n_samples, n_features = X.shape
        seed = as_seed(self.random_state)
        settings = self.model_settings()
        train_settings = self.train_settings(seed)
        train_rows, val_rows = split_rows(n_samples, self.validation_fraction, seed)
        # Criterion first, then the model, all under the seed (lpae.models on init order).
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            criterion = criteria.build(self.loss, feature_shape=(n_features,))
            model = build_model((n_features,), settings, criterion)
        method = default_method(criterion.support) if self.preprocess == "auto" else self.preprocess
        preprocessor = fit_preprocessor(X[train_rows].astype(np.float32), method)
        x = torch.from_numpy(preprocessor.transform(X))  # (N, D) float32
        criterion.check_support(x)
        result = fit(model, x[train_rows], x[val_rows], train_settings)
        if result.status != "done":
            warnings.warn(
                f"LpAutoencoder({self.loss}): training diverged ({result.reason}); the model keeps "
                "its best finite weights (try a smaller lr, or clip)",
                ConvergenceWarning,
                stacklevel=2,
            )
        self.model_: Autoencoder = model.to("cpu").double().eval()
        self.criterion_ = str(criterion)
        self.preprocessor_ = preprocessor
        self.log_jacobian_ = log_jacobian(preprocessor)
        self.fit_status_ = result.status
        self.n_iter_ = result.epochs_run
        self.best_epoch_ = result.best_epoch
        self.history_ = result.history
        self.learned_ = criterion.learned()
        self.calibration_ = self.calibrate(self.residuals_of(self.working(X)))
        return self

    def calibrate(self, residual: Tensor) -> dict[str, Any]:
        """Choose how ``score_samples`` scores and set its scale (see the module docstring)."""
        criterion = self.model_.criterion
        if isinstance(criterion, LocationScale) and criterion.scale.shared:
            with torch.no_grad():
                log_scale = max(float(criterion.log_ml_scale(residual)), math.log(MIN_SCALE))
            return {"method": "ml_scale", "family": self.criterion_, "scale": math.exp(log_scale)}
        if criterion.is_likelihood:
            return {"method": "own", "family": self.criterion_}
        p = exponent(criterion)
        found = calibrated_nll(residual, "gennorm" if p is None else f"gennorm:p={format_number(p)}")
        return {
            "method": "gennorm",
            "family": f"{found.family},scale={format_number(found.scale)}",
            "scale": found.scale,
            "shape": found.shape,
        }

    # --- inference ------------------------------------------------------------------------------

    def working(self, X: np.ndarray) -> Tensor:
        """X preprocessed as in training, as float64 (N, D)."""
        return torch.from_numpy(self.preprocessor_.transform(X).astype(np.float64))

    @torch.no_grad()
    def batched(self, fn: Any, x: Tensor) -> Tensor:
        return torch.cat([fn(x[i : i + INFERENCE_BATCH]) for i in range(0, max(len(x), 1), INFERENCE_BATCH)])

    def residuals_of(self, x: Tensor) -> Tensor:
        """r = x_hat - x in the working space, (N, D) float64."""
        return self.batched(lambda xb: self.model_.reconstruct(xb) - xb, x)

    @torch.no_grad()
    def nll_of(self, x: Tensor) -> Tensor:
        """Calibrated NLL per sample (N,) of working-space rows x (float64)."""
        model, calibration = self.model_, self.calibration_
        method = calibration["method"]
        if method == "own":
            return self.batched(lambda xb: model.criterion(xb, model(xb)), x)
        if method == "ml_scale":
            criterion = model.criterion
            if not isinstance(criterion, LocationScale):  # pragma: no cover - set by calibrate()
                raise TypeError(f"{criterion} has no scale")
            log_scale = torch.tensor(math.log(calibration["scale"]), dtype=torch.float64)
            residual = self.residuals_of(x)
            return criterion.element_nll(residual, log_scale).sum(dim=1)
        scorer = criteria.build(calibration["family"]).double()
        return self.batched(lambda xb: scorer(xb, model.reconstruct(xb)), x)

    def checked(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        return validate_data(self, X, dtype=FLOAT_DTYPES, reset=False)

    def transform(self, X: Any) -> np.ndarray:
        """Latent codes (n_samples, latent); for a VAE the posterior means."""
        X = self.checked(X)
        codes = self.batched(self.model_.encode, self.working(X))
        return codes.numpy().astype(X.dtype, copy=False)

    def inverse_transform(self, X: Any) -> np.ndarray:
        """Reconstructions in the units of the training data from codes X (n_samples, latent)."""
        check_is_fitted(self)
        codes = check_array(X, dtype=FLOAT_DTYPES)
        if codes.shape[1] != self.model_.settings.latent:
            raise ValueError(
                f"inverse_transform takes latent codes of {self.model_.settings.latent} columns, "
                f"got {codes.shape[1]}"
            )
        decode = self.model_.decode
        reconstruct = self.model_.criterion.reconstruct
        x_hat = self.batched(lambda zb: reconstruct(decode(zb)), torch.from_numpy(codes.astype(np.float64)))
        return self.preprocessor_.inverse(x_hat.numpy()).astype(codes.dtype, copy=False)

    def residuals(self, X: Any) -> np.ndarray:
        """Residuals r = x_hat - x (n_samples, n_features) in the preprocessed space the model works in."""
        X = self.checked(X)
        return self.residuals_of(self.working(X)).numpy().astype(X.dtype, copy=False)

    def score_samples(self, X: Any) -> np.ndarray:
        """Calibrated log-likelihood log p(x) of each row, in nats (module docstring)."""
        X = self.checked(X)
        log_likelihood = -self.nll_of(self.working(X)) + self.log_jacobian_
        return log_likelihood.numpy().astype(X.dtype, copy=False)

    def score(self, X: Any, y: Any = None) -> float:
        """Mean calibrated log-likelihood per sample, in nats (higher is better)."""
        return float(np.mean(self.score_samples(X), dtype=np.float64))

    @property
    def _n_features_out(self) -> int:
        return int(self.model_.settings.latent)
