"""VLConfig / VLModel: one shared encoder and a dict of task heads, as a transformers PreTrainedModel."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from torch import nn
from transformers import AutoConfig, AutoModel, PreTrainedConfig, PreTrainedModel

from vl.compress import apply_compression
from vl.encoders import build_encoder
from vl.encoders.build import encoder_spec
from vl.errors import VLError
from vl.generation import GenerationConfig, generate
from vl.heads import build_head
from vl.heads.build import head_spec


class CheckpointError(VLError, ValueError):
    """A checkpoint that does not fit: another architecture, another config, or not ours at all."""


class VLConfig(PreTrainedConfig):
    """encoder: {"type": "vit", ...}; heads: {"caption": {"type": "caption", ...}, ...}."""

    model_type = "vl"

    def __init__(
        self,
        encoder: dict[str, Any] | None = None,
        heads: dict[str, dict[str, Any]] | None = None,
        compression: dict[str, Any] | None = None,
        generation: dict[str, dict[str, Any]] | None = None,
        **kwargs,
    ):
        self.encoder = dict(encoder or {"type": "vit"})
        self.heads = {name: dict(spec) for name, spec in (heads or {}).items()}
        self.compression = dict(compression or {})  # what vl.compress changed, so loading rebuilds those shapes
        # each text head's default decoding, as its training run evaluated it ({"caption": {"num_beams": 3}}):
        # generate() and the pipelines start from it (transformers keeps the same in generation_config.json)
        self.generation = {name: dict(options) for name, options in (generation or {}).items()}
        super().__init__(**kwargs)


class VLModel(PreTrainedModel):
    """forward(pixel_values, task=..., **batch) -> the head's dict; generate(pixel_values) -> token ids."""

    config_class = VLConfig
    base_model_prefix = "vl"
    main_input_name = "pixel_values"
    _supports_sdpa = True

    def __init__(self, config: VLConfig):
        super().__init__(config)
        self.encoder = build_encoder(config.encoder)
        self.heads = nn.ModuleDict({n: build_head(n, spec, self.encoder.out_dim) for n, spec in config.heads.items()})
        # Store the resolved specs (a GPT-2 start sets the head's shape, an HF backbone its config) so
        # that save_pretrained -> from_pretrained rebuilds exactly this model.
        config.encoder = encoder_spec(self.encoder)
        config.heads = {n: head_spec(h) for n, h in self.heads.items()}
        self.early_exit = None  # vl.compress.early_exit.EarlyExits, when the compression record has exits
        if config.compression:
            apply_compression(self, config.compression)
        self.post_init()

    def no_weight_decay(self) -> set[str]:
        """Parameter names no weight decay applies to: what each part names in its own no_weight_decay()."""
        names = set()
        for prefix, module in self.named_modules():
            if module is not self and hasattr(module, "no_weight_decay"):
                names |= {f"{prefix}.{n}" for n in module.no_weight_decay()}
        return names

    def _init_weights(self, module: nn.Module) -> None:
        """Every part initialises itself when built (a GPT-2 start or an HF backbone included); nothing to redo."""

    def forward(self, pixel_values: torch.Tensor, task: str | None = None, tasks: dict[str, dict[str, Any]] | None = None, **batch: Any) -> dict[str, Any]:
        """One head's outputs for the images and its batch fields; or, given `tasks` ({head: its batch
        fields, all about these images}), {head: its outputs} from one encoder pass."""
        one = tasks is None
        if one:
            tasks = {self._task(task): batch}
        if self.early_exit is not None:  # exits after some blocks: their losses in training, adaptive depth in eval
            outputs = self.early_exit.run(self.encoder, self.heads, pixel_values, tasks)
        else:
            tokens = self.encoder.forward_features(pixel_values)  # (B, N, D), shared by every head
            outputs = {name: self.heads[name](tokens, fields) for name, fields in tasks.items()}
        return next(iter(outputs.values())) if one else outputs

    @torch.inference_mode()
    def generate(
        self,
        pixel_values: torch.Tensor,
        task: str | None = None,
        generation_config: GenerationConfig | None = None,
        generator: torch.Generator | None = None,
        **kwargs: Any,
    ) -> torch.Tensor:
        """Token ids (B, T) decoded by a text head (caption; qgen given prompt_ids/prompt_mask; vqa with
        generative answers given question_ids/question_mask); other kwargs override generation_config fields,
        which defaults to the head's saved decoding (config.generation[task], what its training run evaluated).
        With num_return_sequences n: (B * n, T), each item's n rows consecutive, best beam first."""
        name = self._task(task)
        head = self.heads[name]
        if not hasattr(head, "text_decoder"):
            raise ValueError(f"the '{name}' head does not generate text")
        inputs = {k: kwargs.pop(k) for k in list(kwargs) if k.endswith(("_ids", "_mask"))}
        cfg = generation_config or GenerationConfig(**self.config.generation.get(name, {}))
        if kwargs:
            cfg = GenerationConfig(**{**cfg.__dict__, **kwargs})
        memory, mask = head.decoder_memory(self.encoder.forward_features(pixel_values), inputs)
        decoder = head.text_decoder()
        c = decoder.cfg
        return generate(decoder, memory, c.bos_token_id, c.eos_token_id, c.pad_token_id, cfg, generator, mask)

    @torch.inference_mode()
    def embed_images(self, pixel_values: torch.Tensor, task: str | None = None) -> torch.Tensor:
        """(B, E) unit-length image embeddings from an embedding head (one with embed_image / embed_text)."""
        return self._embedding_head(task).embed_image(self.encoder.forward_features(pixel_values))

    @torch.inference_mode()
    def embed_texts(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, task: str | None = None) -> torch.Tensor:
        """(B, E) unit-length text embeddings, in the same space as embed_images; input_ids and
        attention_mask as VLProcessor.encode_texts gives them ("ids", "mask")."""
        return self._embedding_head(task).embed_text(input_ids, attention_mask)

    def _embedding_head(self, task: str | None) -> nn.Module:
        """The head `task` names, or the model's only embedding head; it must embed images and texts."""
        if task is None:
            found = [n for n, h in self.heads.items() if hasattr(h, "embed_text")]
            if len(found) != 1:
                raise ValueError(f"this model has {len(found) or 'no'} embedding heads among {list(self.heads)}; pass task=")
            task = found[0]
        head = self.heads[self._task(task)]
        if not hasattr(head, "embed_text"):
            raise ValueError(f"the '{task}' head does not embed images and texts")
        return head

    def _task(self, task: str | None) -> str:
        if task is None:
            if len(self.heads) != 1:
                raise ValueError(f"this model has heads {list(self.heads)}; pass task=")
            return next(iter(self.heads))
        if task not in self.heads:
            raise ValueError(f"this model has no '{task}' head; it has {list(self.heads)}")
        return task

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | Path, *args: Any, **kwargs: Any) -> VLModel:
        """Load a saved VLModel; anything else (another model type, weights that do not fit) is a CheckpointError."""
        path = Path(pretrained_model_name_or_path)
        config_file = path / "config.json"
        looks_local = path.is_absolute() or str(path).startswith((".", "~")) or len(path.parts) > 2  # "org/name" is a hub id
        if looks_local and not path.exists():
            raise CheckpointError(f"model folder not found: {path}")
        if path.is_dir():
            if not config_file.is_file():
                raise CheckpointError(f"{path} holds no config.json; is it a folder written by save_pretrained?")
            model_type = json.loads(config_file.read_text()).get("model_type")
            if model_type != VLConfig.model_type:
                raise CheckpointError(f"{path} holds a '{model_type}' model, not a vl-suite model (model_type 'vl')")
            _check_shapes(path, VLConfig.from_pretrained(path))
        want_info = kwargs.pop("output_loading_info", False)
        model, info = super().from_pretrained(pretrained_model_name_or_path, *args, output_loading_info=True, **kwargs)
        problems = {k: sorted(v) for k, v in info.items() if k in ("missing_keys", "unexpected_keys", "mismatched_keys") and v}
        if problems:
            kind, keys = next(iter(problems.items()))
            raise CheckpointError(
                f"{path}: the weights do not fit the config ({kind.replace('_', ' ')}: {', '.join(map(str, keys[:3]))}"
                f"{' ...' if len(keys) > 3 else ''}); was the checkpoint saved from another model?"
            )
        return (model, info) if want_info else model


def _check_shapes(folder: Path, config: VLConfig) -> None:
    """Compare the checkpoint's tensor shapes (safetensors headers only) with the model the config builds."""
    files = sorted(folder.glob("model*.safetensors"))
    if not files:
        return
    with torch.device("meta"):
        expected = {k: tuple(v.shape) for k, v in VLModel(config).state_dict().items()}
    for file in files:
        with safe_open(str(file), framework="pt") as f:
            for key in f.keys():
                shape = tuple(f.get_slice(key).get_shape())
                if key in expected and expected[key] != shape:
                    raise CheckpointError(
                        f"{folder}: {key} has shape {list(shape)} in the checkpoint but {list(expected[key])} in its "
                        "config; was the checkpoint saved from another model?"
                    )


AutoConfig.register(VLConfig.model_type, VLConfig)
AutoModel.register(VLConfig, VLModel)
