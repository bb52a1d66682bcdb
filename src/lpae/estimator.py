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

A fitted estimator is kept with ``save(path)`` and ``LpAutoencoder.load(path)``: a folder of
JSON and safetensors (lpae.estimator_io), never a pickle.

Inference runs in float64 (a float64 copy of the trained weights), so outputs do not depend on
the batch a sample comes in; outputs keep the input's floating dtype.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any, Self

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_array, check_is_fitted, validate_data
from torch import Tensor

from lpae import criteria
from lpae.config import RunSpec, options, with_options
from lpae.criteria import calibrated_nll
from lpae.criteria.likelihood import LocationScale
from lpae.data import Preprocessor, default_method, fit_preprocessor
from lpae.estimator_io import load_estimator, save_estimator
from lpae.estimator_params import EstimatorParameter, schema_parameters, with_parameters
from lpae.models import Autoencoder, build_model
from lpae.spec import format_number
from lpae.train import fit

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


# Where the estimators' defaults differ from `lpae train`'s: small tabular X, a CPU-bound user.
DEFAULTS = {"hidden": (64, 32), "latent": 8, "epochs": 50, "device": "cpu"}
OWN_PARAMETERS = [
    EstimatorParameter(
        "validation_fraction",
        0.1,
        "float",
        "share of the rows held out to pick the best epoch, in [0, 1) (0: the training rows)",
    ),
    EstimatorParameter(
        "random_state", None, "int, RandomState or None", "seed of the split, weights and noise"
    ),
]
PARAMETERS = [*schema_parameters(DEFAULTS), *OWN_PARAMETERS]


@with_parameters(PARAMETERS)
class LpAutoencoder(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """An autoencoder under any lpae criterion, as a scikit-learn transformer (module docstring).

    The parameters are the run settings of ``lpae train`` that apply to a table X (lpae.config;
    ``hidden`` may be an int for one layer), keyword-only, plus ``validation_fraction`` and
    ``random_state``.

    Attributes
    ----------
    model_ : lpae.models.Autoencoder
        The trained torch model, in float64 and eval mode.
    criterion_ : str
        The criterion's canonical spec.
    preprocessor_ : lpae.data.Preprocessor
        The preprocessing fitted on the training rows.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of str
        Column names of X, when X has them.
    fit_status_ : str
        "done", or "diverged" (the model keeps its best finite weights).
    n_iter_ : int
        Epochs run.
    best_epoch_ : int
        The epoch whose weights were kept (best validation loss).
    history_ : list of dict
        One record per epoch (lpae.train.fit).
    learned_ : dict
        Learned shape and scale parameters of the criterion.
    calibration_ : dict
        The family, scale and shape that ``score_samples`` uses.
    log_jacobian_ : float
        sum_i log |dz_i / dx_i| of the preprocessing.
    """

    # Fitted attributes that save() stores beyond the common ones (lpae.estimator_io).
    SAVED_VALUES: tuple[str, ...] = ()
    SAVED_ARRAYS: tuple[str, ...] = ()

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        if tags.transformer_tags is not None:
            tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    def _spec(self, seed: int) -> RunSpec:
        """The run settings of this estimator's parameters (validated by lpae.config)."""
        if not isinstance(self.loss, str):
            raise TypeError(f"loss must be a criterion spec string such as 'lp:0.5', got {self.loss!r}")
        values = {name: getattr(self, name) for name in options("estimator")}
        if isinstance(self.hidden, int):
            values["hidden"] = (self.hidden,)
        return with_options(RunSpec(), {**values, "seed": seed})

    # --- fit --------------------------------------------------------------------------------------

    def fit(self, X: Any, y: Any = None) -> LpAutoencoder:
        """Train on the rows of X (n_samples, n_features); ``y`` is ignored."""
        X = validate_data(self, X, dtype=FLOAT_DTYPES)
        n_samples, n_features = X.shape
        seed = as_seed(self.random_state)
        spec = self._spec(seed)
        train_rows, val_rows = split_rows(n_samples, self.validation_fraction, seed)
        # Criterion first, then the model, all under the seed (lpae.models on init order).
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            criterion = criteria.build(spec.loss, feature_shape=(n_features,))
            model = build_model((n_features,), spec.model, criterion)
        method = default_method(criterion.support) if spec.preprocess == "auto" else spec.preprocess
        # statistics and float32 rows chunk by chunk: no copy of X beyond the two parts trained on
        preprocessor = fit_preprocessor(X, method, rows=train_rows)
        x_train = torch.from_numpy(preprocessor.transform_rows(X, train_rows))  # (N_train, D) float32
        x_val = torch.from_numpy(preprocessor.transform_rows(X, val_rows))
        criterion.check_support(x_train)
        criterion.check_support(x_val)
        result = fit(model, x_train, x_val, spec.train)
        del x_train, x_val
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
        self.calibration_ = self._calibrate(self._residuals_of(self._working(X)))
        return self

    def _calibrate(self, residual: Tensor) -> dict[str, Any]:
        """Choose how ``score_samples`` scores and set its scale (see the module docstring)."""
        criterion = self.model_.criterion
        if isinstance(criterion, LocationScale) and criterion.scale.shared:
            with torch.no_grad():
                log_scale = max(float(criterion.log_ml_scale(residual)), math.log(MIN_SCALE))
            return {"method": "ml_scale", "family": self.criterion_, "scale": math.exp(log_scale)}
        if criterion.is_likelihood:
            return {"method": "own", "family": self.criterion_}
        p = criteria.describe(self.criterion_).energy  # lp, lpnorm: their exponent p
        found = calibrated_nll(residual, "gennorm" if p is None else f"gennorm:p={format_number(p)}")
        return {
            "method": "gennorm",
            "family": f"{found.family},scale={format_number(found.scale)}",
            "scale": found.scale,
            "shape": found.shape,
        }

    # --- inference ------------------------------------------------------------------------------

    def _working(self, X: np.ndarray) -> Tensor:
        """X preprocessed as in training, as float64 (N, D)."""
        return torch.from_numpy(self.preprocessor_.transform(X).astype(np.float64))

    @torch.no_grad()
    def _batched(self, fn: Any, x: Tensor) -> Tensor:
        return torch.cat([fn(x[i : i + INFERENCE_BATCH]) for i in range(0, max(len(x), 1), INFERENCE_BATCH)])

    def _residuals_of(self, x: Tensor) -> Tensor:
        """r = x_hat - x in the working space, (N, D) float64."""
        return self._batched(lambda xb: self.model_.reconstruct(xb) - xb, x)

    @torch.no_grad()
    def _nll_of(self, x: Tensor) -> Tensor:
        """Calibrated NLL per sample (N,) of working-space rows x (float64)."""
        model, calibration = self.model_, self.calibration_
        method = calibration["method"]
        if method == "own":
            return self._batched(lambda xb: model.criterion(xb, model(xb)), x)
        if method == "ml_scale":
            criterion = model.criterion
            if not isinstance(criterion, LocationScale):  # pragma: no cover - set by calibrate()
                raise TypeError(f"{criterion} has no scale")
            log_scale = torch.tensor(math.log(calibration["scale"]), dtype=torch.float64)
            residual = self._residuals_of(x)
            return criterion.element_nll(residual, log_scale).sum(dim=1)
        scorer = criteria.build(calibration["family"]).double()
        return self._batched(lambda xb: scorer(xb, model.reconstruct(xb)), x)

    def _checked(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        return validate_data(self, X, dtype=FLOAT_DTYPES, reset=False)

    def transform(self, X: Any) -> np.ndarray:
        """Latent codes (n_samples, latent); for a VAE the posterior means."""
        X = self._checked(X)
        codes = self._batched(self.model_.encode, self._working(X))
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
        x_hat = self._batched(lambda zb: reconstruct(decode(zb)), torch.from_numpy(codes.astype(np.float64)))
        return self.preprocessor_.inverse(x_hat.numpy()).astype(codes.dtype, copy=False)

    def residuals(self, X: Any) -> np.ndarray:
        """Residuals r = x_hat - x (n_samples, n_features) in the preprocessed space the model works in."""
        X = self._checked(X)
        return self._residuals_of(self._working(X)).numpy().astype(X.dtype, copy=False)

    def score_samples(self, X: Any) -> np.ndarray:
        """Calibrated log-likelihood log p(x) of each row, in nats (module docstring)."""
        X = self._checked(X)
        log_likelihood = -self._nll_of(self._working(X)) + self.log_jacobian_
        return log_likelihood.numpy().astype(X.dtype, copy=False)

    def score(self, X: Any, y: Any = None) -> float:
        """Mean calibrated log-likelihood per sample, in nats (higher is better)."""
        return float(np.mean(self.score_samples(X), dtype=np.float64))

    # --- keeping a fitted estimator --------------------------------------------------------------

    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write the fitted estimator to the folder ``path`` (estimator.json + model.safetensors,
        no pickle; lpae.estimator_io), atomically; ``overwrite`` replaces an existing folder."""
        return save_estimator(self, path, overwrite=overwrite)

    @classmethod
    def load(cls, path: str | Path) -> Self:
        """The fitted estimator saved in the folder ``path`` by :meth:`save`; its transform and
        scores equal the original's. Raises ValueError for a folder that is not one."""
        return load_estimator(cls, path)

    @property
    def _n_features_out(self) -> int:
        return int(self.model_.settings.latent)
