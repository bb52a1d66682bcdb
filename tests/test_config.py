"""The run schema (lpae.config): every face knows every field, config.json round trips."""

from __future__ import annotations

import dataclasses
import inspect
import json
import typing
from pathlib import Path

import pytest

from lpae import LpAnomalyDetector, LpAutoencoder
from lpae.cli import app
from lpae.config import (
    FREE,
    SECTIONS,
    SHARED,
    SHARED_ONE_CLASS,
    DataRecord,
    ModelSettings,
    RunConfig,
    RunSpec,
    TrainSettings,
    flat_values,
    options,
    setting,
    with_options,
)
from lpae.estimator import OWN_PARAMETERS
from lpae.fused.group import fuse_mismatch
from lpae.study.grid import SET_BY_GRID, parse_grid

SETTINGS = options()


def click_params() -> dict[str, object]:
    command = typer_command("train")
    return {p.name: p for p in command.params if p.name is not None}


def typer_command(name: str) -> typing.Any:
    import typer.main

    group = typer.main.get_command(app)
    return group.commands[name]  # type: ignore[attr-defined]


def test_every_field_of_every_section_is_a_declared_setting() -> None:
    names = [
        f.name
        for section, owner in SECTIONS.items()
        for f in dataclasses.fields(owner)
        if not (section == "run" and f.name in ("model", "train"))  # RunSpec's nested sections
    ]
    assert sorted(names) == sorted(SETTINGS), "a field without setting(...) metadata"
    for option in SETTINGS.values():
        assert option.help and option.fused in (FREE, SHARED, SHARED_ONE_CLASS), option.name
        assert option.faces <= {"cli", "grid", "estimator"}, option.name


def test_setting_needs_a_fusion_mark() -> None:
    with pytest.raises(ValueError, match="fused must be"):
        setting(0, "help", fused="sometimes")


def test_the_cli_has_an_option_for_each_cli_setting_with_its_default_and_help() -> None:
    params = click_params()
    for option in options("cli").values():
        assert option.name in params, f"lpae train lacks --{option.name}"
        param = params[option.name]
        assert param.help == option.help  # type: ignore[attr-defined]
        default = option.default
        expected = ",".join(map(str, default)) if isinstance(default, tuple) else default
        assert param.default == expected, option.name  # type: ignore[attr-defined]
    own = {"out", "resume", "quiet", "overwrite", "track", "track_uri", "help"}
    assert set(params) - set(options("cli")) <= own


@pytest.mark.parametrize("estimator", [LpAutoencoder, LpAnomalyDetector])
def test_estimators_take_each_estimator_setting_keyword_only(estimator: type) -> None:
    signature = inspect.signature(estimator.__init__)
    params = {name: p for name, p in signature.parameters.items() if name != "self"}
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params.values())
    own = {p.name for p in OWN_PARAMETERS} | ({"contamination"} if estimator is LpAnomalyDetector else set())
    assert set(params) == set(options("estimator")) | own
    assert "kl_warmup" in params  # once missing from both estimators
    for name in options("estimator"):
        assert f"{name} : " in (estimator.__doc__ or ""), f"{name} undocumented"
    with pytest.raises(TypeError):
        estimator("l2")  # keyword-only
    with pytest.raises(TypeError, match="frobnicate"):
        estimator(frobnicate=1)


def test_estimator_settings_reach_the_run_spec() -> None:
    ae = LpAutoencoder(kl_warmup=3, model="vae", beta=0.5, epochs=7, lr=0.01, hidden=16, random_state=0)
    spec = ae._spec(seed=4)
    assert spec.model.kl_warmup == 3 and spec.model.beta == 0.5 and spec.model.hidden == (16,)
    assert spec.train.epochs == 7 and spec.train.lr == 0.01 and spec.train.seed == 4
    assert spec.train.device == "cpu" and spec.model.latent == 8  # the estimators' own defaults


def test_the_grid_knows_every_setting() -> None:
    grid_options = set(options("grid"))
    for name, option in SETTINGS.items():
        resolved = not option.faces  # from the data (image_shape) or following another (split_seed)
        assert name in grid_options or name in SET_BY_GRID or resolved, f"a study grid cannot set {name}"
    assert not grid_options & set(SET_BY_GRID)


def grid_with(options_line: str) -> str:
    return f'criteria = ["l2"]\ndata = ["iris"]\n[[models]]\n{options_line}\n'


@pytest.mark.parametrize("name", sorted(options("grid")))
def test_each_grid_option_is_set_on_its_section(name: str) -> None:
    values = {
        "model": "vae",
        "arch": "mlp",
        "hidden": [8],
        "latent": 3,
        "activation": "tanh",
        "corruption": None,
        "beta": 2.0,
        "kl_warmup": 2,
        "epochs": 3,
        "lr": 0.01,
        "batch_size": 16,
        "weight_decay": 0.1,
        "patience": 2,
        "optimizer": "adamw",
        "schedule": "cosine",
        "clip": 1.0,
        "criterion_lr": 0.05,
        "normalize": "none",
        "continuation": 0.25,
        "dequantize": "off",
        "checkpoint_every": 0,
        "stream": "on",
        "memory_budget": "2GB",
        "device": "cpu",
        "preprocess": "minmax",
        "nan": "drop",
        "image_size": 8,
        "val_fraction": 0.2,
        "test_fraction": 0.25,
        "anomaly_rate": 0.2,
        "quantized": "none",
    }
    assert set(values) == set(options("grid")), "add the new grid option to this table"
    if values[name] is None:
        return
    value = values[name]
    text = f"{name} = {json.dumps(value)}"
    if name in ("beta", "kl_warmup"):
        text += '\nmodel = "vae"'
    spec = parse_grid(grid_with(text), "t.toml").runs[0].spec
    expected = tuple(value) if isinstance(value, list) else value
    assert flat_values(spec)[name] == expected


def test_fused_grouping_reads_the_schema() -> None:
    """Every shared setting separates runs; every free one lets them fuse."""
    base = RunSpec(data="wine", model=ModelSettings(model="vae", hidden=(8,), latent=2), normal_classes=(0,))
    different = {
        "data": "iris",
        "nan": "drop",
        "image_size": 4,
        "val_fraction": 0.2,
        "test_fraction": 0.2,
        "normal_classes": (1,),
        "split_seed": 3,
        "model": "ae",
        "arch": "mlp",
        "hidden": (4,),
        "latent": 3,
        "activation": "tanh",
        "image_shape": (1, 1, 13),
        "batch_size": 7,
        "device": "cpu",
        "loss": "l1",
        "preprocess": "minmax",
        "contaminate": 0.1,
        "anomaly_rate": 0.2,
        "quantized": "none",
        "corruption": None,
        "beta": 2.0,
        "kl_warmup": 1,
        "epochs": 2,
        "lr": 0.1,
        "seed": 5,
        "weight_decay": 0.1,
        "patience": 1,
        "optimizer": "adamw",
        "schedule": "cosine",
        "clip": 1.0,
        "criterion_lr": 0.05,
        "normalize": "none",
        "continuation": 0.2,
        "dequantize": "on",
        "checkpoint_every": 0,
        "stream": "on",
        "memory_budget": "1GB",
    }
    assert set(different) == set(SETTINGS), "add the new setting to this table"
    for name, option in SETTINGS.items():
        if different[name] is None:
            continue
        values = {name: different[name]}
        if name == "seed":
            values["split_seed"] = base.split_seed  # the split follows the seed unless set
        other = with_options(base, values)
        if name == "arch":  # mlp is what auto resolves to; conv never fuses
            continue
        mismatch = fuse_mismatch(base, other)
        if option.fused == FREE:
            assert mismatch is None, name
        else:
            assert mismatch is not None and name in mismatch, name


def test_with_options_checks_types_and_names() -> None:
    spec = with_options(RunSpec(), {"latent": 4, "lr": 1, "hidden": [8, 4], "seed": 3})
    assert spec.model.latent == 4 and spec.train.lr == 1.0 and isinstance(spec.train.lr, float)
    assert spec.model.hidden == (8, 4) and spec.split_seed == 3  # split_seed follows seed
    assert with_options(RunSpec(), {"seed": 3, "split_seed": 1}).split_seed == 1
    with pytest.raises(ValueError, match="unknown setting 'width'"):
        with_options(RunSpec(), {"width": 3})
    with pytest.raises(ValueError, match="latent = 'x': expected int"):
        with_options(RunSpec(), {"latent": "x"})
    with pytest.raises(ValueError, match="epochs = True"):
        with_options(RunSpec(), {"epochs": True})
    with pytest.raises(ValueError, match="latent cannot be empty"):
        with_options(RunSpec(), {"latent": None})


NO_PREPROCESSING = {"method": "none", "shape": [4], "shift": [0.0] * 4, "scale": [1.0] * 4}


def test_run_config_round_trips_and_reads_older_files(tmp_path: Path) -> None:
    data = DataRecord("iris", "iris", (4,), "table", 150, NO_PREPROCESSING, normal_classes=(0, 2))
    config = RunConfig(data, "lp:p=0.5", ModelSettings().resolve((4,)), TrainSettings(epochs=3))
    raw = json.loads(json.dumps(config.to_json()))
    assert RunConfig.from_json(raw) == config
    assert raw["format"] == "lpae-run" and "fused" not in raw
    fused = dataclasses.replace(config, fused=True, group="abc")
    assert RunConfig.from_json(json.loads(json.dumps(fused.to_json()))) == fused
    # a config.json of an earlier version without newer fields: their defaults fill in
    older = json.loads(json.dumps(raw))
    del older["model"]["kl_warmup"], older["data"]["contaminate"], older["data"]["contaminate_seed"]
    read = RunConfig.from_json(older)
    assert read.model.kl_warmup == 0 and read.data.contaminate == 0.0


def test_an_unreadable_config_names_its_version() -> None:
    data = DataRecord("iris", "iris", (4,), "table", 150, NO_PREPROCESSING)
    raw = RunConfig(data, "l2", ModelSettings().resolve((4,)), TrainSettings()).to_json()
    raw = {**raw, "lpae_version": "9.0.0", "train": {**raw["train"], "warp": 2}}
    with pytest.raises(ValueError, match=r"written by lpae 9\.0\.0, which this version .* cannot read"):
        RunConfig.from_json(raw, "x/config.json")
    with pytest.raises(ValueError, match="not an lpae run configuration"):
        RunConfig.from_json({"format": "other"})


def test_a_run_written_by_lpae_0_1_0_loads_and_evaluates_as_it_did() -> None:
    """tests/data/run-0.1.0: a one-class VAE run on iris written by lpae 0.1.0 (before the schema)."""
    from lpae.data import Preprocessor
    from lpae.metrics import evaluate
    from lpae.runs import load_run

    run = load_run(Path(__file__).parent / "data" / "run-0.1.0")
    assert run.config.model.model == "vae" and run.config.data.normal_classes == (0, 1)
    assert run.config.train.continuation == 0.0  # what 0.1.0 did: no continuation
    assert run.config.train.dequantize == "off"  # nor dequantization
    assert Preprocessor.from_json(run.config.data.preprocess).quantization is None  # densities, as then
    metrics = evaluate(run)
    for key in ("recon_l2", "nll_gennorm_bpd", "anomaly_auroc", "probe_acc"):
        assert metrics[key] == pytest.approx(run.metrics[key], rel=1e-6), key


def test_the_schema_and_the_models_name_the_same_kinds_and_activations() -> None:
    """config.MODELS / ACTIVATIONS validate settings; lpae.models maps the same names to classes."""
    from lpae.config import ACTIVATIONS, MODELS
    from lpae.models import ACTIVATION_LAYERS, MODEL_CLASSES

    assert set(MODELS) == set(MODEL_CLASSES)
    assert set(ACTIVATIONS) == set(ACTIVATION_LAYERS)
