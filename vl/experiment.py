"""The experiment config every task entry point reads: model, data, train and generation sections."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from vl.config import check_train_section, from_dict, to_dict
from vl.data.faces import FacesConfig
from vl.data.shapes import ShapesConfig
from vl.data.shapes360 import Shapes360Config
from vl.data.shapes_video import ShapesVideoConfig
from vl.encoders import ENCODERS
from vl.errors import ConfigError, did_you_mean
from vl.generation import GenerationConfig
from vl.heads import HEADS


@dataclass
class TokenizerConfig:
    path: str = ""  # an HF tokenizer folder; empty: train a BPE tokenizer on the training captions
    vocab_size: int = 1000


@dataclass
class ModelConfig:
    encoder: dict[str, Any] = field(default_factory=lambda: {"type": "vit"})
    heads: dict[str, dict[str, Any]] = field(default_factory=lambda: {"caption": {"type": "caption"}})
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    image_mean: list[float] = field(default_factory=lambda: [0.5, 0.5, 0.5])
    image_std: list[float] = field(default_factory=lambda: [0.5, 0.5, 0.5])
    # a saved model folder to start from (fine-tuning, e.g. after tasks.compress prune): its encoder and
    # heads (compression record included), weights, tokenizer and image processing replace the above
    init_from: str = ""
    # a saved *image* model folder to start a video encoder from: model.encoder needs only
    # {type: video_vit, frames: T}; the image encoder's settings and weights fill the per-frame part,
    # temporal attention starts as identity (VideoViTEncoder.inflate)
    inflate_from: str = ""
    # exits after encoder blocks for vqa/tag/classify heads, trained jointly (vl/compress/early_exit.py):
    # {blocks: [1, 2, 3], heads: [vqa, tag], weight: 1.0}; empty: none
    early_exit: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:  # check every key now, not after minutes of data loading
        if self.init_from:
            saved = Path(self.init_from) / "config.json"
            if not saved.is_file():
                raise ConfigError(f"model.init_from: {self.init_from} is not a saved model folder (no config.json)")
            config = json.loads(saved.read_text())
            self.encoder, self.heads = config["encoder"], config["heads"]
        if self.inflate_from:
            self.encoder = inflated_encoder_spec(self.inflate_from, self.encoder)
        enc = dict(self.encoder)
        enc_cls = ENCODERS.get(enc.pop("type", "vit"))
        from_dict(enc_cls.Config, enc, prefix="model.encoder.")
        for name, spec in self.heads.items():
            spec = dict(spec)
            head_cls = HEADS.get(spec.pop("type", name))
            from_dict(head_cls.Config, spec, prefix=f"model.heads.{name}.")


def inflated_encoder_spec(folder: str, spec: dict[str, Any]) -> dict[str, Any]:
    """model.encoder for model.inflate_from: the saved image encoder's settings plus the video ones given
    (frames, attention); an image setting given too must agree with the saved one."""
    saved = Path(folder) / "config.json"
    if not saved.is_file():
        raise ConfigError(f"model.inflate_from: {folder} is not a saved model folder (no config.json)")
    image = dict(json.loads(saved.read_text())["encoder"])
    if image.pop("type", "vit") != "vit":
        raise ConfigError(f"model.inflate_from: {folder} has no ViT image encoder to inflate")
    if spec.get("type") != "video_vit":
        raise ConfigError(f"model.inflate_from starts a video encoder: set model.encoder.type to video_vit (it is {spec.get('type', 'vit')!r})")
    for key, value in spec.items():
        if key in image and image[key] != value:
            raise ConfigError(f"model.encoder.{key} is {value!r} but the image encoder of model.inflate_from has {image[key]!r}; drop it from model.encoder")
    return {**image, **spec}


@dataclass
class TaskConfig:
    """One task of a (multi-task) run: the head it trains, how much its loss counts, its data."""

    weight: float = 1.0
    train: str = ""  # a data spec; empty: data.train
    eval: str = ""  # empty: data.eval
    batch_size: int = 0  # per process; 0: train.batch_size
    questions_per_image: int = 0  # question tasks (vqa, qgen): at most this many of an image's questions a step, drawn at random; 0: all
    generation: dict[str, Any] = field(default_factory=dict)  # this task's decoding: overrides of the generation section ({num_beams: 3})


@dataclass
class ClassicAugmentConfig:
    """Classic training-image augmentation (torchvision). Off by default; `flip` swaps left and right,
    so keep it off for tasks that talk about positions (Shapes captions, VQA)."""

    flip: bool = False  # random horizontal flip
    shift: float = 0.0  # random translation and scale, up to this share of the side
    color: float = 0.0  # brightness / contrast / saturation jitter strength

    def __post_init__(self) -> None:
        if not 0 <= self.shift < 0.5 or not 0 <= self.color <= 1:
            raise ConfigError(f"data.augment: shift must be in [0, 0.5) and color in [0, 1], got {self.shift} and {self.color}")


@dataclass
class GANAugmentConfig:
    """Synthetic training data from a trained GAN (the kind its generator's config names). A face
    generator: real training faces redrawn at another pose and expression (labels and captions follow).
    A scene-graph generator: Shapes scenes holding `pairs` drawn at their true layout, with the captions,
    questions and tags of their graphs (gan.scene_augment; the rows of data spec shapes:gan)."""

    generator: str = ""  # the generator/ folder of a tasks.train_gan run
    # real: the ceiling the views approximate, for experiments: no redrawing, but real renders of the
    # GAN's own training people (its data.faces) at the target poses and expressions; `generator` may
    # then also name a tasks.train_gan YAML config (only its data.faces is read)
    source: Literal["generator", "real"] = "generator"
    ratio: float = 0.0  # synthetic items per real item (0: off)
    poses: list[int] | None = None  # faces: target yaw angles (None: every pose the generator draws)
    expressions: list[str] | None = None  # faces: target expressions (None: all)
    # faces: keep each face's own expression (only the pose changes): views whose captions and labels
    # cannot be wrong about the expression when the generator draws poses better than expressions
    keep_expression: bool = False
    pairs: list[str] | None = None  # scene graphs: the color+shape pairs each added scene holds (None: the world's held-out pairs)
    # scene graphs: every_scene: each added scene holds one of `pairs`; natural: scenes drawn from every pair of
    # the world, so the held-out pairs are as frequent as any other pair (`pairs` unused), which keeps
    # the training images' color-shape statistics as they are
    frequency: Literal["every_scene", "natural"] = "every_scene"
    # scene graphs: the model/ folder of a tasks.train run with a VQA head, trained on real scenes; only drawings
    # in which it names every object's shape right are kept (more are drawn until `ratio` x train pass)
    filter_with: str = ""
    seed: int = 0

    def __post_init__(self) -> None:
        if self.ratio < 0:
            raise ConfigError(f"data.gan_augment.ratio must not be negative, got {self.ratio}")
        if self.ratio > 0 and not self.generator:
            raise ConfigError("data.gan_augment.ratio > 0 needs data.gan_augment.generator: the generator/ folder of a tasks.train_gan run")
        if self.filter_with and self.source == "real":
            raise ConfigError("data.gan_augment.filter_with reads the generator's drawings; with source: real there are none to filter: remove one of them")


@dataclass
class DataConfig:
    # A data spec: shapes:<split> | faces:<split> | coco:<captions.json>:<image folder> | karpathy:<dataset.json>:<image root>:<split>
    # | shapes_video:<split> | msrvtt:<videodatainfo.json>:<video folder>[:<split>] (see vl.data.specs)
    train: str = "shapes:train"
    eval: str = "shapes:val"
    shapes: ShapesConfig = field(default_factory=ShapesConfig)
    faces: FacesConfig = field(default_factory=FacesConfig)
    shapes_video: ShapesVideoConfig = field(default_factory=ShapesVideoConfig)
    shapes360: Shapes360Config = field(default_factory=Shapes360Config)
    augment: ClassicAugmentConfig = field(default_factory=ClassicAugmentConfig)
    gan_augment: GANAugmentConfig = field(default_factory=GANAugmentConfig)
    eval_images: int = 200  # images scored at each periodic evaluation
    skip_bad_images: bool = False  # true: count and skip unreadable images instead of stopping
    num_workers: int = 0


@dataclass
class TrainConfig:
    output_dir: str = "runs/caption"
    seed: int = 0
    steps: int = 3000
    batch_size: int = 32  # per process
    grad_accum: int = 1
    lr: float = 1e-3
    lr_scale: dict[str, float] = field(default_factory=dict)  # lr multipliers by parameter-name prefix: {heads.vqa: 0.2}
    weight_decay: float = 0.05
    betas: tuple[float, float] = (0.9, 0.98)
    warmup_steps: int = 200
    max_grad_norm: float = 1.0
    mixed_precision: str = ""  # no | bf16 | fp16; empty: what `accelerate launch --mixed_precision` says
    # every task trains on the same batch_size images each step, so the encoder runs once for all heads
    # (a caption task takes one of each image's captions, a question task all its questions); tasks
    # must then share their images (the same image_id) and set no batch_size of their own
    share_images: bool = False
    compile: bool = False  # torch.compile the model (fuses elementwise work; costs a minute up front)
    eval_every: int = 500
    save_every: int = 500
    keep_checkpoints: int = 2
    log_every: int = 25
    trackers: list[str] = field(default_factory=lambda: ["tensorboard"])  # used when installed

    def __post_init__(self) -> None:
        check_train_section(self, ("steps", "batch_size", "grad_accum", "eval_every", "save_every", "log_every", "keep_checkpoints"))


@dataclass
class EvaluationConfig:
    """How evaluation scores (during training and in tasks.evaluate, which can override it)."""

    vqa_eval: Literal["master", "legacy"] = "master"  # the official VQA accuracy: today's code, or 2017's (LAVIS/BLIP)


@dataclass
class ExperimentConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    tasks: dict[str, TaskConfig] = field(default_factory=dict)  # by head name; empty: every head, weight 1

    def __post_init__(self) -> None:
        for name, task in self.tasks.items():
            if name not in self.model.heads:
                raise ConfigError(f"tasks.{name} has no head; model.heads has {', '.join(self.model.heads)}{did_you_mean(name, self.model.heads)}")
            if task.weight < 0 or task.batch_size < 0 or task.questions_per_image < 0:
                raise ConfigError(f"tasks.{name}: weight, batch_size and questions_per_image must not be negative")
            if self.train.share_images and task.batch_size:
                raise ConfigError(
                    f"tasks.{name}.batch_size is {task.batch_size}, but train.share_images trains every task on the same "
                    f"train.batch_size images: remove tasks.{name}.batch_size (or set train.share_images=false)"
                )
        # the heads whose evaluation decodes with `generation` must hold that many tokens (+ BOS): say so
        # now, not at the first evaluation
        import vl.tasks  # noqa: F401  (fills TASKS; imported here because the task kinds import this module)
        from vl.registry import TASKS

        for name in self.task_configs():
            spec = dict(self.model.heads[name])
            kind = spec.pop("type", name)
            head_cfg = from_dict(HEADS.get(kind).Config, spec, prefix=f"model.heads.{name}.")
            moves = self.data.augment.flip or self.data.augment.shift
            pointer = getattr(head_cfg, "fusion", None) == "pointer" or getattr(head_cfg, "pointer", False)
            if pointer and getattr(head_cfg, "grounding_weight", 0) and moves:
                raise ConfigError(
                    f"model.heads.{name}: its pointer learns to aim from the boxes of the objects named (question_boxes, caption_boxes), "
                    "which data.augment's flip/shift "
                    f"move off their objects: set data.augment.flip=false and data.augment.shift=0, or model.heads.{name}.grounding_weight=0"
                )
            decoder = TASKS.get(kind).decoder_positions(head_cfg) if kind in TASKS else None
            tokens = self.generation_for(name).max_new_tokens
            if decoder and tokens >= decoder[1]:
                key, positions = decoder
                where = f"tasks.{name}.generation" if "max_new_tokens" in self.task_configs()[name].generation else "generation"
                raise ConfigError(
                    f"{where}.max_new_tokens is {tokens}, but model.heads.{name}.{key} is {positions} "
                    f"(BOS included): lower {where}.max_new_tokens to {positions - 1} or raise {key}"
                )

    def generation_for(self, name: str) -> GenerationConfig:
        """How task `name` decodes: the generation section with the task's own overrides (tasks.<name>.generation)."""
        task = self.tasks.get(name)
        if task is None or not task.generation:
            return self.generation
        prefix = f"tasks.{name}.generation"
        try:
            return from_dict(GenerationConfig, {**to_dict(self.generation), **task.generation}, prefix=prefix + ".")
        except ConfigError as err:  # GenerationConfig's own checks do not know where the values came from
            raise (err if prefix in str(err) else ConfigError(f"{prefix} (over the generation section): {err}")) from None

    def task_configs(self) -> dict[str, TaskConfig]:
        """The tasks to train, by head name: tasks, or every head with weight 1."""
        return dict(self.tasks) or {name: TaskConfig() for name in self.model.heads}
