"""Any HuggingFace vision backbone (ViT, CLIP vision, DINOv2, ConvNeXt, ...) under the encoder contract."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from transformers import AutoConfig, AutoModel

from vl.errors import ConfigError
from vl.registry import ENCODERS


@ENCODERS.register("hf")
class HFVisionEncoder(nn.Module):
    """pixels -> the backbone's last hidden state as tokens (B, N, D); feature maps (B, C, H, W) are flattened."""

    @dataclass
    class Config:
        path: str = ""  # a local folder saved with save_pretrained (or a hub id when online)
        freeze: bool = False
        # The backbone's own config, filled in when it is first loaded, so that a saved VLModel
        # rebuilds the backbone without needing `path` again.
        hf_config: dict[str, Any] = field(default_factory=dict)
        # Backbone parameters the tokens do not depend on (a pooler, CLIP's post-layernorm), found when
        # the backbone is first loaded and kept frozen: nothing trains them, and DDP would wait for them.
        unused: list[str] = field(default_factory=list)

        def __post_init__(self) -> None:
            if not self.path and not self.hf_config:
                raise ConfigError("encoder.path is required for type 'hf' (a folder saved with save_pretrained)")

    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        if cfg.hf_config:  # rebuilding a saved model: architecture only, weights come from its checkpoint
            config = AutoConfig.for_model(**cfg.hf_config)
            model = AutoModel.from_config(config)
        else:
            try:
                model = AutoModel.from_pretrained(cfg.path)
            except OSError as err:
                raise ConfigError(f"encoder.path: cannot load a backbone from '{cfg.path}' ({str(err).splitlines()[0]})") from None
            cfg.hf_config = model.config.to_dict()
            cfg.unused = _unused_parameters(getattr(model, "vision_model", model))
        # Dual-tower checkpoints (CLIP, SigLIP, BLIP...) keep the image tower in .vision_model.
        self.backbone = getattr(model, "vision_model", model)
        config = self.backbone.config
        sizes = getattr(config, "hidden_sizes", None)
        self.out_dim = sizes[-1] if sizes else config.hidden_size
        if cfg.freeze:
            self.backbone.requires_grad_(False)
        for name, p in self.backbone.named_parameters():
            if name in cfg.unused:
                p.requires_grad_(False)

    input_kind = "image"  # (B, C, H, W)

    def no_weight_decay(self) -> set[str]:
        """The backbone's embeddings module (patches, positions, class token) is not decayed."""
        return {name for name, _ in self.named_parameters() if ".embeddings." in name}

    def train(self, mode: bool = True) -> HFVisionEncoder:
        """A frozen backbone stays in eval mode (dropout off, norms' statistics fixed) while heads train."""
        super().train(mode)
        if self.cfg.freeze:
            self.backbone.eval()
        return self

    def forward_features(self, pixels: torch.Tensor) -> torch.Tensor:
        hidden = self.backbone(pixel_values=pixels).last_hidden_state
        if hidden.dim() == 4:  # convolutional backbones: (B, C, H, W) -> (B, H*W, C)
            hidden = hidden.flatten(2).transpose(1, 2)
        return hidden

    forward = forward_features


def _unused_parameters(backbone: nn.Module) -> list[str]:
    """Names of the backbone's parameters that get no gradient from its last hidden state, found with
    one forward and backward pass on a blank image."""
    c = backbone.config
    size = getattr(c, "image_size", 224)
    size = size if isinstance(size, int) else size[0]
    blank = torch.zeros(1, getattr(c, "num_channels", 3), size, size)
    backbone.zero_grad(set_to_none=True)
    backbone(pixel_values=blank).last_hidden_state.float().sum().backward()
    unused = [name for name, p in backbone.named_parameters() if p.requires_grad and p.grad is None]
    backbone.zero_grad(set_to_none=True)
    return unused
