"""Judging the scene-graph generator against the exact truth of the Shapes world.

- Layouts: the boxes it predicts from a test graph against the true boxes (mean IoU, the share of
  objects above IoU 0.5 and 0.3, sg2im's R@0.5 / R@0.3), the centre error in pixels, and how many of
  the graph's left/right and above/below triples the predicted boxes keep.
- Images: the suite's own VQA + tagging model trained on real scenes (a tasks.train model folder)
  reads the generated image of each test graph as it reads a real one: the world's questions about
  the scene (official accuracy, per family and question type) and its tags (mAP; each object's
  color+shape pair named, the held-out pairs by the head's composed pair scores). The same model on the
  real renders of the same graphs is printed beside: what a perfect generator would get.
- FD in that model's feature space (its encoder's mean token), real-vs-real (another split) as the floor.
"""

from __future__ import annotations

from typing import Any

import torch
from datasets import Dataset
from datasets import Image as ImageFeature
from PIL import Image
from torch.utils.data import default_collate
from torchmetrics.image.fid import FrechetInceptionDistance
from torchvision.ops import box_iou

from gan.data import to_image, to_stored
from gan.graphs import ShapesScenes
from gan.scene_gan import GRAPH_KEYS
from gan.sg2im import SceneGraphGenerator
from vl.data.shapes.config import ShapesConfig
from vl.data.shapes.world import ID_STRIDE, SPLIT_NUMBERS
from vl.data.specs import column
from vl.metrics.vqa import normalize_answer
from vl.tasks import task_kind
from vl.tasks.base import TaskConfig

SPATIAL = ("left_of", "right_of", "above", "below")


@torch.no_grad()
def draw_split(generator: SceneGraphGenerator, world: ShapesConfig, split: str, n: int, true_layout: bool = False, batch_size: int = 64) -> dict[str, Any]:
    """The first n scenes of a split drawn from their complete graphs (zero noise) at the layout the
    generator predicts, or at the true one (what the image half alone draws, and what compositional
    augmentation uses): {"images": PIL images, "layout": layout_scores, "pixels": (n, 3, H, W)}."""
    data = ShapesScenes(world, split, generator.cfg.mask_size, size=n)
    images, pixels, boxes, truth, objects, triples, masks = [], [], [], [], [], [], []
    for start in range(0, n, batch_size):
        items = [data[i] for i in range(start, min(n, start + batch_size))]
        batch = default_collate(items)
        given = (batch["boxes"], batch["masks"]) if true_layout else (None, None)
        out = generator({k: batch[k] for k in GRAPH_KEYS}, *given)
        pixels.append(out["image"].float())
        images += [to_image(x) for x in out["image"]]
        boxes.append(out["boxes"].float())
        truth.append(batch["boxes"])
        objects.append(batch["objects"])
        triples.append(batch["triples"])
        masks.append(batch["triple_mask"])
    cat = lambda xs: torch.cat(xs)  # noqa: E731
    layout = layout_scores(cat(boxes), cat(truth), cat(objects), cat(triples), cat(masks), data.vocab.predicates, world.image_size)
    return {"images": images, "pixels": cat(pixels), "layout": layout}


def layout_scores(
    pred: torch.Tensor, truth: torch.Tensor, objects: torch.Tensor, triples: torch.Tensor, triple_mask: torch.Tensor, predicates: tuple[str, ...], size: int
) -> dict[str, float]:
    """Predicted vs true boxes (B, O, 4, x0 y0 x1 y1 in [0, 1]) of the present objects (beside them the
    control that knows each true size but places everything at the canvas centre), and the share of the
    graph's spatial triples the predicted box centres keep."""
    p, t = pred[objects], truth[objects]
    iou = box_iou(p, t).diagonal()
    half = (t[:, 2:] - t[:, :2]) / 2  # the control: every object at the canvas centre, at its true size
    centred = box_iou(torch.cat([0.5 - half, 0.5 + half], dim=1), t).diagonal()
    centre = lambda b: (b[..., :2] + b[..., 2:]) / 2  # noqa: E731
    error = (centre(p) - centre(t)).norm(dim=-1) * size
    cp = centre(pred)
    kept, total = 0, 0
    for name, axis, sign in (("left_of", 0, 1), ("right_of", 0, -1), ("above", 1, 1), ("below", 1, -1)):
        k = predicates.index(name)
        sel = triple_mask & (triples[..., 1] == k)
        b, t_idx = sel.nonzero(as_tuple=True)
        s, o = triples[b, t_idx, 0], triples[b, t_idx, 2]
        kept += int((sign * (cp[b, o, axis] - cp[b, s, axis]) > 0).sum())
        total += len(b)
    return {
        "box_iou": iou.mean().item(),
        "box_R@0.5": (iou >= 0.5).float().mean().item(),
        "box_R@0.3": (iou >= 0.3).float().mean().item(),
        "box_iou_centred_control": centred.mean().item(),
        "centre_error_px": error.mean().item(),
        "size_error_px": ((p[:, 2:] - p[:, :2]) - (t[:, 2:] - t[:, :2])).abs().mean().item() * size,
        "spatial_triples_kept": kept / max(total, 1),
        "objects": len(iou),
    }


def with_images(rows: Dataset, images: dict[int, Image.Image]) -> Dataset:
    """rows (any Shapes task form, an image_id column, images undecoded as the task kinds keep them) with
    each image replaced by images[image_id], as PNG bytes."""
    stored = {image_id: to_stored(im) for image_id, im in images.items()}
    plain = rows.cast_column("image", ImageFeature(decode=False))
    return plain.map(lambda r: {"image": stored[r["image_id"]]}, features=plain.features, desc="swap in generated images")


def read_with(model, processor, cfg, task: str, split: str, n: int, images: dict[int, Image.Image] | None) -> dict[str, float]:
    """A reader head's scores on the first n images of a Shapes split, real or (images given) generated."""
    kind = task_kind(model, task)(task, cfg, TaskConfig(eval=f"shapes:{split}"))
    kind.bind(processor, model)
    rows = kind.open(f"shapes:{split}", n)
    if images is not None:
        rows = with_images(rows, images)
    outputs = kind.infer(model, rows)
    return kind.score(rows, outputs) | (shape_reads(rows, outputs) if kind.registry_name == "vqa" else {})


def shape_reads(rows: Dataset, answers: dict[int, str]) -> dict[str, float]:
    """The share of "what shape is the <color> object?" answered right, by the object's true shape: which
    drawn shapes a reader mistakes ({"shape_read/star": 0.26, ...})."""
    types, truth = column(rows, "question_type"), column(rows, "multiple_choice_answer")
    hits: dict[str, list[bool]] = {}
    for i, answer in answers.items():
        if types[i] == "shape":
            shape = normalize_answer(truth[i])
            hits.setdefault(shape, []).append(normalize_answer(answer) == shape)
    return {f"shape_read/{shape}": sum(v) / len(v) for shape, v in sorted(hits.items())}


def image_ids(split: str, n: int) -> list[int]:
    return [SPLIT_NUMBERS[split] * ID_STRIDE + i for i in range(n)]


class ReaderFeatures(torch.nn.Module):
    """The reader's encoder (mean of its output tokens) as torchmetrics' `feature` network; images in [0, 1]."""

    def __init__(self, model, processor):
        super().__init__()
        self.model, self.processor = model, processor
        self.num_features = model.encoder.out_dim

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        pils = [Image.fromarray((x.permute(1, 2, 0) * 255).round().byte().numpy()) for x in images]
        pixel_values = self.processor.visual_inputs(pils)["pixel_values"]
        return self.model.encoder.forward_features(pixel_values).float().mean(dim=1).double()


def reader_fd(model, processor, real: torch.Tensor, fake: torch.Tensor, batch_size: int = 128) -> float:
    """FD between two image sets ((N, 3, H, W) in [-1, 1]) in the reader's feature space."""
    fd = FrechetInceptionDistance(feature=ReaderFeatures(model, processor), normalize=True)
    for imgs, is_real in ((real, True), (fake, False)):
        for i in range(0, len(imgs), batch_size):
            fd.update(((imgs[i : i + batch_size] + 1) / 2).clamp(0, 1), real=is_real)
    return fd.compute().item()
