"""The independent read of generated views: a recognizer of another architecture, trained on other
people (a tasks.train model with one classify head over expressions, e.g. the held-out-pose
experiment's), reads the target expression of its own people's test faces redrawn by the GAN at the
poses it was trained on. The judge of tasks.evaluate_gan shares its design with the guidance teacher,
so it is partly fooled by what fools the teacher; this reader is not."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from gan.data import stack_faces, to_image
from gan.generators import FaceGenerator
from gan.sample import redraw
from vl.config import load_config
from vl.data.faces import FacesConfig
from vl.data.faces.dataset import build_faces_dataset
from vl.errors import ConfigError
from vl.experiment import ExperimentConfig
from vl.modeling import VLModel
from vl.processing import VLProcessor


@torch.no_grad()
def independent_read(generator: FaceGenerator, drawn: FacesConfig, reader: Path, n: int, seed: int = 0, keep_expression: bool = False) -> dict[str, float]:
    """{"reader_real_expression_acc": the reader on n real test faces of its people at its training
    poses, "reader_gen_expression_acc": on the same faces redrawn at a random one of those poses and a
    random expression (keep_expression: each face's own expression, as data.gan_augment.keep_expression
    draws them)}, the latter per target expression ("<key>/<expression>"), and how many faces were read."""
    model, processor = VLModel.from_pretrained(reader).eval(), VLProcessor.from_pretrained(reader)
    head = model._task(None)
    labels = model.heads[head].cfg.labels
    saved = reader / "train_config.yaml"
    faces = load_config(ExperimentConfig, saved if saved.is_file() else None).data.faces
    poses = [p for p in (faces.train_poses or faces.poses) if p in drawn.poses]
    expressions = [e for e in labels if e in drawn.expressions]
    if faces.image_size != drawn.image_size or not poses or sorted(labels) != sorted(expressions):
        raise ConfigError(
            f"the reader in {reader} reads {labels} at {faces.image_size} px, trained at poses {faces.train_poses or faces.poses}; the generator draws "
            f"{drawn.expressions} at {drawn.image_size} px and poses {drawn.poses}: give a reader of the generator's expressions, size and some of its poses"
        )
    test = replace(faces, poses=poses, train_poses=None, splits={"test": n})
    rows = build_faces_dataset(test, splits=["test"])["test"]
    real, truth = stack_faces(rows, test)[0], rows["expression"]
    g = torch.Generator().manual_seed(seed)
    pose = torch.tensor([drawn.poses.index(poses[i]) for i in torch.randint(len(poses), (len(real),), generator=g).tolist()])
    target = [expressions[i] for i in torch.randint(len(expressions), (len(real),), generator=g).tolist()]
    if keep_expression:
        target = list(truth)
    expression = torch.tensor([drawn.expressions.index(e) for e in target])
    fake = torch.cat([redraw(generator, real[i : i + 256], pose[i : i + 256], expression[i : i + 256]) for i in range(0, len(real), 256)])

    def read(images: torch.Tensor) -> list[str]:
        out = []
        for i in range(0, len(images), 256):
            inputs = processor.visual_inputs([to_image(x) for x in images[i : i + 256]])
            out += [labels[k] for k in model(**inputs, task=head)["logits"].argmax(-1).tolist()]
        return out

    said = read(fake)
    key = "reader_gen_kept_expression_acc" if keep_expression else "reader_gen_expression_acc"
    per_expression = {f"{key}/{e}": sum(s == e for s, t in zip(said, target) if t == e) / max(1, target.count(e)) for e in expressions}
    return {"reader_real_expression_acc": _share_equal(read(real), truth), key: _share_equal(said, target), **per_expression, "reader_faces": len(real)}


def _share_equal(said: list[str], want: list[str]) -> float:
    return sum(a == b for a, b in zip(said, want)) / max(1, len(want))
