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

    registry_name = "hf"

    @dataclass
    class Config:
        path: str = ""  # a local folder saved with save_pretrained (or a hub id when online)
        freeze: bool = False
        # The backbone's own config, filled in when it is first loaded, so that a saved VLModel
        # rebuilds the backbone without needing `path` again.
        hf_config: dict[str, Any] = field(default_factory=dict)

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
        # Dual-tower checkpoints (CLIP, SigLIP, BLIP...) keep the image tower in .vision_model.
        self.backbone = getattr(model, "vision_model", model)
        config = self.backbone.config
        sizes = getattr(config, "hidden_sizes", None)
        self.out_dim = sizes[-1] if sizes else config.hidden_size
        if cfg.freeze:
            self.backbone.requires_grad_(False)

    def forward_features(self, pixels: torch.Tensor) -> torch.Tensor:
        hidden = self.backbone(pixel_values=pixels).last_hidden_state
        if hidden.dim() == 4:  # convolutional backbones: (B, C, H, W) -> (B, H*W, C)
            hidden = hidden.flatten(2).transpose(1, 2)
        return hidden

    forward = forward_features
