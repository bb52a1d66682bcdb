"""SIGINT and SIGTERM to real `lpae study` and `lpae train` processes: exit 130 / 143, one line
with what is done and the command that resumes, a consistent store, and a resume (with that very
command) that ends where an uninterrupted run ends without training finished runs again."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lpae.study import Store, parse_grid, run_study
from test_study_kill import statuses  # the store as a killed or interrupted study left it

TIMING_KEYS = ("train_seconds",)
GRID = """
name = "interrupt"
seeds = [0, 1, 2, 3]
criteria = ["l1", "l2"]
data = ["breast_cancer"]
[[models]]
hidden = [32]
latent = 4
[train]
epochs = 12
checkpoint_every = 1
"""
LPAE = [sys.executable, "-m", "lpae"]
WAIT_SECONDS = 240


def start(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    """The command in its own process group, as a terminal runs a foreground job."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.Popen(
        args,
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def interrupt_when(
    process: subprocess.Popen[str], moment: Callable[[], bool], signum: int, group: bool
) -> tuple[int, str]:
    """Send ``signum`` (to the process group, like Ctrl-C, or to the process) once ``moment()``
    holds; return the exit code and stderr. Fails if the command ended first or hangs."""
    deadline = time.monotonic() + WAIT_SECONDS
    try:
        while not moment():
            assert process.poll() is None, f"ended before the signal: {process.communicate()[1]}"
            assert time.monotonic() < deadline, "the moment to interrupt never came"
            time.sleep(0.05)
        if group:
            os.killpg(process.pid, signum)
        else:
            os.kill(process.pid, signum)
        _, stderr = process.communicate(timeout=60)
        assert group_gone(process.pid), "worker processes outlived the interrupted command"
        return process.returncode, stderr
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def group_gone(group: int, timeout: float = 15) -> bool:
    """Whether every process of the process group has ended."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def the_line(stderr: str, signame: str) -> tuple[str, list[str]]:
    """The one `lpae: interrupted ...` line (and nothing else from lpae), and its resume command."""
    lines = [line for line in stderr.splitlines() if line.startswith("lpae:")]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr, stderr
    head, _, command = lines[0].partition("; resume with: ")
    assert head.startswith(f"lpae: interrupted by {signame}: "), lines[0]
    return head, shlex.split(command)


def comparable(rows: list[Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    return {r.key: (r.status, {k: v for k, v in r.metrics.items() if k not in TIMING_KEYS}) for r in rows}


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, dict[str, Any]]]:
    folder = tmp_path_factory.mktemp("reference")
    run_study(
        parse_grid(GRID, str(folder / "grid.toml")), folder / "study", threads=1, report=False, fuse=False
    )
    with Store(folder / "study", create=False) as store:
        rows = comparable(store.rows())
    assert {status for status, _ in rows.values()} == {"done"}
    return rows


def resume_and_compare(
    command: list[str], cwd: Path, out: Path, reference: dict[str, Any], finished_before: dict[str, int]
) -> None:
    assert command[:4] == ["lpae", "study", "--resume", "--out"], command
    resumed = subprocess.run(
        [*LPAE, *command[1:]],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        capture_output=True,
        text=True,
        timeout=WAIT_SECONDS,
    )
    assert resumed.returncode == 0, resumed.stderr
    with Store(out, create=False) as store:
        rows = store.rows()
    assert comparable(rows) == reference
    attempts = {r.run_id: r.attempts for r in rows}
    assert {run_id: attempts[run_id] for run_id in finished_before} == finished_before  # not redone
    assert [
        p.name for p in (out / "runs").iterdir() if p.name.startswith(".") or p.name.endswith(".partial")
    ] == []


def finished_rows(out: Path) -> dict[str, int]:
    with Store(out, create=False) as store:
        return {r.run_id: r.attempts for r in store.rows() if r.status == "done"}


@pytest.mark.slow
def test_ctrl_c_to_a_study_with_workers_then_the_printed_command_finishes_it(
    tmp_path: Path, reference: Any
) -> None:
    (tmp_path / "grid.toml").write_text(GRID)
    args = [
        "grid.toml",
        "--out",
        "s",
        "--workers",
        "2",
        "--threads",
        "1",
        "--no-fuse",
        "--quiet",
        "--no-report",
    ]
    process = start([*LPAE, "study", *args], tmp_path)
    out = tmp_path / "s"
    code, stderr = interrupt_when(process, lambda: "done" in statuses(out), signal.SIGINT, group=True)
    assert code == 130, stderr
    head, command = the_line(stderr, "SIGINT")
    finished = finished_rows(out)
    assert 1 <= len(finished) < 8
    assert f"{len(finished)} of 8 runs finished ({len(finished)} done, 0 diverged, 0 failed)" in head
    assert command == [
        "lpae", "study", "--resume", "--out", "s", "--workers", "2", "--threads", "1",
        "--no-fuse", "--no-report", "--quiet",
    ]  # fmt: skip
    assert set(statuses(out)) <= {"done", "pending"}  # nothing left "running", nothing failed
    resume_and_compare(command, tmp_path, out, reference, finished)


@pytest.mark.slow
def test_sigterm_to_a_study_in_one_process(tmp_path: Path, reference: Any) -> None:
    (tmp_path / "grid.toml").write_text(GRID)
    process = start(
        [*LPAE, "study", "grid.toml", "--out", "s", "--threads", "1", "--no-fuse", "--quiet"], tmp_path
    )
    out = tmp_path / "s"
    code, stderr = interrupt_when(process, lambda: "done" in statuses(out), signal.SIGTERM, group=False)
    assert code == 143, stderr
    head, command = the_line(stderr, "SIGTERM")
    assert command == ["lpae", "study", "--resume", "--out", "s", "--threads", "1", "--no-fuse", "--quiet"]
    assert set(statuses(out)) <= {"done", "pending"}
    assert not (out / "report.html").exists()
    resume_and_compare(command, tmp_path, out, reference, finished_rows(out))
    assert (out / "report.html").is_file()


@pytest.mark.slow
def test_ctrl_c_to_lpae_train_then_the_printed_command_finishes_the_run(tmp_path: Path) -> None:
    args = ["--data", "breast_cancer", "--hidden", "16", "--latent", "2", "--epochs", "30", "--out", "run"]
    process = start([*LPAE, "train", *args, "--quiet"], tmp_path)
    checkpoint = tmp_path / "run.partial" / "checkpoint.safetensors"
    code, stderr = interrupt_when(process, checkpoint.is_file, signal.SIGINT, group=True)
    assert code == 130, stderr
    head, command = the_line(stderr, "SIGINT")
    assert head.endswith("0 of 1 runs done (run not written; its checkpoint is in run.partial)"), head
    assert command == [
        "lpae", "train", "--out", "run", "--data", "breast_cancer", "--hidden", "16", "--latent", "2",
        "--epochs", "30", "--resume", "--quiet",
    ]  # fmt: skip
    assert not (tmp_path / "run").exists()
    resumed = subprocess.run(
        [*LPAE, *command[1:]],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        capture_output=True,
        text=True,
        timeout=WAIT_SECONDS,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert (tmp_path / "run" / "metrics.json").is_file() and not (tmp_path / "run.partial").exists()


def test_signals_become_one_interrupted_and_store_writes_defer_them() -> None:
    from lpae.interrupt import Interrupted, deferred, interruptible

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Interrupted) as caught, interruptible():
        with deferred():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)  # the handler has run: the signal is held, not raised
            finished_inside = True
        raise AssertionError("the held signal was not raised when the block ended")  # pragma: no cover
    assert finished_inside and caught.value.signum == signal.SIGTERM and caught.value.exit_code == 143
    assert signal.getsignal(signal.SIGTERM) is before  # handlers restored
    with pytest.raises(Interrupted) as caught, interruptible():
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(1)
    assert caught.value.exit_code == 130 and caught.value.name == "SIGINT"


def test_the_resume_command_before_and_after_the_store_exists(tmp_path: Path) -> None:
    from lpae.cli.study import resume_command

    switches = {"fuse": False, "retry_failed": False, "report": True, "quiet": True}
    values = {"workers": 2, "executor": "local", "ray_address": None, "threads": None}
    out = tmp_path / "my study"
    assert resume_command(None, values, switches, ("g.toml", False)) == (
        "lpae study g.toml --workers 2 --no-fuse --quiet"
    )
    assert resume_command(out, values, switches, ("g.toml", False)) == (
        f"lpae study g.toml --out '{out}' --workers 2 --no-fuse --quiet"
    )
    out.mkdir()
    with Store(out):
        pass
    assert resume_command(out, values, switches, ("g.toml", False)) == (
        f"lpae study --resume --out '{out}' --workers 2 --no-fuse --quiet"
    )
