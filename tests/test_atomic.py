"""lpae.atomic: a file or folder appears complete under its final name or not at all."""

from __future__ import annotations

import json
import math
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from lpae.atomic import staging_dir, write_json, write_text, write_with


@pytest.fixture
def umask_022() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_an_error_mid_write_keeps_the_old_file_and_leaves_no_temporary(
    tmp_path: Path, error: type[BaseException]
) -> None:
    path = tmp_path / "metrics.json"
    write_text(path, "old\n")

    def half_write(tmp: Path) -> None:
        tmp.write_text("half of the ne")
        assert path.read_text() == "old\n"  # the final name still shows the old file mid-write
        raise error("killed")

    with pytest.raises(error, match="killed"):
        write_with(path, half_write)
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_json_round_trip_with_nan_and_a_new_folder(tmp_path: Path) -> None:
    path = tmp_path / "new" / "folder" / "a.json"
    assert write_json(path, {"x": [1, 2], "bad": math.nan}) == path
    text = path.read_text()
    assert text.endswith("}\n") and "NaN" in text
    loaded = json.loads(text)
    assert loaded["x"] == [1, 2] and math.isnan(loaded["bad"])
    with pytest.raises(TypeError):  # not serialisable: nothing is written
        write_json(path, {"x": object()})
    assert json.loads(path.read_text())["x"] == [1, 2]
    assert [p.name for p in path.parent.iterdir()] == ["a.json"]


def test_files_and_folders_get_the_umask_permissions(tmp_path: Path, umask_022: None) -> None:
    """mkstemp and mkdtemp create 0o600 and 0o700; the results get what open and mkdir would give."""
    assert mode(write_text(tmp_path / "a.txt", "a")) == 0o644
    with staging_dir(tmp_path / "run") as tmp:
        (tmp / "config.json").write_text("{}")
    assert mode(tmp_path / "run") == 0o755


def test_staging_dir_replaces_only_on_success(tmp_path: Path) -> None:
    out = tmp_path / "run"
    with staging_dir(out) as tmp:
        assert tmp.parent == tmp_path and not out.exists()
        (tmp / "a.txt").write_text("first")
    assert (out / "a.txt").read_text() == "first"

    with pytest.raises(ValueError, match="already exists"), staging_dir(out):
        pass
    with pytest.raises(RuntimeError, match="boom"), staging_dir(out, overwrite=True) as tmp:
        (tmp / "a.txt").write_text("second")
        raise RuntimeError("boom")
    assert (out / "a.txt").read_text() == "first"  # the failed write left the old run alone

    with staging_dir(out, overwrite=True) as tmp:
        (tmp / "b.txt").write_text("second")
    assert sorted(p.name for p in out.iterdir()) == ["b.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["run"]  # no staging folder left behind


def test_a_folder_is_not_overwritten_by_a_file(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    with pytest.raises(ValueError, match="is a folder; give the name of a file to write"):
        write_text(tmp_path / "out", "x")
    assert (tmp_path / "out").is_dir() and [p.name for p in tmp_path.iterdir()] == ["out"]
