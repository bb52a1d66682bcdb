"""The pieces of lpae.fused against independent references: the table Adam against
torch.optim.Adam / AdamW with clip_grad_norm_ per member, the batched forward pass against each
member's own model, the separability check and merged criterion calls against per-member calls."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from lpae import criteria
from lpae.config import ModelSettings
from lpae.fused.adam import TableAdam
from lpae.fused.losses import MemberLosses, batch_separable, merge_key
from lpae.fused.stacked import StackedAutoencoders
from lpae.models import Autoencoder, VariationalAutoencoder, build_model

CPU = torch.device("cpu")


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


ROWS = [  # (lr, weight decay, adamw, clip)
    (1e-3, 0.0, False, None),
    (3e-2, 0.1, False, 0.5),
    (1e-2, 0.2, True, None),
    (5e-3, 0.0, True, 0.05),
]


@pytest.mark.parametrize("use_kernel", [True, False])
def test_table_adam_matches_torch_per_row(use_kernel: bool) -> None:
    generator = torch.Generator().manual_seed(0)
    n_columns = 50
    start = torch.randn(len(ROWS), n_columns, generator=generator)
    table = start.clone()
    adam = TableAdam(
        n_columns,
        len(ROWS),
        CPU,
        [r[1] for r in ROWS],
        [r[2] for r in ROWS],
        [r[3] for r in ROWS],
        use_kernel=use_kernel,
    )
    references = []
    for row, (lr, decay, decoupled, _) in enumerate(ROWS):
        param = torch.nn.Parameter(start[row].clone())
        kind = torch.optim.AdamW if decoupled else torch.optim.Adam
        references.append((param, kind([param], lr=lr, weight_decay=decay, foreach=False)))
    for _ in range(25):
        grads = torch.randn(len(ROWS), n_columns, generator=generator) * 3
        for row, (param, optimizer) in enumerate(references):
            param.grad = grads[row].clone()
            clip = ROWS[row][3]
            if clip is not None:
                torch.nn.utils.clip_grad_norm_([param], clip)
            optimizer.step()
        adam.step(table, grads.clone(), [r[0] for r in ROWS])
    for row, (param, _) in enumerate(references):
        torch.testing.assert_close(table[row], param.detach(), rtol=1e-6, atol=1e-7)
    assert not torch.allclose(table, start)


@pytest.mark.parametrize("use_kernel", [True, False])
def test_table_adam_with_shared_settings_is_torchs_arithmetic(use_kernel: bool) -> None:
    """Rows with equal settings get bit for bit torch's Adam: its fused kernel (as lpae.train.fit
    uses), or without the kernel its single-tensor path."""
    generator = torch.Generator().manual_seed(1)
    start = torch.randn(3, 40, generator=generator)
    table = start.clone()
    adam = TableAdam(40, 3, CPU, [0.1] * 3, [False] * 3, [None] * 3, use_kernel=use_kernel)
    params = [torch.nn.Parameter(row.clone()) for row in start]
    kind = {"fused": True} if use_kernel else {"foreach": False}
    optimizer = torch.optim.Adam(params, lr=1e-2, weight_decay=0.1, **kind)
    for _ in range(10):
        grads = torch.randn(3, 40, generator=generator)
        for param, grad in zip(params, grads, strict=True):
            param.grad = grad.clone()
        optimizer.step()
        adam.step(table, grads.clone(), [1e-2] * 3)
    assert torch.equal(table, torch.stack([p.detach() for p in params]))


def test_dropping_rows_keeps_the_others_state() -> None:
    generator = torch.Generator().manual_seed(2)
    table = torch.randn(4, 10, generator=generator)
    twin = table[[0, 2]].clone()
    adam = TableAdam(10, 4, CPU, [0.0] * 4, [False] * 4, [None, 1.0, None, 0.3])
    other = TableAdam(10, 2, CPU, [0.0] * 2, [False] * 2, [None, None])
    first = torch.randn(4, 10, generator=generator)
    adam.step(table, first.clone(), [1e-2] * 4)
    other.step(twin, first[[0, 2]].clone(), [1e-2] * 2)
    adam.keep([0, 2])
    assert adam.clip == [None, None]
    table = table[[0, 2]]
    for _ in range(3):
        grads = torch.randn(2, 10, generator=generator)
        adam.step(table, grads.clone(), [1e-2] * 2)
        other.step(twin, grads.clone(), [1e-2] * 2)
    assert torch.equal(table, twin)


def members(kind: str, losses: list[str]) -> list[Autoencoder]:
    built = []
    for seed, loss in enumerate(losses):
        torch.manual_seed(seed)
        settings = ModelSettings(model=kind, hidden=(12, 7), latent=3, activation="elu")
        built.append(build_model((10,), settings, criteria.build(loss, feature_shape=(10,))))
    return built


@pytest.mark.parametrize("kind", ["ae", "vae"])
def test_batched_forward_is_each_members_forward(kind: str) -> None:
    models = members(kind, ["lp:2", "gaussian:scale=predicted", "gennorm:p=learned"])
    stacked = StackedAutoencoders(models, CPU)
    x = torch.randn(3, 5, 10, generator=torch.Generator().manual_seed(3))
    out = stacked.decode(type(models[0]).point_code(stacked.encoder_output(x)))  # a VAE: the mean
    assert out.shape == (3, 5, 20)  # the widest decoder (n_outputs = 2)
    losses, x_hat = stacked.loss(x, out), stacked.reconstruct(out)
    assert losses.shape == (3, 5) and x_hat.shape == x.shape
    for row, model in enumerate(models):
        torch.testing.assert_close(stacked.member_output(out, row), model(x[row]), rtol=1e-6, atol=1e-6)
        expected = model.criterion(x[row], model(x[row]))
        torch.testing.assert_close(losses[row], expected, rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(x_hat[row], model.reconstruct(x[row]), rtol=1e-6, atol=1e-6)
    if kind == "vae":
        assert isinstance(models[0], VariationalAutoencoder)


def test_a_members_weights_come_back_unchanged_and_padding_stays_zero() -> None:
    models = members("ae", ["lp:2", "gaussian:scale=predicted", "student_t:df=learned"])
    before = [{k: v.clone() for k, v in m.state_dict().items()} for m in models]
    stacked = StackedAutoencoders(models, CPU)
    last = stacked.slots["decoder.4.weight"]
    assert last.stored == (12, 20)  # transposed, at the widest output (n_outputs = 2)
    padded = stacked.view(stacked.values[0], last)[:, 10:]
    assert padded.abs().sum() == 0
    for member, model in enumerate(models):
        stacked.release(member, stacked.values[member])
        after = model.state_dict()
        assert list(after) == list(before[member])
        for name, tensor in before[member].items():
            assert torch.equal(after[name], tensor), name


@pytest.mark.parametrize(
    ("spec", "separable"),
    [
        ("lp:2", True),
        ("lp:0.5", True),
        ("huber", True),
        ("gaussian:scale=1", True),
        ("cbernoulli", True),
        ("gaussian:scale=calibrated", False),  # the scale is a statistic of the whole batch
        ("laplace:scale=calibrated", False),
        ("student_t:df=3,scale=calibrated", False),
    ],
)
def test_separability_check(spec: str, separable: bool) -> None:
    assert batch_separable(criteria.build(spec, feature_shape=(6,)), (6,)) is separable


def test_learned_criteria_are_never_merged() -> None:
    assert merge_key(criteria.build("gennorm:p=learned"), (6,)) is None
    assert merge_key(criteria.build("lp:2"), (6,)) == merge_key(criteria.build("l2"), (6,))


def test_merged_calls_equal_per_member_calls() -> None:
    specs = ["lp:2", "gaussian:scale=calibrated", "lp:2", "lp:1", "lp:2", "lp:1"]
    built = [criteria.build(s) for s in specs]
    keys = [merge_key(c, (6,)) for c in built]
    assert keys[0] == keys[2] == keys[4] and keys[1] is None

    def output_of(out: torch.Tensor, row: int) -> torch.Tensor:
        return out[row]

    losses = MemberLosses(built, (6,), output_of, keys)
    assert sorted(map(len, losses.calls)) == [1, 2, 3]
    generator = torch.Generator().manual_seed(4)
    x, out = torch.randn(6, 8, 6, generator=generator), torch.randn(6, 8, 6, generator=generator)
    expected = torch.stack([c(x[row], out[row]) for row, c in enumerate(built)])
    torch.testing.assert_close(losses(x, out), expected, rtol=1e-6, atol=0)
