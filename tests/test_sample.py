"""Generation from VAEs: lpae.generate and `lpae sample` (prior samples, decoder mean or draw,
latent interpolation, PNG for images, CSV for tables, one-line errors)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from lpae import criteria
from lpae.cli import app
from lpae.config import ModelSettings, RunSpec, TrainSettings
from lpae.experiment import train_run
from lpae.generate import INTERPOLATION_STEPS, Generated, decode, image_grid, interpolation, prior_samples
from lpae.models import VariationalAutoencoder, build_model
from lpae.runs import load_run, prepare_data

runner = CliRunner()

RUNS = {
    "mlp-gaussian": ("digits", "gaussian:scale=learned", "mlp"),
    "conv-gennorm": ("digits", "gennorm:p=1.5,scale=learned", "conv"),
    "mlp-lp2": ("digits", "lp:2", "mlp"),
    "iris-student": ("iris", "student_t:df=3,scale=calibrated", "mlp"),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny VAE runs, one epoch each."""
    found = {}
    for name, (data, loss, arch) in RUNS.items():
        out = tmp_path_factory.mktemp("sample") / name
        spec = RunSpec(
            data=data,
            loss=loss,
            model=ModelSettings(model="vae", arch=arch, hidden=(8,) if arch == "conv" else (32,), latent=4),
            train=TrainSettings(epochs=1, batch_size=128, seed=0),
        )
        train_run(spec, out)
        found[name] = out
    return found


def sample(args: list[str]) -> tuple[int, str, str]:
    result = runner.invoke(app, ["sample", *args])
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("name", ["mlp-gaussian", "conv-gennorm"])
@pytest.mark.parametrize("noise", [False, True])
def test_prior_samples_shape_range_and_seeding(runs: dict[str, Path], name: str, noise: bool) -> None:
    run = load_run(runs[name])
    first = prior_samples(run, 12, seed=3, noise=noise)
    assert first.x.shape == (12, 64) and first.image_shape == (1, 8, 8)
    assert np.isfinite(first.x).all()
    assert first.low == 0.0 and first.high == 16.0  # digits' training range, which images are clipped to
    assert first.x.min() >= first.low and first.x.max() <= first.high
    again = prior_samples(run, 12, seed=3, noise=noise)
    np.testing.assert_array_equal(first.x, again.x)
    other = prior_samples(run, 12, seed=4, noise=noise)
    assert not np.array_equal(first.x, other.x)


def test_noise_draws_differ_from_the_mean(runs: dict[str, Path]) -> None:
    run = load_run(runs["mlp-gaussian"])
    mean, draw = prior_samples(run, 8, seed=0), prior_samples(run, 8, seed=0, noise=True)
    assert not np.allclose(mean.x, draw.x)


def test_global_rng_is_left_as_it_was(runs: dict[str, Path]) -> None:
    run = load_run(runs["mlp-gaussian"])
    torch.manual_seed(11)
    expected = torch.rand(3)
    torch.manual_seed(11)
    prior_samples(run, 4, seed=0, noise=True)
    np.testing.assert_array_equal(torch.rand(3).numpy(), expected.numpy())


def test_interpolation_runs_from_the_first_item_to_the_last(runs: dict[str, Path]) -> None:
    run = load_run(runs["mlp-gaussian"])
    line = interpolation(run, 0, 5)
    assert line.x.shape == (INTERPOLATION_STEPS, 64)
    prepared = prepare_data(run.config)
    with torch.no_grad():
        ends = run.model.reconstruct(prepared.tensor("test")[[0, 5]]).numpy()
    expected = np.clip(prepared.preprocessor.inverse(ends), 0.0, 16.0)
    np.testing.assert_allclose(line.x[[0, -1]], expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["mlp-gaussian", "conv-gennorm", "mlp-lp2"])
def test_cli_writes_a_readable_png(runs: dict[str, Path], name: str, tmp_path: Path) -> None:
    out = tmp_path / "samples.png"
    code, stdout, stderr = sample([str(runs[name]), "--n", "10", "--out", str(out), "--seed", "1"])
    assert code == 0, stderr
    assert "wrote 10 decoder means" in stdout
    with Image.open(out) as picture:
        width, height = picture.size
    # 10 tiles in a 4 x 3 grid of 32 x 32 pixels (8 x 8 repeated 4 times) with 1-pixel gaps
    assert (width, height) == (4 * 33 - 1, 3 * 33 - 1)


def test_cli_seeds_the_png(runs: dict[str, Path], tmp_path: Path) -> None:
    paths = [tmp_path / f"{name}.png" for name in ("a", "b", "c")]
    for path, seed in zip(paths, ["5", "5", "6"], strict=True):
        args = [str(runs["mlp-gaussian"]), "--n", "4", "--noise", "--seed", seed, "--out", str(path)]
        code, _, stderr = sample(args)
        assert code == 0, stderr
    a, b, c = (np.asarray(Image.open(path)) for path in paths)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_cli_interpolation_png(runs: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "line.png"
    code, stdout, stderr = sample([str(runs["conv-gennorm"]), "--interpolate", "2,7", "--out", str(out)])
    assert code == 0, stderr
    assert f"wrote {INTERPOLATION_STEPS} decoder means" in stdout
    with Image.open(out) as picture:
        assert picture.size == (3 * 33 - 1, 3 * 33 - 1)


def test_cli_writes_csv_for_tabular_data(runs: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "samples.csv"
    code, _, stderr = sample([str(runs["iris-student"]), "--n", "7", "--noise", "--out", str(out)])
    assert code == 0, stderr
    lines = out.read_text().splitlines()
    assert lines[0] == "x0,x1,x2,x3" and len(lines) == 1 + 7
    values = np.loadtxt(out, delimiter=",", skiprows=1)
    assert values.shape == (7, 4) and np.isfinite(values).all()
    # original units: iris measurements in centimetres, not standardised values around 0
    assert 2.0 < float(values[:, 0].mean()) < 10.0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--n", "0"], "--n must be an integer from 1"),
        (["--n", "-3"], "--n must be an integer from 1"),
        (["--interpolate", "1"], "--interpolate needs two test items"),
        (["--interpolate", "a,b"], "--interpolate needs two test items"),
        (["--interpolate", "0,100000"], "test item 100000 does not exist"),
        (["--out", "samples.csv"], "image data are written as .png"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(
    runs: dict[str, Path], tmp_path: Path, args: list[str], message: str
) -> None:
    defaults = {"--out": str(tmp_path / "samples.png")}
    given = dict(zip(args[::2], args[1::2], strict=True))
    if "--out" in given:
        given["--out"] = str(tmp_path / given["--out"])
    options = [item for key, value in {**defaults, **given}.items() for item in (key, value)]
    code, _, stderr = sample([str(runs["mlp-gaussian"]), *options])
    assert code == 2 and stderr.startswith("lpae: error:") and message in stderr
    assert len(stderr.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_noise_from_a_plain_loss_is_refused(runs: dict[str, Path], tmp_path: Path) -> None:
    code, _, stderr = sample([str(runs["mlp-lp2"]), "--noise", "--out", str(tmp_path / "s.png")])
    assert code == 2 and "lp:p=2 is a plain loss" in stderr and "only a mean" in stderr
    assert len(stderr.strip().splitlines()) == 1 and not (tmp_path / "s.png").exists()


def test_a_non_vae_run_and_a_missing_run_are_refused(digits_run: Path, tmp_path: Path) -> None:
    code, _, stderr = sample([str(digits_run), "--out", str(tmp_path / "s.png")])
    assert code == 2 and "needs a VAE run" in stderr and len(stderr.strip().splitlines()) == 1
    code, _, stderr = sample([str(tmp_path / "nosuch"), "--out", str(tmp_path / "s.png")])
    assert code == 2 and "no such run directory" in stderr
    assert list(tmp_path.iterdir()) == []


LIKELIHOODS = [
    "gaussian:scale=predicted",
    "laplace:scale=0.5",
    "gennorm:p=learned,scale=learned_per_feature",
    "student_t:df=learned,scale=learned",
    "barron_nll:alpha=learned,scale=learned",
    "barron_nll:alpha=0,scale=0.3",
    "cbernoulli",
    "beta:concentration=predicted",
]


@pytest.mark.parametrize("arch", ["mlp", "conv"])
@pytest.mark.parametrize("spec", LIKELIHOODS)
def test_every_likelihood_decodes_means_and_draws(spec: str, arch: str) -> None:
    """An untrained VAE of each likelihood: draws and means of the right shape, finite, in the
    family's support, seeded."""
    torch.manual_seed(0)
    shape = (1, 8, 8)
    criterion = criteria.build(spec, feature_shape=shape)
    settings = ModelSettings(model="vae", arch=arch, hidden=(8,), latent=3)
    model = build_model(shape, settings, criterion)
    assert isinstance(model, VariationalAutoencoder)
    model.eval()
    z = torch.randn(5, 3)
    val = torch.rand(6, *shape) * 0.98 + 0.01
    for noise in (False, True):
        x = decode(model, z, noise, 7, val)
        assert x.shape == (5, *shape) and bool(torch.isfinite(x).all())
        if criterion.support == "unit":
            assert bool(((x >= 0) & (x <= 1)).all())
        torch.testing.assert_close(x, decode(model, z, noise, 7, val), rtol=0, atol=0)
    assert not torch.equal(decode(model, z, True, 7, val), decode(model, z, True, 8, val))


def test_image_grid_layout() -> None:
    x = np.linspace(0, 1, 5 * 12).reshape(5, 12).astype(np.float32)  # five 1 x 3 x 4 images
    grid = image_grid(Generated(x, (1, 3, 4), 0.0, 1.0), min_pixels=3)
    assert grid.shape == (2 * 4 - 1, 3 * 5 - 1)
    np.testing.assert_allclose(grid[:3, :4], x[0].reshape(3, 4))
    np.testing.assert_allclose(grid[4:7, 5:9], x[4].reshape(3, 4))
    assert (grid[3] == 1).all() and (grid[4:7, 10:] == 1).all()  # gaps and the empty sixth tile
