"""Data: built-in sets, synthetic generators, user files, splits and preprocessing.

``load(spec, nan="error", image_size=None)`` is the one entry point; it returns a :class:`Dataset`.
A spec is a registered name with arguments (``digits``, ``synthetic:noise=laplace,dim=64``,
``keel:magic``, ``cifar10:path=DIR`` for a local copy of a standard benchmark's files; see
``lpae datasets``) or a file path with options
(``path/to/table.csv:label=species``; see lpae.data.files). ``nan`` says what to do with NaN or
infinite values in files: "error" (the default) or "drop" the rows. ``image_size`` resizes image
data to image_size x image_size (needed for a folder of images of mixed sizes).
"""

from lpae.data import cifar, idx_folder, images, keel, mnist, sklearn_sets, synthetic  # noqa: F401  (register)
from lpae.data.convert import check_nan_policy
from lpae.data.dataset import Dataset, DataWarning, Splits, split_indices
from lpae.data.files import looks_like_path, read_file
from lpae.data.preprocess import Preprocessor, default_method, fit_preprocessor
from lpae.data.quantization import Quantization
from lpae.data.registry import DATASETS, PATH_PARAM, missing_requirement, source_files


def is_file_spec(spec: str) -> bool:
    """Whether a data spec names a file or folder rather than a registered data set."""
    name = spec.partition(":")[0].strip()
    return looks_like_path(name, registered=name in DATASETS)


def load(spec: str, nan: str = "error", image_size: int | None = None, mmap: bool = False) -> Dataset:
    """Load a data set by spec, e.g. ``load("digits")`` or ``load("data/table.csv:label=species")``;
    ``mmap``: keep a .npy file memory-mapped (lpae.data.stream; files.read_file)."""
    check_nan_policy(nan)
    if image_size is not None and (isinstance(image_size, bool) or not isinstance(image_size, int)):
        raise TypeError(f"image_size must be an integer, got {image_size!r}")
    if image_size is not None and image_size < 1:
        raise ValueError(f"--image-size must be a positive integer, got {image_size}")
    if is_file_spec(spec):
        dataset = read_file(spec, nan, image_size, mmap=mmap)
    else:
        entry, values = DATASETS.resolve(spec)
        command = missing_requirement(entry.name, values)
        if command is not None:
            raise ValueError(f"data set {entry.name!r} needs an optional package: {command}")
        dataset = entry.factory(**values)
    if image_size is not None:
        if dataset.kind != "image":
            raise ValueError(
                f"--image-size applies to image data; {spec!r} is {dataset.kind} with shape {dataset.shape}"
            )
        resized = images.resize_images(dataset.x, image_size)
        if resized.shape != dataset.x.shape:  # interpolated values lie on no lattice
            dataset.quantization = None
        dataset.x = resized
        if dataset.clean is not None:  # a clean reference (lpae.data.clean) follows the images
            dataset.clean = images.resize_images(dataset.clean, image_size)
        dataset.info["image_size"] = image_size
    return dataset


def normalize_spec(spec: str) -> str:
    """The canonical text of a data spec (registered sets); a file spec is returned stripped."""
    if is_file_spec(spec):
        return spec.strip()
    return DATASETS.normalize(spec)


__all__ = [
    "DATASETS",
    "PATH_PARAM",
    "DataWarning",
    "Dataset",
    "Preprocessor",
    "Quantization",
    "Splits",
    "default_method",
    "fit_preprocessor",
    "is_file_spec",
    "load",
    "missing_requirement",
    "normalize_spec",
    "source_files",
    "split_indices",
]
