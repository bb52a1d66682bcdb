"""train_group: members written as ordinary run directories that match solo train_run output
(same files, same metrics.json keys, same config plus fused/group), every bad input refused
before anything is written, grouping predicates, and the sequential fallbacks."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from lpae import models
from lpae.cli import app
from lpae.config import ModelSettings, RunSpec, TrainSettings
from lpae.data import load, split_indices
from lpae.experiment import train_run
from lpae.fused import can_fuse, fuse_groups, fuse_mismatch, group, train_group
from lpae.models import Autoencoder
from lpae.protocol import normal_rows
from lpae.runs import load_run
from lpae.study import load_grid


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def spec(loss: str = "l2", seed: int = 0, data: str = "wine", **train: object) -> RunSpec:
    options = {"epochs": 3, "batch_size": 32, "seed": seed, "device": "cpu", **train}
    return RunSpec(
        data=data,
        loss=loss,
        model=ModelSettings(hidden=(16,), latent=4),
        train=TrainSettings(**options),  # type: ignore[arg-type]
    )


# Standardised and min-max data in one group (cbernoulli lives on (0, 1)), learned shapes, a
# wider decoder (predicted scale) and a member that diverges.
MEMBERS = [
    spec("l2", 0),
    spec("cbernoulli", 1, lr=3e-3),
    spec("gennorm:p=learned", 2, clip=1.0),
    spec("gaussian:scale=predicted", 3, schedule="cosine"),
    spec("l2", 4, lr=1e12),
    replace(spec("l1", 5), contaminate=0.2),  # gross outliers in its training rows only
]


@pytest.fixture(scope="module")
def trained(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, list[dict[str, object]], list[dict[str, object]]]:
    root = tmp_path_factory.mktemp("fused")
    solo = [train_run(s, root / f"solo{i}") for i, s in enumerate(MEMBERS)]
    fused = train_group(MEMBERS, [root / f"fused{i}" for i in range(len(MEMBERS))])
    return root, solo, fused


def close(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        if a > 1e6 and b > 1e6:  # a fitted Student-t df this large means Gaussian; its value is noise
            return True
        return math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-6) or (math.isnan(a) and math.isnan(b))
    return a == b


def test_members_are_ordinary_runs_equal_to_solo_runs(trained: tuple[Path, list, list]) -> None:
    root, solo, fused = trained
    groups = set()
    for index in range(len(MEMBERS)):
        alone, member = root / f"solo{index}", root / f"fused{index}"
        assert sorted(p.name for p in alone.iterdir()) == sorted(p.name for p in member.iterdir())
        stored = json.loads((member / "metrics.json").read_text())
        assert stored == fused[index]
        assert list(stored) == list(solo[index])  # the same keys in the same order
        for key, value in solo[index].items():
            if key != "train_seconds":
                assert close(value, stored[key]), (index, key, value, stored[key])
        config, solo_config = (json.loads((d / "config.json").read_text()) for d in (member, alone))
        assert config.pop("fused") is True
        groups.add(config.pop("group"))
        assert config == solo_config
        weights, solo_weights = (
            load_file(member / "model.safetensors"),
            load_file(alone / "model.safetensors"),
        )
        assert list(weights) == list(solo_weights)
        for name, tensor in solo_weights.items():
            assert float((tensor - weights[name]).norm() / tensor.norm().clamp_min(1e-12)) <= 1e-4
        with open(member / "history.csv") as a, open(alone / "history.csv") as b:
            assert next(csv.reader(a)) == next(csv.reader(b))
        assert (
            load_run(member).model.criterion.learned().keys()
            == load_run(alone).model.criterion.learned().keys()
        )
    assert len(groups) == 1
    assert fused[4]["status"] == "diverged" and "non-finite" in str(fused[4]["reason"])
    assert [m["status"] for m in fused[:4] + fused[5:]] == ["done"] * 5
    assert fused[2]["learned_p"] != pytest.approx(2.0, abs=1e-4)  # its own learned shape


def test_lpae_eval_reads_a_fused_run(trained: tuple[Path, list, list]) -> None:
    root, _, fused = trained
    result = CliRunner().invoke(app, ["eval", str(root / "fused0"), "--quiet"])
    assert result.exit_code == 0, result.output
    stored = json.loads((root / "fused0" / "metrics.json").read_text())
    assert close(stored["recon_l2"], fused[0]["recon_l2"])


def nothing_written(root: Path) -> bool:
    return not any(root.iterdir())


def test_bad_groups_are_refused_before_anything_is_written(tmp_path: Path) -> None:
    outs = [tmp_path / "a", tmp_path / "b"]
    with pytest.raises(
        ValueError, match=r"run 1 cannot train fused with run 0: data differs \('wine' vs 'iris'\)"
    ):
        train_group([spec(), spec(data="iris")], outs)
    with pytest.raises(ValueError, match="batch_size differs"):
        train_group([spec(), spec(batch_size=64)], outs)
    with pytest.raises(ValueError, match="one output folder per run: 2 runs, 1 folders"):
        train_group([spec(), spec(seed=1)], outs[:1])
    with pytest.raises(ValueError, match="same folder"):
        train_group([spec(), spec(seed=1)], [outs[0], outs[0]])
    with pytest.raises(ValueError, match="at least one run"):
        train_group([], [])
    forced = replace(spec("cbernoulli", 1), preprocess="standard")  # data outside (0, 1)
    with pytest.raises(ValueError, match=r"run 1: cbernoulli needs data in the .*use --preprocess minmax"):
        train_group([spec(), forced], outs)
    assert nothing_written(tmp_path)
    outs[1].mkdir()
    with pytest.raises(ValueError, match="already exists"):
        train_group([spec(), spec(seed=1)], outs)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"] and nothing_written(outs[1])


def test_overwrite_replaces_runs_and_interrupted_solo_runs(tmp_path: Path) -> None:
    outs = [tmp_path / "a", tmp_path / "b"]
    (tmp_path / "a").mkdir()
    (tmp_path / "b.partial").mkdir()
    with pytest.raises(ValueError, match="interrupted run"):
        train_group([spec(epochs=1), spec(seed=1, epochs=1)], [tmp_path / "c", outs[1]])
    metrics = train_group([spec(epochs=1), spec(seed=1, epochs=1)], outs, overwrite=True)
    assert [m["status"] for m in metrics] == ["done", "done"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]  # b.partial is gone


def test_can_fuse_and_fuse_mismatch() -> None:
    base = spec()
    assert can_fuse(base, spec("gennorm:p=learned", 3, lr=0.1, clip=1.0, optimizer="adamw", epochs=9))
    assert can_fuse(base, replace(base, split_seed=4, preprocess="minmax"))
    assert fuse_mismatch(base, spec(data="iris")) == "data differs ('wine' vs 'iris')"
    assert fuse_mismatch(base, replace(base, model=ModelSettings(hidden=(8,), latent=4))) is not None
    assert (
        fuse_mismatch(base, replace(base, model=ModelSettings(model="vae", hidden=(16,), latent=4)))
        is not None
    )
    assert fuse_mismatch(base, spec(device="auto")) == "device differs ('cpu' vs 'auto')"
    conv = replace(base, model=ModelSettings(arch="conv"))
    assert not can_fuse(conv, conv)
    dae = [
        replace(base, model=ModelSettings(model="dae", corruption=c))
        for c in ("gaussian:std=0.1", "mask:rate=0.5")
    ]
    assert can_fuse(*dae)
    assert can_fuse(base, replace(base, contaminate=0.2))
    one_class = replace(base, normal_classes=(0,))
    assert can_fuse(one_class, replace(one_class, loss="l1", contaminate=0.05))
    assert fuse_mismatch(base, one_class) == "normal_classes differs (None vs (0,))"
    # a one-class split keeps a seed-dependent number of normal rows in train and validation
    assert fuse_mismatch(one_class, replace(one_class, split_seed=1)) == (
        "split_seed of one-class runs differs (0 vs 1)"
    )


def test_one_class_members_equal_solo_runs(tmp_path: Path) -> None:
    members = [replace(spec(loss, seed), normal_classes=(0, 2)) for seed, loss in enumerate(["l2", "l1"])]
    solo = [train_run(s, tmp_path / f"solo{i}") for i, s in enumerate(members)]
    fused = train_group(members, [tmp_path / f"fused{i}" for i in range(len(members))])
    for alone, member in zip(solo, fused, strict=True):
        assert "anomaly_auroc" in member and list(member) == list(alone)
        for key, value in alone.items():
            if key != "train_seconds":
                assert close(value, member[key]), (key, value, member[key])
    assert json.loads((tmp_path / "fused0" / "config.json").read_text())["fused"] is True


def test_fuse_groups_partitions_in_order_and_caps_group_size() -> None:
    conv = replace(spec(), model=ModelSettings(arch="conv"))
    specs = [
        spec(seed=0),
        spec(data="iris"),
        spec(seed=1),
        conv,
        conv,
        spec(seed=2),
        spec(data="iris", seed=5),
    ]
    assert fuse_groups(specs) == [[0, 2, 5], [1, 6], [3], [4]]
    assert fuse_groups(specs, max_members=2) == [[0, 2], [1, 6], [3], [4], [5]]
    with pytest.raises(ValueError, match="max_members"):
        fuse_groups(specs, max_members=0)


def test_conv_and_single_runs_fall_back_to_solo_training(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[RunSpec, Path, bool]] = []

    def solo(run: RunSpec, out: Path, overwrite: bool = False) -> dict[str, object]:
        calls.append((run, out, overwrite))
        return {"status": "done"}

    monkeypatch.setattr(group, "train_run", solo)
    outs = [Path("/nonexistent/a"), Path("/nonexistent/b")]
    conv = [replace(spec(seed=s), model=ModelSettings(arch="conv")) for s in (0, 1)]
    assert train_group(conv, outs) == [{"status": "done"}] * 2
    assert [c[1] for c in calls] == outs
    # arch auto on image data resolves to conv once the data are loaded
    faces = [replace(spec(data="faces", seed=s), model=ModelSettings(hidden=(4,))) for s in (0, 1)]
    calls.clear()
    train_group(faces, outs, overwrite=True)
    assert [(c[0], c[2]) for c in calls] == [(faces[0], True), (faces[1], True)]
    calls.clear()
    train_group([spec()], outs[:1])  # one run: nothing to fuse
    assert len(calls) == 1


@pytest.mark.parametrize("preset", ["quick", "full"])
def test_preset_groups_have_equal_row_counts(preset: str) -> None:
    """Every fused group the study plans for a preset has members with equally many training and
    validation rows (one-class splits depend on the split seed; a mismatch failed whole groups)."""
    specs = [run.spec for run in load_grid(preset).runs if run.spec.data != "mnist"]
    datasets = {s.data: load(s.data) for s in specs}
    for members in fuse_groups(specs):
        counts = set()
        for index in members:
            s = specs[index]
            y = datasets[s.data].y
            splits = split_indices(len(datasets[s.data].x), s.split_seed, y, s.val_fraction, s.test_fraction)
            counts.add(tuple(len(normal_rows(p, y, s.normal_classes)) for p in (splits.train, splits.val)))
        assert len(counts) == 1, (preset, [specs[i].data for i in members], counts)


class TemperedAutoencoder(Autoencoder):
    """A model kind the stacked model cannot batch: a learned parameter outside its networks."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.log_temperature = torch.nn.Parameter(torch.zeros(()))


def test_a_model_kind_lpae_fused_cannot_batch_falls_back_to_solo_training(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls: list[Path] = []

    def solo(run: RunSpec, out: Path, overwrite: bool = False) -> dict[str, object]:
        calls.append(out)
        return {"status": "done"}

    monkeypatch.setattr(group, "train_run", solo)
    monkeypatch.setitem(models.MODEL_CLASSES, "ae", TemperedAutoencoder)
    outs = [tmp_path / "a", tmp_path / "b"]
    assert train_group([spec(seed=0), spec(seed=1)], outs) == [{"status": "done"}] * 2
    assert calls == outs and not any(out.exists() for out in outs)
