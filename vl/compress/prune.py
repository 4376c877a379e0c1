"""Structured pruning of the encoder with Torch-Pruning (its DependencyGraph finds what must shrink
together): conv-stem channels (with their BatchNorms), MLP hidden channels and whole attention heads
(its `num_heads` mapping, as its timm/HF ViT examples do). The width of the token stream (what every
head reads) is kept: the layers writing into it are ignored, so the heads need no change.

Channels are ranked by weight magnitude (`magnitude`, L2 over each dependency group) or by first-order
Taylor saliency |w * dL/dw| (`taylor`, from the gradients of a few training batches: call the loss's
backward() before prune()). One-shot pruning at the smallest ratio (found by bisection) that brings the
encoder's FLOPs on one image to
`flops_ratio` of the start. The new shapes go into config.compression["prune"] ({module path: weight
shape}, {attention path: heads}), so from_pretrained rebuilds them before loading.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
import torch_pruning as tp
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from vl.errors import ConfigError

IMPORTANCES = ("magnitude", "taylor")
BISECTIONS = 7  # the pruning ratio is found to within max_ratio / 2^7


def encoder_flops(encoder: nn.Module, pixels: torch.Tensor) -> float:
    """FLOPs of one encoder pass on `pixels` (torch's FlopCounterMode)."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        encoder(pixels)
    return float(counter.get_total_flops())


def prune_encoder(
    model: nn.Module, flops_ratio: float, importance: str = "magnitude", max_ratio: float = 0.9, forward: Callable[[], Any] | None = None
) -> dict[str, Any]:
    """Prune model.encoder (a built-in ViT) until its FLOPs are at most `flops_ratio` of now; record the
    new shapes in model.config.compression["prune"] and return that record with the FLOPs before/after.
    taylor: `forward()` must return a loss over a few batches (it is backpropagated once)."""
    if not 0 < flops_ratio < 1:
        raise ConfigError(f"the FLOPs ratio to keep must be in (0, 1), got {flops_ratio}")
    if importance not in IMPORTANCES:
        raise ConfigError(f"importance must be one of {', '.join(IMPORTANCES)}, got '{importance}'")
    record = dict(getattr(model.config, "compression", {}) or {})
    if record:
        raise ConfigError(f"this model is {', '.join(record)}-compressed already; prune the original model (then factor or quantize the pruned one)")
    encoder = model.encoder
    if not hasattr(encoder, "blocks") or not hasattr(encoder, "stem"):
        raise ConfigError(f"pruning needs the built-in ViT encoder (stem and blocks), not {type(encoder).__name__}")
    cfg = model.config.encoder
    pixels = torch.zeros(1, cfg.get("channels", 3), cfg["image_size"], cfg["image_size"])
    if importance == "taylor":
        if forward is None:
            raise ConfigError("taylor importance needs training batches to take gradients from")
        model.zero_grad()
        forward().backward()
    start = encoder_flops(encoder, pixels)
    # one-shot pruning at the smallest ratio that reaches the target (bisection on copies: Torch-Pruning's
    # iterative schedule takes a whole head away at every step)
    low, high = 0.0, max_ratio
    best = _pruned(encoder, pixels, high, importance)
    if (flops := encoder_flops(best, pixels)) > flops_ratio * start:
        raise ConfigError(f"pruning up to {max_ratio:.0%} of each layer leaves {flops / start:.0%} of the FLOPs, not {flops_ratio:.0%}; ask for less")
    for _ in range(BISECTIONS):
        mid = (low + high) / 2
        candidate = _pruned(encoder, pixels, mid, importance)
        if (f := encoder_flops(candidate, pixels)) <= flops_ratio * start:
            high, best, flops = mid, candidate, f
        else:
            low = mid
    before = _shapes(encoder)
    model.encoder = best
    model.zero_grad(set_to_none=True)
    shapes = {f"encoder.{p}": s for p, s in _shapes(best).items() if s != before[p]}
    heads = {f"encoder.blocks.{i}.attn": b.attn.heads for i, b in enumerate(best.blocks)}
    model.config.compression = {"prune": {"shapes": shapes, "heads": heads}}
    return {"flops_before": start, "flops_after": flops, "layers": len(shapes), "ratio": high}


def _pruned(encoder: nn.Module, pixels: torch.Tensor, ratio: float, importance: str) -> nn.Module:
    """A copy of the encoder with `ratio` of each prunable group's channels (and of its heads) removed."""
    original, encoder = encoder, copy.deepcopy(encoder)
    for src, dst in zip(original.parameters(), encoder.parameters()):  # deepcopy leaves gradients (Taylor's input) behind
        dst.grad = None if src.grad is None else src.grad.clone()
    blocks = encoder.blocks
    stream = [m for m in encoder.stem.modules() if isinstance(m, nn.Conv2d)][-1:]  # the stem's projection to the token width
    stream += [b.attn.proj for b in blocks] + [b.mlp.fc2 for b in blocks]  # (they write the token stream: kept)
    fewest = min(b.attn.heads for b in blocks)
    pruner = tp.pruner.MetaPruner(
        encoder,
        pixels,
        importance=tp.importance.GroupMagnitudeImportance(p=2) if importance == "magnitude" else tp.importance.GroupTaylorImportance(),
        pruning_ratio=ratio,
        ignored_layers=stream,
        num_heads={b.attn.qkv: b.attn.heads for b in blocks},
        prune_num_heads=True,
        prune_head_dims=False,
        head_pruning_ratio=min(ratio, (fewest - 1) / fewest),  # (it rounds up: at least one head stays)
        # parameters outside Linear/Conv/Norm layers, by the axis that holds the channels
        unwrapped_parameters=[(encoder.pos, 2)] + [(p, 0) for n, p in encoder.named_parameters() if n.endswith(".gamma")],
    )
    pruner.step()
    for block in blocks:
        block.attn.heads = pruner.num_heads[block.attn.qkv]
    return encoder


def apply_prune(model: nn.Module, record: dict[str, Any]) -> None:
    """The pruned shapes of a saved model, rebuilt (weights uninitialised: loading fills them)."""
    for path, shape in record.get("shapes", {}).items():
        parent_path, _, name = path.rpartition(".")
        try:
            parent = model.get_submodule(parent_path)
            old = getattr(parent, name)
        except AttributeError:
            raise ConfigError(f"the prune record names '{path}', which this model does not have; was it made from another model?") from None
        setattr(parent, name, _resized(old, shape, path))
    for path, heads in record.get("heads", {}).items():
        model.get_submodule(path).heads = int(heads)


def _shapes(module: nn.Module) -> dict[str, list[int]]:
    return {p: list(m.weight.shape) for p, m in module.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d, nn.BatchNorm2d))}


def _resized(old: nn.Module, shape: list[int], path: str) -> nn.Module:
    """A fresh module like `old` with weight shape `shape`."""
    if isinstance(old, nn.Linear):
        return nn.Linear(shape[1], shape[0], bias=old.bias is not None)
    if isinstance(old, nn.Conv2d):
        return nn.Conv2d(shape[1] * old.groups, shape[0], old.kernel_size, old.stride, old.padding, old.dilation, old.groups, old.bias is not None)
    if isinstance(old, nn.BatchNorm2d):
        return nn.BatchNorm2d(shape[0], old.eps, old.momentum, old.affine, old.track_running_stats)
    raise ConfigError(f"the prune record names '{path}', a {type(old).__name__}, which pruning does not resize; was it made from another model?")
