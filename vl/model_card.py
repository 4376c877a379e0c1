"""A HuggingFace model card (README.md with YAML front matter) for a trained model folder: what the
heads are, the command that trained it, the scores it reached, and a usage snippet that runs as written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

# the Hub's pipeline_tag taxonomy (what the Hub filters on) and our pipeline names, per head type
HUB_TAG = {
    "caption": "image-to-text",
    "qgen": "image-to-text",
    "vqa": "visual-question-answering",
    "tag": "image-classification",
    "classify": "image-classification",
    "retrieval": "zero-shot-image-classification",
}
DATASETS = {"shapes": "vl-suite/shapes-world", "faces": "vl-suite/faces-world", "coco": "coco", "karpathy": "coco", "vqa": "vqa_v2"}
USAGE = {  # pipeline task, the call after `p = pipeline(task, model=...)`, what it prints
    "caption": ("image-captioning", "p(image, num_beams=3)", '[{"generated_text": ...}]'),
    "vqa": ("image-question-answering", 'p(image, question="how many shapes are there?", top_k=3)', '[{"answer": ..., "score": ...}, ...]'),
    "qgen": ("visual-question-generation", 'p(image, answer="2"{qtype})', '[{"generated_text": "how many ...?"}]'),
    "tag": ("image-tagging", "p(image)", '[{"label": ..., "score": ...}, ...]'),
    "retrieval": ("image-text-retrieval", 'p(image, texts=["a red circle", "two blue squares"])', '[{"text": ..., "score": ...}, ...]'),
}


def write_model_card(
    folder: Path, heads: dict[str, dict[str, Any]], data_spec: str, scores: dict[str, float], command: str, headline: set[str] = frozenset()
) -> Path:
    """Write folder/README.md. heads: the model config's heads; scores: {"val/<head>/<metric>": value}
    of the final evaluation on `data_spec`'s evaluation split; the `headline` keys among them go into
    the front matter's model-index (all go into the card's table, per-question-type ones aside)."""
    types = {name: h.get("type", name) for name, h in heads.items()}
    kind = data_spec.split(":", 1)[0]
    dataset = DATASETS.get(kind, kind)
    results, shown = [], []
    for key, value in scores.items():
        _, head, metric = key.split("/", 2)  # val/<head>/<metric>
        task = HUB_TAG.get(types.get(head, head), "image-to-text")
        result = EvalResult(
            task_type=task,
            dataset_type=dataset,
            dataset_name=data_spec,
            metric_type=metric,
            metric_value=round(float(value), 4),
            metric_name=f"{head} {metric}",
        )
        results += [result] if key in headline else []
        shown += [] if metric.startswith("type/") or metric in ("loss", "threshold", "tags_scored") else [result]
    card_data = ModelCardData(
        library_name="vl-suite",
        pipeline_tag=HUB_TAG.get(next(iter(types.values()), ""), "image-to-text"),
        tags=["vl-suite", "vision-language", *dict.fromkeys(USAGE[t][0] for t in types.values() if t in USAGE)],
        datasets=[dataset],
        metrics=sorted({r.metric_type for r in results}),
        model_name=folder.name if folder.name != "model" else folder.parent.name,
        eval_results=results or None,
    )
    table = "\n".join(f"| {r.metric_name} | {r.metric_value:g} |" for r in shown)
    body = f"""
# {card_data.model_name}

A [vl-suite](https://github.com/vl-suite/vl-suite) model: one shared image encoder with the heads
{", ".join(f"`{n}` ({t})" for n, t in types.items())}.

## Training

```bash
{command}
```

## Scores

The final evaluation of the run on `{data_spec}`:

| head metric | value |
|---|---:|
{table or "| (no evaluation) | |"}

## Use

```python
import vl  # registers the vl-suite pipelines with transformers
from PIL import Image
from transformers import pipeline

image = Image.new("RGB", (64, 64), "gray")  # your image: a path, a PIL image, a numpy array or a tensor
{_usage(folder, heads, types)}
```
"""
    path = folder / "README.md"
    ModelCard(f"---\n{card_data.to_yaml()}\n---\n{body}").save(path)
    return path


def _usage(folder: Path, heads: dict[str, dict[str, Any]], types: dict[str, str]) -> str:
    lines = []
    for name, kind in types.items():
        if kind not in USAGE:
            continue
        task, call, shows = USAGE[kind]
        several = list(types.values()).count(kind) > 1
        qtype = ', question_type="count"' if heads[name].get("use_question_type") else ""
        lines.append(f'p = pipeline("{task}", model="{folder}"{f", head={name!r}" if several else ""})')
        lines.append(f"print({call.format(qtype=qtype)})  # {shows}")
    return "\n".join(lines)
