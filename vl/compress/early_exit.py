"""Early exits: copies of a classifying head (vqa, tag, classify) after some encoder blocks, each with its
own LayerNorm, trained jointly with the full-depth head. At inference an item leaves at the first exit
whose answer is confident enough (the head's `threshold`), and the blocks after it are not run for it.

The record, `config.compression["early_exit"]`, rebuilds the exits on load:

    {"blocks": [1, 2, 3], "heads": ["vqa", "tag"], "weight": 1.0, "threshold": {"vqa": 0.9}}

- blocks: the encoder blocks after which every exit head reads the token stream (1 .. depth - 1; 0 reads
  the stem's tokens, before any block, where the stem is most of the encoder's cost).
- weight: each exit's loss counts this much beside the full-depth head's (training only).
- threshold: per head, the confidence at which an item exits; a head without one runs at full depth,
  exactly as the model without exits (so a freshly trained model answers as before until it is tuned,
  e.g. by `python -m tasks.compress exits`, which picks thresholds on one split).

Confidence: vqa and classify, the top softmax probability; tag, the least certain tag's max(p, 1 - p)
(every tag decided). Each row (a question, an image) exits on its own; an image's blocks run while any
of its rows is still undecided, so answers do not depend on which rows share a batch.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from vl.errors import ConfigError

EXIT_HEADS = ("vqa", "tag", "classify")  # heads that answer with one set of logits per row


class Exit(nn.Module):
    """One exit: its own LayerNorm over the token stream after a block, and a copy of the head."""

    def __init__(self, norm: nn.Module, head: nn.Module):
        super().__init__()
        self.norm, self.head = copy.deepcopy(norm), copy.deepcopy(head)


class EarlyExits(nn.Module):
    """The exits of a VLModel (model.early_exit); run(encoder, heads, pixels, tasks) stands in for the
    model's encoder pass + heads: the joint loss in training, adaptive depth in eval with a threshold."""

    def __init__(self, encoder: nn.Module, heads: nn.ModuleDict, spec: dict[str, Any]):
        super().__init__()
        unknown = set(spec) - {"blocks", "heads", "weight", "threshold"}
        if unknown:
            raise ConfigError(f"early_exit has no {sorted(unknown)}; it takes blocks, heads, weight and threshold")
        if not all(hasattr(encoder, a) for a in ("embed", "blocks", "finish")):
            raise ConfigError(f"early exits need an encoder that runs block by block (vit); this one is a '{type(encoder).__name__}'")
        depth = len(encoder.blocks)
        self.blocks = sorted({int(b) for b in spec.get("blocks", [])})
        if not self.blocks or not all(0 <= b < depth for b in self.blocks):
            last = "0 is the stem's tokens, the last block is the full model"
            raise ConfigError(f"early_exit.blocks must name blocks 0 .. {depth - 1} of this {depth}-block encoder ({last}), got {spec.get('blocks')}")
        names = list(spec.get("heads") or [n for n, h in heads.items() if h.registry_name in EXIT_HEADS])
        for name in names:
            if name not in heads:
                raise ConfigError(f"early_exit.heads names '{name}', but the model's heads are {list(heads)}")
            if heads[name].registry_name not in EXIT_HEADS:
                raise ConfigError(f"early_exit.heads: '{name}' is a {heads[name].registry_name} head; exits are for {', '.join(EXIT_HEADS)} heads")
        if not names:
            raise ConfigError(f"early_exit: the model has no {', '.join(EXIT_HEADS)} head to exit from")
        self.weight = float(spec.get("weight", 1.0))
        self.threshold = {n: float(t) for n, t in (spec.get("threshold") or {}).items()}
        for name, t in self.threshold.items():
            if name not in names or not 0 < t <= 1:
                raise ConfigError(f"early_exit.threshold: '{name}: {t}' must be a confidence in (0, 1] for one of the exit heads {names}")
        self.exits = nn.ModuleDict({n: nn.ModuleList(Exit(encoder.norm, heads[n]) for _ in self.blocks) for n in names})
        self.kinds = {n: heads[n].registry_name for n in names}
        self.depth = depth
        self.forced: tuple[str, int, list[torch.Tensor]] | None = None  # see forced_exit()
        self.blocks_run: dict[str, tuple[int, int]] = {}  # per head, (blocks, rows) of adaptive inference so far

    def record(self) -> dict[str, Any]:
        """The config.compression["early_exit"] entry that rebuilds these exits."""
        return {"blocks": self.blocks, "heads": list(self.exits), "weight": self.weight, "threshold": dict(self.threshold)}

    def run(self, encoder: nn.Module, heads: nn.ModuleDict, pixels: torch.Tensor, tasks: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """{head: its outputs} for the images and each head's fields, as VLModel.forward returns them."""
        (name, fields), *more = tasks.items()
        if not self.training and not more and self.forced is not None and self.forced[0] == name:
            return {name: self.leave_at(encoder, heads[name], pixels, name, fields, self.forced[1])}
        if not self.training and not more and self.threshold.get(name):
            return {name: self.adaptive(encoder, heads[name], pixels, name, fields, self.threshold[name])}
        training = self.training and any(n in self.exits for n in tasks)
        x = encoder.embed(pixels)
        streams = {0: x} if training and 0 in self.blocks else {}
        for k, block in enumerate(encoder.blocks, 1):
            x = block(x)
            if training and k in self.blocks:
                streams[k] = x
        tokens = encoder.finish(x)
        outs = {n: heads[n](tokens, f) for n, f in tasks.items()}
        for n in (n for n in tasks if training and n in self.exits and "loss" in outs[n]):
            exit_losses = {f"loss_exit{k}": e.head(encoder.finish(streams[k], e.norm), tasks[n])["loss"] for k, e in zip(self.blocks, self.exits[n])}
            outs[n] = {**outs[n], "loss_full": outs[n]["loss"], **exit_losses, "loss": outs[n]["loss"] + self.weight * sum(exit_losses.values())}
        return outs

    def confidence(self, name: str, logits: torch.Tensor) -> torch.Tensor:
        """(R,) how sure each row's answer is: the top softmax probability, or for tags the least certain
        tag's max(p, 1 - p)."""
        logits = logits.float()
        if self.kinds[name] == "tag":
            p = logits.sigmoid()
            return torch.maximum(p, 1 - p).amin(-1)
        return logits.softmax(-1).amax(-1)

    def leave_at(self, encoder: nn.Module, head: nn.Module, pixels: torch.Tensor, name: str, fields: dict[str, Any], block: int) -> dict[str, Any]:
        """Every row's outputs from the exit after `block` (the full-depth head at block = depth); each
        row's confidence is appended to the forced_exit() list."""
        x = encoder.embed(pixels)
        for block_ in encoder.blocks[:block]:
            x = block_(x)
        if block == self.depth:
            out = head(encoder.finish(x), fields)
        else:
            exit_ = self.exits[name][self.blocks.index(block)]
            out = exit_.head(encoder.finish(x, exit_.norm), fields)
        self.forced[2].append(self.confidence(name, out["logits"]).cpu())
        return {**out, "exit_block": torch.full_like(out["logits"][:, 0], block, dtype=torch.long)}

    def adaptive(self, encoder: nn.Module, head: nn.Module, pixels: torch.Tensor, name: str, fields: dict[str, Any], threshold: float) -> dict[str, Any]:
        """The head's outputs with each row taken from its first exit at least `threshold` confident (the
        full-depth head otherwise), plus "exit_block" (R,): the blocks run for that row."""
        n_images = pixels.size(0)
        row_image = fields.get("question_image")
        n_rows = n_images if row_image is None else row_image.size(0)
        row_image = torch.arange(n_images, device=pixels.device) if row_image is None else row_image
        rows = torch.arange(n_rows, device=pixels.device)  # the original index of every row still undecided
        done: dict[str, torch.Tensor] = {}
        exit_block = torch.full((n_rows,), self.depth, dtype=torch.long, device=pixels.device)
        exits = dict(zip(self.blocks, self.exits[name]))
        x = encoder.embed(pixels)
        for k in range(self.depth):  # x has run k blocks
            if k not in exits:
                x = encoder.blocks[k](x)
                continue
            out = exits[k].head(encoder.finish(x, exits[k].norm), _rows_of(fields, rows, row_image, n_rows))
            sure = self.confidence(name, out["logits"]) >= threshold
            _keep(done, out, rows, sure, n_rows)
            exit_block[rows[sure]] = k
            if sure.all():
                return self._tally(name, {**done, "exit_block": exit_block})
            rows, row_image = rows[~sure], row_image[~sure]
            alive = torch.zeros(x.size(0), dtype=torch.bool, device=x.device)
            alive[row_image] = True
            x, row_image = x[alive], (torch.cumsum(alive, 0) - 1)[row_image]  # drop images no row needs; renumber
            x = encoder.blocks[k](x)
        out = head(encoder.finish(x), _rows_of(fields, rows, row_image, n_rows))
        _keep(done, out, rows, torch.ones_like(rows, dtype=torch.bool), n_rows)
        return self._tally(name, {**done, "exit_block": exit_block})

    def _tally(self, name: str, out: dict[str, Any]) -> dict[str, Any]:
        blocks, rows = self.blocks_run.get(name, (0, 0))
        self.blocks_run[name] = (blocks + int(out["exit_block"].sum()), rows + out["exit_block"].numel())
        return out


def _rows_of(fields: dict[str, Any], rows: torch.Tensor, row_image: torch.Tensor, n_rows: int) -> dict[str, Any]:
    """The head's fields for the undecided rows (per-row tensors indexed, question_image renumbered);
    labels and targets are dropped: adaptive inference scores nothing."""
    out = {
        k: v[rows] if torch.is_tensor(v) and v.dim() and v.size(0) == n_rows else v
        for k, v in fields.items()
        if k not in ("answer_scores", "tag_targets", "labels")
    }
    if "question_image" in fields:
        out["question_image"] = row_image
    return out


def _keep(done: dict[str, torch.Tensor], out: dict[str, Any], rows: torch.Tensor, sure: torch.Tensor, n_rows: int) -> None:
    """Write the `sure` rows of every per-row output tensor (one row per entry of `rows`, their original
    indices) into `done`, whose tensors hold all n_rows."""
    for key, value in out.items():
        if torch.is_tensor(value) and value.dim() and value.size(0) == rows.numel() and not key.startswith("loss"):
            if key not in done:
                done[key] = value.new_zeros((n_rows, *value.shape[1:]))
            done[key][rows[sure]] = value[sure]


def add_early_exits(model: nn.Module, spec: dict[str, Any]) -> None:
    """Give `model` (a VLModel) exits as `spec` says (see the module docstring), each a copy of its
    head as it is now (a trained head is the exits' starting point), and record them in its config."""
    record = model.config.compression
    if "early_exit" in record:
        raise ConfigError("this model has early exits already; tune their thresholds (python -m tasks.compress exits) or start from one without")
    if set(record) - {"prune"}:
        raise ConfigError(f"add early exits before {', '.join(sorted(set(record) - {'prune'}))}: a compressed head cannot be copied into an exit")
    model.early_exit = EarlyExits(model.encoder, model.heads, spec).train(model.training)
    model.config.compression = {**record, "early_exit": model.early_exit.record()}


def apply_early_exit(model: nn.Module, spec: dict[str, Any]) -> None:
    """The exits of a saved model, rebuilt (their weights are filled by loading)."""
    model.early_exit = EarlyExits(model.encoder, model.heads, spec)


def set_thresholds(model: nn.Module, thresholds: dict[str, float | None]) -> None:
    """Set (a value) or clear (None: full depth) the exit threshold of heads, in the model and its config."""
    exits = model.early_exit
    if exits is None:
        raise ConfigError("this model has no early exits; train it with model.early_exit (configs/compress/shapes_exits.yaml shows how)")
    for name, t in thresholds.items():
        if name not in exits.exits:
            raise ConfigError(f"'{name}' has no exits; the model's exit heads are {list(exits.exits)}")
        if t is None:
            exits.threshold.pop(name, None)
        elif not 0 < t <= 1:
            raise ConfigError(f"an exit threshold is a confidence in (0, 1], got {t}")
        else:
            exits.threshold[name] = float(t)
    model.config.compression = {**model.config.compression, "early_exit": exits.record()}


@contextmanager
def forced_exit(model: nn.Module, name: str, block: int) -> Iterator[list[torch.Tensor]]:
    """Within the block, every row of head `name` leaves at `block` (an exit's block, or the encoder's
    depth for the full-depth head), whatever its confidence; yields the list that collects each call's
    row confidences (R,), in call order."""
    exits = model.early_exit
    if exits is None or name not in exits.exits:
        raise ConfigError(f"'{name}' has no early exits in this model")
    if block != exits.depth and block not in exits.blocks:
        raise ConfigError(f"no exit after block {block}; the exits are after blocks {exits.blocks} (and {exits.depth}: full depth)")
    seen: list[torch.Tensor] = []
    exits.forced = (name, block, seen)
    try:
        yield seen
    finally:
        exits.forced = None


def exit_curve(model: nn.Module, kind: Any, rows: Sequence[dict[str, Any]], thresholds: Sequence[float], batch_size: int = 0) -> list[dict[str, float]]:
    """The trade-off of head `kind.name` on `rows`: for each threshold (and for full depth), its headline
    metric (kind.score) and the mean blocks run per row, each row leaving at its first exit at least that
    confident. One forced pass per exit gives every row's output and confidence there; the curve is then
    exact for any threshold (the answers adaptive inference would give), without rerunning the model."""
    exits, name, metric = model.early_exit, kind.name, kind.headline[0]
    at: dict[int, tuple[dict[int, Any], torch.Tensor]] = {}
    for block in [*exits.blocks, exits.depth]:
        with forced_exit(model, name, block) as seen:
            outputs = kind.infer(model, rows, batch_size=batch_size)
        confidence = torch.cat(seen) if seen else torch.zeros(0)
        if len(confidence) != len(outputs):
            raise RuntimeError(f"{len(outputs)} outputs but {len(confidence)} confidences: were rows skipped as unreadable?")
        at[block] = (outputs, confidence)
    order = sorted(at[exits.depth][0])  # infer answers the rows in index order, the order the confidences came in
    full = kind.score(rows, at[exits.depth][0])[metric]
    curve = [{"threshold": float("nan"), "blocks": float(exits.depth), metric: full}]
    for t in thresholds:
        chosen, blocks = {}, []
        for j, row in enumerate(order):
            block = next((b for b in exits.blocks if at[b][1][j] >= t), exits.depth)
            chosen[row] = at[block][0][row]
            blocks.append(block)
        curve.append({"threshold": float(t), "blocks": sum(blocks) / len(blocks), metric: kind.score(rows, chosen)[metric]})
    return curve


def pick_threshold(curve: list[dict[str, float]], metric: str, max_drop: float) -> dict[str, float]:
    """The point of the curve with the fewest mean blocks whose metric is within max_drop percent
    (relative) of full depth's (curve[0]); full depth when none is."""
    floor = curve[0][metric] * (1 - max_drop / 100)
    fine = [p for p in curve[1:] if p[metric] >= floor]
    return min(fine, key=lambda p: (p["blocks"], -p[metric])) if fine else curve[0]
