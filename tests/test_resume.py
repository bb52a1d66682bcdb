"""Resume after a real crash: a `lpae train` process is killed with SIGKILL mid-training, then
`--resume` must end with exactly the weights, history and metrics of an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from lpae.checkpoint import load_checkpoint
from lpae.cli import app
from lpae.runs import check_run_dir, partial_dir

EPOCHS = 30
# One intra-op thread: the machine's cores are shared, and spinning OpenMP threads under contention
# make small steps tens of times slower. All three processes use the same setting.
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
runner = CliRunner()
COMMAND = [
    *(sys.executable, "-m", "lpae", "train", "--data", "digits", "--loss", "lp:1", "--model", "vae"),
    *("--hidden", "128,64", "--latent", "8", "--batch-size", "32", "--epochs", str(EPOCHS)),
    *("--schedule", "cosine", "--clip", "5", "--kl-warmup", "5", "--seed", "2", "--quiet"),
]


def train(out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMAND, "--out", str(out), *extra],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
        env=ENV,
    )


def checkpoint_epoch(path: Path) -> int:
    try:
        return int(load_checkpoint(path)[1]["progress"]["epoch"])
    except (ValueError, OSError):
        return 0


def kill_mid_training(out: Path, after_epoch: int = 3) -> int:
    """Start training, SIGKILL it once a checkpoint of ``after_epoch`` exists; return that epoch."""
    checkpoint = partial_dir(out) / "checkpoint.safetensors"
    proc = subprocess.Popen(
        [*COMMAND, "--out", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV
    )
    try:
        deadline = time.monotonic() + 300
        while checkpoint_epoch(checkpoint) < after_epoch:
            if proc.poll() is not None:
                raise AssertionError(f"training ended before it could be killed: {proc.stderr.read()!r}")
            if time.monotonic() > deadline:
                raise AssertionError("no checkpoint appeared within 300 s")
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        assert proc.stderr is not None
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    return checkpoint_epoch(checkpoint)


@pytest.mark.slow
def test_resume_after_sigkill_matches_uninterrupted_run(tmp_path: Path) -> None:
    out = tmp_path / "killed"
    killed_at = kill_mid_training(out)
    assert 3 <= killed_at < EPOCHS - 1, killed_at

    # The interrupted run never looks finished, and nothing claims its place.
    assert not out.exists()
    for path in (out, partial_dir(out)):
        with pytest.raises(ValueError):
            check_run_dir(path)

    # Without --resume the partial run is neither clobbered nor ignored (checked in-process: these
    # fail before any training); resuming with other settings is refused and leaves it alone.
    args = [*COMMAND[3:], "--out", str(out)]
    again = runner.invoke(app, args)
    assert again.exit_code == 2 and "--resume" in again.stderr and "interrupted run" in again.stderr
    other = runner.invoke(app, [*args, "--resume", "--lr", "0.01"])
    assert other.exit_code == 2 and "train.lr" in other.stderr
    assert checkpoint_epoch(partial_dir(out) / "checkpoint.safetensors") == killed_at

    resumed = train(out, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert not partial_dir(out).exists()
    check_run_dir(out)

    reference = tmp_path / "reference"
    assert train(reference).returncode == 0

    got, want = load_file(out / "model.safetensors"), load_file(reference / "model.safetensors")
    assert got.keys() == want.keys()
    for name in want:
        assert torch.equal(got[name], want[name]), name  # bitwise
    assert (out / "history.csv").read_text() == (reference / "history.csv").read_text()
    metrics = [json.loads((run / "metrics.json").read_text()) for run in (out, reference)]
    for m in metrics:
        m.pop("train_seconds")
    assert metrics[0] == metrics[1]
    assert metrics[0]["epochs_run"] == EPOCHS
