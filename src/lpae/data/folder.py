"""A folder of images (PNG or JPEG): its reader.

- Images directly in the folder are unlabelled; with sub-folders (and no loose images), each
  sub-folder is a class, labelled 0..K-1 in sorted order of the names (as torchvision's
  ImageFolder). Hidden files are skipped; other files are skipped with a warning.
- Grayscale images give 1 channel; if any image has colour, all are read as RGB (3 channels,
  grayscale repeated). Alpha is dropped. Pixel values stay in 0..255 (16-bit PNGs in 0..65535).
- All images must have one size, or ``image_size`` resizes each to image_size x image_size
  (antialiased bilinear; the aspect ratio is not kept). Mixed sizes without it are an error that
  names two files of different sizes.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from lpae.data.convert import FileOptions, Raw
from lpae.data.dataset import DataWarning

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
COLOUR_MODES = ("RGB", "RGBA", "P", "CMYK", "YCbCr", "LAB", "HSV", "PA", "RGBX")


def list_images(folder: Path) -> tuple[list[Path], list[int] | None, list[str]]:
    """Image paths, their labels (None when unlabelled) and the class names."""
    entries = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    loose = [p for p in entries if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    subfolders = [p for p in entries if p.is_dir()]
    others = [p for p in entries if p.is_file() and p.suffix.lower() not in IMAGE_SUFFIXES]
    if loose or not subfolders:
        skip(folder, others)
        return loose, None, []
    paths: list[Path] = []
    labels: list[int] = []
    for label, sub in enumerate(subfolders):
        files = sorted(p for p in sub.iterdir() if p.is_file() and not p.name.startswith("."))
        skip(sub, [p for p in files if p.suffix.lower() not in IMAGE_SUFFIXES])
        images = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
        paths += images
        labels += [label] * len(images)
    skip(folder, others)
    return paths, labels, [sub.name for sub in subfolders]


def skip(folder: Path, others: list[Path]) -> None:
    if others:
        names = ", ".join(p.name for p in others[:5]) + (" ..." if len(others) > 5 else "")
        warnings.warn(
            f"{folder}: skipping {len(others)} file(s) that are not PNG or JPEG: {names}",
            DataWarning,
            stacklevel=3,
        )


def read_image_folder(folder: Path, options: FileOptions) -> Raw:
    paths, labels, classes = list_images(folder)
    if not paths:
        raise ValueError(f"{folder}: no PNG or JPEG images in this folder")
    headers = [image_header(path) for path in paths]  # (size, mode) read without decoding pixels
    colour = any(mode in COLOUR_MODES for _, mode in headers)
    if options.image_size is None:
        sizes = {size: path for (size, _), path in zip(headers, paths, strict=True)}
        if len(sizes) > 1:
            (size_a, path_a), (size_b, path_b) = list(sizes.items())[:2]
            raise ValueError(
                f"{folder}: images have different sizes ({path_a.relative_to(folder)} is "
                f"{size_a[0]}x{size_a[1]}, {path_b.relative_to(folder)} is {size_b[0]}x{size_b[1]}); "
                "pass --image-size N to resize them to N x N"
            )
    arrays = [read_image(path, colour, options.image_size) for path in paths]  # each (C, H, W)
    return Raw(
        np.stack(arrays),  # (N, C, H, W)
        labels=None if labels is None else np.asarray(labels, dtype=np.int64),
        info={"files": len(paths), "classes": classes or None, "image_size": options.image_size},
    )


def image_header(path: Path) -> tuple[tuple[int, int], str]:
    """(width, height) and mode of an image file; an unreadable file raises ValueError."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return image.size, image.mode
    except (UnidentifiedImageError, OSError) as error:
        raise ValueError(f"{path}: cannot read as an image ({error})") from None


def read_image(path: Path, colour: bool, image_size: int | None) -> np.ndarray:
    """One image file as float32 (C, H, W), converted to RGB or grayscale and resized if asked."""
    from PIL import Image

    try:
        with Image.open(path) as opened:
            image: Image.Image = opened
            if colour:
                image = image.convert("RGB")
            elif image.mode not in ("L", "I", "I;16", "F"):
                image = image.convert("L")
            if image.mode.startswith("I"):
                image = image.convert("I").convert("F")  # 16-bit grayscale keeps its values
            if image_size is not None:
                image = image.resize((image_size, image_size), Image.Resampling.BILINEAR)
            array = np.asarray(image, dtype=np.float32)
    except OSError as error:  # truncated or corrupt pixel data
        raise ValueError(f"{path}: cannot read as an image ({error})") from None
    return array[None] if array.ndim == 2 else np.moveaxis(array, 2, 0)
