"""Adam and AdamW for a table of K members' parameters (K, P), each row with its own settings.

Adam (Kingma & Ba 2015) is element-wise, so one update of the whole table is K independent
updates. With g the gradient, t the step and row k's learning rate lr_k and weight decay wd_k:

    g <- g + wd_k theta                         (adam: L2 penalty in the gradient)
    theta <- theta (1 - lr_k wd_k)              (adamw: decoupled decay, Loshchilov & Hutter 2019)
    m <- m + (1 - beta1) (g - m)                (torch's lerp)
    v <- beta2 v + (1 - beta2) g^2
    theta <- theta - lr_k / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

computed by torch's fused Adam/AdamW kernel (the one lpae.train.fit uses) once per run of
consecutive rows with equal settings, each run a contiguous block of the table: one pass over the
memory, and few OpenMP regions, which matters on shared cores. Where that kernel is missing, the
same formula runs as separate operations in the order of torch.optim.Adam's single-tensor path.
Gradient clipping is per member, as torch.nn.utils.clip_grad_norm_ on that member's parameters
alone: g_k <- g_k * min(1, c_k / (||g_k||_2 + 1e-6)). Rows are never coupled.
Every active member steps at every step, so one step count t serves all rows.

With ``criterion_lr`` (K, C), the last C columns, the members' criterion parameters, train as
lpae.train.make_optimizer's criterion groups: Adam at the constant learning rate of each entry,
without weight decay, and outside the clipping norm (which then covers the network columns only).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

BETAS = (0.9, 0.999)
EPS = 1e-8
CLIP_EPS = 1e-6  # as torch.nn.utils.clip_grad_norm_
KERNEL_DEVICES = ("cpu", "cuda")
KERNEL_DTYPES = (torch.float32, torch.float64)


def column(values: Sequence[float], like: Tensor) -> Tensor:
    """A (K, 1) column of per-row numbers, broadcasting over the table."""
    return torch.tensor(list(values), dtype=like.dtype, device=like.device).unsqueeze(1)


class TableAdam:
    """Per-row Adam/AdamW over a (K, P) table and its gradient table (see the module docstring)."""

    def __init__(
        self,
        n_columns: int,
        n_rows: int,
        device: torch.device,
        weight_decay: Sequence[float],
        decoupled: Sequence[bool],
        clip: Sequence[float | None],
        use_kernel: bool = True,
        criterion_lr: Tensor | None = None,
    ) -> None:
        self.use_kernel = use_kernel and hasattr(torch, "_fused_adam_")
        # (K, C) learning rates of the last C columns (the criterion's), or None: rows' own lr
        self.criterion_lr = criterion_lr
        self.split = n_columns - (0 if criterion_lr is None else criterion_lr.shape[1])
        self.exp_avg = torch.zeros(n_rows, n_columns, device=device)
        self.exp_avg_sq = torch.zeros(n_rows, n_columns, device=device)
        self.step_count = 0
        self.weight_decay = list(weight_decay)
        self.decoupled = list(decoupled)
        self.clip = list(clip)

    def keep(self, positions: Sequence[int]) -> None:
        """Keep the optimizer state of the rows at ``positions`` only (members that go on)."""
        index = torch.as_tensor(list(positions), dtype=torch.long, device=self.exp_avg.device)
        self.exp_avg = self.exp_avg.index_select(0, index)
        self.exp_avg_sq = self.exp_avg_sq.index_select(0, index)
        self.weight_decay = [self.weight_decay[p] for p in positions]
        self.decoupled = [self.decoupled[p] for p in positions]
        self.clip = [self.clip[p] for p in positions]
        if self.criterion_lr is not None:
            self.criterion_lr = self.criterion_lr.index_select(0, index)

    @torch.no_grad()
    def clip_gradients(self, grads: Tensor) -> None:
        if all(c is None for c in self.clip):
            return
        norms = torch.linalg.vector_norm(grads[:, : self.split], dim=1)  # (K,): the network's columns
        limits = torch.tensor(
            [math.inf if c is None else c for c in self.clip], dtype=norms.dtype, device=norms.device
        )
        coef = (limits / (norms + CLIP_EPS)).clamp(max=1.0)
        coef = torch.where(torch.isinf(limits), torch.ones_like(coef), coef)  # unclipped rows: exactly 1
        grads[:, : self.split].mul_(coef.unsqueeze(1))

    @torch.no_grad()
    def step(self, params: Tensor, grads: Tensor, lr: Sequence[float]) -> None:
        """One update of ``params`` (K, P) in place from ``grads`` (K, P) with per-row learning rates."""
        self.clip_gradients(grads)
        self.step_count += 1
        criterion = (
            None if self.criterion_lr is None else self.criterion_step(params, grads, self.criterion_lr)
        )
        if self.use_kernel and params.device.type in KERNEL_DEVICES and params.dtype in KERNEL_DTYPES:
            self.kernel_step(params, grads, lr)
        else:
            self.explicit_step(params, grads, lr)
        if criterion is not None:  # the whole-row step also moved the criterion columns: overwrite
            for table, value in zip((params, self.exp_avg, self.exp_avg_sq), criterion, strict=True):
                table[:, self.split :] = value

    def criterion_step(self, params: Tensor, grads: Tensor, lr: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Adam without weight decay on the criterion columns at their own learning rates, as
        torch.optim.Adam computes it: the new (values, exp_avg, exp_avg_sq) of those columns."""
        beta1, beta2 = BETAS
        cut = slice(self.split, None)
        grad = grads[:, cut]
        exp_avg = self.exp_avg[:, cut].lerp(grad, 1 - beta1)
        exp_avg_sq = self.exp_avg_sq[:, cut].mul(beta2).addcmul_(grad, grad, value=1 - beta2)
        bias_correction1 = 1 - beta1**self.step_count
        bias_correction2_sqrt = (1 - beta2**self.step_count) ** 0.5
        denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(EPS)
        values = params[:, cut] - (lr / bias_correction1) * exp_avg / denom
        return values, exp_avg, exp_avg_sq

    def kernel_step(self, params: Tensor, grads: Tensor, lr: Sequence[float]) -> None:
        """torch's fused kernel on each run of consecutive rows sharing (lr, weight decay, adamw)."""
        beta1, beta2 = BETAS
        settings = list(zip(lr, self.weight_decay, self.decoupled, strict=True))
        start = 0
        for stop in range(1, len(settings) + 1):
            if stop < len(settings) and settings[stop] == settings[start]:
                continue
            lr_k, decay, decoupled = settings[start]
            kernel = torch._fused_adamw_ if decoupled else torch._fused_adam_
            param, grad, exp_avg, exp_avg_sq = (
                t[start:stop].view(-1) for t in (params, grads, self.exp_avg, self.exp_avg_sq)
            )
            step = torch.tensor(float(self.step_count), device=params.device)  # after this step's +1
            kernel(
                [param],
                [grad],
                [exp_avg],
                [exp_avg_sq],
                [],  # max_exp_avg_sqs: no amsgrad
                [step],
                lr=lr_k,
                beta1=beta1,
                beta2=beta2,
                weight_decay=decay,
                eps=EPS,
                amsgrad=False,
                maximize=False,
            )
            start = stop

    def explicit_step(self, params: Tensor, grads: Tensor, lr: Sequence[float]) -> None:
        """The same update as separate tensor operations (devices and dtypes without the kernel)."""
        beta1, beta2 = BETAS
        grad = grads
        pairs = list(zip(self.weight_decay, self.decoupled, strict=True))
        coupled = [0.0 if decoupled else wd for wd, decoupled in pairs]
        if any(coupled):
            if len(set(coupled)) == 1:  # torch's own operation when every row decays alike
                grad = grad.add(params, alpha=coupled[0])
            else:
                grad = grad + params * column(coupled, params)
        shrink = [
            1 - lr_k * wd if decoupled else 1.0 for lr_k, (wd, decoupled) in zip(lr, pairs, strict=True)
        ]
        if any(factor != 1.0 for factor in shrink):
            params.mul_(column(shrink, params))
        self.exp_avg.lerp_(grad, 1 - beta1)
        self.exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        bias_correction1 = 1 - beta1**self.step_count
        bias_correction2_sqrt = (1 - beta2**self.step_count) ** 0.5
        denom = (self.exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(EPS)
        if len(set(lr)) == 1:
            params.addcdiv_(self.exp_avg, denom, value=-(lr[0] / bias_correction1))
        else:
            step_size = column([-(lr_k / bias_correction1) for lr_k in lr], params)
            params.add_(self.exp_avg.mul(step_size).div_(denom))
