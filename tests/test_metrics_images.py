"""PSNR and SSIM against skimage.metrics, and known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from lpae.metrics import image_metrics, psnr, ssim
from lpae.metrics.images import image_view, ssim_window


def noisy_images(shape: tuple[int, ...], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.random(shape)
    return x, x + 0.1 * rng.standard_normal(shape)


def test_psnr_equals_skimage_per_image() -> None:
    x, y = noisy_images((6, 1, 9, 9))
    expected = np.mean([peak_signal_noise_ratio(a, b, data_range=1.0) for a, b in zip(x, y, strict=True)])
    assert psnr(x, y, 1.0) == pytest.approx(expected, rel=1e-12)


def test_psnr_of_a_constant_offset() -> None:
    x = np.zeros((3, 1, 4, 4))
    assert psnr(x, x + 2.0, 255.0) == pytest.approx(20 * math.log10(255.0 / 2.0))
    assert psnr(x, x, 1.0) == math.inf


@pytest.mark.parametrize("shape", [(5, 1, 28, 28), (4, 3, 10, 12), (3, 1, 8, 8), (2, 2, 5, 6)])
def test_ssim_equals_skimage(shape: tuple[int, ...]) -> None:
    x, y = noisy_images(shape, seed=1)
    window = ssim_window(shape[2], shape[3])
    expected = np.mean(
        [
            structural_similarity(a, b, data_range=1.0, channel_axis=0, win_size=window)
            for a, b in zip(x, y, strict=True)
        ]
    )
    assert ssim(x, y, 1.0) == pytest.approx(expected, abs=1e-10)


def test_ssim_known_answers() -> None:
    x, _ = noisy_images((3, 1, 8, 8))
    assert ssim(x, x, 1.0) == pytest.approx(1.0)
    assert ssim(x, 1.0 - x, 1.0) < 0  # an inverted image is anti-correlated
    assert ssim_window(2, 10) is None and ssim_window(6, 9) == 5 and ssim_window(30, 30) == 7


def test_image_view_and_image_metrics() -> None:
    assert image_view((1, 28, 28), {}) == (1, 28, 28)
    assert image_view((64,), {"image_shape": [1, 8, 8]}) == (1, 8, 8)
    assert image_view((64,), {}) is None and image_view((30,), {"image_shape": [1, 8, 8]}) is None
    x = np.tile(np.linspace(0, 16, 64), (4, 1))  # flat digits-like rows, range 16
    found = image_metrics(x, x + 1.0, (1, 8, 8))
    assert found["psnr"] == pytest.approx(20 * math.log10(16.0))
    assert found["ssim"] == pytest.approx(ssim(x.reshape(4, 1, 8, 8), x.reshape(4, 1, 8, 8) + 1.0, 16.0))
    assert image_metrics(np.ones((2, 4)), np.ones((2, 4)), (1, 2, 2)) == {}  # no data range
