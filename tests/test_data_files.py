"""User files: every format round-trips (values, labels, shapes), header detection, spec rules."""

from __future__ import annotations

import gzip
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lpae.data import DataWarning, is_file_spec, load, normalize_spec
from lpae.data.convert import FileOptions, Raw
from lpae.data.delimited import has_header
from lpae.data.files import FORMATS, Format

rng = np.random.default_rng(0)


def table(n: int = 20) -> tuple[pd.DataFrame, np.ndarray]:
    """A table of 4 continuous columns and a string label column, and the expected label codes."""
    x = rng.normal(size=(n, 4)).round(6)
    species = rng.choice(["setosa", "versicolor", "virginica"], size=n)
    frame = pd.DataFrame(x, columns=["a", "b", "c", "d"])
    frame["species"] = species
    codes = np.searchsorted(np.unique(species), species)
    return frame, codes


@pytest.mark.parametrize("suffix", [".csv", ".tsv"])
def test_delimited_round_trip_with_header_and_label(tmp_path: Path, suffix: str) -> None:
    frame, codes = table()
    path = tmp_path / f"t{suffix}"
    frame.to_csv(path, index=False, sep="\t" if suffix == ".tsv" else ",")
    dataset = load(f"{path}:label=species")
    np.testing.assert_allclose(dataset.x, frame[["a", "b", "c", "d"]].to_numpy(), rtol=1e-6)
    np.testing.assert_array_equal(dataset.y, codes)
    assert dataset.kind == "tabular" and dataset.shape == (4,)
    assert dataset.info["columns"] == ["a", "b", "c", "d"]
    assert dataset.info["classes"] == ["setosa", "versicolor", "virginica"]


def test_headerless_csv_columns_are_named_by_position(tmp_path: Path) -> None:
    x = rng.normal(size=(10, 3))
    x[:, 2] = rng.integers(0, 3, size=10)
    path = tmp_path / "plain.csv"
    np.savetxt(path, x, delimiter=",")
    dataset = load(f"{path}:label=2")
    np.testing.assert_allclose(dataset.x, x[:, :2], rtol=1e-6)
    np.testing.assert_array_equal(dataset.y, x[:, 2].astype(int))
    assert dataset.info["columns"] == ["0", "1"]


def test_parquet_round_trip(tmp_path: Path) -> None:
    frame, codes = table()
    path = tmp_path / "t.parquet"
    frame.to_parquet(path)
    dataset = load(f"{path}:label=species")
    np.testing.assert_allclose(dataset.x, frame[["a", "b", "c", "d"]].to_numpy(), rtol=1e-6)
    np.testing.assert_array_equal(dataset.y, codes)


def test_npy_shapes(tmp_path: Path) -> None:
    tab = rng.normal(size=(12, 5)).astype(np.float32)
    gray = rng.uniform(size=(12, 6, 7)).astype(np.float32)
    last = rng.uniform(size=(12, 6, 7, 3)).astype(np.float32)
    for name, array in (("tab", tab), ("gray", gray), ("last", last)):
        np.save(tmp_path / f"{name}.npy", array)
    assert np.array_equal(load(str(tmp_path / "tab.npy")).x, tab)
    images = load(str(tmp_path / "gray.npy"))
    assert images.kind == "image" and images.shape == (1, 6, 7)
    assert np.array_equal(images.x[:, 0], gray)
    colour = load(str(tmp_path / "last.npy"))
    assert colour.shape == (3, 6, 7)
    assert np.array_equal(colour.x, np.moveaxis(last, 3, 1))


def test_npz_x_y_and_named_key(tmp_path: Path) -> None:
    x = rng.normal(size=(15, 4)).astype(np.float32)
    y = rng.integers(0, 3, size=15)
    np.savez(tmp_path / "plain.npz", x=x, y=y)
    dataset = load(str(tmp_path / "plain.npz"))
    assert np.array_equal(dataset.x, x) and np.array_equal(dataset.y, y)

    images = rng.integers(0, 256, size=(9, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=9)
    np.savez_compressed(
        tmp_path / "mnist.npz", x_train=images, y_train=labels, x_test=images[:4], y_test=labels[:4]
    )
    train = load(f"{tmp_path / 'mnist.npz'}:key=x_train")
    assert train.shape == (1, 28, 28) and np.array_equal(train.x[:, 0], images)
    assert np.array_equal(train.y, labels)
    with pytest.raises(ValueError, match=r"no array 'x'; arrays: x_train"):
        load(str(tmp_path / "mnist.npz"))


def write_idx(path: Path, array: np.ndarray, type_code: int) -> None:
    header = bytes([0, 0, type_code, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    payload = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as handle:
        handle.write(payload)


@pytest.mark.parametrize("gz", ["", ".gz"])
def test_idx_images_with_sibling_labels(tmp_path: Path, gz: str) -> None:
    images = rng.integers(0, 256, size=(7, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=7).astype(np.uint8)
    write_idx(tmp_path / f"train-images-idx3-ubyte{gz}", images, 0x08)
    write_idx(tmp_path / f"train-labels-idx1-ubyte{gz}", labels, 0x08)
    dataset = load(str(tmp_path / f"train-images-idx3-ubyte{gz}"))
    assert dataset.kind == "image" and dataset.shape == (1, 28, 28)
    assert np.array_equal(dataset.x[:, 0], images) and np.array_equal(dataset.y, labels)


def test_idx_float_matrix_big_endian(tmp_path: Path) -> None:
    x = rng.normal(size=(5, 3))
    write_idx(tmp_path / "values.idx", x, 0x0E)
    np.testing.assert_allclose(load(str(tmp_path / "values.idx")).x, x, rtol=1e-6)


def save_png(path: Path, array: np.ndarray) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def test_image_folder_grayscale_round_trip(tmp_path: Path) -> None:
    pixels = rng.integers(0, 256, size=(4, 6, 5), dtype=np.uint8)
    for i, image in enumerate(pixels):
        save_png(tmp_path / "imgs" / f"{i}.png", image)
    dataset = load(str(tmp_path / "imgs"))
    assert dataset.kind == "image" and dataset.shape == (1, 6, 5) and dataset.y is None
    assert np.array_equal(dataset.x[:, 0], pixels)


def test_image_folder_classes_colour_and_resize(tmp_path: Path) -> None:
    gray = rng.integers(0, 256, size=(8, 8), dtype=np.uint8)
    colour = rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
    save_png(tmp_path / "imgs" / "cat" / "a.png", gray)
    save_png(tmp_path / "imgs" / "cat" / "b.png", gray)
    save_png(tmp_path / "imgs" / "dog" / "c.png", colour)
    dataset = load(str(tmp_path / "imgs"))
    assert dataset.shape == (3, 8, 8)  # one colour image makes every image RGB
    assert np.array_equal(dataset.x[0], np.repeat(gray[None], 3, axis=0))
    assert np.array_equal(dataset.x[2], np.moveaxis(colour, 2, 0))
    assert dataset.y.tolist() == [0, 0, 1] and dataset.info["classes"] == ["cat", "dog"]
    small = load(str(tmp_path / "imgs"), image_size=4)
    assert small.shape == (3, 4, 4)
    # a constant image stays constant under resizing
    save_png(tmp_path / "flat" / "a.png", np.full((10, 6), 77, np.uint8))
    save_png(tmp_path / "flat" / "b.png", np.full((10, 6), 77, np.uint8))
    save_png(tmp_path / "flat" / "c.png", np.full((10, 6), 77, np.uint8))
    np.testing.assert_allclose(load(str(tmp_path / "flat"), image_size=3).x, 77.0, atol=1e-3)


def test_builtin_images_resize_and_tabular_refuses() -> None:
    faces = load("faces", image_size=12)
    assert faces.shape == (1, 12, 12)
    with pytest.raises(ValueError, match="--image-size applies to image data"):
        load("digits", image_size=8)


def test_non_numeric_and_constant_columns_are_dropped_with_warnings(tmp_path: Path) -> None:
    path = tmp_path / "mixed.csv"
    path.write_text("a,name,b,const\n1,x,2,5\n2,y,3,5\n3,z,1,5\n4,w,0,5\n")
    with pytest.warns(DataWarning) as caught:
        dataset = load(str(path))
    messages = " | ".join(str(w.message) for w in caught)
    assert "non-numeric column(s) name (e.g. 'x')" in messages
    assert "constant column(s) const (= 5)" in messages
    assert dataset.info["columns"] == ["a", "b"] and dataset.x.tolist()[0] == [1.0, 2.0]
    assert dataset.info["dropped_non_numeric"] == ["name"] and dataset.info["dropped_constant"] == ["const"]


def test_nan_drop_drops_rows_and_labels(tmp_path: Path) -> None:
    path = tmp_path / "gaps.csv"
    path.write_text("a,b,label\n1,2,p\n,3,q\n4,inf,p\n5,6,q\n7,8,p\n9,1,q\n")
    with pytest.warns(DataWarning, match="dropped 2 of 6 rows"):
        dataset = load(f"{path}:label=label", nan="drop")
    assert dataset.x.tolist() == [[1, 2], [5, 6], [7, 8], [9, 1]]
    assert dataset.y.tolist() == [0, 1, 0, 1]
    with pytest.raises(ValueError, match="--nan"):
        load(str(path), nan="ignore")


def test_image_nan_policy(tmp_path: Path) -> None:
    images = rng.uniform(size=(6, 4, 4)).astype(np.float32)
    images[1, 0, 0] = np.nan
    np.save(tmp_path / "img.npy", images)
    with pytest.raises(ValueError, match="1 NaN or infinite pixel value"):
        load(str(tmp_path / "img.npy"))
    with pytest.warns(DataWarning, match="dropped 1 image"):
        assert len(load(str(tmp_path / "img.npy"), nan="drop").x) == 5


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ([["a", "b"], ["1", "2"]], True),
        ([["1", "2"], ["3", "4"]], False),
        ([["id", "2.5"], ["7", "3.5"]], True),  # text over numbers in column 0
        ([["x", "2.5"], ["y", "3.5"]], False),  # a text column, no header
        ([["a", "b"]], True),
        ([["1", "2"]], False),
    ],
)
def test_header_detection(rows: list[list[str]], expected: bool) -> None:
    assert has_header(rows) is expected


def test_spec_detection_and_canonical_form(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert is_file_spec("data/table.csv:label=species")
    assert is_file_spec("table.parquet") and is_file_spec("train-images-idx3-ubyte.gz")
    assert not is_file_spec("digits") and not is_file_spec("synthetic:dim=4")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "digits").mkdir()
    (tmp_path / "myfolder").mkdir()
    assert not is_file_spec("digits")  # a registered name wins over a folder of that name
    assert is_file_spec("./digits") and is_file_spec("myfolder")
    assert normalize_spec("synthetic:n=2000,noise=laplace") == "synthetic:noise=laplace"
    assert normalize_spec(" data/t.csv:label=y ") == "data/t.csv:label=y"


def test_file_option_errors(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("a,b\n1,2\n3,4\n5,7\n")
    with pytest.raises(ValueError, match="unknown option"):
        load(f"{path}:colour=red")
    with pytest.raises(ValueError, match="a path containing ':' is not supported"):
        load(f"{path}:species")
    with pytest.raises(ValueError, match="option\\(s\\) key do not apply"):
        load(f"{path}:key=x")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load(str(path)).shape == (2,)


def test_sixteen_bit_png_keeps_its_values(tmp_path: Path) -> None:
    pixels = (np.arange(48, dtype=np.uint16).reshape(6, 8) * 1000).astype(np.uint16)
    for name in "abc":
        save_png(tmp_path / "deep" / f"{name}.png", pixels)
    dataset = load(str(tmp_path / "deep"))
    assert dataset.shape == (1, 6, 8) and np.array_equal(dataset.x[0, 0], pixels.astype(np.float32))


def test_new_format_is_one_reader_one_registry_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A toy format (whitespace-separated columns) gets spec detection, options and every check."""

    def read_toy(path: Path, options: FileOptions) -> Raw:
        return Raw(pd.read_csv(path, sep=r"\s+"), label_column=options.label)

    monkeypatch.setitem(FORMATS, ".toy", Format("toy", read_toy, ("label",)))
    assert is_file_spec("table.toy")
    path = tmp_path / "t.toy"
    path.write_text("a b c kind\n1 2 0 p\n3 5 0 q\n4 1 0 p\n")
    with pytest.warns(DataWarning, match="dropping constant column"):
        dataset = load(f"{path}:label=kind")
    assert dataset.x.tolist() == [[1, 2], [3, 5], [4, 1]] and dataset.y.tolist() == [0, 1, 0]
    assert dataset.info["columns"] == ["a", "b"] and dataset.info["classes"] == ["p", "q"]
    path.write_text("a b\n1 2\nnan 5\n4 1\n7 7\n")
    with pytest.raises(ValueError, match=r"1 NaN or infinite value\(s\) in column\(s\) a \(1\)"):
        load(str(path))
    with pytest.raises(ValueError, match=r"option\(s\) key do not apply; a \.toy file takes only label"):
        load(f"{path}:key=x")
    unknown = tmp_path / "t.xyz"
    unknown.write_text("1\n")
    known = "csv, tsv, parquet, npy, npz, IDX (.idx, -idx3-ubyte, optionally .gz), toy or a folder of PNG"
    with pytest.raises(ValueError, match=f"unknown file type '.xyz'; lpae reads {re.escape(known)}"):
        load(str(unknown))
