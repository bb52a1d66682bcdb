"""The inductor-compiled kernels of the learned-shape likelihoods (lpae.criteria.inductor): when they
compile, that they fall back to eager on any failure, and that compiled and eager routes give the
autograd chain's values and gradients (gradcheck in float64, allclose in float32).

Real compilation costs seconds per kernel and dtype, so only the tests marked slow compile; the
others replace torch.compile by the identity (the kernels' own functions run eagerly through the
custom autograd.Functions) or by a failing stand-in.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from lpae import criteria
from lpae.criteria import inductor, power_compiled, student_t_compiled
from lpae.criteria.scale import SCALE_RATE
from lpae.criteria.student_t import student_t_log_normalizer

KERNELS = (
    power_compiled.FORWARD,
    power_compiled.BACKWARD,
    student_t_compiled.FORWARD,
    student_t_compiled.BACKWARD,
)
SPECS = (
    "gennorm:p=learned,scale=learned",
    "gennorm:p=learned,scale=0.7",
    "student_t:df=learned,scale=learned",
)


@pytest.fixture
def fresh_kernels() -> Iterator[None]:
    """Each test starts and leaves the shared kernels uncompiled, unfailed, with no calls counted."""
    for kernel in KERNELS:
        kernel.reset()
    yield
    for kernel in KERNELS:
        kernel.reset()


@pytest.fixture
def identity_compile(monkeypatch: pytest.MonkeyPatch, fresh_kernels: None) -> Iterator[None]:
    """torch.compile returns the function itself: the compiled route, run eagerly."""

    def identity(function: Callable[..., Any], **_: Any) -> Callable[..., Any]:
        return function

    monkeypatch.setattr(torch, "compile", identity)
    with inductor.compile_setting("on"):
        yield


def autograd_chain(
    spec: str, x: torch.Tensor, out: torch.Tensor, raw: dict[str, torch.Tensor]
) -> torch.Tensor:
    """The NLL per sample written directly as an autograd chain, from the raw parameters."""
    r = (out - x).reshape(len(x), -1)
    n = r.shape[1]
    log_s = -6 + F.softplus(SCALE_RATE * raw["scale.raw"] + 6) if "scale.raw" in raw else math.log(0.7)
    if spec.startswith("gennorm"):
        p = 0.1 + 9.9 * torch.sigmoid(raw["shape.raw"])
        element = (r.abs() * torch.exp(-torch.as_tensor(log_s))).pow(p)
        return element.sum(1) + n * (log_s + math.log(2) + torch.lgamma(1 / p) - torch.log(p))
    df = 0.1 + F.softplus(raw["df.raw"])
    z = r * torch.exp(-log_s)
    return 0.5 * (df + 1) * torch.log1p(z.square() / df).sum(1) + n * (log_s + student_t_log_normalizer(df))


def inputs(dtype: torch.dtype, shape: tuple[int, ...] = (3, 2, 3)) -> tuple[torch.Tensor, torch.Tensor]:
    """x and x_hat whose residuals are 0.3 to 1.3 away from 0, where |r|^p is smooth."""
    generator = torch.Generator().manual_seed(5)
    x = torch.randn(shape, generator=generator, dtype=dtype)
    size = 0.3 + torch.rand(shape, generator=generator, dtype=dtype)
    sign = torch.randint(0, 2, shape, generator=generator).to(dtype) * 2 - 1
    return x, x + size * sign


def gradcheck_criterion(spec: str) -> None:
    crit = criteria.build(spec).double()
    x, out = inputs(torch.float64)
    names = [name for name, _ in crit.named_parameters()]
    values = [p.detach().clone().requires_grad_(True) for _, p in crit.named_parameters()]

    def objective(x: torch.Tensor, out: torch.Tensor, *params: torch.Tensor) -> torch.Tensor:
        result: torch.Tensor = functional_call(crit, dict(zip(names, params, strict=True)), (x, out))
        return result

    x.requires_grad_(True)
    out.requires_grad_(True)
    assert torch.autograd.gradcheck(objective, (x, out, *values), atol=1e-6, rtol=1e-5)


def compare_float32(spec: str, shape: tuple[int, ...]) -> None:
    """Compiled and eager routes in float32 against the autograd chain in float64.

    Tolerance: each element goes through a handful of float32 operations (sub, abs, log, mul, exp
    or log1p, div), each correct to an ulp or so (6e-8 relative), and a sample sums D of them;
    the NLL's terms are positive, so the sum's relative error stays within a few times 1e-7 for
    D < 1000. rtol 2e-6 leaves a factor of about 5 above that; gradients in x_hat are element-wise
    (no sum) and get the same rtol with an atol for elements near 0. A learned parameter's gradient
    sums all B D elements' terms, which partly cancel (for a shape, |r|^p log|r| changes sign at
    |r| = 1 and the normaliser's D d/dp log C offsets the sum): its relative error is larger, 5e-6
    measured on both routes (the eager one is unchanged code), so rtol 2e-5 there.
    """
    crit = criteria.build(spec)
    x64, out64 = inputs(torch.float64, shape)
    raw = {name: p.detach().double().requires_grad_(True) for name, p in crit.named_parameters()}
    out_ref = out64.clone().requires_grad_(True)
    reference = autograd_chain(spec, x64, out_ref, raw)
    reference.sum().backward()
    for mode in ("off", "on"):
        crit.zero_grad(set_to_none=True)
        out = out64.float().requires_grad_(True)
        with inductor.compile_setting(mode):
            value = crit(x64.float(), out)
            value.sum().backward()
        torch.testing.assert_close(value.double(), reference.detach(), rtol=2e-6, atol=0)
        assert out.grad is not None and out_ref.grad is not None
        torch.testing.assert_close(out.grad.double(), out_ref.grad, rtol=2e-6, atol=1e-7)
        for name, param in crit.named_parameters():
            grad, expected = param.grad, raw[name].grad
            assert grad is not None and expected is not None
            torch.testing.assert_close(grad.double(), expected, rtol=2e-5, atol=1e-6)


def test_compile_mode_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(inductor.COMPILE_ENV, raising=False)
    assert inductor.compile_mode() == "auto"
    for raw, mode in (("0", "off"), ("1", "on"), ("ON", "on"), ("auto", "auto")):
        monkeypatch.setenv(inductor.COMPILE_ENV, raw)
        assert inductor.compile_mode() == mode
    monkeypatch.setenv(inductor.COMPILE_ENV, "yes")
    with pytest.raises(ValueError, match="LPAE_COMPILE='yes': use auto"):
        inductor.compile_mode()


def test_auto_compiles_only_after_enough_large_calls() -> None:
    kernel = inductor.LazyKernel("test", lambda t: t)
    small, large = torch.zeros(8, 8), torch.zeros(inductor.COMPILE_MIN_ELEMENTS)
    with inductor.compile_setting("auto"):
        assert not any(kernel.wanted(small) for _ in range(2 * inductor.COMPILE_AFTER_CALLS))
        assert kernel.large_calls == 0
        decisions = [kernel.wanted(large) for _ in range(inductor.COMPILE_AFTER_CALLS)]
        assert decisions == [False] * (inductor.COMPILE_AFTER_CALLS - 1) + [True]
        assert not kernel.wanted(large.half())  # dtypes inductor's vector code does not take here
    with inductor.compile_setting("off"):
        assert not kernel.wanted(large)
    with inductor.compile_setting("on"):
        assert kernel.wanted(small)
        kernel.failed = True
        assert not kernel.wanted(small)


def test_small_batches_stay_eager_by_default(fresh_kernels: None, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: Any, **__: Any) -> None:
        raise AssertionError("torch.compile must not be called for small batches in auto mode")

    monkeypatch.setattr(torch, "compile", refuse)
    x, out = inputs(torch.float32, (64, 1, 8, 8))
    with inductor.compile_setting("auto"):
        for spec in SPECS:
            criteria.build(spec)(x, out.requires_grad_(True)).sum().backward()
    assert all(kernel.compiled is None and kernel.large_calls == 0 for kernel in KERNELS)


@pytest.mark.parametrize("failure", ["compile raises", "first call raises"])
def test_any_compile_failure_falls_back_to_eager(
    failure: str, fresh_kernels: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def no_compiler(function: Callable[..., Any], **_: Any) -> Callable[..., Any]:
        if failure == "compile raises":
            raise RuntimeError("simulated: no C++ compiler")

        def broken(*_: Any) -> None:
            raise RuntimeError("simulated: C++ compile failed")

        return broken

    x, out = inputs(torch.float32, (16, 1, 4, 4))
    for spec in SPECS:
        with inductor.compile_setting("off"):
            expected = criteria.build(spec)(x, out)
        monkeypatch.setattr(torch, "compile", no_compiler)
        with inductor.compile_setting("on"), caplog.at_level(logging.WARNING, logger=inductor.__name__):
            crit = criteria.build(spec)
            value = crit(x, out.clone().requires_grad_(True))
            value.sum().backward()
        torch.testing.assert_close(value, expected, rtol=2e-6, atol=0)
        assert all(p.grad is not None for p in crit.parameters())
        monkeypatch.undo()
    assert all(kernel.failed for kernel in KERNELS)
    assert "running it eagerly from now on" in caplog.text


@pytest.mark.parametrize("spec", SPECS)
def test_compiled_route_functions_gradcheck_float64(spec: str, identity_compile: None) -> None:
    gradcheck_criterion(spec)
    assert power_compiled.FORWARD.compiled is not None or student_t_compiled.FORWARD.compiled is not None


@pytest.mark.parametrize("spec", SPECS)
def test_compiled_route_functions_match_autograd_float32(spec: str, identity_compile: None) -> None:
    compare_float32(spec, (32, 1, 8, 8))


def test_zero_residuals_give_zero_gradient_and_0_log_0(identity_compile: None) -> None:
    x, out = inputs(torch.float64)
    out = out.clone()
    out[0, 0, :2] = x[0, 0, :2]  # two exact zeros
    results = []
    for mode in ("on", "off"):
        crit = criteria.build("gennorm:p=learned,scale=learned").double()
        leaf = out.clone().requires_grad_(True)
        with inductor.compile_setting(mode):
            crit(x, leaf).sum().backward()
        assert leaf.grad is not None
        results.append((leaf.grad, crit.shape.raw.grad))
    (grad_on, p_on), (grad_off, p_off) = results
    assert torch.equal(grad_on[0, 0, :2], torch.zeros(2, dtype=torch.float64))
    assert p_on is not None and p_off is not None and torch.isfinite(p_on)
    torch.testing.assert_close(grad_on, grad_off)
    torch.testing.assert_close(p_on, p_off)


@pytest.mark.slow
@pytest.mark.parametrize("spec", SPECS[::2])
def test_inductor_kernels_gradcheck_and_match_autograd(spec: str) -> None:
    """Real compilation (float64 and float32): gradcheck, then float32 against the float64 chain."""
    with inductor.compile_setting("on"):
        gradcheck_criterion(spec)
    compare_float32(spec, (64, 1, 28, 28))
    pair = power_compiled if spec.startswith("gennorm") else student_t_compiled
    assert pair.FORWARD.compiled is not None and pair.BACKWARD.compiled is not None
    assert not pair.FORWARD.failed and not pair.BACKWARD.failed, "inductor failed here: see the warning"
