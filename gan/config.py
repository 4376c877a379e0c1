"""The GAN experiment config: model (generator, discriminator), data (the Faces world) and train."""

from __future__ import annotations

from dataclasses import dataclass, field

from gan.discriminators import DiscriminatorConfig
from gan.generators import GeneratorConfig
from vl.config import check_train_section
from vl.data.faces import FACE_SPLITS, FacesConfig
from vl.errors import ConfigError


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
class GANTrainConfig:
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
    aux_weight: float = 1.0  # pose / expression / identity classification, for both players
    recon_weight: float = 10.0  # L1 between a face and the generator's redrawing of it at its own pose and expression
    # Paired multi-view supervision (TP-GAN's pixel loss): each face is redrawn at the pose and expression
    # of another training face of the same person, with L1 to that face. 0: unpaired random targets.
    pair_weight: float = 10.0
    # Classifier guidance (ExprGAN's expression classifier, TP-GAN's identity-preserving loss): a face
    # classifier trained first on the real training faces (<output_dir>/teacher), then frozen; the generator
    # is asked that it see the target pose and expression and the source person. 0: off.
    teacher_weight: float = 0.0
    teacher_steps: int = 1500
    mixed_precision: str = ""  # no | bf16 | fp16; empty: what `accelerate launch` says
    log_every: int = 50
    sample_every: int = 500  # PNG grid of EMA samples (rows: identities; columns: poses x expressions)
    sample_identities: int = 6
    save_every: int = 1000
    keep_checkpoints: int = 2
    trackers: list[str] = field(default_factory=lambda: ["tensorboard"])

    def __post_init__(self) -> None:
        check_train_section(self, ("steps", "batch_size", "log_every", "sample_every", "save_every", "keep_checkpoints", "sample_identities"))
        if not 0 <= self.ema_decay < 1:
            raise ConfigError(f"train.ema_decay must be in [0, 1), got {self.ema_decay}")


@dataclass
class GANExperimentConfig:
    model: GANModelConfig = field(default_factory=GANModelConfig)
    data: GANDataConfig = field(default_factory=GANDataConfig)
    train: GANTrainConfig = field(default_factory=GANTrainConfig)

    def __post_init__(self) -> None:
        faces, g, d = self.data.faces, self.model.generator, self.model.discriminator
        if self.data.train not in FACE_SPLITS:
            raise ConfigError(f"data.train is '{self.data.train}'; use a Faces split: {', '.join(FACE_SPLITS)}")
        for net in (g, d):  # one source of truth: the data decides the label counts and the size
            net.image_size, net.poses, net.expressions = faces.image_size, len(faces.poses), len(faces.expressions)
            net.__post_init__()
        d.identities = faces.identities
