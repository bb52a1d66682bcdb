"""Built-in image sets from scikit-image's bundled files, and resizing of image data sets.

- ``faces``: skimage.data.lfw_subset(), 200 grayscale 25 x 25 crops from Labeled Faces in the
  Wild (Huang et al. 2012) in [0, 1]: the first 100 are faces (label 1), the other 100 are
  background crops (label 0). Its values are resampled floats (45,258 distinct values), not
  grey levels: continuous (no quantization).
- ``patches:size=8,image=camera,n=10000,seed=0``: square grayscale patches in [0, 1] cut at
  seeded random positions from photographs that ship inside the scikit-image wheel (8-bit grey
  levels / 255: quantized with bins of width 1/255 on [0, 1]; read from
  the package folder directly, so nothing is ever fetched). ``image=all`` draws from every one.
  Natural images have heavy-tailed statistics: differences of neighbouring pixels have a
  sharply peaked, heavy-tailed distribution, closer to Laplace than Gaussian (Field 1987;
  Simoncelli & Olshausen 2001), which is what makes them a test case for L_p with p < 2.
- ``resize_images(x, size)``: every image to size x size with Pillow's antialiased bilinear
  filter, channel by channel in float.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lpae.data.dataset import Dataset
from lpae.data.quantization import Quantization
from lpae.data.registry import DATASETS
from lpae.spec import Choice, Number, Param

SKIMAGE = ("skimage", "pip install scikit-image pillow")

# Photographs bundled in the scikit-image wheel (skimage/data/); other skimage.data images are
# downloaded on first use and are deliberately absent.
BUNDLED_PHOTOS = {
    "astronaut": "astronaut.png",
    "brick": "brick.png",
    "camera": "camera.png",
    "cell": "cell.png",
    "chelsea": "chelsea.png",
    "clock": "clock_motion.png",
    "coffee": "coffee.png",
    "coins": "coins.png",
    "grass": "grass.png",
    "gravel": "gravel.png",
    "hubble_deep_field": "hubble_deep_field.jpg",
    "immunohistochemistry": "ihc.png",
    "moon": "moon.png",
    "page": "page.png",
    "retina": "retina.jpg",
    "rocket": "rocket.jpg",
    "text": "text.png",
}


def load_faces(**_: object) -> Dataset:
    from skimage.data import lfw_subset

    images = lfw_subset().astype(np.float32)[:, None]  # (200, 1, 25, 25) in [0, 1]
    labels = np.repeat(np.array([1, 0], dtype=np.int64), 100)
    return Dataset("faces", images, labels, kind="image", info={"classes": ["background", "face"]})


def photo(name: str) -> np.ndarray:
    """A bundled photograph as grayscale float32 (H, W) in [0, 1]."""
    import skimage.data
    from PIL import Image

    path = Path(skimage.data.__file__).parent / BUNDLED_PHOTOS[name]
    if not path.is_file():
        raise ValueError(f"patches: image {name!r} is not bundled with this scikit-image ({path} is missing)")
    with Image.open(path) as image:
        gray = image.convert("L")  # ITU-R 601-2 luma
        return np.asarray(gray, dtype=np.float32) / 255.0


def load_patches(size: int, image: str, n: int, seed: int) -> Dataset:
    names = sorted(BUNDLED_PHOTOS) if image == "all" else [image]
    photos = [photo(name) for name in names]
    too_small = [name for name, p in zip(names, photos, strict=True) if min(p.shape) < size]
    if too_small:
        raise ValueError(f"patches: size={size} is larger than image(s) {', '.join(too_small)}")
    rng = np.random.default_rng(seed)
    source = rng.integers(len(photos), size=n)  # which photograph each patch comes from
    patches = np.empty((n, 1, size, size), dtype=np.float32)
    offsets = np.arange(size)
    for idx, p in enumerate(photos):
        rows = np.flatnonzero(source == idx)
        tops = rng.integers(p.shape[0] - size + 1, size=len(rows))
        lefts = rng.integers(p.shape[1] - size + 1, size=len(rows))
        # (R, size, size) gather of each patch by broadcasting row and column indices
        patches[rows, 0] = p[(tops[:, None] + offsets)[:, :, None], (lefts[:, None] + offsets)[:, None, :]]
    labels = source.astype(np.int64) if len(names) > 1 else None
    info = {"images": names, "classes": names if labels is not None else None}
    grey = Quantization.uniform(patches.shape[1:], 1 / 255, 0.0, 1.0)  # 8-bit grey levels / 255
    return Dataset("patches", patches, labels, kind="image", info=info, quantization=grey)


def resize_images(x: np.ndarray, size: int) -> np.ndarray:
    """Images (N, C, H, W) resized to (N, C, size, size)."""
    from PIL import Image

    if x.shape[2:] == (size, size):
        return x
    out = np.empty((*x.shape[:2], size, size), dtype=np.float32)
    for i in range(x.shape[0]):
        for c in range(x.shape[1]):
            channel = Image.fromarray(np.ascontiguousarray(x[i, c], dtype=np.float32))  # mode "F"
            out[i, c] = np.asarray(channel.resize((size, size), Image.Resampling.BILINEAR))
    return out


DATASETS.register(
    "faces",
    load_faces,
    summary="skimage lfw_subset: 100 face and 100 background crops, 25x25 grayscale in [0,1]",
    shape=(1, 25, 25),
    kind="image",
    labels=True,
    requires=SKIMAGE,
)
DATASETS.register(
    "patches",
    load_patches,
    params=[
        Param("size", Number(low=2, low_open=False, integer=True), 8, "patch side in pixels"),
        Param("image", Choice(("all", *sorted(BUNDLED_PHOTOS))), "camera", "bundled photograph"),
        Param("n", Number(low=3, low_open=False, integer=True), 10000, "number of patches"),
        Param("seed", Number(low=0, low_open=False, integer=True), 0, "random seed"),
    ],
    summary="random grayscale patches in [0,1] of photographs bundled with scikit-image "
    "(heavy-tailed); image=all labels each patch by its photograph",
    shape=(1, "size", "size"),
    kind="image",
    labels=False,
    requires=SKIMAGE,
)
