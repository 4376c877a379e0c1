"""HuggingFace pipelines for vl-suite models, registered with transformers' PIPELINE_REGISTRY on import:

    import vl.pipelines  # or: import vl
    from transformers import pipeline
    captioner = pipeline("image-captioning", model="runs/shapes-caption/model")
    captioner("scene.png")  # [{"generated_text": "a red circle left of a blue square"}]

| task | head type | call | one image's output |
|---|---|---|---|
| image-captioning | caption | `p(images, max_new_tokens=, num_beams=, do_sample=, top_p=)` | `[{"generated_text"}]` |
| image-question-answering | vqa | `p(images, question=..., top_k=1)` | `[{"answer", "score"}]`, top_k of them |
| visual-question-generation | qgen | `p(images, answer=..., question_type=)` | `[{"generated_text"}]` |
| image-tagging | tag | `p(images, top_k=None, threshold=None)` | `[{"label", "score"}]` |
| image-text-retrieval | retrieval | `p(images, texts=[...])` | `[{"text", "score"}]`, best first |
| video-captioning | caption (video encoder) | `p(clips, max_new_tokens=, num_beams=...)` | `[{"generated_text"}]` |
| action-recognition | classify (video encoder) | `p(clips, top_k=5)` | `[{"score", "label"}]` (transformers' video-classification output) |
| video-event-detection | events | `p(clips, duration=, threshold=)` | `[{"label", "start", "end", "score"}]` |

The names differ from transformers' own (it removed `image-to-text` in 5.0 and `visual-question-answering`
in 5.3; its `video-classification` wants a model class of its own, hence `action-recognition`). Images are
anything vl.data.images.load_image reads, clips anything vl.data.video.load_clip reads (a video file, a
frame folder, a list of frames); a list of them gives a list of outputs, batched by `batch_size`.
A model with several heads of a kind takes `head=` (at creation or per call).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from transformers import AutoModel, Pipeline
from transformers.pipelines import PIPELINE_REGISTRY

import vl.modeling
import vl.processing  # noqa: F401 (registers the "vl" model type and its processor with the Auto classes)
from vl.data.images import load_image
from vl.data.video import load_clip
from vl.encoders.build import encoder_frames
from vl.errors import InputError
from vl.generation import GenerationConfig
from vl.heads.qgen import qgen_prompt
from vl.metrics import normalize_answer
from vl.metrics.detection import frames_to_segments

GENERATION_KEYS = tuple(GenerationConfig.__dataclass_fields__)


class VLPipeline(Pipeline):
    """What every vl-suite pipeline shares: the head it runs, image inputs, lists and batching."""

    head_type = ""  # the head type (vl.heads registry name) this pipeline runs
    text_inputs: tuple[str, ...] = ()  # per-image text arguments (question=, answer=): one, or one per image
    _load_processor = False  # loaded in __init__, where a folder without one gets an error naming the fix
    _load_image_processor = False
    _load_feature_extractor = False
    _load_tokenizer = False

    def __init__(self, *args: Any, head: str | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if self.processor is None:
            self.processor = load_processor(self.model.name_or_path)
        self.tokenizer, self.image_processor = self.processor.tokenizer, self.processor.image_processor  # transformers' batching pads with them
        self.head = find_head(self.model, self.head_type, head, self.task)
        reads_clips = encoder_frames(self.model.config.encoder) is not None
        if reads_clips != isinstance(self, VideoPipeline):
            kind = "clips (a video encoder)" if reads_clips else "images"
            usable = [t for t, cls in PIPELINES.items() if issubclass(cls, VideoPipeline) == reads_clips and cls.head_type == self.head_type]
            instead = f"; use pipeline({usable[0]!r}) instead" if usable else ""
            raise InputError(f"{self.task} does not fit this model: it reads {kind}{instead}")

    def __call__(self, images: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(images, torch.Tensor) and images.ndim == 4:
            images = list(images)  # a (B, C, H, W) batch
        single = not isinstance(images, (list, tuple))
        images = [images] if single else list(images)
        if not images:
            return []
        texts = {k: _per_image(k, kwargs.pop(k), len(images)) for k in self.text_inputs if kwargs.get(k) is not None}
        missing = [k for k in self.text_inputs if k not in texts and k in self.required_texts()]
        if missing:
            raise InputError(f"{self.task} needs {missing[0]}=... (one, or one per image)")
        items = [{"image": image, **{k: v[i] for k, v in texts.items()}} for i, image in enumerate(images)]
        return super().__call__(items[0] if single else items, *args, **kwargs)  # one item: no DataLoader

    def required_texts(self) -> tuple[str, ...]:
        return self.text_inputs

    def _sanitize_parameters(self, head: str | None = None, **kwargs: Any) -> tuple[dict, dict, dict]:
        if head is not None:
            self.head = find_head(self.model, self.head_type, head, self.task)
        return self.sanitize(**kwargs)

    def sanitize(self, **kwargs: Any) -> tuple[dict, dict, dict]:
        """(preprocess, forward, postprocess) parameters of one call; unknown ones are errors."""
        if kwargs:
            raise InputError(f"{self.task} takes no {', '.join(kwargs)} argument")
        return {}, {}, {}

    def pixels(self, item: dict[str, Any]) -> dict[str, torch.Tensor]:
        return self.processor.visual_inputs([load_image(item["image"])])

    def encode(self, text: str, what: str) -> dict[str, torch.Tensor]:
        return self.processor.encode_texts([text], self.model.heads[self.head].cfg.max_len, what=what)


class GeneratingPipeline(VLPipeline):
    """Pipelines whose head writes text: generation options pass through to model.generate."""

    def sanitize(self, generate_kwargs: dict[str, Any] | None = None, **kwargs: Any) -> tuple[dict, dict, dict]:
        options = dict(generate_kwargs or {})
        options.update({k: kwargs.pop(k) for k in list(kwargs) if k in GENERATION_KEYS})
        pre, _, post = super().sanitize(**kwargs)
        GenerationConfig(**options)  # a bad option fails now, with its reason, not inside a batch
        return pre, {"generate_kwargs": options}, post

    def generate(self, inputs: dict[str, torch.Tensor], generate_kwargs: dict[str, Any], **fields: torch.Tensor) -> dict[str, Any]:
        """Token ids, decoded as the head's training run evaluated it (model.generate starts from
        model.config.generation) unless the call says otherwise; with no saved length, as many new tokens as
        the decoder holds (BOS aside)."""
        room = self.model.heads[self.head].text_decoder().cfg.max_len - 1
        saved_length = self.model.config.generation.get(self.head, {}).get("max_new_tokens", room)
        options = {"max_new_tokens": saved_length, **generate_kwargs}
        return {"ids": self.model.generate(inputs["pixel_values"], task=self.head, **options, **fields)}

    def postprocess(self, outputs: dict[str, Any]) -> list[dict[str, str]]:
        return [{"generated_text": text} for text in self.processor.batch_decode(outputs["ids"])]


class ImageCaptioningPipeline(GeneratingPipeline):
    """image(s) -> [{"generated_text": caption}] per image."""

    head_type = "caption"

    def preprocess(self, item: dict[str, Any]) -> dict[str, torch.Tensor]:
        return self.pixels(item)

    def _forward(self, inputs: dict[str, torch.Tensor], generate_kwargs: dict[str, Any]) -> dict[str, Any]:
        return self.generate(inputs, generate_kwargs)


class VisualQuestionGenerationPipeline(GeneratingPipeline):
    """image(s), answer= (and question_type= when the head was trained with types) -> [{"generated_text": question}]."""

    head_type = "qgen"
    text_inputs = ("answer", "question_type")

    def required_texts(self) -> tuple[str, ...]:
        return ("answer", "question_type") if self.model.heads[self.head].cfg.use_question_type else ("answer",)

    def preprocess(self, item: dict[str, Any]) -> dict[str, torch.Tensor]:
        if not self.model.heads[self.head].cfg.use_question_type:
            item.pop("question_type", None)
        prompt = self.encode(qgen_prompt(normalize_answer(_text(item["answer"], "answer")), item.get("question_type")), "answer")
        return {**self.pixels(item), "prompt_ids": prompt["ids"], "prompt_mask": prompt["mask"]}

    def _forward(self, inputs: dict[str, torch.Tensor], generate_kwargs: dict[str, Any]) -> dict[str, Any]:
        return self.generate(inputs, generate_kwargs, prompt_ids=inputs["prompt_ids"], prompt_mask=inputs["prompt_mask"])


class ImageQuestionAnsweringPipeline(VLPipeline):
    """image(s), question= -> [{"answer", "score"}] per image: the top_k answers, most likely first."""

    head_type = "vqa"
    text_inputs = ("question",)

    def sanitize(self, top_k: int = 1, **kwargs: Any) -> tuple[dict, dict, dict]:
        pre, fwd, _ = super().sanitize(**kwargs)
        if not isinstance(top_k, int) or top_k < 1:
            raise InputError(f"top_k must be a positive integer, got {top_k!r}")
        return pre, fwd, {"top_k": top_k}

    def preprocess(self, item: dict[str, Any]) -> dict[str, torch.Tensor]:
        q = self.encode(_text(item["question"], "question"), "question")
        return {**self.pixels(item), "question_ids": q["ids"], "question_mask": q["mask"]}

    def _forward(self, inputs: dict[str, torch.Tensor]) -> dict[str, Any]:
        return {"logits": self.model(**inputs, task=self.head)["logits"]}

    def postprocess(self, outputs: dict[str, Any], top_k: int = 1) -> list[dict[str, Any]]:
        return self.model.heads[self.head].top_answers(outputs["logits"], k=top_k)[0]


class ImageTaggingPipeline(VLPipeline):
    """image(s) -> [{"label", "score"}]: every tag above the head's tuned threshold (or `threshold=`),
    or the top_k tags whatever their score; most likely first."""

    head_type = "tag"

    def sanitize(self, top_k: int | None = None, threshold: float | None = None, **kwargs: Any) -> tuple[dict, dict, dict]:
        pre, fwd, _ = super().sanitize(**kwargs)
        if top_k is not None and (not isinstance(top_k, int) or top_k < 1):
            raise InputError(f"top_k must be a positive integer, got {top_k!r}")
        if threshold is not None and not 0 <= threshold <= 1:
            raise InputError(f"threshold must be in [0, 1], got {threshold!r}")
        return pre, fwd, {"top_k": top_k, "threshold": threshold}

    def preprocess(self, item: dict[str, Any]) -> dict[str, torch.Tensor]:
        return self.pixels(item)

    def _forward(self, inputs: dict[str, torch.Tensor]) -> dict[str, Any]:
        return {"probs": self.model(**inputs, task=self.head)["probs"]}

    def postprocess(self, outputs: dict[str, Any], top_k: int | None = None, threshold: float | None = None) -> list[dict[str, Any]]:
        cfg = self.model.heads[self.head].cfg
        ranked = sorted(zip(outputs["probs"][0].float().tolist(), cfg.tags), reverse=True)
        if top_k is None:
            cut = cfg.threshold if threshold is None else threshold
            ranked = [(p, t) for p, t in ranked if p > cut]
        return [{"label": t, "score": p} for p, t in ranked[:top_k]]


class ImageTextRetrievalPipeline(VLPipeline):
    """image(s), texts=[...] -> [{"text", "score"}] per image: the texts ranked by the contrastive head,
    scores a softmax over the given texts at the head's learned temperature."""

    head_type = "retrieval"

    def sanitize(self, texts: list[str] | None = None, **kwargs: Any) -> tuple[dict, dict, dict]:
        pre, fwd, _ = super().sanitize(**kwargs)
        if texts is None:  # (at creation; a call without texts fails in _forward)
            return pre, fwd, {}
        if isinstance(texts, str) or not texts:
            raise InputError(f"texts= must be a non-empty list of candidate texts, got {texts!r}")
        return pre, {"texts": [_text(t, "text") for t in texts]}, {"texts": texts}

    def preprocess(self, item: dict[str, Any]) -> dict[str, torch.Tensor]:
        return self.pixels(item)

    def _forward(self, inputs: dict[str, torch.Tensor], texts: list[str] | None = None) -> dict[str, Any]:
        if texts is None:
            raise InputError("image-text-retrieval needs texts=[...]: the candidate texts to rank")
        head = self.model.heads[self.head]
        t = self.processor.encode_texts(texts, head.cfg.max_len, what="text")
        images = self.model.embed_images(inputs["pixel_values"], task=self.head)
        embedded = self.model.embed_texts(t["ids"].to(images.device), t["mask"].to(images.device), task=self.head)
        scale = head.logit_scale.float().clamp(max=torch.log(torch.tensor(100.0))).exp()
        return {"probs": (scale * images.float() @ embedded.float().T).softmax(-1)}

    def postprocess(self, outputs: dict[str, Any], texts: list[str]) -> list[dict[str, Any]]:
        ranked = sorted(zip(outputs["probs"][0].tolist(), range(len(texts))), reverse=True)
        return [{"text": texts[i], "score": p} for p, i in ranked]


class VideoPipeline(VLPipeline):
    """Pipelines over clips: one clip (a video file, a frame folder, a list of frames) or a list of clips;
    each sampled to the encoder's clip length."""

    def __call__(self, videos: Any, *args: Any, **kwargs: Any) -> Any:
        one_clip_of_frames = isinstance(videos, (list, tuple)) and videos and not isinstance(videos[0], (str, Path, list, tuple))
        single = not isinstance(videos, (list, tuple)) or one_clip_of_frames
        videos = [videos] if single else list(videos)
        if not videos:
            return []
        items = [{"video": v} for v in videos]
        return Pipeline.__call__(self, items[0] if single else items, *args, **kwargs)

    def pixels(self, item: dict[str, Any]) -> dict[str, torch.Tensor]:
        return self.processor.visual_inputs([load_clip(item["video"], encoder_frames(self.model.config.encoder))])

    def preprocess(self, item: dict[str, Any]) -> dict[str, torch.Tensor]:
        return self.pixels(item)


class VideoCaptioningPipeline(VideoPipeline, GeneratingPipeline):
    """clip(s) -> [{"generated_text": caption}] per clip."""

    head_type = "caption"

    def _forward(self, inputs: dict[str, torch.Tensor], generate_kwargs: dict[str, Any]) -> dict[str, Any]:
        return self.generate(inputs, generate_kwargs)


class ActionRecognitionPipeline(VideoPipeline):
    """clip(s) -> [{"score", "label"}] per clip, the top_k actions (5 by default), most likely first:
    transformers' video-classification output, from a classify head on a video encoder."""

    head_type = "classify"

    def sanitize(self, top_k: int = 5, **kwargs: Any) -> tuple[dict, dict, dict]:
        pre, fwd, _ = super().sanitize(**kwargs)
        if not isinstance(top_k, int) or top_k < 1:
            raise InputError(f"top_k must be a positive integer, got {top_k!r}")
        return pre, fwd, {"top_k": top_k}

    def _forward(self, inputs: dict[str, torch.Tensor]) -> dict[str, Any]:
        return {"logits": self.model(**inputs, task=self.head)["logits"]}

    def postprocess(self, outputs: dict[str, Any], top_k: int = 5) -> list[dict[str, Any]]:
        return [{"score": r["score"], "label": r["label"]} for r in self.model.heads[self.head].top_labels(outputs["logits"], k=top_k)[0]]


class VideoEventDetectionPipeline(VideoPipeline):
    """clip(s) -> [{"label", "start", "end", "score"}] per clip: the segments (in the clip's frames, or in
    seconds with duration=) where the events head finds each action under way, best first."""

    head_type = "events"

    def sanitize(self, duration: float | None = None, threshold: float | None = None, **kwargs: Any) -> tuple[dict, dict, dict]:
        pre, fwd, _ = super().sanitize(**kwargs)
        if threshold is not None and not 0 <= threshold <= 1:
            raise InputError(f"threshold must be in [0, 1], got {threshold!r}")
        if duration is not None and not duration > 0:
            raise InputError(f"duration must be a positive number of seconds, got {duration!r}")
        return pre, fwd, {"duration": duration, "threshold": threshold}

    def _forward(self, inputs: dict[str, torch.Tensor]) -> dict[str, Any]:
        return {"probs": self.model(**inputs, task=self.head)["probs"]}

    def postprocess(self, outputs: dict[str, Any], duration: float | None = None, threshold: float | None = None) -> list[dict[str, Any]]:
        cfg = self.model.heads[self.head].cfg
        probs = outputs["probs"][0].float().numpy()
        found = frames_to_segments(probs, cfg.labels, duration or probs.shape[0], cfg.threshold if threshold is None else threshold)
        return sorted(found, key=lambda s: -s["score"])


PIPELINES: dict[str, type[VLPipeline]] = {
    "image-captioning": ImageCaptioningPipeline,
    "image-question-answering": ImageQuestionAnsweringPipeline,
    "visual-question-generation": VisualQuestionGenerationPipeline,
    "image-tagging": ImageTaggingPipeline,
    "image-text-retrieval": ImageTextRetrievalPipeline,
    "video-captioning": VideoCaptioningPipeline,
    "action-recognition": ActionRecognitionPipeline,
    "video-event-detection": VideoEventDetectionPipeline,
}
TASK_OF_HEAD = {cls.head_type: task for task, cls in PIPELINES.items() if not issubclass(cls, VideoPipeline)}


def load_processor(folder: str) -> vl.processing.VLProcessor:
    """The processor saved beside a model; a folder without one is an InputError that names the fix."""
    missing = [f for f in ("processor_config.json", "tokenizer.json") if not (Path(folder) / f).is_file()]
    if missing:
        raise InputError(
            f"{folder} has no processor ({', '.join(missing)} missing): copy them from the training run's model folder, "
            "or save one there with processor.save_pretrained(folder); or pass pipeline(..., processor=...)"
        )
    return vl.processing.VLProcessor.from_pretrained(folder)


def find_head(model: torch.nn.Module, head_type: str, name: str | None, task: str) -> str:
    """The name of the model's `head_type` head: `name` if given, else its only one; else an error
    that lists the heads the model has."""
    types = {n: h.get("type", n) for n, h in model.config.heads.items()}
    have = ", ".join(f"{n} ({t})" for n, t in types.items())
    if name is not None:
        if types.get(name) != head_type:
            raise InputError(f"{task} runs a '{head_type}' head; '{name}' is not one. This model's heads: {have}")
        return name
    found = [n for n, t in types.items() if t == head_type]
    if not found:
        usable = ", ".join(TASK_OF_HEAD[t] for t in dict.fromkeys(types.values()) if t in TASK_OF_HEAD)
        raise InputError(f"{task} needs a '{head_type}' head and this model has none; its heads: {have} (pipelines it serves: {usable or 'none'})")
    if len(found) > 1:
        raise InputError(f"this model has several '{head_type}' heads ({', '.join(found)}); pass head=<name>")
    return found[0]


def _per_image(key: str, value: Any, n: int) -> list[Any]:
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise InputError(f"{len(value)} values of {key}= for {n} images; give one {key}, or one per image")
        return list(value)
    return [value] * n


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"the {what} must be a non-empty string, got {value!r}")
    return value


for _task, _cls in PIPELINES.items():
    PIPELINE_REGISTRY.register_pipeline(_task, pipeline_class=_cls, pt_model=AutoModel, type="multimodal")
