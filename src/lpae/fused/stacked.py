"""K same-shaped MLP autoencoders held as one parameter table and run as one batched model.

Layout: every member's parameters, in the order of its own ``state_dict``, fill one row of a
table ``values`` of shape (K, P): first the encoder's and decoder's Linear layers, then the
member's criterion parameters (members may hold different criteria; shorter rows are padded with
zeros). Each layer's stacked weight is a view of the table,

    W^T (K, in, out) = values[:, a:b].view(K, in, out),   bias (K, 1, out) = values[:, b:c].view(K, 1, out),

weights stored transposed (nn.Linear keeps W as (out, in)) so that the gradient of a batched
multiply, (K, in, out), adds into its table view with unit stride. One layer of all members is a
single batched multiply (torch.baddbmm), member k computing h_k @ W_k^T + b_k as nn.Linear does
for that member alone. Gradients land in the matching
views of a table ``grads`` (K, P), so the optimizer (lpae.fused.adam) works on two tensors.

The members' decoders may end in layers of different widths (criteria with n_outputs = 1 and 2):
that last layer is stacked at the widest width, the narrower members' extra rows held at zero. A
zero row has a zero output that no loss reads, so its gradient is zero, and Adam (with or without
weight decay) leaves it at zero: the padding never changes what a member computes.

Each member keeps its own criterion module (learned scale and shape included); its parameters are
re-pointed at views of that member's row, so they train with the member's optimizer state.
Members are initialised member by member from the ordinary models (lpae.models.build_model under
the member's seed), so a member starts from exactly the weights it would have alone.

The stacked members are a ``lpae.models.Members`` group (unbind, stack, encoder_output, decode,
loss, reconstruct on (K, B, ...) tensors), so each member's model class computes their objective
itself (``member_objective``). What this module batches is the networks, and only those it can
batch exactly are accepted (:func:`batch_problem`; ValueError otherwise): encoder and decoder
``nn.Sequential`` stacks of ``nn.Linear`` layers with biases and the activations of
lpae.models.ACTIVATION_LAYERS, and no trained parameter outside them and the criterion (the
table holds no others, so such a parameter would never be updated).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from lpae.criteria import Criterion
from lpae.fused.losses import MemberLosses, merge_key
from lpae.models import ACTIVATION_LAYERS, Autoencoder

NETS = ("encoder", "decoder")


@dataclass(frozen=True)
class Slot:
    """Where one layer parameter lives in a row of the table: offset and stored shape, which is
    the (widest) parameter's shape, reversed for a weight: (in, out) for nn.Linear's (out, in)."""

    offset: int
    stored: tuple[int, ...]

    @property
    def size(self) -> int:
        return math.prod(self.stored)

    @property
    def transposed(self) -> bool:
        return len(self.stored) == 2


def layer_names(model: Autoencoder) -> list[str]:
    """Names of the encoder's and decoder's parameters, in state_dict order."""
    return [name for name, _ in model.named_parameters() if name.split(".")[0] in NETS]


def batch_problem(model: Autoencoder) -> str | None:
    """Why StackedAutoencoders cannot batch ``model`` exactly, in words; None when it can."""
    if not isinstance(model, Autoencoder):
        return f"a {type(model).__name__} is not an lpae autoencoder"
    name = type(model).__name__
    if model.settings.arch != "mlp":
        return f"only MLP autoencoders train fused, not arch {model.settings.arch!r}"
    for net in NETS:
        layers = getattr(model, net, None)
        if not isinstance(layers, nn.Sequential):
            return f"a {name} whose {net} is not an nn.Sequential of layers cannot train fused"
        for index, layer in enumerate(layers):
            if type(layer) is nn.Linear and layer.bias is not None:
                continue
            if type(layer) not in ACTIVATION_LAYERS.values():
                allowed = ", ".join(kind.__name__ for kind in ACTIVATION_LAYERS.values())
                return (
                    f"{name} layer {net}.{index} ({layer}) cannot train fused: only Linear layers with "
                    f"bias and the activations {allowed} can"
                )
    outside = [n for n, _ in model.named_parameters() if n.split(".")[0] not in (*NETS, "criterion")]
    if outside:
        return (
            f"a {name} with parameters outside its encoder, decoder and criterion "
            f"({', '.join(outside)}) cannot train fused"
        )
    return None


def layer_kinds(model: Autoencoder, net: str) -> list[str]:
    """A net's layers as members must share them: Linear layers by kind (the last one's width may
    differ), activations with their settings (the template's modules run for every member)."""
    return [type(m).__name__ if isinstance(m, nn.Linear) else repr(m) for m in getattr(model, net)]


def check_stackable(models: Sequence[Autoencoder]) -> None:
    """Raise ValueError unless every member can be batched (:func:`batch_problem`) and all are of
    one model class, sample shape and architecture."""
    template = models[0]
    for index, model in enumerate(models):
        problem = batch_problem(model)
        if problem is not None:
            raise ValueError(f"member {index}: {problem}; train it with lpae.train.fit")
        if type(model) is not type(template) or model.shape != template.shape:
            raise ValueError(
                f"member {index}: a {type(model).__name__} on samples of shape {model.shape} cannot "
                f"train with a {type(template).__name__} on samples of shape {template.shape}"
            )
        for net in NETS:
            kinds = layer_kinds(model, net)
            if kinds != layer_kinds(template, net):
                raise ValueError(f"member {index}: its {net} layers {kinds} differ from member 0's")
        names = layer_names(model)
        if names != layer_names(template):
            raise ValueError(f"member {index}: its parameters differ from member 0's")
        last = names[-2:]  # the decoder's last weight and bias may differ in their output width
        for name, param in model.named_parameters():
            if name not in names:
                continue
            other = dict(template.named_parameters())[name]
            if param.shape != other.shape and not (name in last and param.shape[1:] == other.shape[1:]):
                raise ValueError(
                    f"member {index}: parameter {name} has shape {tuple(param.shape)}, member 0's "
                    f"{tuple(other.shape)}: members must share one architecture"
                )


class StackedAutoencoders:
    """The parameter table of K members, their batched forward pass and their criteria: the
    ``lpae.models.Members`` group of the active rows, whose model class computes their objective."""

    def __init__(
        self,
        models: Sequence[Autoencoder],
        device: torch.device,
        order: Sequence[int] | None = None,
        schedules: Sequence[object] | None = None,
    ) -> None:
        """Stack ``models``; table row i holds member ``order[i]`` (default: the given order).

        ``schedules``: each member's continuation schedule (lpae.criteria.continuation); members
        whose criteria anneal share a criterion call only with the same schedule."""
        check_stackable(models)
        for model in models:
            model.criterion.to(device)  # its parameters are re-pointed at the table; buffers stay
        self.by_member = list(models)
        self.template = models[0]
        self.sample_shape = self.template.shape
        self.n_features = math.prod(self.sample_shape)
        self.merge_keys = [merge_key(m.criterion, self.sample_shape) for m in models]
        for member, model in enumerate(models):
            key = self.merge_keys[member]
            if key is not None and model.criterion.continued and schedules is not None:
                self.merge_keys[member] = f"{key}|{schedules[member]}"
        names = layer_names(self.template)
        self.slots: dict[str, Slot] = {}
        offset = 0
        for name in names:
            shapes = [tuple(dict(m.named_parameters())[name].shape) for m in models]
            widest = tuple(max(dims) for dims in zip(*shapes, strict=True))
            self.slots[name] = Slot(offset, widest[::-1])
            offset += math.prod(widest)
        self.model_size = offset
        # Criterion parameters of each member: (name, offset, shape) within its row.
        self.criterion_slots: list[list[tuple[str, int, tuple[int, ...]]]] = []
        width = 0
        for model in models:
            slots, cursor = [], offset
            for name, param in model.criterion.named_parameters():
                slots.append((name, cursor, tuple(param.shape)))
                cursor += param.numel()
            self.criterion_slots.append(slots)
            width = max(width, cursor)
        self.original_params = [dict(m.criterion.named_parameters()) for m in models]
        self.out_widths = [dict(m.named_parameters())[names[-1]].shape[0] if names else 0 for m in models]
        self.rows = list(range(len(models)) if order is None else order)  # member of each table row
        if sorted(self.rows) != list(range(len(models))):
            raise ValueError(f"order must list each member once, got {list(self.rows)}")
        values = torch.zeros(len(models), width, device=device)
        with torch.no_grad():
            for row, member in enumerate(self.rows):
                own = dict(models[member].named_parameters())
                for name, slot in self.slots.items():
                    self.member_view(values[row], slot, own[name].shape).copy_(own[name])
                for name, start, shape in self.criterion_slots[member]:
                    values[row, start : start + math.prod(shape)] = own["criterion." + name].reshape(-1)
        self.values = values
        self.grads = torch.zeros_like(values)
        self.bind()

    @staticmethod
    def view(row: Tensor, slot: Slot) -> Tensor:
        """A parameter as stored in a table row (P,): padded, a weight transposed."""
        return row[slot.offset : slot.offset + slot.size].view(slot.stored)

    @classmethod
    def member_view(cls, row: Tensor, slot: Slot, shape: Sequence[int]) -> Tensor:
        """A member's parameter of ``shape`` in its own layout, as a view of a table row (P,)."""
        stored = cls.view(row, slot)
        if slot.transposed:
            return stored[: shape[1], : shape[0]].t()  # (out, in) from stored (in, out)
        return stored[: shape[0]]

    def layer_param(self, name: str) -> nn.Parameter:
        """Stacked parameter sharing memory with the table, its grad with ``grads``: a weight
        transposed, (K, in, out), ready for baddbmm; a bias as (K, 1, out) to broadcast over rows."""
        slot = self.slots[name]
        columns = slice(slot.offset, slot.offset + slot.size)
        shape = (len(self.rows), *slot.stored) if slot.transposed else (len(self.rows), 1, *slot.stored)
        param = nn.Parameter(self.values[:, columns].view(shape))
        param.grad = self.grads[:, columns].view(shape)
        return param

    def bind(self) -> None:
        """(Re)create the stacked layers and point the active members' criteria at their rows."""
        # Per net: (weight^T (K, in, out), bias (K, 1, out)) for a Linear, the module for an activation.
        self.layers: dict[str, list[tuple[nn.Parameter, nn.Parameter] | nn.Module]] = {}
        for net in NETS:
            ops: list[tuple[nn.Parameter, nn.Parameter] | nn.Module] = []
            for index, module in enumerate(getattr(self.template, net)):
                if isinstance(module, nn.Linear):
                    ops.append(
                        (self.layer_param(f"{net}.{index}.weight"), self.layer_param(f"{net}.{index}.bias"))
                    )
                else:
                    ops.append(module)
            self.layers[net] = ops
        for i, member in enumerate(self.rows):
            criterion = self.by_member[member].criterion
            for name, start, shape in self.criterion_slots[member]:
                size = math.prod(shape)
                param = nn.Parameter(self.values[i, start : start + size].view(shape))
                param.grad = self.grads[i, start : start + size].view(shape)
                set_parameter(criterion, name, param)
        self.models = [self.by_member[m] for m in self.rows]
        self.losses = MemberLosses(
            self.criteria(), self.sample_shape, self.member_output, [self.merge_keys[m] for m in self.rows]
        )

    def keep(self, positions: Sequence[int]) -> None:
        """Keep only the table rows at ``positions`` (members that go on training); rebind views."""
        index = torch.as_tensor(list(positions), dtype=torch.long, device=self.values.device)
        self.values = self.values.index_select(0, index)
        self.grads = torch.zeros_like(self.values)
        self.rows = [self.rows[p] for p in positions]
        self.bind()

    def criteria(self) -> list[Criterion]:
        """The criterion of each active row."""
        return [self.by_member[m].criterion for m in self.rows]

    def run(self, net: str, h: Tensor) -> Tensor:
        """One net of every member: (K, B, in) -> (K, B, out)."""
        for op in self.layers[net]:
            if isinstance(op, tuple):
                weight, bias = op
                h = torch.baddbmm(bias, h, weight)
            else:
                h = op(h)  # element-wise activation
        return h

    def unbind(self, t: Tensor) -> Sequence[Tensor]:
        """Each active row's part of a member tensor (K, B, ...): (B, ...) each."""
        return t.unbind(0)

    def stack(self, parts: Sequence[Tensor]) -> Tensor:
        """The member tensor (K, B, ...) of the active rows' parts, in row order."""
        return torch.stack(list(parts))

    def encoder_output(self, x: Tensor) -> Tensor:
        """Encoder output (K, B, code) of member inputs x (K, B, *sample_shape)."""
        return self.run("encoder", x.reshape(x.shape[0], x.shape[1], self.n_features))

    def decode(self, z: Tensor) -> Tensor:
        """Decoder output (K, B, widest output) of codes z (K, B, latent)."""
        return self.run("decoder", z)

    def member_output(self, out: Tensor, position: int) -> Tensor:
        """Member ``position``'s decoder output shaped as its own model's: (B, n_outputs * C, ...)."""
        member = self.rows[position]
        flat = out[position, :, : self.out_widths[member]]
        n_outputs = self.by_member[member].criterion.n_outputs
        shape = self.sample_shape
        return flat.reshape(flat.shape[0], shape[0] * n_outputs, *shape[1:])

    def loss(self, x: Tensor, out: Tensor) -> Tensor:
        """Each member's criterion on its rows: (K, B), from x (K, B, *shape) and outputs (K, B, W)."""
        return self.losses(x, out)

    def reconstruct(self, out: Tensor) -> Tensor:
        """Each member's point reconstruction (K, B, *shape) of decoder outputs (K, B, W)."""
        criteria = self.criteria()
        return torch.stack([c.reconstruct(self.member_output(out, i)) for i, c in enumerate(criteria)])

    def state_dict(self, member: int, row: Tensor) -> dict[str, Tensor]:
        """Member ``member``'s weights, as its own model's state_dict, read from a table row (P,)."""
        model = self.by_member[member]
        state = {}
        for name, tensor in model.state_dict().items():
            if name in self.slots:
                slot = self.slots[name]
                state[name] = self.member_view(row, slot, tensor.shape).clone(
                    memory_format=torch.contiguous_format
                )
            else:
                state[name] = tensor.detach().clone()
        for name, start, shape in self.criterion_slots[member]:
            state["criterion." + name] = row[start : start + math.prod(shape)].view(shape).clone()
        return state

    def release(self, member: int, row: Tensor) -> Autoencoder:
        """Give member ``member`` its own parameters back, set to the weights in ``row`` (P,)."""
        model = self.by_member[member]
        for name, param in self.original_params[member].items():
            set_parameter(model.criterion, name, param)
        model.to("cpu")
        model.load_state_dict(self.state_dict(member, row.detach().cpu()))
        return model


def set_parameter(module: nn.Module, dotted: str, param: nn.Parameter) -> None:
    """Replace the parameter registered as ``dotted`` (e.g. ``scale.raw``) inside ``module``."""
    *path, leaf = dotted.split(".")
    owner = module
    for part in path:
        owner = getattr(owner, part)
    setattr(owner, leaf, param)
