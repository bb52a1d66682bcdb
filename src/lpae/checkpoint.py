"""Training checkpoints without pickle: one safetensors file, tensors in its body, JSON in its header.

A checkpoint holds everything needed to continue training bit for bit: the current and the best
weights, the optimizer state, the states of the random generators, the epoch and the early-stopping
bookkeeping. Tensors are stored under prefixed names (``model/``, ``best/``, ``optimizer/<i>/``,
``rng/``); the rest is JSON in the safetensors header metadata under the key ``lpae``. One file
means one atomic rename (lpae.atomic): a reader sees the old checkpoint or the new one, never a
mix, even when the writer is killed mid-write.

An optimizer's ``state_dict()`` is ``{"state": {i: {name: tensor or number}}, "param_groups":
[...]}``; its tensors go to ``optimizer/<i>/<name>``, and the numbers and the param groups to JSON.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import Tensor

from lpae.atomic import write_with

FORMAT = "lpae-checkpoint"


def save_checkpoint(path: Path, tensors: dict[str, Tensor], meta: dict[str, Any]) -> None:
    """Write ``tensors`` and JSON ``meta`` to ``path`` atomically (temporary file, then rename)."""
    cpu = {name: tensor.detach().cpu().contiguous() for name, tensor in tensors.items()}
    header = {"lpae": json.dumps({"format": FORMAT, **meta})}
    write_with(path, lambda tmp: save_file(cpu, str(tmp), metadata=header))


def load_checkpoint(path: Path) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Read a checkpoint back: its tensors (on the CPU) and its JSON metadata."""
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = json.loads((handle.metadata() or {}).get("lpae", "{}"))
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118
    except (OSError, ValueError, SafetensorError) as error:
        raise ValueError(f"{path}: not a readable lpae checkpoint ({error})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{path}: not an lpae checkpoint")
    return tensors, meta


def prefixed(prefix: str, state: dict[str, Tensor]) -> dict[str, Tensor]:
    return {f"{prefix}/{name}": tensor for name, tensor in state.items()}


def unprefixed(prefix: str, tensors: dict[str, Tensor]) -> dict[str, Tensor]:
    start = len(prefix) + 1
    return {name[start:]: tensor for name, tensor in tensors.items() if name.startswith(prefix + "/")}


def flatten_optimizer(state_dict: dict[str, Any]) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Split an optimizer state dict into tensors and JSON (see the module docstring)."""
    tensors: dict[str, Tensor] = {}
    numbers: dict[str, dict[str, Any]] = {}
    for index, values in state_dict["state"].items():
        numbers[str(index)] = {}
        for name, value in values.items():
            if isinstance(value, Tensor):
                tensors[f"optimizer/{index}/{name}"] = value
            else:
                numbers[str(index)][name] = value
    return tensors, {"state": numbers, "param_groups": state_dict["param_groups"]}


def unflatten_optimizer(tensors: dict[str, Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    """The inverse of :func:`flatten_optimizer`: a state dict ``optimizer.load_state_dict`` takes."""
    state: dict[int, dict[str, Any]] = {int(index): dict(values) for index, values in meta["state"].items()}
    for name, tensor in unprefixed("optimizer", tensors).items():
        index, _, key = name.partition("/")
        state.setdefault(int(index), {})[key] = tensor
    return {"state": state, "param_groups": meta["param_groups"]}


def generator_states(generators: dict[str, torch.Generator]) -> dict[str, Tensor]:
    """RNG states as uint8 tensors: the named generators and torch's global CPU generator."""
    states = {f"rng/{name}": gen.get_state() for name, gen in generators.items()}
    states["rng/torch"] = torch.get_rng_state()
    return states


def restore_generators(tensors: dict[str, Tensor], generators: dict[str, torch.Generator]) -> None:
    for name, gen in generators.items():
        gen.set_state(tensors[f"rng/{name}"])
    torch.set_rng_state(tensors["rng/torch"])
