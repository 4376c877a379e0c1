"""int8 quantization with torchao: `quantize_` with Int8DynamicActivationInt8WeightConfig (int8 weights and,
at run time, int8 activations per row) or Int8WeightOnlyConfig, on every nn.Linear worth it.

A torchao-quantized weight is a tensor subclass, which safetensors cannot store; so each quantized Linear
becomes an Int8Linear that keeps the subclass's plain parts (qdata int8, scale, zero_point) as buffers
and rebuilds the subclass from them (torchao's own __tensor_unflatten__) to run. The scheme and the
module paths go into config.compression["int8"], and from_pretrained rebuilds the same modules."""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from vl.compress.structure import linears, replace_linear
from vl.errors import ConfigError

Scheme = Literal["dynamic", "weight_only"]
SCHEMES = ("dynamic", "weight_only")


def torchao_config(scheme: Scheme) -> Any:
    from torchao.quantization import Int8DynamicActivationInt8WeightConfig, Int8WeightOnlyConfig

    if scheme not in SCHEMES:
        raise ConfigError(f"int8 scheme must be one of {', '.join(SCHEMES)}, got '{scheme}'")
    return Int8DynamicActivationInt8WeightConfig() if scheme == "dynamic" else Int8WeightOnlyConfig()


class Int8Linear(nn.Module):
    """A Linear with a torchao int8 weight, stored as plain buffers (qdata, scale, zero_point)."""

    def __init__(self, in_features: int, out_features: int, bias: bool, scheme: Scheme):
        super().__init__()
        self.in_features, self.out_features, self.scheme = in_features, out_features, scheme
        self.register_buffer("qdata", torch.zeros(out_features, in_features, dtype=torch.int8))
        self.register_buffer("scale", torch.ones(out_features, 1))
        self.register_buffer("zero_point", torch.zeros(out_features, 1, dtype=torch.int8))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None
        self._weight: torch.Tensor | None = None
        self._register_load_state_dict_pre_hook(lambda *_: setattr(self, "_weight", None))

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, scheme={self.scheme}"

    def weight(self) -> torch.Tensor:
        """The torchao int8 weight tensor (built once from the buffers, again after a load)."""
        if self._weight is None or self._weight.device != self.qdata.device:
            self.build_weight()
        return self._weight

    def build_weight(self) -> None:
        """Make the torchao tensor now (a compiled graph cannot: call this before compiling a caller)."""
        template = _template(self.scheme, self.in_features)
        parts = {"qdata": self.qdata, "scale": self.scale, "zero_point": self.zero_point}
        self._weight = type(template).__tensor_unflatten__(parts, template.__tensor_flatten__()[1], None, None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight(), self.bias)

    @classmethod
    def from_linear(cls, linear: nn.Linear, scheme: Scheme) -> Int8Linear:
        """Quantize a float Linear with torchao and keep the parts."""
        from torchao.quantization import quantize_

        copy = nn.Linear(linear.in_features, linear.out_features, bias=linear.bias is not None).to(linear.weight.device)
        copy.load_state_dict({k: v.detach().float() for k, v in linear.state_dict().items()})
        quantize_(copy, torchao_config(scheme))
        parts, _ = copy.weight.__tensor_flatten__()
        out = cls(linear.in_features, linear.out_features, linear.bias is not None, scheme).to(linear.weight.device)
        with torch.no_grad():
            for name in ("qdata", "scale", "zero_point"):
                getattr(out, name).copy_(getattr(copy.weight, name).reshape(getattr(out, name).shape))
            if linear.bias is not None:
                out.bias.copy_(linear.bias)
        return out


_TEMPLATES: dict[tuple[str, int], torch.Tensor] = {}


def _template(scheme: Scheme, in_features: int) -> torch.Tensor:
    """A torchao int8 weight of this scheme and input width: the subclass and attributes to rebuild with."""
    key = (scheme, in_features)
    if key not in _TEMPLATES:
        from torchao.quantization import quantize_

        probe = nn.Linear(in_features, 1, bias=False)
        quantize_(probe, torchao_config(scheme))
        _TEMPLATES[key] = probe.weight
    return _TEMPLATES[key]


def quantize(model: nn.Module, scheme: Scheme = "dynamic", min_features: int = 64, skip: tuple[str, ...] = ()) -> list[str]:
    """Quantize every nn.Linear with both sides >= min_features (not under a `skip` prefix) in place;
    record and return their paths. A model quantized already is refused."""
    record = dict(getattr(model.config, "compression", {}) or {})
    if "int8" in record:
        raise ConfigError("this model is int8-quantized already; quantize the float model instead")
    torchao_config(scheme)  # a bad scheme fails before anything changes
    paths = []
    for path, _ in linears(model, min_features, skip):
        replace_linear(model, path, lambda linear: Int8Linear.from_linear(linear, scheme), "int8")
        paths.append(path)
    if not paths:
        raise ConfigError(f"no Linear layer with both sides >= {min_features} to quantize")
    model.config.compression = {**record, "int8": {"scheme": scheme, "modules": paths}}
    return paths


def apply_int8(model: nn.Module, spec: dict[str, Any]) -> None:
    """The Int8Linear modules of a saved int8 model, rebuilt (their buffers are filled by loading)."""
    for path in spec["modules"]:
        replace_linear(model, path, lambda linear: Int8Linear(linear.in_features, linear.out_features, linear.bias is not None, spec["scheme"]), "int8")
