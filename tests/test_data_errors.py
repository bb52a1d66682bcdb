"""Every bad input of the data issue, driven through `lpae train`: one stderr line naming the file
and the problem, exit code 2, and nothing written where --out points."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from lpae.cli import app
from lpae.data import DataWarning

runner = CliRunner()


def text(content: str, name: str = "data.csv") -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        path = folder / name
        path.write_text(content)
        return path

    return make


def binary_csv(folder: Path) -> Path:
    path = folder / "table.csv"
    with open(path, "wb") as handle:
        np.save(handle, np.arange(100.0))  # .npy bytes: a NUL byte in the header
    return path


def non_utf8_csv(folder: Path) -> Path:
    path = folder / "table.csv"
    path.write_bytes(bytes(range(128, 256)) * 4)
    return path


def image_folder(sizes: list[tuple[int, int]]) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        from PIL import Image

        images = folder / "images"
        images.mkdir()
        for i, (height, width) in enumerate(sizes):
            Image.fromarray(np.full((height, width), 10 * i, np.uint8)).save(images / f"{i}.png")
        return images

    return make


def empty_folder(folder: Path) -> Path:
    (folder / "nothing").mkdir()
    (folder / "nothing" / "notes.txt").write_text("hello")
    return folder / "nothing"


def same_names_in_subfolders(folder: Path) -> Path:
    """Two classes, each with a 9.png, of different sizes: the message must tell them apart."""
    from PIL import Image

    images = folder / "images"
    for label, (height, width) in (("a", (8, 8)), ("b", (12, 10))):
        (images / label).mkdir(parents=True)
        for name in ("1.png", "9.png") if label == "a" else ("9.png",):
            Image.fromarray(np.zeros((height, width), np.uint8)).save(images / label / name)
    return images


def symlink_loop(folder: Path) -> Path:
    os.symlink(folder / "b.csv", folder / "a.csv")
    os.symlink(folder / "a.csv", folder / "b.csv")
    return folder / "a.csv"


def utf16_csv(folder: Path) -> Path:
    path = folder / "excel.csv"
    path.write_text("a,b\n" + "".join(f"{i},{i * i}\n" for i in range(10)), encoding="utf-16")
    return path


def utf16_csv_without_mark(folder: Path) -> Path:
    path = folder / "excel.csv"
    path.write_bytes(("a,b\n" + "".join(f"{i},{i * i}\n" for i in range(10))).encode("utf-16-le"))
    return path


def beyond_float32(folder: Path) -> Path:
    return text("a,b\n" + "".join(f"{i},{i}e38\n" for i in range(1, 8)))(folder)


def missing(folder: Path) -> Path:
    return folder / "missing.csv"


def two_rows(folder: Path) -> Path:
    return text("a,b\n1,2\n3,4\n")(folder)


def object_npy(folder: Path) -> Path:
    path = folder / "objects.npy"
    np.save(path, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    return path


def npz_without_x(folder: Path) -> Path:
    path = folder / "arrays.npz"
    np.savez(path, data=np.ones((5, 2)))
    return path


def bad_idx(folder: Path) -> Path:
    path = folder / "train-images-idx3-ubyte"
    path.write_bytes(bytes([0, 0, 8, 3]) + (10).to_bytes(4, "big") * 3 + b"\x00" * 7)
    return path


# (name, file maker, extra option, text the message must contain)
BAD_INPUTS: list[tuple[str, Callable[[Path], Path], str, str]] = [
    ("missing file", missing, "", "no such file or folder"),
    ("unknown extension", text("1,2\n3,4\n5,6\n", "data.xyz"), "", "unknown file type '.xyz'"),
    ("empty file", text(""), "", "the file is empty"),
    ("blank lines only", text("\n\n  \n"), "", "the file is empty"),
    ("header with no rows", text("a,b,c\n"), "", "has a header but no data rows"),
    ("single row", text("a,b\n1,2\n"), "", "has a single data row"),
    ("two rows", two_rows, "", "has only 2 data rows"),
    ("ragged rows", text("a,b,c\n1,2,3\n4,5\n6,7,8\n"), "", "ragged rows: line 3 has 2 fields, expected 3"),
    ("too many fields", text("a,b\n1,2\n3,4,5\n6,7\n"), "", "ragged rows: line 3 has 3 fields"),
    ("no numeric columns", text("name,city\nann,oslo\nbob,rome\ncid,bonn\n"), "", "no numeric columns"),
    (
        "NaN and inf",
        text("a,b,c\n1,,3\n4,5,inf\n7,8,9\n1,2,3\n"),
        "",
        "2 NaN or infinite value(s) in column(s) b (1), c (1)",
    ),
    ("all constant", text("a,b\n1,2\n1,2\n1,2\n"), "", "every column is constant"),
    (
        "missing label column",
        text("a,b\n1,2\n3,4\n5,6\n"),
        ":label=species",
        "label column 'species' does not exist",
    ),
    (
        "missing label values",
        text("a,b,y\n1,2,p\n3,4,\n5,6,q\n"),
        ":label=y",
        "label column 'y' has 1 missing",
    ),
    ("mixed image sizes", image_folder([(8, 8), (8, 8), (10, 12)]), "", "images have different sizes"),
    ("same names in subfolders", same_names_in_subfolders, "", "(a/9.png is 8x8, b/9.png is 10x12)"),
    ("symlink loop", symlink_loop, "", "a symbolic link that leads nowhere (a loop"),
    ("UTF-16 csv", utf16_csv, "", "is UTF-16 text; lpae reads UTF-8 tables: save it as UTF-8"),
    ("UTF-16 csv without mark", utf16_csv_without_mark, "", "is UTF-16 text"),
    (
        "values beyond float32",
        beyond_float32,
        "",
        "4 value(s) beyond float32's range (|x| > 3.4e38, the working precision) in column(s) b (4)",
    ),
    ("no images", empty_folder, "", "no PNG or JPEG images"),
    ("binary file named .csv", binary_csv, "", "is a binary file"),
    ("non-UTF-8 file named .csv", non_utf8_csv, "", "is not UTF-8 text"),
    ("pickled npy", object_npy, "", "lpae never unpickles"),
    ("npz without x", npz_without_x, "", "no array 'x'; arrays: data"),
    ("truncated IDX", bad_idx, "", "IDX header says shape (10, 10, 10)"),
]


def invoke_train(data: str, out: Path, *extra: str) -> object:
    return runner.invoke(
        app,
        [
            "train",
            "--data",
            data,
            "--out",
            str(out),
            "--epochs",
            "1",
            "--hidden",
            "8",
            "--latent",
            "2",
            *extra,
        ],
    )


def assert_one_line_error(result: object, path: Path, message: str, out: Path) -> None:
    assert result.exit_code == 2, result.output  # type: ignore[attr-defined]
    lines = result.stderr.strip().splitlines()  # type: ignore[attr-defined]
    assert len(lines) == 1, lines
    assert lines[0].startswith("lpae: error:") and "Traceback" not in result.output  # type: ignore[attr-defined]
    assert str(path) in lines[0] and message in lines[0], lines[0]
    assert not out.parent.exists(), "nothing may be written next to --out"


@pytest.mark.parametrize(("case", "make", "option", "message"), BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_is_one_line_and_writes_nothing(
    tmp_path: Path, case: str, make: Callable[[Path], Path], option: str, message: str
) -> None:
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    path = make(inputs)
    out = tmp_path / "runs" / "out"
    with pytest.warns(DataWarning) if case == "no images" else nullcontext():
        result = invoke_train(f"{path}{option}", out)
    assert_one_line_error(result, path, message, out)


@contextmanager
def nullcontext() -> Iterator[None]:
    yield


@contextmanager
def as_user_nobody() -> Iterator[None]:
    """Drop the effective user id to nobody (65534) when running as root, so permissions apply."""
    if os.geteuid() != 0:
        yield
        return
    os.seteuid(65534)
    try:
        yield
    finally:
        os.seteuid(0)


def test_unreadable_file(tmp_path: Path) -> None:
    # pytest's tmp_path sits in a folder only root may enter: use a world-enterable folder in /tmp
    base = Path(tempfile.mkdtemp(prefix="lpae-unreadable-"))
    base.chmod(0o755)
    path = base / "secret.csv"
    path.write_text("a,b\n1,2\n3,4\n5,6\n")
    path.chmod(0o000)
    out = base / "runs" / "out"
    try:
        with as_user_nobody():
            result = invoke_train(str(path), out)
        assert_one_line_error(result, path, "cannot read the file (permission denied)", out)
    finally:
        shutil.rmtree(base)


def test_values_beyond_float32_give_no_warning_first(tmp_path: Path) -> None:
    """The float32 range is checked before the cast, so numpy's overflow warning never shows."""
    import warnings

    from lpae.data import load

    path = beyond_float32(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match="beyond float32's range"):
            load(str(path))


def test_warnings_for_dropped_columns_and_rows_training_still_runs(tmp_path: Path) -> None:
    path = tmp_path / "mixed.csv"
    rows = ["a,name,b,const,c"] + [f"{i},n{i},{i * i % 7},3,{(i * 5) % 11}" for i in range(30)]
    rows[4] = "3,n3,,3,1"
    path.write_text("\n".join(rows) + "\n")
    out = tmp_path / "run"
    with pytest.warns(DataWarning, match="non-numeric"):
        result = invoke_train(str(path), out)  # NaN is an error by default
    assert result.exit_code == 2 and "1 NaN or infinite value(s) in column(s) b (1)" in result.stderr
    assert not out.exists()
    with pytest.warns(DataWarning) as caught:
        result = invoke_train(str(path), out, "--nan", "drop")
    assert result.exit_code == 0, result.output
    messages = " | ".join(str(w.message) for w in caught)
    assert "non-numeric column(s) name" in messages
    assert "constant column(s) const" in messages
    assert "dropped 1 of 30 rows" in messages
    config = json.loads((out / "config.json").read_text())
    assert config["data"]["nan"] == "drop" and config["data"]["shape"] == [3]
    assert config["data"]["n_samples"] == 29
    with pytest.warns(DataWarning) as caught:
        result = runner.invoke(app, ["eval", str(out)])  # reloads the file with the stored --nan drop
    assert "dropped 1 of 30 rows" in " | ".join(str(w.message) for w in caught)
    assert result.exit_code == 0, result.output


def test_bad_nan_option_and_mixed_sizes_resolved_by_image_size(tmp_path: Path) -> None:
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    folder = image_folder([(8, 8), (9, 9), (10, 12), (8, 8), (8, 9), (12, 8)])(inputs)
    result = invoke_train(str(folder), tmp_path / "bad" / "out", "--nan", "maybe")
    assert result.exit_code == 2 and "--nan 'maybe' is not allowed" in result.stderr
    out = tmp_path / "run"
    result = invoke_train(str(folder), out, "--image-size", "6", "--arch", "mlp")
    assert result.exit_code == 0, result.output
    config = json.loads((out / "config.json").read_text())
    assert config["data"]["image_size"] == 6 and config["data"]["shape"] == [1, 6, 6]
