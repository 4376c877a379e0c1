"""Annotation (multi-label tagging): images with their tags, binary cross-entropy, scored with mAP and
F1. Thresholds are tuned on the evaluation split during training and saved with the model; the F1
training reports is cross-fitted (each half of that split decided at the threshold tuned on the other
half), and tasks.evaluate reports on its own split at the saved thresholds. Tags outside the head's
vocabulary (test_heldout's unseen color+shape pairs) are scored too: the closed vocabulary cannot name
them (recall 0), while pairs composed from their parts' evidence can."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from datasets import Dataset

from vl.data.specs import TAG_SPEC_HELP, column, open_tags
from vl.metrics import FAST_METRICS, tag_scores, tune_threshold
from vl.metrics.tagging import cross_fitted_scores, decision_scores
from vl.modeling import VLModel
from vl.registry import TASKS
from vl.tasks.base import Report, TaskKind


@TASKS.register("tag")
class TagTask(TaskKind):
    data_help = TAG_SPEC_HELP
    headline = ("mAP", "F1")
    eval_batch_size = 128

    def open(self, spec: str, limit: int | None = None) -> Dataset:
        return open_tags(spec, self.cfg.data, limit)

    def head_fields(self, processor) -> dict[str, Any]:
        spec = self.cfg.model.heads[self.name]
        seen = sorted({t for tags in self.train_rows["tags"] for t in tags})
        return {"tags": spec.get("tags") or seen}

    def collate(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        inputs, kept = self.inputs(rows, train=True)
        return {**inputs, "tag_targets": tag_targets(kept, self.head.cfg.tags)}

    def predict(self, model: VLModel, inputs: dict[str, torch.Tensor], rows: list[dict[str, Any]]) -> list[dict[str, list[float]]]:
        """Each image's probability of every tag, and the score of every composable pair."""
        out = model(**inputs, task=self.name, compose=True)
        composed = out["composed"].cpu().tolist() if "composed" in out else [[] for _ in rows]
        return [{"probs": p, "composed": c} for p, c in zip(out["probs"].float().cpu().tolist(), composed)]

    def evaluate(self, model: VLModel, accelerator=None) -> dict[str, float]:
        """Tune the thresholds on the evaluation rows and store them in the model; report mAP and the
        cross-fitted F1 (each half decided at the threshold tuned on the other half)."""
        outputs = self.infer(model, self.eval_rows, accelerator)
        probs, targets = self._arrays(self.eval_rows, outputs)
        pair_scores, pair_targets = self._composed(self.eval_rows, outputs, seen=True)
        pair_threshold = tune_threshold(pair_scores, pair_targets) if pair_targets.sum() > 0 else self.head.cfg.pair_threshold
        set_thresholds(model, self.name, tune_threshold(probs, targets), pair_threshold, self.eval_spec)
        return {**tag_scores(probs, targets, self.head.cfg.threshold), **cross_fitted_scores(probs, targets)}

    def score(self, rows: Dataset, outputs: dict[int, Any], metrics: Sequence[str] = FAST_METRICS) -> dict[str, Any]:
        """mAP and F1 at the saved threshold over the head's vocabulary, then the tags outside it:
        their recall by the closed vocabulary (0: it cannot name them) and the composed pairs' scores."""
        out: dict[str, Any] = tag_scores(*self._arrays(rows, outputs), self.head.cfg.threshold)
        unseen = sorted({t for tags in rows["tags"] for t in tags} - set(self.head.cfg.tags))
        if unseen:
            n = sum(t in unseen for tags in rows["tags"] for t in tags)
            out.update({"unseen_tags": len(unseen), "unseen_instances": n, "unseen_recall": 0.0})
            scores, targets = self._composed(rows, outputs, seen=False)
            if targets.numel() and targets.sum() > 0:
                composed = decision_scores(scores > self.head.cfg.pair_threshold, targets)
                if scores.size(1) >= 2:  # threshold-free, as mAP is for the vocabulary
                    composed = {"mAP": tag_scores(scores, targets)["mAP"], **composed}
                out.update({f"composed_{k}": v for k, v in composed.items()})
                covered = {self.head.composable[k] for k in self._pairs(seen=False)}
                out["composed_coverage"] = sum(t in covered for tags in rows["tags"] for t in tags if t in unseen) / n
        return out

    def report(self, rows: Dataset, outputs: dict[int, Any], metrics: Sequence[str]) -> Report:
        report = super().report(rows, outputs, metrics)
        c = self.head.cfg
        tuned = f"thresholds {c.threshold:g} (tags) and {c.pair_threshold:g} (composed pairs) tuned on {c.threshold_split or 'nothing (defaults)'}"
        report.table += f"\n{tuned}" + ("; the same data as scored here: optimistic" if c.threshold_split and c.threshold_split == self.eval_spec else "")
        report.what = f"{len(outputs)} images"
        return report

    def _arrays(self, rows: Dataset, outputs: dict[int, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """(probs, targets), each (images, tags of the head's vocabulary), of the scored rows."""
        tags = column(rows, "tags")
        order = sorted(outputs)
        return torch.tensor([outputs[i]["probs"] for i in order]), tag_targets([{"tags": tags[i]} for i in order], self.head.cfg.tags)

    def _pairs(self, seen: bool) -> list[int]:
        """Indices into the head's composable pairs: those in its vocabulary (seen) or outside it."""
        vocabulary = set(self.head.cfg.tags)
        return [k for k, p in enumerate(self.head.composable) if (p in vocabulary) == seen]

    def _composed(self, rows: Dataset, outputs: dict[int, Any], seen: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """(composed scores, targets), each (images, pairs), over the seen or unseen composable pairs."""
        pick = self._pairs(seen)
        names = [self.head.composable[k] for k in pick]
        if not pick:
            return torch.zeros(len(outputs), 0), torch.zeros(len(outputs), 0)
        tags = column(rows, "tags")
        order = sorted(outputs)
        scores = torch.tensor([[outputs[i]["composed"][k] for k in pick] for i in order])
        return scores, tag_targets([{"tags": tags[i]} for i in order], names)


def tag_targets(rows: list[dict[str, Any]], tags: list[str]) -> torch.Tensor:
    """(B, C) 0/1 targets over `tags`; other tags of the rows (e.g. held-out pairs) are not targets."""
    index = {t: i for i, t in enumerate(tags)}
    out = torch.zeros(len(rows), len(tags))
    for i, r in enumerate(rows):
        for t in r["tags"]:
            if t in index:
                out[i, index[t]] = 1.0
    return out


def set_thresholds(model: VLModel, task: str, threshold: float, pair_threshold: float, split: str) -> None:
    """The head decides with these thresholds from now on, and save_pretrained stores them (and where they were tuned)."""
    values = {"threshold": threshold, "pair_threshold": pair_threshold, "threshold_split": split}
    for key, value in values.items():
        setattr(model.heads[task].cfg, key, value)
        model.config.heads[task][key] = value
