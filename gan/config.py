"""The GAN experiment configs, one per kind of GAN (the top-level `kind` key says which): model
(generator, discriminator), data (the world it learns from) and train (the loop's settings, shared,
plus each kind's loss weights)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from gan.discriminators import DiscriminatorConfig, SceneDiscriminatorConfig
from gan.generators import GeneratorConfig
from gan.sg2im import SceneGeneratorConfig
from vl.config import check_train_section
from vl.data.faces import FACE_SPLITS, FacesConfig
from vl.data.shapes.config import SPLITS as SHAPES_SPLITS
from vl.data.shapes.config import ShapesConfig
from vl.errors import ConfigError, did_you_mean


@dataclass
class GANModelConfig:
    # the pose / expression / identity counts and the image size come from data.faces
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)


@dataclass
class GANDataConfig:
    faces: FacesConfig = field(default_factory=FacesConfig)
    train: str = "train"  # a Faces split
    num_workers: int = 0


@dataclass
class GANLoopConfig:
    """What the one GAN training loop (tasks.train_gan) reads, for every kind."""

    output_dir: str = "runs/gan-faces"
    seed: int = 0
    steps: int = 20000
    batch_size: int = 32  # per process
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    betas: tuple[float, float] = (0.0, 0.99)  # Adam with beta1 = 0, the stable GAN recipe
    ema_decay: float = 0.999  # the generator used for samples and evaluation is this EMA of the trained one
    diffaugment: str = "color,translation,cutout"  # empty: none
    r1_gamma: float = 0.0  # > 0: R1 penalty on real images, weighted gamma / 2
    mixed_precision: str = ""  # no | bf16 | fp16; empty: what `accelerate launch` says
    log_every: int = 50
    sample_every: int = 500  # PNG grid of EMA samples
    save_every: int = 1000
    keep_checkpoints: int = 2
    trackers: list[str] = field(default_factory=lambda: ["tensorboard"])

    def __post_init__(self) -> None:
        check_train_section(self, ("steps", "batch_size", "log_every", "sample_every", "save_every", "keep_checkpoints"))
        if not 0 <= self.ema_decay < 1:
            raise ConfigError(f"train.ema_decay must be in [0, 1), got {self.ema_decay}")


@dataclass
class GANTrainConfig(GANLoopConfig):
    aux_weight: float = 1.0  # pose / expression / identity classification, for both players
    recon_weight: float = 10.0  # L1 between a face and the generator's redrawing of it at its own pose and expression
    # Paired multi-view supervision (TP-GAN's pixel loss): each face is redrawn at the pose and expression
    # of another training face of the same person, with L1 to that face. 0: unpaired random targets.
    pair_weight: float = 10.0
    # > 0: the paired and the own-pose L1 weigh each pixel 1 + this x how much the training faces at that
    # pose change with their expression (gan.losses.expression_regions: 0..1, 1 at the mouth, eyes and
    # brows, found in the training faces), so the few pixels that carry an expression are not lost in a whole-face average. 0: plain L1.
    expression_region_weight: float = 0.0
    # Classifier guidance (ExprGAN's expression classifier, TP-GAN's identity-preserving loss): a face
    # classifier trained first on the real training faces (<output_dir>/teacher), then frozen; the generator
    # is asked that it see the target pose and expression and the source person. 0: off.
    teacher_weight: float = 0.0
    teacher_steps: int = 1500
    sample_identities: int = 6  # rows of the sample grid: identities; columns: poses x expressions

    def __post_init__(self) -> None:
        super().__post_init__()
        check_train_section(self, ("sample_identities",))


@dataclass
class GANExperimentConfig:
    kind: str = "faces"  # the pose/expression face GAN
    model: GANModelConfig = field(default_factory=GANModelConfig)
    data: GANDataConfig = field(default_factory=GANDataConfig)
    train: GANTrainConfig = field(default_factory=GANTrainConfig)

    def __post_init__(self) -> None:
        _check_kind(self.kind, "faces")
        faces, g, d = self.data.faces, self.model.generator, self.model.discriminator
        if self.data.train not in FACE_SPLITS:
            raise ConfigError(f"data.train is '{self.data.train}'; use a Faces split: {', '.join(FACE_SPLITS)}")
        for net in (g, d):  # one source of truth: the data decides the label counts and the size
            net.image_size, net.poses, net.expressions = faces.image_size, len(faces.poses), len(faces.expressions)
            net.__post_init__()
        d.identities = faces.identities


@dataclass
class SceneGANModelConfig:
    # the image size, object count and attribute counts come from data.shapes
    generator: SceneGeneratorConfig = field(default_factory=SceneGeneratorConfig)
    discriminator: SceneDiscriminatorConfig = field(default_factory=SceneDiscriminatorConfig)


@dataclass
class SceneGANDataConfig:
    shapes: ShapesConfig = field(default_factory=ShapesConfig)
    train: str = "train"  # a Shapes split
    num_workers: int = 0


@dataclass
class SceneGANTrainConfig(GANLoopConfig):
    output_dir: str = "runs/gan-scenes"
    diffaugment: str = ""  # colors and places are what the graph says: translation or color jitter would contradict it
    l1_weight: float = 10.0  # pixel L1 to the real render of the same graph at the true layout (sg2im's)
    box_weight: float = 10.0  # L1 of the predicted boxes
    mask_weight: float = 1.0  # binary cross-entropy of the predicted masks
    object_weight: float = 1.0  # the object discriminator's hinge loss, beside the image discriminator's
    aux_weight: float = 1.0  # the object discriminator's shape / color / size classification, for both players
    # Training graphs are complete (every pair's left/right and above/below, closest and farthest); users
    # write a few relationships. Each triple is dropped with this probability so partial graphs are known.
    triple_dropout: float = 0.3
    sample_scenes: int = 8  # rows of the sample grid

    def __post_init__(self) -> None:
        super().__post_init__()
        check_train_section(self, ("sample_scenes",))
        if not 0 <= self.triple_dropout < 1:
            raise ConfigError(f"train.triple_dropout must be in [0, 1), got {self.triple_dropout}")


@dataclass
class SceneGANConfig:
    kind: str = "scene_graph"  # sg2im on the Shapes world
    model: SceneGANModelConfig = field(default_factory=SceneGANModelConfig)
    data: SceneGANDataConfig = field(default_factory=SceneGANDataConfig)
    train: SceneGANTrainConfig = field(default_factory=SceneGANTrainConfig)

    def __post_init__(self) -> None:
        _check_kind(self.kind, "scene_graph")
        shapes, g, d = self.data.shapes, self.model.generator, self.model.discriminator
        if self.data.train not in SHAPES_SPLITS:
            raise ConfigError(f"data.train is '{self.data.train}'; use a Shapes split: {', '.join(SHAPES_SPLITS)}")
        g.image_size = d.image_size = shapes.image_size
        g.max_objects = shapes.max_objects
        d.shapes, d.colors, d.sizes = len(shapes.shapes), len(shapes.colors), len(shapes.sizes)
        g.__post_init__()


GAN_CONFIGS = {"faces": GANExperimentConfig, "scene_graph": SceneGANConfig}


def _check_kind(kind: str, expected: str) -> None:
    if kind != expected:
        raise ConfigError(f"kind is '{kind}' in a {expected} GAN config; the kinds are {', '.join(GAN_CONFIGS)}")


def gan_config_class(path: str | Path | None, overrides: list[str]) -> type:
    """The config class a GAN config file (and `kind=...` overrides) asks for; default faces."""
    kind = "faces"
    if path is not None and Path(path).is_file():
        data = yaml.safe_load(Path(path).read_text()) or {}
        kind = data.get("kind", kind) if isinstance(data, dict) else kind
    for o in overrides:
        if o.startswith("kind="):
            kind = o.split("=", 1)[1]
    if kind not in GAN_CONFIGS:
        raise ConfigError(f"kind is '{kind}'; a GAN config's kind is one of {', '.join(GAN_CONFIGS)}{did_you_mean(kind, GAN_CONFIGS)}")
    return GAN_CONFIGS[kind]
