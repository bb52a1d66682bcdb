"""Fused training against solo training: every member of a mixed group ends where lpae.train.fit
takes it alone (ae, dae, vae; mixed criteria, learning rates, clipping, schedules, optimizers,
corruptions, KL settings, early stopping), a diverging member leaves the others untouched,
learned criterion parameters belong to their own member, a model kind with its own objective
trains fused as alone, and a model the stacked model cannot batch is refused."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from lpae import criteria
from lpae.config import ModelSettings, TrainSettings
from lpae.fused import fit_group
from lpae.fused.stacked import batch_problem
from lpae.models import Autoencoder, GroupOfOne, Members, build_model
from lpae.train import TrainResult, fit

RELATIVE = 1e-4  # the bound for a member trained fused vs alone


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    """One intra-op thread: the cores are shared, and spinning OpenMP threads under contention make
    these small steps tens of times slower. Restored afterwards for the other test modules."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def digits() -> tuple[torch.Tensor, torch.Tensor]:
    x = load_digits().data.astype(np.float32)
    x = (x - x.mean(0)) / np.where(x.std(0) > 0, x.std(0), 1)
    x = torch.from_numpy(x.astype(np.float32))
    return x[:320], x[320:420]


@dataclass
class Member:
    loss: str
    seed: int
    train: dict[str, Any] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)


def build(kind: str, member: Member) -> Autoencoder:
    torch.manual_seed(member.seed)
    settings = ModelSettings(model=kind, hidden=(24,), latent=6, **member.model)
    return build_model((64,), settings, criteria.build(member.loss, feature_shape=(64,)))


def settings(member: Member, epochs: int = 3) -> TrainSettings:
    options = {"epochs": epochs, "batch_size": 32, "seed": member.seed, "device": "cpu", **member.train}
    return TrainSettings(**options)


def relative_gap(a: Autoencoder, b: Autoencoder) -> float:
    """max over state tensors of ||a - b|| / ||a||."""
    state_a, state_b = a.state_dict(), b.state_dict()
    assert list(state_a) == list(state_b)
    gaps = [(state_a[k] - state_b[k]).norm() / state_a[k].norm().clamp_min(1e-12) for k in state_a]
    return float(max(gaps))


def same_history(a: TrainResult, b: TrainResult) -> None:
    assert (a.status, a.reason, a.best_epoch, a.epochs_run) == (
        b.status,
        b.reason,
        b.best_epoch,
        b.epochs_run,
    )
    assert len(a.history) == len(b.history)
    for row_a, row_b in zip(a.history, b.history, strict=True):
        assert list(row_a) == list(row_b)  # same keys in the same order: same history.csv columns
        for key in row_a:
            assert math.isclose(row_a[key], row_b[key], rel_tol=RELATIVE, abs_tol=1e-7), (key, row_a, row_b)


def solo_and_fused(
    kind: str, members: list[Member], data: tuple[torch.Tensor, torch.Tensor], epochs: int = 3
) -> tuple[list[tuple[Autoencoder, TrainResult]], list[Autoencoder], list[TrainResult]]:
    x_train, x_val = data
    solo = []
    for member in members:
        model = build(kind, member)
        solo.append((model, fit(model, x_train, x_val, settings(member, epochs))))
    models = [build(kind, member) for member in members]
    fused = fit_group(
        models, [x_train] * len(members), [x_val] * len(members), [settings(m, epochs) for m in members]
    )
    return solo, models, fused


MIXED = [
    Member("lp:2", 0),
    Member("lp:2", 1, {"lr": 3e-3}),  # shares one criterion call with member 0
    Member("lp:1", 2, {"clip": 0.5}),
    Member("gennorm:p=learned", 3, {"schedule": "cosine", "lr": 2e-3}),
    Member("gaussian:scale=calibrated", 4, {"optimizer": "adamw", "weight_decay": 0.05}),
    Member("gaussian:scale=predicted", 5, {"weight_decay": 1e-3}),  # n_outputs = 2: a wider decoder
    Member("student_t:df=learned", 6, {"patience": 2, "lr": 0.03}),
    Member("lp:2", 9, {"patience": 1, "lr": 0.1}),  # stops early in some kinds
    Member("laplace:scale=learned_per_feature", 7, {"clip": 2.0}),
    Member("huber", 8, {"epochs": 2}),  # leaves the group early
]
CORRUPTIONS = ["gaussian:std=0.2", "mask:rate=0.25", "saltpepper:rate=0.1"]


def model_options(kind: str, index: int) -> dict[str, Any]:
    if kind == "dae":
        return {"corruption": CORRUPTIONS[index % len(CORRUPTIONS)]}
    if kind == "vae":
        return {"beta": 0.5 + index % 2, "kl_warmup": index % 3}
    return {}


@pytest.mark.parametrize("kind", ["ae", "dae", "vae"])
def test_members_end_where_solo_training_takes_them(
    kind: str, digits: tuple[torch.Tensor, torch.Tensor]
) -> None:
    members = [Member(m.loss, m.seed, m.train, model_options(kind, i)) for i, m in enumerate(MIXED)]
    solo, models, fused = solo_and_fused(kind, members, digits, epochs=4)
    for (model, result), fused_model, fused_result in zip(solo, models, fused, strict=True):
        same_history(result, fused_result)
        assert relative_gap(model, fused_model) <= RELATIVE
        assert not fused_model.training and next(fused_model.parameters()).device.type == "cpu"
    # The settings really differed: early stopping ended one member early, others trained on.
    assert fused[-1].epochs_run == 2 and fused[0].epochs_run == 4


def test_early_stopping_restores_each_members_best_epoch(digits: tuple[torch.Tensor, torch.Tensor]) -> None:
    members = [Member("lp:2", 9, {"patience": 1, "lr": 0.1}), Member("lp:1", 0, {"patience": 1})]
    solo, models, fused = solo_and_fused("ae", members, digits, epochs=4)
    assert solo[0][1].epochs_run == 2 and solo[0][1].best_epoch == 1  # the premise: it stops early
    for (model, result), fused_model, fused_result in zip(solo, models, fused, strict=True):
        same_history(result, fused_result)
        assert relative_gap(model, fused_model) <= RELATIVE


def test_a_diverging_member_is_frozen_and_the_others_are_unaffected(
    digits: tuple[torch.Tensor, torch.Tensor],
) -> None:
    calm = [Member("lp:2", 0, {"lr": 1e-3}), Member("gennorm:p=learned", 1, {"lr": 2e-3}), Member("lp:1", 2)]
    wild = Member("lp:2", 3, {"lr": 1e12})
    _, alone_models, alone = solo_and_fused("ae", calm, digits)
    solo, models, fused = solo_and_fused("ae", [calm[0], wild, *calm[1:]], digits)
    wild_result, wild_model = fused[1], models[1]
    assert wild_result.status == "diverged" and "non-finite" in wild_result.reason
    same_history(solo[1][1], wild_result)  # diverges exactly as it does alone
    assert all(torch.isfinite(t).all() for t in wild_model.state_dict().values())  # its best finite weights
    assert relative_gap(solo[1][0], wild_model) == 0.0  # no epoch finished: its initial weights
    for index, (model, result) in zip((0, 2, 3), zip(alone_models, alone, strict=True), strict=True):
        assert fused[index].status == "done"
        same_history(result, fused[index])
        assert relative_gap(model, models[index]) <= 1e-6


def test_learned_criterion_parameters_are_each_members_own(
    digits: tuple[torch.Tensor, torch.Tensor],
) -> None:
    members = [
        Member("gennorm:p=learned", 0, {"lr": 2e-2}),
        Member("gennorm:p=learned", 1, {"lr": 5e-3}),
        Member("student_t:df=learned,scale=learned", 2, {"lr": 2e-2}),
        Member("lp:2", 3),
        Member("barron:alpha=learned", 4, {"lr": 1e-2}),
    ]
    solo, models, _ = solo_and_fused("ae", members, digits)
    learned = [m.criterion.learned() for m in models]
    start = build("ae", members[0]).criterion.learned()["learned_p"]
    assert learned[0]["learned_p"] != pytest.approx(start, abs=1e-3)  # it did train
    assert learned[0]["learned_p"] != pytest.approx(learned[1]["learned_p"], abs=1e-4)  # not shared
    assert learned[3] == {}
    for (model, _), fused_model in zip(solo, models, strict=True):
        alone = model.criterion.learned()
        assert alone.keys() == fused_model.criterion.learned().keys()
        for key, value in alone.items():
            assert fused_model.criterion.learned()[key] == pytest.approx(value, rel=RELATIVE)
        # The criterion holds ordinary parameters again, not views of the group's table.
        for param in fused_model.criterion.parameters():
            assert param.is_leaf and param.grad is None and param.is_contiguous()


def test_members_may_train_on_different_data(digits: tuple[torch.Tensor, torch.Tensor]) -> None:
    """Per-member data (other preprocessing or contamination): each member sees its own rows."""
    x_train, x_val = digits
    shifted = (x_train * 0.5 + 1.0, x_val * 0.5 + 1.0)
    members = [Member("lp:2", 0), Member("lp:2", 1)]
    alone = build("ae", members[1])
    alone_result = fit(alone, *shifted, settings(members[1]))
    models = [build("ae", m) for m in members]
    fused = fit_group(models, [x_train, shifted[0]], [x_val, shifted[1]], [settings(m) for m in members])
    same_history(alone_result, fused[1])
    assert relative_gap(alone, models[1]) <= RELATIVE


def test_epochs_may_differ_between_members(digits: tuple[torch.Tensor, torch.Tensor]) -> None:
    x_train, x_val = digits
    members = [Member("lp:2", 0), Member("lp:1", 1)]
    models = [build("ae", m) for m in members]
    results = fit_group(
        models, [x_train] * 2, [x_val] * 2, [settings(members[0], 2), settings(members[1], 4)]
    )
    assert [r.epochs_run for r in results] == [2, 4]
    alone = build("ae", members[0])
    fit(alone, x_train, x_val, settings(members[0], 2))
    assert relative_gap(alone, models[0]) <= RELATIVE


def test_groups_that_cannot_share_a_batched_model_are_refused(
    digits: tuple[torch.Tensor, torch.Tensor],
) -> None:
    x_train, x_val = digits
    ae, vae = build("ae", Member("lp:2", 0)), build("vae", Member("lp:2", 1))
    with pytest.raises(ValueError, match="cannot train with"):
        fit_group([ae, vae], [x_train] * 2, [x_val] * 2, [settings(Member("lp:2", 0))] * 2)
    torch.manual_seed(0)
    wide = build_model((64,), ModelSettings(hidden=(32,), latent=6), criteria.build("lp:2"))
    with pytest.raises(ValueError, match="members must share one architecture"):
        fit_group([ae, wide], [x_train] * 2, [x_val] * 2, [settings(Member("lp:2", 0))] * 2)
    other_batch = TrainSettings(epochs=1, batch_size=64, device="cpu")
    with pytest.raises(ValueError, match="must share batch_size"):
        fit_group(
            [ae, build("ae", Member("lp:1", 2))],
            [x_train] * 2,
            [x_val] * 2,
            [settings(Member("l", 0)), other_batch],
        )
    with pytest.raises(ValueError, match="equal shapes"):
        fit_group(
            [ae, build("ae", Member("lp:1", 2))],
            [x_train, x_train[:100]],
            [x_val] * 2,
            [settings(Member("l", 0))] * 2,
        )
    conv = build_model(
        (64,), ModelSettings(arch="conv", hidden=(4,), latent=6, image_shape=(1, 8, 8)), criteria.build("l2")
    )
    with pytest.raises(ValueError, match="only MLP"):
        fit_group([conv, conv], [x_train] * 2, [x_val] * 2, [settings(Member("l", 0))] * 2)


# --- model kinds beyond ae, dae and vae ---------------------------------------------------------


class SparseAutoencoder(Autoencoder):
    """A toy model kind with its own objective: the AE's plus an L1 penalty on the code."""

    penalty = 0.5

    @classmethod
    def member_objective(
        cls,
        members: Members,
        x: torch.Tensor,
        noises: Sequence[torch.Generator | None],
        kl_weights: Sequence[float],
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        z = members.encoder_output(x)  # (K, B, latent)
        out = members.decode(z)
        return members.loss(x, out) + cls.penalty * z.abs().sum(dim=-1), out


class TemperedAutoencoder(Autoencoder):
    """A toy model kind with a learned parameter outside its networks and criterion."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.log_temperature = torch.nn.Parameter(torch.zeros(()))

    @classmethod
    def member_objective(
        cls,
        members: Members,
        x: torch.Tensor,
        noises: Sequence[torch.Generator | None],
        kl_weights: Sequence[float],
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        objective, _ = super().member_objective(members, x, noises, kl_weights)
        models = cast(Sequence[TemperedAutoencoder], members.models)
        parts = zip(models, members.unbind(objective), strict=True)
        return members.stack([o * (-m.log_temperature).exp() + m.log_temperature for m, o in parts]), None


def toy(kind: type[Autoencoder], member: Member) -> Autoencoder:
    torch.manual_seed(member.seed)
    return kind((64,), ModelSettings(hidden=(24,), latent=6), criteria.build(member.loss))


def test_a_model_kind_with_its_own_objective_trains_fused_as_alone(
    digits: tuple[torch.Tensor, torch.Tensor],
) -> None:
    x_train, x_val = digits
    members = [Member("lp:2", 0), Member("lp:1", 1, {"lr": 3e-3, "clip": 1.0})]
    solo = []
    for member in members:
        model = toy(SparseAutoencoder, member)
        solo.append((model, fit(model, x_train, x_val, settings(member))))
    models = [toy(SparseAutoencoder, m) for m in members]
    fused = fit_group(models, [x_train] * 2, [x_val] * 2, [settings(m) for m in members])
    for (model, result), fused_model, fused_result in zip(solo, models, fused, strict=True):
        same_history(result, fused_result)
        assert relative_gap(model, fused_model) <= RELATIVE
    # The premise: the penalty is part of what was trained and validated, far beyond the tolerance,
    # so a trainer that fell back to the plain AE objective would fail the comparison above.
    model, result = solo[0]
    best_val_loss = result.history[result.best_epoch - 1]["val_loss"]  # the weights it ends with
    assert mean_objective(SparseAutoencoder, model, x_val) == pytest.approx(best_val_loss, rel=1e-5)
    assert best_val_loss > mean_objective(Autoencoder, model, x_val) * (1 + 100 * RELATIVE)


def mean_objective(kind: type[Autoencoder], model: Autoencoder, x: torch.Tensor) -> float:
    """The mean objective of model class ``kind`` for ``model``'s weights on x."""
    with torch.no_grad():
        objective, _ = kind.member_objective(GroupOfOne(model), x, [None], [0.0])
    return float(objective.mean())


def test_models_the_stacked_model_cannot_batch_are_refused(
    digits: tuple[torch.Tensor, torch.Tensor],
) -> None:
    x_train, x_val = digits
    member = Member("lp:2", 0)
    tempered = [toy(TemperedAutoencoder, Member("lp:2", seed)) for seed in (0, 1)]
    before = [{k: v.clone() for k, v in m.state_dict().items()} for m in tempered]
    assert batch_problem(tempered[0]) is not None
    with pytest.raises(ValueError, match=r"member 0: .*parameters outside .* \(log_temperature\)"):
        fit_group(tempered, [x_train] * 2, [x_val] * 2, [settings(member)] * 2)
    for model, state in zip(tempered, before, strict=True):  # nothing trained
        assert all(torch.equal(model.state_dict()[k], v) for k, v in state.items())
    normed = build("ae", member)
    normed.encoder = torch.nn.Sequential(*normed.encoder, torch.nn.LayerNorm(6))
    with pytest.raises(ValueError, match=r"member 1: .*layer encoder\.3 \(LayerNorm.*only Linear layers"):
        fit_group([build("ae", member), normed], [x_train] * 2, [x_val] * 2, [settings(member)] * 2)
    # What lpae builds can be batched, whatever the kind.
    assert all(batch_problem(build(kind, member)) is None for kind in ("ae", "dae", "vae"))


@pytest.fixture
def float64() -> Iterator[None]:
    """Models and tables built in float64 within the test (the default dtype restored after)."""
    saved = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(saved)


def test_members_under_continuation_equal_solo_runs(
    digits: tuple[torch.Tensor, torch.Tensor], float64: None
) -> None:
    """Annealed criteria on several schedules: same-spec members with other schedules (epochs,
    continuation) must not share a criterion call, and each follows its own schedule; plain
    losses with and without energy normalisation, learned shapes at their own learning rate.

    In float64, to 1e-10: a plain non-convex lp:0.5 (continuation 0) amplifies float32 rounding
    differences of the batched products to about 4e-4 in 5 epochs (1e-13 in float64), which would
    hide a real difference in what the fused trainer computes."""
    members = [
        Member("lp:0.5", 0),
        Member("lp:0.5", 1),  # same schedule as member 0: shares its criterion call
        Member("lp:0.5", 2, {"continuation": 0.5}),
        Member("lp:0.5", 3, {"epochs": 3}),
        Member("lp:0.5", 4, {"continuation": 0.0}),
        Member("lp:0.5", 9, {"normalize": "none"}),
        Member("cauchy", 5),
        Member("barron:alpha=learned", 6, {"lr": 1e-2}),
        Member("student_t:df=2.5,scale=learned", 7),
        Member("gennorm:p=learned,scale=learned_per_feature", 10, {"clip": 0.5}),
        Member("lpnorm:0.5", 8),
        Member("laplace:scale=calibrated", 11),
    ]
    x_train, x_val = (x.double() for x in digits)
    solo, models, fused = solo_and_fused("ae", members, (x_train, x_val), epochs=5)
    for (solo_model, solo_result), model, result in zip(solo, models, fused, strict=True):
        same_history(solo_result, result)
        assert relative_gap(solo_model, model) < 1e-10
        assert model.criterion.progress == 1.0  # left at the target
