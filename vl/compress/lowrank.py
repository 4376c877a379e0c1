"""Low-rank factorization: each large nn.Linear W (out x in) becomes up(down(x)) with W ~ U_r S_r V_r^T
from its SVD, the rank r the smallest that keeps `energy` of the squared singular values; a layer is
replaced only when the two factors are smaller than W by `min_saving` and both its sides are at least
`min_features` (a narrow layer saves next to nothing and its few directions each mean something: the
caption pointer's 4 -> vocabulary place words hold 99% of their energy in one direction, and energy 0.99
cut them to rank 1; bench/RESULTS.md, issue 16, eighth session). The ranks go into
config.compression["lowrank"], so from_pretrained rebuilds the factored layers before loading."""

from __future__ import annotations

import torch
from torch import nn

from vl.compress.structure import linears, replace_linear
from vl.errors import ConfigError


class LowRankLinear(nn.Module):
    """y = up(down(x)): a Linear of rank `rank` (down: in -> rank, no bias; up: rank -> out, with W's bias)."""

    def __init__(self, in_features: int, out_features: int, rank: int, bias: bool = True):
        super().__init__()
        if not 0 < rank < min(in_features, out_features) + 1:
            raise ConfigError(f"rank {rank} is not in 1..{min(in_features, out_features)} for a {in_features} -> {out_features} layer")
        self.in_features, self.out_features, self.rank = in_features, out_features, rank
        self.down = nn.Linear(in_features, rank, bias=False)
        self.up = nn.Linear(rank, out_features, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(self.down(x))

    @classmethod
    def from_linear(cls, linear: nn.Linear, rank: int) -> LowRankLinear:
        """The rank-`rank` truncated SVD of a Linear, its singular values split evenly between the factors."""
        w = linear.weight.detach().float()
        u, s, vh = torch.linalg.svd(w, full_matrices=False)
        root = s[:rank].sqrt()
        out = cls(linear.in_features, linear.out_features, rank, bias=linear.bias is not None)
        with torch.no_grad():
            out.down.weight.copy_((root[:, None] * vh[:rank]).to(linear.weight.dtype))
            out.up.weight.copy_((u[:, :rank] * root).to(linear.weight.dtype))
            if linear.bias is not None:
                out.up.bias.copy_(linear.bias)
        return out.to(device=linear.weight.device, dtype=linear.weight.dtype)


def energy_rank(weight: torch.Tensor, energy: float) -> int:
    """The smallest r whose first r singular values hold `energy` of the sum of their squares."""
    s2 = torch.linalg.svdvals(weight.detach().float()).square()
    kept = s2.cumsum(0) / s2.sum().clamp(min=1e-12)
    return min(int((kept < energy - 1e-6).sum().item()) + 1, len(s2))  # (1e-6: float sums reach 1 inexactly)


def factorize(model: nn.Module, energy: float, min_saving: float = 0.2, skip: tuple[str, ...] = (), min_features: int = 16) -> dict[str, int]:
    """Replace every nn.Linear worth it (not under a `skip` prefix, both sides at least `min_features`) by
    its LowRankLinear at the rank that keeps `energy`; record and return {module path: rank}. A model
    factored already is refused."""
    if not 0 < energy <= 1:
        raise ConfigError(f"energy must be in (0, 1], got {energy}")
    record = dict(getattr(model.config, "compression", {}) or {})
    if "lowrank" in record:
        raise ConfigError("this model is low-rank factored already; factor the original model instead")
    if "int8" in record:
        raise ConfigError("this model is int8-quantized; factor the float model, then quantize the factored one")
    ranks: dict[str, int] = {}
    for path, module in linears(model, min_features, skip):
        rank = energy_rank(module.weight, energy)
        if rank * (module.in_features + module.out_features) > (1 - min_saving) * module.in_features * module.out_features:
            continue
        replace_linear(model, path, lambda linear: LowRankLinear.from_linear(linear, rank), "low-rank")
        ranks[path] = rank
    model.config.compression = {**record, "lowrank": ranks}
    return ranks


def apply_lowrank(model: nn.Module, ranks: dict[str, int]) -> None:
    """The factored layers of a saved low-rank model, rebuilt (weights uninitialised: loading fills them)."""
    for path, rank in ranks.items():
        replace_linear(model, path, lambda linear: LowRankLinear(linear.in_features, linear.out_features, int(rank), bias=linear.bias is not None), "low-rank")
