"""Study hardening (issue 19): names are names, --resume needs a stored study, failed runs make
the study exit 1 and leave no folder that looks finished."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from lpae.cli import app
from lpae.study import execute as study_execute
from lpae.study import parse_grid
from lpae.study.runner import inside

runner = CliRunner()

GRID = """
{name}
seeds = [0]
criteria = ["l1", "l2"]
data = ["iris"]
[[models]]
hidden = [8]
latent = 2
[train]
epochs = 1
checkpoint_every = 0
"""


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lpae: error:"), stderr
    return lines[0]


@pytest.mark.parametrize(
    "name", ["../../../ESCAPED", "/tmp/abs", "a/b", "..", ".", ".hidden", "a\\\\b", "tab\\there"]
)
def test_a_study_name_that_is_a_path_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    text = GRID.format(name=f'name = "{name}"')
    with pytest.raises(ValueError, match="is not a plain name"):
        parse_grid(text, "g.toml")
    work = tmp_path / "work"
    work.mkdir()
    (tmp_path / "g.toml").write_text(text)
    monkeypatch.chdir(work)
    result = runner.invoke(app, ["study", str(tmp_path / "g.toml"), "--quiet", "--no-report"])
    assert result.exit_code == 2 and "is not a plain name" in one_line(result.stderr)
    assert list(work.iterdir()) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["g.toml", "work"]


def test_plain_names_are_kept() -> None:
    for name in ("mine", "my study 2", "a.b-c_d"):
        assert parse_grid(GRID.format(name=f'name = "{name}"'), "g.toml").name == name


def test_run_folders_must_lie_inside_the_study_folder(tmp_path: Path) -> None:
    assert inside(tmp_path, "runs/x") == (tmp_path / "runs" / "x").resolve()
    for bad in ("../x", "runs/../../x", "/etc/x", "."):
        with pytest.raises(ValueError, match="outside the study folder"):
            inside(tmp_path, bad)


def test_resume_without_a_stored_study_is_one_line(tmp_path: Path) -> None:
    out = tmp_path / "empty"
    for args in (["--resume", "--out", str(out)], [str(write_grid(tmp_path)), "--resume", "--out", str(out)]):
        result = runner.invoke(app, ["study", *args, "--quiet"])
        assert result.exit_code == 2
        assert "holds no stored study" in one_line(result.stderr)
        assert not out.exists()


def write_grid(folder: Path) -> Path:
    path = folder / "g.toml"
    path.write_text(GRID.format(name='name = "g"'))
    return path


def test_a_study_with_failed_runs_exits_1_and_says_how_to_retry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = study_execute.train_run

    def disk_full(spec: Any, out: Path, **kwargs: Any) -> dict[str, Any]:
        if spec.loss == "lp:p=2":
            raise OSError(28, "No space left on device")
        return real(spec, out, **kwargs)

    monkeypatch.setattr(study_execute, "train_run", disk_full)
    out = tmp_path / "study"
    args = ["study", str(write_grid(tmp_path)), "--out", str(out), "--quiet", "--no-report", "--no-fuse"]
    result = runner.invoke(app, [*args, "--threads", "1"])
    assert result.exit_code == 1, result.output
    line = one_line(result.stderr)
    assert "1 of 2 runs failed" in line and "--retry-failed" in line and str(out) in line
    assert "1 done" in result.stdout
    # a plain rerun has nothing left to run and still says so; a retry that succeeds exits 0
    again = runner.invoke(app, [*args, "--threads", "1"])
    assert again.exit_code == 1 and "0 runs trained" in again.stdout
    monkeypatch.setattr(study_execute, "train_run", real)
    retried = runner.invoke(app, [*args, "--threads", "1", "--resume", "--retry-failed"])
    assert retried.exit_code == 0, retried.output


def test_a_failed_run_leaves_no_finished_looking_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fused group that wrote one member before failing, and a single run whose folder is left
    from an earlier attempt: both failed runs end without a run folder."""

    def half_written(specs: Any, outs: list[Path], **kwargs: Any) -> list[dict[str, Any]]:
        outs[0].mkdir(parents=True)
        for name in ("config.json", "model.safetensors", "metrics.json", "history.csv"):
            (outs[0] / name).write_text("{}")
        raise OSError(28, "No space left on device")

    def fails(spec: Any, out: Path, **kwargs: Any) -> dict[str, Any]:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(study_execute, "train_group", half_written)
    monkeypatch.setattr(study_execute, "train_run", fails)
    grid = parse_grid(GRID.format(name='name = "g"'), "g.toml")
    jobs = [study_execute.Job(r.run_id, r.spec, str(tmp_path / r.run_id)) for r in grid.runs]
    outcomes = study_execute.train_unit(study_execute.Unit(tuple(jobs)))
    assert [o.status for o in outcomes] == ["failed", "failed"]
    assert list(tmp_path.iterdir()) == []
    earlier = Path(jobs[0].out)
    earlier.mkdir()
    (earlier / "metrics.json").write_text('{"status": "done"}')
    (outcome,) = study_execute.train_unit(study_execute.Unit((jobs[0],)))
    assert outcome.status == "failed" and not earlier.exists()


@pytest.mark.parametrize(
    ("train", "message"),
    [
        ("warp = 2", "g.toml: [train]: unknown key 'warp'"),
        ('epochs = "x"', "g.toml: [train]: epochs = 'x': expected int"),
        ("lr = [1]", "g.toml: [train]: lr = [1]: expected float"),
    ],
)
def test_train_table_errors_name_the_train_table(train: str, message: str) -> None:
    text = GRID.format(name='name = "g"').replace("epochs = 1", train)
    with pytest.raises(ValueError) as caught:
        parse_grid(text, "g.toml")
    assert str(caught.value).startswith(message), caught.value
    assert "models[0]" not in str(caught.value)


def test_train_options_that_only_some_models_take_stay_allowed() -> None:
    """[train] is checked alone for keys and types only: beta belongs to the vae model here."""
    text = GRID.format(name='name = "g"').replace("latent = 2", 'latent = 2\nmodel = "vae"')
    grid = parse_grid(text.replace("epochs = 1", "epochs = 1\nbeta = 2.0"), "g.toml")
    assert grid.runs[0].spec.model.beta == 2.0


def test_a_read_only_study_folder_is_one_line(tmp_path: Path) -> None:
    """`lpae study export` and `lpae report` on a study folder the user may not write to."""
    import os
    import shutil
    import tempfile

    from lpae.study import Store, run_study

    base = Path(tempfile.mkdtemp(prefix="lpae-readonly-"))  # tmp_path's parents admit root only
    base.chmod(0o755)
    out = base / "study"
    try:
        grid = parse_grid(GRID.format(name='name = "g"').replace('"l1", ', ""), "g.toml")
        run_study(grid, out, report=False, threads=1, fuse=False)
        Store(out, create=False).close()
        for path in (out, *out.rglob("*")):
            path.chmod(0o555 if path.is_dir() else 0o444)
        import lpae.study.report  # noqa: F401  (imported as root: nobody may not read the venv)

        as_root = os.geteuid() == 0
        if as_root:
            os.seteuid(65534)  # nobody: permissions apply
        try:
            results = [runner.invoke(app, [*args, str(out)]) for args in (["study", "export"], ["report"])]
        finally:
            if as_root:
                os.seteuid(0)
        for result in results:
            assert result.exit_code == 2, (result.stderr, result.exception)
            line = one_line(result.stderr)
            assert "study.sqlite: cannot open the study store" in line and "must be writable" in line
    finally:
        for path in (out, *out.rglob("*")):
            path.chmod(0o755 if path.is_dir() else 0o644)
        shutil.rmtree(base)


def test_the_report_survives_damaged_run_folders(tmp_path: Path) -> None:
    """Training health reads each run folder through the run schema: a config.json that is not an
    object (or weights that are not safetensors) leaves that run without health values."""
    from lpae.study import run_study

    out = tmp_path / "study"
    grid = parse_grid(GRID.format(name='name = "g"'), "g.toml")
    run_study(grid, out, report=False, threads=1, fuse=False)
    first, second = sorted((out / "runs").iterdir())
    (first / "config.json").write_text("[1]")
    (second / "model.safetensors").write_bytes(b"xx")
    result = runner.invoke(app, ["report", str(out)])
    assert result.exit_code == 0, (result.stderr, result.exception)
    assert (out / "report.md").is_file()


@pytest.mark.parametrize(
    ("classes", "message"),
    [("[99]", "99 not among the classes (0 .. 2)"), ("[0, 1, 2]", "[0, 1, 2] names every class")],
)
def test_normal_classes_are_checked_before_anything_runs(classes: str, message: str) -> None:
    text = f'seeds = [0]\ncriteria = ["l2"]\n[[data]]\nspec = "iris"\nnormal_classes = {classes}\n'
    with pytest.raises(ValueError, match="g.toml: data 'iris': normal_classes: " + re.escape(message)):
        parse_grid(text, "g.toml")
    assert parse_grid(text.replace(classes, "[0, 2]"), "g.toml").runs  # present classes are kept
