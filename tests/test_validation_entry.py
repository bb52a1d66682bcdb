"""Values are validated where they enter (issue 19, item 5): seeds in range for every library
that draws with them, fixed scales that float32 can hold, normal classes present in the data."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lpae import criteria
from lpae.cli import app
from lpae.config import RunSpec, TrainSettings
from lpae.study import parse_grid

runner = CliRunner()

GRID = """
seeds = {seeds}
criteria = ["l2"]
data = ["iris"]
[train]
epochs = 1
"""


@pytest.mark.parametrize(
    ("spec", "word"),
    [
        ("gaussian:scale=1e-300", "zero or denormal"),
        ("laplace:scale=1e-45", "zero or denormal"),
        ("student_t:scale=1e-40", "zero or denormal"),
        ("gennorm:scale=1e39", "infinite"),
        ("huber:delta=1e-300", "zero or denormal"),
        ("charbonnier:eps=1e-50", "zero or denormal"),
    ],
)
def test_fixed_values_beyond_float32_are_refused(spec: str, word: str) -> None:
    with pytest.raises(ValueError, match=f"beyond float32, the working precision, where it would be {word}"):
        criteria.normalize(spec)


def test_fixed_values_float32_holds_are_kept() -> None:
    assert criteria.normalize("gaussian:scale=1e-30") == "gaussian:scale=1e-30"
    assert criteria.normalize("laplace:scale=1e30") == "laplace:scale=1e+30"


@pytest.mark.parametrize("seed", [-1, 2**32, 99999999999999999999999])
def test_seeds_outside_32_bits_are_refused(seed: int) -> None:
    with pytest.raises(ValueError, match=r"seeds must be integers with 0 <= seed < 2\*\*32"):
        parse_grid(GRID.format(seeds=f"[{seed}]"), "g.toml")
    with pytest.raises(ValueError, match=r"seed must be an integer with 0 <= seed < 2\*\*32"):
        TrainSettings(seed=seed)
    with pytest.raises(ValueError, match=r"split_seed must be an integer"):
        RunSpec(split_seed=seed)


def test_the_largest_seed_is_kept_and_trains(tmp_path: Path) -> None:
    """2**32 - 1 is a valid seed everywhere it is used, offsets included (the split's seed + 1)."""
    grid = parse_grid(GRID.format(seeds=f"[{2**32 - 1}]"), "g.toml")
    assert grid.runs[0].spec.train.seed == 2**32 - 1
    args = ["train", "--data", "iris", "--epochs", "1", "--hidden", "8", "--latent", "2", "--quiet"]
    result = runner.invoke(app, [*args, "--seed", str(2**32 - 1), "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--seed", "-5"], "seed must be an integer with 0 <= seed < 2**32, got -5"),
        (["--seed", str(2**32)], "seed must be an integer with 0 <= seed < 2**32"),
        (["--loss", "gaussian:scale=1e-300"], "'1e-300' is beyond float32"),
        (["--normal-classes", "99"], "99 not among the classes of 'iris'"),
        (["--val-fraction", "2"], "val_fraction must be a fraction of the rows in (0, 1), got 2.0"),
        (["--test-fraction", "0"], "test_fraction must be a fraction of the rows in (0, 1), got 0.0"),
        (["--val-fraction", "0.6", "--test-fraction", "0.6"], "val_fraction + test_fraction must leave rows"),
    ],
)
def test_bad_values_of_lpae_train_are_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    out = tmp_path / "run"
    result = runner.invoke(app, ["train", "--data", "iris", "--epochs", "1", "--out", str(out), *args])
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1, result.stderr
    assert lines[0].startswith("lpae: error:") and message in lines[0]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("[train]\nimage_size = 0\n", "image_size must be a positive integer, got 0"),
        ('[[grids]]\ntrain = "x"\n', "grids[0]: [train] must be a table of options"),
    ],
)
def test_grid_values_refused_before_anything_runs(extra: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_grid(GRID.format(seeds="[0]").replace("[train]\nepochs = 1\n", "") + extra, "g.toml")


def test_a_model_too_big_for_the_machine_is_refused_before_it_is_allocated() -> None:
    """Counted on torch's meta device: 1e12 parameters are refused in a grid without allocating."""
    text = GRID.format(seeds="[0]") + "[[models]]\nhidden = [1000000000000]\n"
    with pytest.raises(ValueError, match=r"models\[0\]: the model \(hidden \[1000000000000\], latent 16\)"):
        parse_grid(text, "g.toml")
    assert parse_grid(GRID.format(seeds="[0]") + "[[models]]\nhidden = [64]\n", "g.toml").runs
