"""The Ray executor on a local ray.init(num_cpus=2): same rows and metrics as in-process training,
with run folders written by the study process from the files each task sends back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lpae.study import Store, parse_grid, run_study

ray = pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'lpae[ray]'")

GRID = """
name = "tiny-ray"
seeds = [0, 1]
criteria = ["l1", "l2"]
data = ["digits"]
[[models]]
hidden = [16]
latent = 4
[train]
epochs = 2
checkpoint_every = 0
"""


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
