"""`lpae eval` on tampered run directories: each is one `lpae: error:` line and exit 2, no traceback.

One tiny iris run is trained once per module (through the CLI); each case copies it, damages one
file the way a careless edit, a full disk or a hostile user would, and evaluates the copy.
"""

from __future__ import annotations

import json
import shutil
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from typer.testing import CliRunner

from lpae.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def iris_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tamper") / "run"
    args = ["train", "--data", "iris", "--epochs", "1", "--latent", "2", "--hidden", "8"]
    result = runner.invoke(app, [*args, "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    return out


def edit_config(change: Callable[[dict[str, Any]], None]) -> Callable[[Path], None]:
    def tamper(run: Path) -> None:
        config = json.loads((run / "config.json").read_text())
        change(config)
        (run / "config.json").write_text(json.dumps(config))

    return tamper


def write(name: str, data: bytes | str) -> Callable[[Path], None]:
    def tamper(run: Path) -> None:
        target = run / name
        target.write_bytes(data if isinstance(data, bytes) else data.encode())

    return tamper


def truncate(name: str, keep: float) -> Callable[[Path], None]:
    def tamper(run: Path) -> None:
        data = (run / name).read_bytes()
        (run / name).write_bytes(data[: int(len(data) * keep)])

    return tamper


def header_only(run: Path) -> None:
    """A safetensors header that promises tensors, without their bytes."""
    data = (run / "model.safetensors").read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    (run / "model.safetensors").write_bytes(data[: 8 + length])


def torch_save(run: Path) -> None:
    torch.save({"weight": torch.zeros(2)}, run / "model.safetensors")


def pop(*keys: str) -> Callable[[dict[str, Any]], None]:
    def change(config: dict[str, Any]) -> None:
        node = config
        for key in keys[:-1]:
            node = node[key]
        del node[keys[-1]]

    return change


def put(value: Any, *keys: str) -> Callable[[dict[str, Any]], None]:
    def change(config: dict[str, Any]) -> None:
        node = config
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = value

    return change


def five_features(config: dict[str, Any]) -> None:
    """A config made consistent for 5 features (shape and statistics), beside 4-feature weights."""
    config["data"]["shape"] = [5]
    config["data"]["preprocess"].update(shape=[5], shift=[0.0] * 5, scale=[1.0] * 5)


TAMPERINGS: dict[str, tuple[Callable[[Path], None], str]] = {
    # config.json: not JSON, not an object, keys missing, values of the wrong kind
    "config-truncated": (truncate("config.json", 0.5), "config.json: not valid JSON"),
    "config-empty": (write("config.json", ""), "config.json"),
    "config-binary": (write("config.json", b"\xff\xfe\x00{"), "config.json"),
    "config-list": (write("config.json", "[1]"), "config.json"),
    "config-no-data": (edit_config(pop("data")), "data"),
    "config-no-data-spec": (edit_config(pop("data", "spec")), "spec"),
    "config-no-preprocess": (edit_config(pop("data", "preprocess")), "preprocess"),
    "config-no-loss": (edit_config(pop("loss")), "loss"),
    "config-no-model": (edit_config(pop("model")), "model"),
    "config-no-train": (edit_config(pop("train")), "train"),
    "config-data-list": (edit_config(put([1], "data")), "data"),
    "config-model-string": (edit_config(put("ae", "model")), "model"),
    "config-preprocess-evil": (edit_config(put("evil", "data", "preprocess", "method")), "evil"),
    "config-preprocess-no-shift": (edit_config(pop("data", "preprocess", "shift")), "shift"),
    "config-preprocess-short-shift": (edit_config(put([0.0], "data", "preprocess", "shift")), "shift"),
    "config-preprocess-text-values": (
        edit_config(put(["a", "b", "c", "d"], "data", "preprocess", "scale")),
        "data.preprocess.scale must hold 4 finite numbers",
    ),
    "config-preprocess-string": (edit_config(put("standard", "data", "preprocess")), "preprocess"),
    "config-shape": (edit_config(put([5], "data", "shape")), "data.shape"),
    "config-shape-consistent": (edit_config(five_features), "model.safetensors"),
    "config-hidden": (edit_config(put([16], "model", "hidden")), "model.safetensors"),
    "config-latent": (edit_config(put(3, "model", "latent")), "model.safetensors"),
    "config-model-kind": (edit_config(put("evil", "model", "model")), "evil"),
    "config-loss-unknown": (edit_config(put("nosuch:1", "loss")), "config.json: spec 'nosuch:1'"),
    "config-data-unknown": (edit_config(put("nosuch", "data", "spec")), "nosuch"),
    "config-other-data": (edit_config(put("wine", "data", "spec")), "wine"),
    "config-epochs-string": (edit_config(put("x", "train", "epochs")), "epochs"),
    "config-hidden-string": (edit_config(put("8", "model", "hidden")), "hidden"),
    "config-normal-classes-absent": (edit_config(put([99], "data", "normal_classes")), "99 not among"),
    "config-seed-negative": (edit_config(put(-5, "train", "seed")), "seed"),
    "config-no-format": (edit_config(pop("format")), "config.json"),
    # model.safetensors: damaged, foreign or pickled
    "weights-truncated": (truncate("model.safetensors", 0.6), "model.safetensors"),
    "weights-empty": (write("model.safetensors", b""), "model.safetensors"),
    "weights-header-only": (header_only, "model.safetensors"),
    "weights-huge-header": (
        write("model.safetensors", struct.pack("<Q", 2**62) + b"{}"),
        "model.safetensors",
    ),
    "weights-garbage-header": (
        write("model.safetensors", struct.pack("<Q", 4) + b"zzzz"),
        "model.safetensors",
    ),
    "weights-torch-save": (torch_save, "model.safetensors"),
    # metrics.json
    "metrics-list": (write("metrics.json", "[1]"), "metrics.json"),
    "metrics-truncated": (write("metrics.json", '{"status": "do'), "metrics.json"),
}


@pytest.mark.parametrize("case", sorted(TAMPERINGS))
def test_tampered_run_is_one_line_exit_2(iris_run: Path, tmp_path: Path, case: str) -> None:
    tamper, named = TAMPERINGS[case]
    run = tmp_path / "run"
    shutil.copytree(iris_run, run)
    tamper(run)
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    result = runner.invoke(app, ["eval", str(run), "--quiet"])
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2, (result.stderr, result.exception)
    assert len(lines) == 1 and lines[0].startswith("lpae: error:"), lines
    assert named in lines[0], lines[0]
    assert "Traceback" not in result.output and "Traceback" not in result.stderr
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before  # nothing was written


def test_untampered_copy_evaluates(iris_run: Path, tmp_path: Path) -> None:
    """The control: the same copy, unchanged, evaluates (so the cases above fail for their damage)."""
    run = tmp_path / "run"
    shutil.copytree(iris_run, run)
    result = runner.invoke(app, ["eval", str(run), "--quiet"])
    assert result.exit_code == 0, result.output


def test_run_files_share_one_mode(iris_run: Path) -> None:
    """model.safetensors included (safetensors alone writes it 0o600): 0o666 less the umask."""
    from lpae.atomic import current_umask

    modes = {p.name: p.stat().st_mode & 0o777 for p in iris_run.iterdir()}
    assert set(modes) == {"config.json", "model.safetensors", "history.csv", "metrics.json"}
    assert set(modes.values()) == {0o666 & ~current_umask()}, modes


def test_eval_json_onto_a_folder_is_one_line_and_changes_nothing(iris_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(iris_run, run)
    before = (run / "metrics.json").read_bytes()
    result = runner.invoke(app, ["eval", str(run), "--json", str(tmp_path), "--quiet"])
    assert result.exit_code == 2 and "is a folder; give the name of a file to write" in result.stderr
    assert (run / "metrics.json").read_bytes() == before


def test_resume_from_a_foreign_checkpoint_is_one_line(iris_run: Path, tmp_path: Path) -> None:
    """OUT.partial holds this run's settings but a checkpoint of another model."""
    from lpae.checkpoint import save_checkpoint

    out = tmp_path / "run"
    partial = tmp_path / "run.partial"
    partial.mkdir()
    shutil.copy(iris_run / "config.json", partial / "config.json")
    save_checkpoint(
        partial / "checkpoint.safetensors", {"model/other.weight": torch.zeros(3)}, {"progress": {}}
    )
    args = ["train", "--data", "iris", "--epochs", "1", "--latent", "2", "--hidden", "8", "--quiet"]
    result = runner.invoke(app, [*args, "--out", str(out), "--resume"])
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1, (result.stderr, result.exception)
    assert "checkpoint.safetensors: the checkpoint does not fit this run" in lines[0]
    assert "--overwrite" in lines[0] and not out.exists()
