"""Fused training: many same-shaped autoencoders trained as one batched model.

A study trains one architecture many times (criteria x seeds x contamination x ...). For small
models the per-step Python overhead dominates on CPUs; stacking K members into one model whose
layers are batched matrix products (weights (K, out, in), torch.baddbmm) trains them all in about
the time of one. Each member is trained exactly as lpae.train.fit would train it alone: its own
initialisation (its seed), shuffling, noise, criterion, Adam state, clipping, learning rate,
early stopping, best-weights restore and divergence (a member whose loss turns non-finite is
frozen; the others go on). See docs/fused.md.

Public API (what lpae.study calls)::

    train_group(specs: list[RunSpec], outs: list[Path], overwrite=False) -> list[dict]
        Train the runs as one group and write each one's ordinary run directory (config.json
        gains "fused": true and "group": <id>); returns each run's metrics, in order, as
        lpae.experiment.train_run does. Raises ValueError when the runs cannot share a group.
    can_fuse(spec_a, spec_b) -> bool           whether two runs may share a group
    fuse_mismatch(spec_a, spec_b) -> str|None  why not, in words
    fuse_groups(specs, max_members=32) -> list[list[int]]
        partition run indices into groups that train_group accepts

Lower level: ``fit_group(models, x_trains, x_vals, settings) -> list[TrainResult]`` is
lpae.train.fit for a list of models.

The members' objectives are their model classes' own (lpae.models: ``member_objective``, run
on the stacked members as on a solo model), and each epoch is booked by lpae.train.close_epoch
as in fit; a member the stacked model cannot batch exactly is refused, and train_group trains
such runs alone.

Modules: stacked (the parameter table and batched forward pass), losses (per-member criteria),
adam (per-member Adam/AdamW and clipping), train (the fit loop), group (grouping, and
train_group, which writes the run directories).
"""

from lpae.fused.group import MAX_MEMBERS, can_fuse, fuse_groups, fuse_mismatch, train_group
from lpae.fused.train import fit_group

__all__ = ["MAX_MEMBERS", "can_fuse", "fit_group", "fuse_groups", "fuse_mismatch", "train_group"]
