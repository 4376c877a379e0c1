"""Image-text retrieval: (image, caption) pairs, a contrastive loss, and recall@1/5/10 both ways
(image -> text, text -> image) over every image and every reference caption of the evaluation rows,
as LAVIS and ALBEF report COCO / Flickr30k retrieval, next to a random-ranking baseline."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch
from datasets import Dataset

from vl.data.specs import SPEC_HELP, open_captions
from vl.metrics import FAST_METRICS
from vl.modeling import VLModel
from vl.registry import TASKS
from vl.tasks.base import Report, TaskKind

RANKS = (1, 5, 10)


@TASKS.register("retrieval")
class RetrievalTask(TaskKind):
    data_help = SPEC_HELP
    headline = ("i2t_R@1", "t2i_R@1")

    def open(self, spec: str, limit: int | None = None) -> Dataset:
        return open_captions(spec, self.cfg.data, limit)

    def texts(self) -> Iterable[str]:
        return (c for caps in self.train_rows["captions"] for c in caps)

    def head_fields(self, processor) -> dict[str, Any]:
        return processor.caption_head_ids()

    def train_items(self) -> torch.utils.data.Dataset:
        return self.caption_pairs()

    def collate(self, pairs: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        """Images and their captions; pair_ids tell which pairs show the same image (all are positives)."""
        inputs, kept = self.inputs(pairs, train=True)
        text = self.processor.encode_texts([p["caption"] for p in kept], self.head.cfg.max_len, what="caption")
        ids = {image_id: k for k, image_id in enumerate(dict.fromkeys(p["image_id"] for p in kept))}
        return {**inputs, "text_ids": text["ids"], "text_mask": text["mask"], "pair_ids": torch.tensor([ids[p["image_id"]] for p in kept])}

    def predict(self, model: VLModel, inputs: dict[str, torch.Tensor], rows: list[dict[str, Any]]) -> list[dict[str, torch.Tensor]]:
        """Each image's embedding and the embeddings of its reference captions."""
        device = inputs["pixel_values"].device
        images = model.embed_images(inputs["pixel_values"], task=self.name).cpu()
        captions = [c for r in rows for c in r["captions"]]
        text = self.processor.encode_texts(captions, self.head.cfg.max_len, what="caption")
        texts = model.embed_texts(text["ids"].to(device), text["mask"].to(device), task=self.name).cpu().split([len(r["captions"]) for r in rows])
        return [{"image": i, "texts": t} for i, t in zip(images, texts)]

    def score(self, rows: Sequence[dict[str, Any]], outputs: dict[int, Any], metrics: Sequence[str] = FAST_METRICS) -> dict[str, float]:
        """Recall@K image -> text and text -> image (percent), and their mean."""
        return recall_at_k(*self._similarities(outputs))

    def report(self, rows: Sequence[dict[str, Any]], outputs: dict[int, Any], metrics: Sequence[str]) -> Report:
        similarities, text_image = self._similarities(outputs)
        scores = recall_at_k(similarities, text_image)
        generator = torch.Generator().manual_seed(0)
        baseline = recall_at_k(torch.rand(similarities.shape, generator=generator), text_image)
        table = f"{'':10} {'model':>8} {'random':>8}\n" + "\n".join(f"{k:10} {v:8.2f} {baseline[k]:8.2f}" for k, v in scores.items())
        what = f"{similarities.size(0)} images and {similarities.size(1)} captions"
        return Report({**scores, "random_ranking": baseline}, table, what)

    @staticmethod
    def _similarities(outputs: dict[int, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """(cosine similarities (images, texts), the image index of each text)."""
        order = sorted(outputs)
        images = torch.stack([outputs[i]["image"] for i in order]).float()
        texts = torch.cat([outputs[i]["texts"] for i in order]).float()
        text_image = torch.cat([torch.full((len(outputs[i]["texts"]),), k) for k, i in enumerate(order)])
        return images @ texts.t(), text_image


def recall_at_k(similarities: torch.Tensor, text_image: torch.Tensor, ranks: Sequence[int] = RANKS) -> dict[str, float]:
    """Recall@K in percent, as LAVIS's retrieval report computes it: image -> text counts an image as
    found when any of its captions ranks within K; text -> image, when a caption's image does. A tie
    is ranked in the model's favour. similarities: (images, texts); text_image: (texts,) image index."""
    n_images, n_texts = similarities.shape
    own = torch.zeros(n_images, n_texts, dtype=torch.bool)
    own[text_image, torch.arange(n_texts)] = True
    best = similarities.masked_fill(~own, float("-inf")).amax(1)  # each image's best-scored own caption
    image_rank = (similarities > best[:, None]).sum(1)  # captions above it
    text_rank = (similarities > similarities[text_image, torch.arange(n_texts)][None, :]).sum(0)  # images above its own
    out = {f"i2t_R@{k}": 100.0 * (image_rank < k).float().mean().item() for k in ranks}
    out.update({f"t2i_R@{k}": 100.0 * (text_rank < k).float().mean().item() for k in ranks})
    out["R_mean"] = sum(out.values()) / len(out)
    return out
