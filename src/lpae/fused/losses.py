"""Per-member reconstruction losses of a fused group: each member's own criterion on its own slice.

A criterion maps (x, out) of one member, shapes (B, C, ...) and (B, n_outputs * C, ...), to the
per-sample loss (B,). Member k's loss is always ``criterion_k(x_k, out_k)``, exactly as the
model's objective calls it alone (this is the stacked members' ``lpae.models.Members.loss``). As a
shortcut, members whose criteria are equal (same canonical spec, no
parameters) and batch-separable share one call on their rows stacked into a (k * B, ...) batch:

    separable:  c(concat(x_1, x_2), concat(o_1, o_2)) = concat(c(x_1, o_1), c(x_2, o_2))

which holds for every per-sample loss but not for a criterion that pools the batch, such as a
``scale=calibrated`` likelihood (its maximum-likelihood scale is a statistic of the whole batch).
Separability is checked numerically once per criterion on random data (:func:`batch_separable`),
so no list of criterion names needs maintaining; a criterion that fails the check, or has learned
parameters, is called once per member.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from lpae.criteria import Criterion

SEPARABILITY_ROWS = 6
SEPARABILITY_RTOL = 1e-6


@torch.no_grad()
def batch_separable(criterion: Criterion, sample_shape: Sequence[int]) -> bool:
    """Whether the per-sample losses of a batch are those of its halves (see the module docstring)."""
    generator = torch.Generator().manual_seed(0)
    shape = (SEPARABILITY_ROWS, *sample_shape)
    if criterion.support == "unit":
        x = 0.1 + 0.8 * torch.rand(shape, generator=generator)
    else:
        x = torch.randn(shape, generator=generator)
    out_shape = (SEPARABILITY_ROWS, sample_shape[0] * criterion.n_outputs, *sample_shape[1:])
    out = 0.5 * torch.randn(out_shape, generator=generator)
    device = next((t.device for t in criterion.buffers()), torch.device("cpu"))
    x, out = x.to(device), out.to(device)
    half = SEPARABILITY_ROWS // 2
    whole = criterion(x, out)
    parts = torch.cat([criterion(x[:half], out[:half]), criterion(x[half:], out[half:])])
    return bool(torch.isfinite(whole).all()) and torch.allclose(whole, parts, rtol=SEPARABILITY_RTOL, atol=0)


def merge_key(criterion: Criterion, sample_shape: Sequence[int]) -> str | None:
    """Members whose criteria have the same key share one call; None: call it per member."""
    if any(True for _ in criterion.parameters()) or not batch_separable(criterion, sample_shape):
        return None
    return f"{criterion}|{criterion.n_outputs}"


class MemberLosses:
    """Computes the per-sample losses (K, B) of the active members (rows of the stacked model)."""

    def __init__(
        self,
        criteria: Sequence[Criterion],
        sample_shape: Sequence[int],
        output_of: Callable[[Tensor, int], Tensor],
        keys: Sequence[str | None],
    ) -> None:
        self.criteria = list(criteria)
        self.sample_shape = tuple(sample_shape)
        self.output_of = output_of  # (decoder output (K, B, W), row) -> that member's (B, n_out * C, ...)
        calls: dict[str, list[int]] = {}
        for row, key in enumerate(keys):
            calls.setdefault(key if key is not None else f"#{row}", []).append(row)
        self.calls = list(calls.values())  # rows that share one criterion call
        order = [row for rows in self.calls for row in rows]
        # Rows come back in call order; put them back in row order (None: already in order).
        self.restore = None if order == sorted(order) else torch.as_tensor(order).argsort()

    def __call__(self, x: Tensor, out: Tensor) -> Tensor:
        """Per-sample losses (K, B) for member data x (K, B, *shape) and decoder output (K, B, W)."""
        n_rows, batch = x.shape[0], x.shape[1]
        parts = []
        for rows in self.calls:
            criterion = self.criteria[rows[0]]
            if len(rows) == 1:
                row = rows[0]
                parts.append(criterion(x[row], self.output_of(out, row)).unsqueeze(0))
                continue
            if len(rows) == n_rows:
                xs, outs = x, out
            else:
                index = torch.as_tensor(rows, device=x.device)
                xs, outs = x.index_select(0, index), out.index_select(0, index)
            width = self.sample_shape[0] * criterion.n_outputs * math.prod(self.sample_shape[1:])
            flat_x = xs.reshape(len(rows) * batch, *self.sample_shape)
            flat_out = outs[..., :width].reshape(
                len(rows) * batch, self.sample_shape[0] * criterion.n_outputs, *self.sample_shape[1:]
            )
            parts.append(criterion(flat_x, flat_out).view(len(rows), batch))
        losses = parts[0] if len(parts) == 1 else torch.cat(parts)
        if self.restore is not None:
            losses = losses.index_select(0, self.restore.to(losses.device))
        return losses
