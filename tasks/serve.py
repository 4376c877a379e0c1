"""The web demo: a Gradio app over a trained model's pipelines. Upload or pick an image; get its caption,
answers to your question with their scores, a question for an answer you type, and its tags.

    vl-suite serve --model demo/run/model            # then open http://127.0.0.1:7860
    python -m tasks.serve --model demo/run/model --port 7861

Each box uses the head it needs; one the model lacks is left out. The app's API (gradio_client) has
/caption, /ask, /question and /tag.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # nothing phones home
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from tasks.common.cli import cli, default_model, require_model_folder  # noqa: E402
from vl.errors import InputError  # noqa: E402

EXAMPLES = 4  # Shapes test images offered to click on


def build_app(model: str | Path) -> Any:
    """The gr.Blocks app for a model folder (not launched)."""
    import gradio as gr
    from transformers import pipeline
    from transformers.utils import logging

    import vl  # noqa: F401 (registers the pipelines)
    from vl.pipelines import TASK_OF_HEAD

    logging.disable_progress_bar()
    require_model_folder(model)
    heads = {h.get("type", n): n for n, h in vl.modeling.VLConfig.from_pretrained(model).heads.items()}
    pipes = {kind: pipeline(TASK_OF_HEAD[kind], model=str(model), head=name) for kind, name in heads.items() if kind in TASK_OF_HEAD}
    if not {"caption", "vqa", "qgen", "tag"} & set(pipes):
        raise InputError(f"{model} has none of the heads the demo shows (caption, vqa, qgen, tag); its heads: {', '.join(heads.values())}")

    def caption(image):
        return pipes["caption"](_needed(image))[0]["generated_text"]

    def ask(image, question):
        if not (question or "").strip():
            raise gr.Error("Type a question first.")
        return {a["answer"]: a["score"] for a in pipes["vqa"](_needed(image), question=question, top_k=5)}

    def question(image, answer, question_type):
        if not (answer or "").strip():
            raise gr.Error("Type an answer first.")
        return pipes["qgen"](_needed(image), answer=answer, question_type=question_type or None)[0]["generated_text"]

    def tag(image):
        return {t["label"]: t["score"] for t in pipes["tag"](_needed(image), top_k=8)}

    with gr.Blocks(title="vl-suite") as app:
        gr.Markdown(f"# vl-suite\nModel `{model}`: one shared image encoder, heads {', '.join(f'`{n}`' for n in heads.values())}.")
        with gr.Row():
            with gr.Column(scale=1):
                image = gr.Image(type="pil", label="Image", height=320)
                gr.Examples(examples=_example_images(), inputs=image, label="Shapes test images")
            with gr.Column(scale=2):
                if "caption" in pipes:
                    with gr.Row():
                        caption_out = gr.Textbox(label="Caption", scale=4)
                        caption_btn = gr.Button("Caption", variant="primary", scale=1)
                    caption_btn.click(caption, image, caption_out, api_name="caption")
                if "vqa" in pipes:
                    with gr.Row():
                        question_in = gr.Textbox(label="Question", value="how many shapes are there?", scale=4)
                        ask_btn = gr.Button("Ask", scale=1)
                    answers = gr.Label(label="Answers", num_top_classes=5)
                    ask_btn.click(ask, [image, question_in], answers, api_name="ask")
                if "qgen" in pipes:
                    with gr.Row():
                        answer_in = gr.Textbox(label="Answer", value="2", scale=2)
                        types = pipes["qgen"].model.heads[pipes["qgen"].head].cfg.use_question_type
                        type_in = gr.Textbox(label="Question type", value="count" if types else "", visible=types, scale=2)
                        qgen_btn = gr.Button("Write a question", scale=1)
                    question_out = gr.Textbox(label="Generated question")
                    qgen_btn.click(question, [image, answer_in, type_in], question_out, api_name="question")
                if "tag" in pipes:
                    with gr.Row():
                        tags_out = gr.Label(label="Tags", num_top_classes=8, scale=4)
                        tag_btn = gr.Button("Tag", scale=1)
                    tag_btn.click(tag, image, tags_out, api_name="tag")
    return app


def _needed(image: Any) -> Any:
    if image is None:
        import gradio as gr

        raise gr.Error("Upload or pick an image first.")
    return image


def _example_images() -> list[str]:
    """A few Shapes test images written to a temporary folder (Gradio serves files, not objects)."""
    from vl.data.shapes.dataset import build_dataset

    folder = Path(tempfile.mkdtemp(prefix="vl-serve-"))
    rows = build_dataset(splits=["test"])["test"].select(range(EXAMPLES))
    paths = []
    for row in rows:
        path = folder / f"shapes_test_{row['image_id']}.png"
        row["image"].resize((256, 256)).save(path)
        paths.append(str(path))
    return paths


def serve(model: str | Path, host: str = "127.0.0.1", port: int = 7860, block: bool = True) -> Any:
    """Build and launch the app; with block=False return it running (tests, notebooks)."""
    app = build_app(model)
    print(f"vl-suite demo for {model} on http://{host}:{port} (Ctrl+C stops it)", flush=True)
    app.launch(server_name=host, server_port=port, prevent_thread_lock=not block, show_error=True, quiet=True)
    return app if not block else 0


@cli
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tasks.serve", description=__doc__.split("\n")[0])
    p.add_argument("--model", default=default_model())
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=7860)
    args = p.parse_args(argv)
    return serve(args.model, args.host, args.port)


if __name__ == "__main__":
    raise SystemExit(main())
