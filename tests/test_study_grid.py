"""Study grids: presets, expansion into RunSpecs, canonical keys, and bad TOML rejected up front."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lpae import criteria
from lpae.cli import app
from lpae.study import load_grid, parse_grid, run_key

runner = CliRunner()


@pytest.mark.parametrize("preset", ["quick", "full"])
def test_presets_load_and_expand(preset: str) -> None:
    grid = load_grid(preset)
    assert grid.name == preset and grid.runs
    seeds = {r.spec.train.seed for r in grid.runs}
    assert len(seeds) == (3 if preset == "quick" else 5)
    # Every criterion spec in a preset is canonical and registered.
    for run in grid.runs:
        assert criteria.normalize(run.spec.loss) == run.spec.loss
    assert len({r.key for r in grid.runs}) == len(grid.runs)


def test_expansion_crosses_data_models_criteria_seeds() -> None:
    text = grid_text(
        {"data": '["digits", "wine"]'},
        models="hidden = [16]\nlatent = 4\n[[models]]\nhidden = [8]\nlatent = 2",
    )
    grid = parse_grid(text, "t.toml")
    assert len(grid.runs) == 2 * 2 * 2 * 2  # data x models x criteria x seeds
    first = grid.runs[0].spec
    assert (first.data, first.loss, first.model.hidden, first.model.latent, first.train.epochs) == (
        "digits",
        "lp:p=1",
        (16,),
        4,
        2,
    )
    # The split follows the seed, so every criterion of one seed sees the same split.
    assert all(r.spec.split_seed == r.spec.train.seed for r in grid.runs)
    assert [r.position for r in grid.runs] == list(range(len(grid.runs)))


def test_run_key_is_canonical_json_of_the_resolved_spec() -> None:
    a = parse_grid(grid_text(), "a.toml").runs[0]
    b = parse_grid(
        grid_text({"criteria": '["lp:p=1", "lp:0.5"]'}, train="epochs = 2\nlr = 0.001"), "b.toml"
    ).runs[0]
    assert a.key == b.key == run_key(a.spec) and a.run_id == b.run_id
    decoded = json.loads(a.key)
    assert (
        decoded["loss"] == "lp:p=1" and decoded["train"]["seed"] == 0 and decoded["model"]["hidden"] == [16]
    )
    # An integer learning rate and its float are one run, not two.
    c = parse_grid(grid_text(train="epochs = 2\nlr = 1"), "c.toml").runs[0]
    d = parse_grid(grid_text(train="epochs = 2\nlr = 1.0"), "d.toml").runs[0]
    assert c.key == d.key


def test_optional_data_set_that_is_missing_is_skipped_with_a_note() -> None:
    grid = parse_grid(grid_text({"data": '["digits", {spec = "nosuch", optional = true}]'}), "t.toml")
    assert {r.spec.data for r in grid.runs} == {"digits"}
    assert any("nosuch" in note for note in grid.notes)


def grid_text(
    top: dict[str, str] | None = None, models: str = "hidden = [16]\nlatent = 4", train: str = "epochs = 2"
) -> str:
    """A small grid with some top-level values replaced and the model and train tables given."""
    values = {"name": '"tiny"', "seeds": "[0, 1]", "criteria": '["l1", "lp:0.5"]', "data": '["digits"]'}
    values.update(top or {})
    lines = [f"{key} = {value}" for key, value in values.items()]
    return "\n".join([*lines, "[[models]]", models, "[train]", train]) + "\n"


BAD_GRIDS = [
    (grid_text({"frobnicate": "1"}), "unknown key 'frobnicate'"),
    (grid_text(train="epoch = 3"), "unknown key 'epoch'"),
    (grid_text(train="seed = 3"), "seeds = [...]"),
    (grid_text(train="epochs = 0"), "epochs must be a positive integer"),
    (grid_text(train='epochs = "ten"'), "epochs = 'ten'"),
    (grid_text({"seeds": "[0, 0]"}), "duplicates"),
    (grid_text({"criteria": '["lp:-1"]'}), "lp:-1"),
    (grid_text({"criteria": '["nosuch"]'}), "unknown criterion 'nosuch'"),
    (grid_text({"criteria": '["l1", "lp:1"]'}), "are the same"),
    (grid_text({"data": '["nosuch"]'}), "unknown data set 'nosuch'"),
    (grid_text({"data": '[{spec = "digits", colour = "red"}]'}), "unknown key 'colour'"),
    (grid_text({"data": '[{spec = "diabetes", normal_classes = [0]}]'}), "normal_classes"),
    (grid_text({"criteria": "[]"}), "the grid is empty"),
    (grid_text({"data": "[]"}), "the grid is empty"),
    (grid_text(models="latent = 0"), "latent size must be a positive integer"),
    (grid_text(models="width = 3"), "unknown key 'width'"),
    (grid_text({"seeds": "[0,"}), "not valid TOML"),
]


@pytest.mark.parametrize(("text", "message"), BAD_GRIDS)
def test_bad_grid_is_one_line_exit_2_and_nothing_written(tmp_path: Path, text: str, message: str) -> None:
    grid_file = tmp_path / "grid.toml"
    grid_file.write_text(text)
    out = tmp_path / "study"
    result = runner.invoke(app, ["study", str(grid_file), "--out", str(out), "--quiet"])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lpae: error:"), result.stderr
    assert message in lines[0]
    assert "Traceback" not in result.output
    assert not out.exists()


def test_unknown_preset_or_missing_file(tmp_path: Path) -> None:
    for name, message in (("quik", "neither a preset"), (str(tmp_path / "x.toml"), "no such grid file")):
        result = runner.invoke(app, ["study", name, "--out", str(tmp_path / "s")])
        assert result.exit_code == 2 and message in result.stderr
    assert not (tmp_path / "s").exists()


def test_bad_executor_settings_fail_before_anything_is_written(tmp_path: Path) -> None:
    grid_file = tmp_path / "grid.toml"
    grid_file.write_text(grid_text())
    for args, message in (
        (["--workers", "0"], "--workers must be a positive integer"),
        (["--executor", "dask"], "unknown executor 'dask'"),
        (["--ray-address", "x:1"], "--ray-address needs --executor ray"),
        (["--threads", "0"], "--threads must be a positive integer"),
    ):
        result = runner.invoke(app, ["study", str(grid_file), "--out", str(tmp_path / "s"), *args])
        assert result.exit_code == 2 and message in result.stderr, result.stderr
    assert not (tmp_path / "s").exists()
