"""The CLI's last guard (lpae.cli.app): known failure families in one line, bugs named as bugs,
and the traceback only with LPAE_DEBUG=1 or --debug."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lpae.cli import app
from lpae.cli.app import explain

runner = CliRunner()


def broken_load_run(path: object) -> None:
    raise ZeroDivisionError("a planted bug")


def test_a_bug_is_one_line_that_says_so(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("LPAE_DEBUG", raising=False)
    monkeypatch.setattr("lpae.runs.load_run", broken_load_run)
    result = runner.invoke(app, ["eval", str(tmp_path)])
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 1 and len(lines) == 1, result.stderr
    assert lines[0].startswith("lpae: error: internal error (ZeroDivisionError: a planted bug)")
    assert "this is a bug" in lines[0] and "LPAE_DEBUG=1" in lines[0]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("how", ["env", "flag"])
def test_a_bug_shows_its_traceback_when_debugging(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, how: str
) -> None:
    monkeypatch.setenv("LPAE_DEBUG", "0")  # restored afterwards: --debug sets it in os.environ
    monkeypatch.setattr("lpae.runs.load_run", broken_load_run)
    if how == "env":
        monkeypatch.setenv("LPAE_DEBUG", "1")
        args = ["eval", str(tmp_path)]
    else:
        args = ["--debug", "eval", str(tmp_path)]
    result = runner.invoke(app, args)
    assert isinstance(result.exception, ZeroDivisionError)  # raised through: Python prints it


def test_debug_traceback_from_the_console_script(tmp_path: Path) -> None:
    """As a user runs it, with a bug planted in lpae.runs.load_run before the entry point starts."""
    env = {key: value for key, value in os.environ.items() if key != "LPAE_DEBUG"}
    code = (
        "import lpae.runs, sys\n"
        "def boom(path): raise ZeroDivisionError('planted')\n"
        "lpae.runs.load_run = boom\n"
        "from lpae.cli import main\n"
        "sys.argv = ['lpae', 'eval', sys.argv[1]]\n"
        "main()\n"
    )
    quiet = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, env=env
    )
    assert quiet.returncode == 1 and "Traceback" not in quiet.stderr
    assert len(quiet.stderr.strip().splitlines()) == 1 and "this is a bug" in quiet.stderr
    loud = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        capture_output=True,
        text=True,
        env={**env, "LPAE_DEBUG": "1"},
    )
    assert loud.returncode == 1 and "Traceback" in loud.stderr and "ZeroDivisionError" in loud.stderr


@pytest.mark.parametrize(
    ("error", "words"),
    [
        (MemoryError(), "out of memory"),
        (
            RuntimeError("[enforce fail at alloc_cpu.cpp:118] DefaultCPUAllocator: can't allocate memory"),
            "out of memory",
        ),
        (sqlite3.OperationalError("attempt to write a readonly database"), "read-only"),
        (sqlite3.DatabaseError("file is not a database"), "study.sqlite"),
        (json.JSONDecodeError("Expecting value", "x", 0), "not valid JSON"),
        (RuntimeError("Error(s) in loading state_dict for Autoencoder: size mismatch"), "do not fit"),
        (KeyError("spec"), "missing key 'spec'"),
    ],
)
def test_known_failure_families_are_explained(error: BaseException, words: str) -> None:
    assert words in (explain(error) or "")


def test_other_exceptions_are_not_explained() -> None:
    assert explain(ZeroDivisionError("x")) is None
    assert explain(RuntimeError("some other runtime failure")) is None


def test_a_damaged_study_store_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "study.sqlite").write_bytes(b"this is not a database" * 100)
    for args in (["study", "export", str(tmp_path)], ["report", str(tmp_path)]):
        result = runner.invoke(app, args)
        lines = result.stderr.strip().splitlines()
        assert result.exit_code == 2 and len(lines) == 1, result.stderr
        assert lines[0].startswith("lpae: error:") and "study.sqlite: cannot open the study store" in lines[0]


def limit_memory() -> None:
    """Cap the child's address space at 8 GB, so a huge allocation fails at once on any machine
    (and cannot press on the memory of anything else running)."""
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (8 * 2**30, 8 * 2**30))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data", "iris", "--hidden", "100000,100000"], "lpae: error: the model (hidden [100000, 100000]"),
        (["--data", "uniform:n=100000000000,dim=100000"], "lpae: error: out of memory"),
    ],
    ids=["huge-model", "huge-data"],
)
def test_allocation_failures_are_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "lpae", "train", *args, "--epochs", "1", "--quiet", "--out", str(out)],
        capture_output=True,
        text=True,
        preexec_fn=limit_memory,
        check=False,
    )
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-2000:]
    assert lines[0].startswith(message) and "Traceback" not in proc.stderr
    assert not out.exists()


def test_debugging_shows_where_an_input_error_came_from(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("LPAE_DEBUG", "1")
    result = runner.invoke(app, ["eval", str(tmp_path / "missing")])
    assert isinstance(result.exception, ValueError) and "no such run directory" in str(result.exception)
    monkeypatch.setenv("LPAE_DEBUG", "0")
    result = runner.invoke(app, ["eval", str(tmp_path / "missing")])
    assert result.exit_code == 2 and "no such run directory" in result.stderr
