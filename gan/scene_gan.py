"""The scene-graph GAN's players and steps (sg2im's losses): the image is drawn from the true layout of
its graph and matched to the real render (pixel L1) while an image discriminator and an object
discriminator (crops at the true boxes, with a shape/color/size classifier) judge it; the predicted
boxes and masks learn from the truth (L1, cross-entropy). Sampling draws from the predicted layout."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw
from torch.utils.data import default_collate

from gan.config import SceneGANConfig
from gan.data import to_image
from gan.discriminators import SceneDiscriminator
from gan.graphs import GraphVocab, ShapesScenes, graph_to_text
from gan.layout import masks_to_layout
from gan.losses import d_hinge, g_hinge
from gan.sg2im import SceneGraphGenerator
from gan.train import GANPlayers
from vl.data.shapes.catalog import COLORS

GRAPH_KEYS = ("shape", "color", "size", "objects", "triples", "triple_mask")


class SceneGraphGAN(GANPlayers):
    """sg2im on the Shapes world."""

    def __init__(self, cfg: SceneGANConfig):
        self.vocab = GraphVocab.of(cfg.data.shapes)
        super().__init__(cfg, SceneGraphGenerator(cfg.model.generator, self.vocab), SceneDiscriminator(cfg.model.discriminator))

    @classmethod
    def build(cls, cfg: SceneGANConfig, out, accelerator) -> tuple[SceneGraphGAN, ShapesScenes]:
        """The players and the training scenes (what tasks.train_gan asks of every kind)."""
        return cls(cfg), ShapesScenes(cfg.data.shapes, cfg.data.train, cfg.model.generator.mask_size)

    def sample_sources(self, data: ShapesScenes) -> dict[str, torch.Tensor]:
        """The first sample_scenes training scenes: the sample grid's rows."""
        items = [data[i] for i in range(self.cfg.train.sample_scenes)]
        return default_collate(items)

    def targets(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The graph the generator reads: the scene's, each triple dropped with train.triple_dropout."""
        keep = torch.rand(batch["triple_mask"].shape, generator=self.rng) >= self.cfg.train.triple_dropout
        return {**{k: batch[k] for k in GRAPH_KEYS}, "triple_mask": batch["triple_mask"] & keep.to(batch["triple_mask"].device)}

    def noise(self, like: torch.Tensor) -> torch.Tensor:
        return torch.randn(like.size(0), self.cfg.model.generator.noise_dim, generator=self.rng).to(like.device)

    def discriminator_step(self, batch: dict[str, torch.Tensor], graph: dict[str, torch.Tensor], accelerator) -> dict[str, torch.Tensor]:
        """Hinge losses of both discriminators on real renders vs images drawn from the true layout,
        + the object discriminator's attribute classification of real crops; one optimizer step."""
        t, real = self.cfg.train, batch["image"]
        with torch.no_grad(), accelerator.autocast():
            fake = self.generator(graph, batch["boxes"], batch["masks"], self.noise(real))["image"]
        with accelerator.autocast():
            out_real = self.discriminator(self._augment(real), batch["boxes"], batch["objects"])
            out_fake = self.discriminator(self._augment(fake.float()), batch["boxes"], batch["objects"])
            image = d_hinge(out_real["adv"].float(), out_fake["adv"].float())
            obj = d_hinge(out_real["obj_adv"].float(), out_fake["obj_adv"].float())
            aux = _attribute_loss(out_real, batch)
        loss = image + t.object_weight * obj + t.aux_weight * aux
        self.opt_d.zero_grad(set_to_none=True)
        accelerator.backward(loss)
        self.opt_d.step()
        return {"d/loss": loss.detach(), "d/image": image.detach(), "d/object": obj.detach(), "d/aux": aux.detach()}

    def generator_step(self, batch: dict[str, torch.Tensor], graph: dict[str, torch.Tensor], accelerator) -> dict[str, torch.Tensor]:
        """Fool both discriminators, be read as the graph's attributes, match the real render (L1);
        predicted boxes (L1) and masks (cross-entropy) against the truth; one step, then the EMA update."""
        t, real, objects = self.cfg.train, batch["image"], batch["objects"]
        with accelerator.autocast():
            out = self.generator(graph, batch["boxes"], batch["masks"], self.noise(real))
            judged = self.discriminator(self._augment(out["image"]), batch["boxes"], objects)
            adv = g_hinge(judged["adv"].float()) + t.object_weight * g_hinge(judged["obj_adv"].float())
            aux = _attribute_loss(judged, batch)
        l1 = F.l1_loss(out["image"].float(), real)
        box = F.l1_loss(out["boxes"].float()[objects], batch["boxes"][objects])
        mask = F.binary_cross_entropy_with_logits(out["mask_logits"].float()[objects], batch["masks"][objects])
        loss = adv + t.aux_weight * aux + t.l1_weight * l1 + t.box_weight * box + t.mask_weight * mask
        self.opt_g.zero_grad(set_to_none=True)
        accelerator.backward(loss)
        self.opt_g.step()
        self.update_ema(accelerator.unwrap_model(self.generator))
        logs = {"g/adv": adv, "g/aux": aux, "g/l1": l1, "g/box": box, "g/mask": mask}
        return {"g/loss": loss.detach(), **{k: v.detach() for k, v in logs.items()}}

    @torch.no_grad()
    def sample_grid(self, sources: dict[str, torch.Tensor]) -> Image.Image:
        """Rows = scenes; columns = the graph as text, the predicted layout, the image drawn from it by
        the EMA generator (zero noise), the real render."""
        g = self.ema.module.eval()
        out = g({k: sources[k] for k in GRAPH_KEYS})
        return graph_grid(sources, out, self.vocab)


def _attribute_loss(out: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Cross-entropy of the object discriminator's shape, color and size heads on the present objects."""
    objects = batch["objects"]
    return sum(F.cross_entropy(out[k].float(), batch[k][objects]) for k in ("shape", "color", "size"))


def layout_picture(boxes: torch.Tensor, masks: torch.Tensor, graph: dict[str, torch.Tensor], vocab: GraphVocab, size: int) -> torch.Tensor:
    """(3, size, size) in [-1, 1]: each object's mask in its box, filled with its color (a picture of the layout)."""
    rgb = torch.tensor([COLORS[vocab.colors[c]] for c in graph["color"].tolist()], dtype=torch.float32) / 127.5 - 1  # (O, 3)
    paint = masks_to_layout(rgb[None] + 1, boxes[None].float(), masks[None].float(), graph["objects"][None], size)[0]
    return (paint - 1).clamp(-1, 1)


def graph_grid(graphs: dict[str, torch.Tensor], out: dict[str, torch.Tensor], vocab: GraphVocab, text_width: int = 192) -> Image.Image:
    """The sample grid: per scene, its graph as text | predicted layout | generated image | [real render]."""
    size = out["image"].size(-1)
    tile = max(size, 96)
    rows = []
    for i in range(out["image"].size(0)):
        graph = {k: graphs[k][i] for k in GRAPH_KEYS}
        panels = [
            layout_picture(out["boxes"][i], torch.sigmoid(out["mask_logits"][i]), graph, vocab, size),
            out["image"][i].float(),
        ]
        if "image" in graphs:
            panels.append(graphs["image"][i])
        row = Image.new("RGB", (text_width + len(panels) * tile, tile), "white")
        ImageDraw.Draw(row).multiline_text((4, 4), "\n".join(graph_to_text(graph, vocab, max_triples=2)), fill="black", spacing=2)
        for k, panel in enumerate(panels):
            row.paste(to_image(panel).resize((tile, tile), Image.NEAREST), (text_width + k * tile, 0))
        rows.append(row)
    grid = Image.new("RGB", (rows[0].width, tile * len(rows) + 2 * (len(rows) - 1)), "white")
    for k, row in enumerate(rows):
        grid.paste(row, (0, k * (tile + 2)))
    return grid
