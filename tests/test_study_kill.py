"""A real `lpae study` process killed with SIGKILL at several moments, then resumed, ends with
exactly the rows and metrics of an uninterrupted study with the same seeds."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lpae.study import Store, parse_grid, run_study

TIMING_KEYS = ("train_seconds",)
GRID = """
name = "killme"
seeds = [0, 1]
criteria = ["l1", "l2"]
data = ["breast_cancer"]
[[models]]
hidden = [32]
latent = 4
[train]
epochs = 12
checkpoint_every = 1
"""
COMMAND = [sys.executable, "-m", "lpae", "study"]


def comparable(rows: list[Any]) -> dict[str, tuple[str, str, dict[str, Any]]]:
    return {
        r.key: (r.status, r.run_dir, {k: v for k, v in r.metrics.items() if k not in TIMING_KEYS})
        for r in rows
    }


def statuses(out: Path) -> list[str]:
    path = out / "study.sqlite"
    if not path.is_file():
        return []
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as connection:
            return [s for (s,) in connection.execute("SELECT status FROM runs")]
    except sqlite3.OperationalError:  # the schema is being created right now
        return []


def mid_training(out: Path) -> bool:
    """A run is training and has written a checkpoint: the kill lands inside a run."""
    return "running" in statuses(out) and any((out / "runs").glob("*.partial/checkpoint.safetensors"))


def done_at_least(n: int) -> Callable[[Path], bool]:
    return lambda out: statuses(out).count("done") >= n


def children(pid: int) -> list[int]:
    """Process ids whose parent is ``pid`` (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def gone(pids: list[int], timeout: float = 15) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(Path(f"/proc/{pid}").exists() for pid in pids):
            return True
        time.sleep(0.1)
    return False


def run_until(args: list[str], out: Path, moment: Callable[[Path], bool], timeout: float = 240) -> bool:
    """Start the study; SIGKILL it as soon as ``moment(out)`` holds. False if it finished first.

    Worker processes of a killed study must not outlive it (they watch their parent)."""
    process = subprocess.Popen([*COMMAND, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout
    try:
        while process.poll() is None and time.monotonic() < deadline:
            if moment(out):
                workers = children(process.pid)
                os.kill(process.pid, signal.SIGKILL)
                process.wait()
                assert gone(workers), f"worker processes {workers} outlived the killed study"
                return True
            time.sleep(0.01)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, process.stderr.read().decode() if process.stderr else ""
    return False


@pytest.mark.slow
def test_sigkill_then_resume_equals_uninterrupted(tmp_path: Path) -> None:
    grid_file = tmp_path / "grid.toml"
    grid_file.write_text(GRID)
    reference = tmp_path / "reference"
    run_study(parse_grid(GRID, str(grid_file)), reference, threads=1, report=False, fuse=False)
    with Store(reference, create=False) as expected:
        assert {r.status for r in expected.rows()} == {"done"}  # else the comparison below is empty

    out = tmp_path / "killed"
    same_command = [
        str(grid_file),
        "--out",
        str(out),
        "--threads",
        "1",
        "--quiet",
        "--no-fuse",
        "--no-report",
    ]
    # First with two worker processes, then in-process: one thread per run either way, same numbers.
    killed = [run_until([*same_command, "--workers", "2"], out, mid_training)]
    killed += [run_until(same_command, out, moment) for moment in (done_at_least(1), mid_training)]
    assert killed[0] and killed[1], "the study finished before it could be killed; make the grid slower"
    for status in statuses(out):
        assert status in ("pending", "running", "done")
    # The last resume uses the stored grid.
    run_until(
        ["--resume", "--out", str(out), "--threads", "1", "--quiet", "--no-fuse", "--no-report"],
        out,
        lambda _: False,
    )

    with Store(reference, create=False) as expected, Store(out, create=False) as got:
        assert comparable(got.rows()) == comparable(expected.rows())
        assert max(r.attempts for r in got.rows()) >= 2  # some run really was interrupted and redone
        assert got.connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        final = comparable(got.rows())
    for row in final.values():
        metrics = json.loads((out / row[1] / "metrics.json").read_text())
        assert {k: v for k, v in metrics.items() if k not in TIMING_KEYS} == row[2]
    leftovers = [
        p.name for p in (out / "runs").iterdir() if p.name.startswith(".") or p.name.endswith(".partial")
    ]
    assert leftovers == []


def running_for(seconds: float) -> Callable[[Path], bool]:
    """True once some run has been marked running for ``seconds``."""
    first_seen: list[float] = []

    def moment(out: Path) -> bool:
        if not first_seen and "running" in statuses(out):
            first_seen.append(time.monotonic())
        return bool(first_seen) and time.monotonic() - first_seen[0] >= seconds

    return moment


@pytest.mark.slow
def test_sigkill_inside_a_fused_group_then_resume_equals_uninterrupted(tmp_path: Path) -> None:
    grid_file = tmp_path / "grid.toml"
    grid_file.write_text(GRID)
    reference = tmp_path / "reference"
    run_study(parse_grid(GRID, str(grid_file)), reference, threads=1, report=False, fuse=True)
    out = tmp_path / "killed"
    command = [str(grid_file), "--out", str(out), "--threads", "1", "--quiet", "--no-report"]
    assert run_until(command, out, running_for(0.5)), "the study finished before it could be killed"
    assert "done" not in statuses(out)  # the group's rows are written together or not at all
    run_until(command, out, lambda _: False)
    with Store(reference, create=False) as expected, Store(out, create=False) as got:
        assert {r.status for r in expected.rows()} == {"done"}
        assert comparable(got.rows()) == comparable(expected.rows())
