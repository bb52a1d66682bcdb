"""The Ray executor on real local clusters (never mocks).

- Joined: a ray.init(num_cpus=2) in this process; same rows and metrics as in-process training,
  with run folders written by the study process from the files each task sends back; a --threads
  no node can give is refused in one line before any run is marked running; SIGTERM stops the
  study with lpae.interrupt.Interrupted (not Ray's plain KeyboardInterrupt).
- Started by `lpae study --executor ray`: a study of one worker is SIGKILLed after its first run,
  resumed with two workers, and its export equals the local executor's (timing columns aside);
  the cluster listens on 127.0.0.1 only, runs no dashboard process, keeps Ray's lines off stderr
  under --quiet (its logs land in OUT/ray-logs), and leaves no process behind, killed or not.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from lpae.interrupt import Interrupted, interruptible
from lpae.study import Store, export_table, parse_grid, run_study
from lpae.study.on_ray import CLUSTER_RECORD, LOG_FOLDER
from test_study_kill import COMMAND, done_at_least, gone, statuses

ray = pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'lpae[ray]'")

GRID = """
name = "tiny-ray"
seeds = [0, 1]
criteria = ["l1", "l2"]
data = ["iris"]
[[models]]
hidden = [16]
latent = 2
[train]
epochs = 2
checkpoint_every = 0
"""
TIMING_COLUMNS = ["seconds", "train_seconds", "attempts"]
LOOPBACK = ("127.0.0.1", "::ffff:127.0.0.1", "::1")


def comparable(rows: list[Any]) -> dict[str, tuple[str, str, dict[str, Any]]]:
    return {
        r.key: (r.status, r.run_dir, {k: v for k, v in r.metrics.items() if k != "train_seconds"})
        for r in rows
    }


@pytest.mark.slow
def test_ray_executor_matches_local(tmp_path: Path) -> None:
    grid = parse_grid(GRID, "tiny-ray.toml")
    local = tmp_path / "local"
    run_study(grid, local, threads=1, report=False)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        refused = tmp_path / "refused"
        with pytest.raises(ValueError, match=r"^--threads 3: .* largest node of the Ray cluster has 2;"):
            run_study(grid, refused, workers=1, executor="ray", threads=3, report=False)
        assert set(statuses(refused)) == {"pending"}
        stopped = tmp_path / "stopped"
        assert sigterm_once_running(
            lambda: run_study(grid, stopped, executor="ray", threads=1, report=False), stopped
        )
        assert "running" not in statuses(stopped)  # abandoned units are pending again
        out = tmp_path / "ray"
        result = run_study(grid, out, workers=2, executor="ray", threads=1)
    finally:
        ray.shutdown()
    assert result.counts["done"] == 4
    with Store(out, create=False) as got, Store(local, create=False) as expected:
        assert comparable(got.rows()) == comparable(expected.rows())
        for row in got.rows():
            files = sorted(p.name for p in (out / row.run_dir).iterdir())
            assert {"config.json", "model.safetensors", "metrics.json", "history.csv"} <= set(files)
    assert (out / "report.html").is_file()


def sigterm_once_running(study: Any, out: Path) -> bool:
    """Run ``study()`` inside lpae.interrupt.interruptible and send this process SIGTERM a second
    after a run of ``out`` is marked running: True when it stopped with Interrupted(SIGTERM). Ray's ray.wait
    replaces the exception by a plain KeyboardInterrupt; the executor must give it back."""

    def send() -> None:
        deadline = time.monotonic() + 60
        while "running" not in statuses(out) and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(1.0)  # all units are submitted at once: by now the study waits inside ray.wait
        os.kill(os.getpid(), signal.SIGTERM)

    previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a late signal must not end pytest
    sender = threading.Thread(target=send, daemon=True)
    try:
        with interruptible():
            sender.start()
            study()
    except Interrupted as error:
        return error.signum == signal.SIGTERM
    finally:
        sender.join()
        signal.signal(signal.SIGTERM, previous)
    return False


def cmdline(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def listening(pids: set[int]) -> list[str]:
    """'ADDRESS:PORT' of every TCP socket that one of ``pids`` listens on (Linux /proc)."""
    inodes: dict[str, int] = {}
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").glob("*"):
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes[target[8:-1]] = pid
    found = []
    for table, size in (("/proc/net/tcp", 4), ("/proc/net/tcp6", 16)):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] != "0A" or fields[9] not in inodes:  # 0A: LISTEN
                continue
            address, port = fields[1].split(":")
            found.append(f"{hex_address(address, size)}:{int(port, 16)}")
    return found


def hex_address(text: str, size: int) -> str:
    """An address of /proc/net/tcp{,6} (32-bit words in host order, little-endian here) as text."""
    import ipaddress

    raw = b"".join(bytes.fromhex(text[i : i + 8])[::-1] for i in range(0, len(text), 8))
    address = ipaddress.ip_address(raw[:size])
    mapped = getattr(address, "ipv4_mapped", None)
    return f"::ffff:{mapped}" if mapped else str(address)


def run_watched(args: list[str], out: Path, kill_when: Any = None, timeout: float = 300) -> dict[str, Any]:
    """Run `lpae study ARGS`, watching the cluster it starts (OUT/ray-logs/cluster.json): its
    processes, what they listen on; SIGKILL the study once ``kill_when(out)`` holds."""
    record = out / LOG_FOLDER / CLUSTER_RECORD
    process = subprocess.Popen([*COMMAND, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen: dict[str, Any] = {"pids": set(), "listening": set(), "commands": set(), "killed": False}
    deadline = time.monotonic() + timeout
    try:
        while process.poll() is None and time.monotonic() < deadline:
            try:
                pids = {pid for pid, _ in json.loads(record.read_text())["processes"]}
            except (OSError, ValueError, KeyError):
                pids = set()
            if pids:
                seen["pids"] |= pids
                seen["listening"] |= set(listening(pids | {process.pid}))  # the study's own too
                seen["commands"] |= {cmdline(pid) for pid in pids} - {""}
            if kill_when is not None and seen["pids"] and kill_when(out):
                os.kill(process.pid, signal.SIGKILL)
                seen["killed"] = True
                break
            time.sleep(0.05)
    finally:
        if process.poll() is None and not seen["killed"]:
            process.kill()
        stdout, stderr = process.communicate()
    seen.update(returncode=process.returncode, stdout=stdout, stderr=stderr)
    return seen


@pytest.mark.slow
def test_ray_cli_killed_and_resumed_equals_local(tmp_path: Path) -> None:
    grid_file = tmp_path / "grid.toml"
    grid_file.write_text(GRID)
    reference = tmp_path / "reference"
    run_study(parse_grid(GRID, str(grid_file)), reference, threads=1, report=False, fuse=False)

    out = tmp_path / "killed"
    options = ["--executor", "ray", "--threads", "1", "--no-fuse", "--quiet", "--no-report"]
    command = [str(grid_file), "--out", str(out), "--workers", "1", *options]
    first = run_watched(command, out, done_at_least(1))
    assert first["killed"], f"the study ended before it could be killed: {first['stderr']}"
    assert "done" in statuses(out) and set(statuses(out)) != {"done"}
    killed_cluster = first["pids"]
    assert killed_cluster, "no cluster processes were recorded"
    # Ray's gcs_server, raylet and workers die with the study process; its two agents take a minute.
    assert gone([p for p in killed_cluster if "ray::" not in cmdline(p)], timeout=20)

    second = run_watched(["--resume", "--out", str(out), "--workers", "2", *options], out)
    assert second["returncode"] == 0, second["stderr"]
    assert second["stderr"] == ""  # --quiet: no Ray lines on the terminal
    assert gone(list(killed_cluster), timeout=5), "the killed study's cluster outlived the resumed one"
    assert gone(list(second["pids"]), timeout=30), "the cluster outlived its study"

    for seen in (first, second):
        assert seen["listening"], "no listening socket of the cluster was seen"
        assert all(address.rsplit(":", 1)[0] in LOOPBACK for address in seen["listening"]), seen["listening"]
        assert not [c for c in seen["commands"] if "dashboard/dashboard.py" in c], seen["commands"]
    logs = out / LOG_FOLDER
    assert len(list(logs.glob("session_*/raylet.out"))) == 2  # the killed cluster's logs too
    assert "Started a local Ray instance" in (logs / "driver.log").read_text()
    assert not (logs / CLUSTER_RECORD).exists()

    got = pd.read_csv(export_table(out)).drop(columns=TIMING_COLUMNS).sort_values("run_id")
    expected = pd.read_csv(export_table(reference)).drop(columns=TIMING_COLUMNS).sort_values("run_id")
    assert set(got["status"]) == {"done"} and len(got) == 4
    pd.testing.assert_frame_equal(got.reset_index(drop=True), expected.reset_index(drop=True))
