"""Judging generated faces without downloaded Inception weights: a classifier of pose, expression and
identity trained once on real faces; on generated views it gives pose / expression / identity
accuracy, and its features give a Frechet distance (FD, torchmetrics' FID machinery with our feature
network, so not comparable with published FIDs); CAS trains a fresh classifier on generated faces
only and tests it on real ones."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance
from tqdm.auto import tqdm

from vl.modeling import CheckpointError

HEADS = ("pose", "expression", "identity")


@dataclass
class ClassifierConfig:
    poses: int = 5
    expressions: int = 6
    identities: int = 240
    width: int = 32
    features: int = 128

    @classmethod
    def of(cls, faces: Any) -> ClassifierConfig:
        """A classifier of a Faces world's poses, expressions and people."""
        return cls(poses=len(faces.poses), expressions=len(faces.expressions), identities=faces.identities)


class FaceClassifier(nn.Module):
    """images (B, 3, H, W) in [-1, 1] -> {"features" (B, F), "pose", "expression", "identity" logits}:
    four conv-BN-ReLU pairs, each followed by 2x2 pooling, then global average pooling."""

    def __init__(self, cfg: ClassifierConfig):
        super().__init__()
        self.cfg = cfg
        layers, c_in = [], 3
        for i in range(4):
            c = cfg.width * 2**i
            layers += [
                nn.Conv2d(c_in, c, 3, padding=1),
                nn.BatchNorm2d(c),
                nn.ReLU(),
                nn.Conv2d(c, c, 3, padding=1),
                nn.BatchNorm2d(c),
                nn.ReLU(),
                nn.MaxPool2d(2),
            ]
            c_in = c
        self.body = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, cfg.features), nn.ReLU())
        self.heads = nn.ModuleDict(
            {
                "pose": nn.Linear(cfg.features, cfg.poses),
                "expression": nn.Linear(cfg.features, cfg.expressions),
                "identity": nn.Linear(cfg.features, cfg.identities),
            }
        )

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.body(images)
        return {"features": h, **{k: head(h) for k, head in self.heads.items()}}


class ClassifierFeatures(nn.Module):
    """The classifier's features as torchmetrics' `feature` network (images in [-1, 1])."""

    def __init__(self, classifier: FaceClassifier):
        super().__init__()
        self.classifier = classifier.eval()
        self.num_features = classifier.cfg.features

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier(images)["features"]


def train_classifier(
    images: torch.Tensor,
    labels: dict[str, torch.Tensor],
    cfg: ClassifierConfig,
    steps: int = 1500,
    batch_size: int = 64,
    lr: float = 2e-3,
    seed: int = 0,
    heads: tuple[str, ...] = HEADS,
    desc: str = "classifier",
) -> FaceClassifier:
    """A FaceClassifier trained on (images (N, 3, H, W) in [-1, 1], labels {head: (N,)}) for the given heads."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = FaceClassifier(cfg).train()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    for _ in tqdm(range(steps), desc=f"train {desc}", unit="step", leave=False):
        i = torch.randint(len(images), (batch_size,), generator=g)
        x = images[i]
        shift = torch.randint(-2, 3, (2,), generator=g).tolist()  # small translations: the classifier must not key on exact pixels
        x = torch.roll(x, shifts=shift, dims=(2, 3))
        out = model(x)
        loss = sum(F.cross_entropy(out[h], labels[h][i]) for h in heads)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    return model.eval()


@torch.no_grad()
def predict(model: FaceClassifier, images: torch.Tensor, batch_size: int = 256) -> dict[str, torch.Tensor]:
    """Argmax of every head, (N,) each."""
    outs = [model(images[i : i + batch_size]) for i in range(0, len(images), batch_size)]
    return {h: torch.cat([o[h] for o in outs]).argmax(-1) for h in HEADS}


def accuracies(model: FaceClassifier, images: torch.Tensor, labels: dict[str, torch.Tensor]) -> dict[str, float]:
    """Share of images whose pose / expression / identity the classifier gets right, per head given."""
    pred = predict(model, images)
    return {h: (pred[h] == labels[h]).float().mean().item() for h in labels}


@torch.no_grad()
def frechet_distance(model: FaceClassifier, real: torch.Tensor, fake: torch.Tensor, batch_size: int = 256) -> float:
    """FD between real and generated images in the classifier's feature space."""
    fd = FrechetInceptionDistance(feature=ClassifierFeatures(model), normalize=True)
    for imgs, is_real in ((real, True), (fake, False)):
        for i in range(0, len(imgs), batch_size):
            fd.update(imgs[i : i + batch_size], real=is_real)
    return fd.compute().item()


def save_classifier(model: FaceClassifier, folder: str | Path) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, folder / "model.safetensors")
    (folder / "config.json").write_text(json.dumps(asdict(model.cfg), indent=1))
    return folder


def load_classifier(folder: str | Path) -> FaceClassifier:
    folder = Path(folder)
    if not (folder / "model.safetensors").is_file() or not (folder / "config.json").is_file():
        raise CheckpointError(
            f"{folder} is not a face classifier folder (model.safetensors + config.json); train one with tasks.evaluate_gan --train-classifier"
        )
    model = FaceClassifier(ClassifierConfig(**json.loads((folder / "config.json").read_text())))
    try:
        model.load_state_dict(load_file(folder / "model.safetensors"))
    except RuntimeError as err:
        raise CheckpointError(f"{folder} does not fit a face classifier: {str(err).splitlines()[0]}") from None
    return model.eval()


def classifier_at(folder: str | Path, train: Any, cfg: ClassifierConfig, steps: int, seed: int, desc: str) -> FaceClassifier:
    """The face classifier saved in `folder`, or, when there is none yet, one trained on `train()`'s
    (images, labels) and saved there (so a resumed run or a second evaluation reuses it)."""
    folder = Path(folder)
    if (folder / "model.safetensors").is_file():
        return load_classifier(folder)
    images, labels = train()
    model = train_classifier(images, labels, cfg, steps=steps, seed=seed, desc=desc)
    save_classifier(model, folder)
    return model


def summary(metrics: dict[str, Any]) -> str:
    """One line a person reads."""
    keys = ("gen_pose_acc", "gen_expression_acc", "gen_identity_acc", "fd", "cas_expression_acc", "real_expression_acc")
    keys += ("reader_gen_expression_acc", "reader_gen_kept_expression_acc")
    return ", ".join(f"{k} {metrics[k]:.3f}" for k in keys if k in metrics)
