"""The fused power-sum kernel behind lp, lpnorm and the power-family likelihoods, against NumPy."""

from __future__ import annotations

import functools
import subprocess
import sys
from collections.abc import Callable

import numpy as np
import pytest
import torch

from lpae.criteria import power
from lpae.criteria.power import power_sum

P_VALUES = [0.3, 0.5, 1.0, 1.5, 2.0, 2.7]


def reference(residual: np.ndarray, p: float, eps: float) -> np.ndarray:
    return ((residual**2 + eps**2) ** (p / 2) - eps**p).reshape(len(residual), -1).sum(axis=1)


@pytest.fixture(params=["compiled", "torch-one-block", "torch-many-blocks"])
def kernel(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Callable[..., torch.Tensor]:
    """power_sum on each of its paths: the compiled one (p in 0.5, 1, 1.5, 2 with x given) and the
    torch one, in one block or in blocks of 7 elements (1 row per block for 5 x 3 x 4 inputs)."""
    monkeypatch.setattr(power, "BLOCK_ELEMENTS", 7 if request.param == "torch-many-blocks" else 1 << 23)
    return functools.partial(power_sum, compiled=request.param == "compiled")


def test_compiled_kernels_cover_the_sqrt_forms() -> None:
    x = torch.zeros(2, 3)
    assert power.compiled_op(x, x, 0.5, 1e-3) is not None
    assert power.compiled_op(x, x, 2.0, 0.0) is not None
    assert power.compiled_op(x, x, 0.7, 0.0) is None  # exp and log: the torch path
    assert power.compiled_op(None, x, 0.5, 0.0) is None
    assert power.compiled_op(x.half(), x.half(), 0.5, 0.0) is None


def test_compiled_false_takes_the_torch_path(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = power.CompiledPowerSum.apply
    monkeypatch.setattr(power.CompiledPowerSum, "apply", lambda *args: calls.append(1) or real(*args))
    x, x_hat = torch.zeros(2, 3), torch.ones(2, 3)
    assert power_sum(x, x_hat, 0.5).tolist() == [3.0, 3.0] and calls == [1]
    assert power_sum(x, x_hat, 0.5, compiled=False).tolist() == [3.0, 3.0] and calls == [1]


@pytest.mark.parametrize("eps", [0.0, 0.01])
@pytest.mark.parametrize("p", P_VALUES)
def test_values_and_gradients_match_numpy(p: float, eps: float, kernel: Callable[..., torch.Tensor]) -> None:
    rng = np.random.default_rng(0)
    x, x_hat = rng.normal(size=(2, 5, 3, 4))
    x_hat[0, 0, 0] = x[0, 0, 0]  # one exact zero residual
    xt = torch.from_numpy(x).requires_grad_(True)
    ht = torch.from_numpy(x_hat).requires_grad_(True)
    value = kernel(xt, ht, p, eps)
    np.testing.assert_allclose(value.detach().numpy(), reference(x_hat - x, p, eps), rtol=1e-12, atol=1e-13)
    weights = torch.arange(1.0, 6.0, dtype=torch.float64)
    (value * weights).sum().backward()
    r = x_hat - x
    with np.errstate(divide="ignore", invalid="ignore"):  # |0|^(p-1): the kernel's gradient there is 0
        derivative = p * r * (r**2 + eps**2) ** (p / 2 - 1) if eps else p * np.sign(r) * np.abs(r) ** (p - 1)
    derivative = np.where(r == 0, 0.0, derivative) * weights.numpy()[:, None, None]
    assert ht.grad is not None and xt.grad is not None
    np.testing.assert_allclose(ht.grad.numpy(), derivative, rtol=1e-12)
    np.testing.assert_allclose(xt.grad.numpy(), -derivative, rtol=1e-12)


def test_learned_p_gradient_with_zero_residuals(kernel: Callable[..., torch.Tensor]) -> None:
    rng = np.random.default_rng(1)
    residual = rng.normal(size=(6, 10))
    residual[2, 3] = residual[5, 0] = 0.0
    p = torch.tensor(0.8, dtype=torch.float64, requires_grad=True)
    r = torch.from_numpy(residual).requires_grad_(True)
    value = kernel(None, r, p)
    np.testing.assert_allclose(value.detach().numpy(), (np.abs(residual) ** 0.8).sum(axis=1), rtol=1e-12)
    value.sum().backward()
    size = np.abs(residual)
    with np.errstate(divide="ignore", invalid="ignore"):
        expected_p = np.where(size > 0, size**0.8 * np.log(size), 0.0).sum()
    assert p.grad is not None and float(p.grad) == pytest.approx(expected_p, rel=1e-12)
    assert r.grad is not None and torch.isfinite(r.grad).all() and float(r.grad[2, 3]) == 0.0


@pytest.mark.parametrize("p", [0.5, 1.0, 2.0, 3.3])
@pytest.mark.parametrize("eps", [0.0, 0.2])
def test_gradcheck(p: float, eps: float, kernel: Callable[..., torch.Tensor]) -> None:
    generator = torch.Generator().manual_seed(2)
    x = torch.randn(4, 6, generator=generator, dtype=torch.float64, requires_grad=True)
    offset = (0.2 + torch.rand(4, 6, generator=generator, dtype=torch.float64)) * torch.sign(
        torch.randn(4, 6, generator=generator, dtype=torch.float64)
    )
    x_hat = (x.detach() + offset).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b: kernel(a, b, p, eps), (x, x_hat))
    learned = torch.tensor(p, dtype=torch.float64, requires_grad=True)
    if eps == 0:
        assert torch.autograd.gradcheck(lambda a, b, q: kernel(a, b, q), (x, x_hat, learned))


def test_float32_and_repeated_backward(kernel: Callable[..., torch.Tensor]) -> None:
    x = torch.randn(3, 5)
    x_hat = torch.randn(3, 5, requires_grad=True)
    value = kernel(x, x_hat, 0.5, 1e-3)
    assert value.dtype == torch.float32
    value.sum().backward(retain_graph=True)
    assert x_hat.grad is not None
    first = x_hat.grad.clone()
    value.sum().backward()
    torch.testing.assert_close(x_hat.grad, 2 * first)  # saved factors are not modified in place


def test_bad_arguments() -> None:
    r = torch.ones(2, 3)
    with pytest.raises(ValueError, match="0-dim tensor"):
        power_sum(None, r, torch.ones(2))
    with pytest.raises(ValueError, match="needs eps = 0"):
        power_sum(None, r, torch.tensor(1.0), eps=0.1)
    with pytest.raises(ValueError, match="need p > 0"):
        power_sum(None, r, 0.0)
    with pytest.raises(ValueError, match="x has shape"):
        power_sum(torch.ones(2, 4), r, 1.0)


def test_kernel_launch_keeps_torch_thread_count() -> None:
    """numba's OpenMP layer resets the thread count on its first launch in a process; lpae puts
    torch's setting back, so a process pinned to one thread stays on one."""
    script = (
        "import torch\n"
        "torch.set_num_threads(1)\n"
        "from lpae import criteria\n"
        "from lpae.contrast.distances import numba_power_sums\n"
        "import numpy as np\n"
        "x = torch.zeros(64, 30, requires_grad=True)\n"
        "criteria.build('lp:0.5')(x, torch.ones(64, 30)).sum().backward()\n"
        "numba_power_sums(np.ones((3, 4)), np.ones((4, 5)), 0.5)\n"
        "print(torch.get_num_threads())\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "1"
