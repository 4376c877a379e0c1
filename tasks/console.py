"""The `vl-suite` command: a trained model on your images, and the suite's entry points under one name.

    vl-suite caption scene.png other.png --model demo/run/model
    vl-suite ask scene.png "how many shapes are there?" --top-k 3
    vl-suite question scene.png 2 --question-type count
    vl-suite tag scene.png --json
    vl-suite train configs/shapes/demo.yaml train.steps=500        # runs `accelerate launch -m tasks.train`
    vl-suite evaluate --model demo/run/model --data shapes:test    # = python -m tasks.evaluate ...
    vl-suite export-shapes --out data/shapes --split test --n 100  # = python -m tasks.export_shapes ...
    vl-suite export-shapes-video --out data/shapes-video --n 100   # = python -m tasks.export_shapes_video ...
    vl-suite serve --model demo/run/model                          # the web demo (Gradio)

--model defaults to $VL_MODEL, else demo/run/model (what `make demo` trains).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
from typing import Any

from tasks.common.cli import cli, cpu_cores, default_model, require_model_folder

PASS_THROUGH = {"evaluate": "tasks.evaluate", "export-shapes": "tasks.export_shapes", "export-shapes-video": "tasks.export_shapes_video"}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="vl-suite", description=__doc__.split("\n")[0], epilog=__doc__.split("\n", 2)[2], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str, example: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help, description=help, epilog=f"example:\n  {example}", formatter_class=argparse.RawDescriptionHelpFormatter)

    def model_options(c: argparse.ArgumentParser) -> None:
        c.add_argument("--model", default=default_model(), help="a trained model folder (default: $VL_MODEL or demo/run/model)")
        c.add_argument("--head", help="which head, when the model has several of the kind")
        c.add_argument("--batch-size", type=int, default=8)
        c.add_argument("--json", action="store_true", help="print one JSON list, an object per image")

    def generation_options(c: argparse.ArgumentParser) -> None:
        c.add_argument("--num-beams", type=int, help="default: as the model's training run decoded (config.generation), else 1")
        c.add_argument("--max-new-tokens", type=int, help="default: as the training run decoded, else as many as the head's decoder holds")
        c.add_argument("--do-sample", action="store_true", default=None)
        c.add_argument("--top-p", type=float)

    c = command("caption", "describe images", "vl-suite caption scene.png other.png --num-beams 3")
    c.add_argument("images", nargs="+", metavar="IMG")
    model_options(c)
    generation_options(c)
    c = command("ask", "answer a question about images", 'vl-suite ask scene.png "what shape is the red object?" --top-k 3')
    c.add_argument("images", nargs="+", metavar="IMG")
    c.add_argument("question", help="the question (the last argument)")
    c.add_argument("--top-k", type=int, default=1)
    model_options(c)
    c = command("question", "write a question whose answer is ANSWER", "vl-suite question scene.png 2 --question-type count")
    c.add_argument("images", nargs="+", metavar="IMG")
    c.add_argument("answer", help="the answer the question should have (the last argument)")
    c.add_argument("--question-type", help="what kind of question (shape, count, exist ...), for heads trained with types")
    model_options(c)
    generation_options(c)
    c = command("tag", "list the tags of images", "vl-suite tag scene.png --top-k 5 --json")
    c.add_argument("images", nargs="+", metavar="IMG")
    c.add_argument("--top-k", type=int, help="the k best tags whatever their score (default: all above the tuned threshold)")
    c.add_argument("--threshold", type=float, help="override the tuned threshold")
    model_options(c)
    c = command("train", "train a config with accelerate launch", "vl-suite train configs/shapes/demo.yaml train.steps=500 --num-processes 2")
    c.add_argument("config")
    c.add_argument("overrides", nargs="*", help="key=value config overrides")
    c.add_argument("--resume", help="'latest' or a checkpoints/step_* folder")
    c.add_argument("--num-processes", type=int, default=1)
    c = command("serve", "the web demo: upload an image, get its caption, answers, a question and tags", "vl-suite serve --model demo/run/model --port 7860")
    c.add_argument("--model", default=default_model())
    c.add_argument("--host", default="127.0.0.1")
    c.add_argument("--port", type=int, default=7860)
    for name, module in PASS_THROUGH.items():
        sub.add_parser(name, help=f"= python -m {module} (its --help for the options)", add_help=False)
    return p.parse_args(argv)


@cli
def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in PASS_THROUGH:  # their own parsers, --help included
        module = __import__(PASS_THROUGH[argv[0]], fromlist=["main"])
        return module.main(argv[1:])
    args = parse_args(argv)
    if args.command == "train":
        return train(args)
    if args.command == "serve":
        from tasks.serve import serve

        return serve(args.model, args.host, args.port)
    return run_pipeline(args)


def train(args: argparse.Namespace) -> int:
    """accelerate launch -m tasks.train --config CONFIG [--resume R] [k=v ...], in this interpreter."""
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(args.num_processes), "--num_machines", "1"]
    if not os.environ.get("OMP_NUM_THREADS"):  # accelerate gives a CPU-only machine's processes one thread each
        launch += ["--num_cpu_threads_per_process", str(max(cpu_cores() // args.num_processes, 1))]
    launch += ["--mixed_precision", "no", "--dynamo_backend", "no", "-m", "tasks.train", "--config", args.config, *args.overrides]
    launch += ["--resume", args.resume] if args.resume else []
    print("$ accelerate launch", shlex.join(launch[3:]), flush=True)
    return subprocess.call(launch)


def run_pipeline(args: argparse.Namespace) -> int:
    """caption / ask / question / tag: the matching pipeline on every image, one line (or object) each."""
    from transformers import pipeline
    from transformers.utils import logging

    import vl  # noqa: F401 (registers the pipelines)

    logging.disable_progress_bar()  # no "Loading weights" bar above the answers

    task, call = {
        "caption": ("image-captioning", lambda: generation(args)),
        "ask": ("image-question-answering", lambda: {"question": args.question, "top_k": args.top_k}),
        "question": ("visual-question-generation", lambda: {"answer": args.answer, "question_type": args.question_type, **generation(args)}),
        "tag": ("image-tagging", lambda: {"top_k": args.top_k, "threshold": args.threshold}),
    }[args.command]
    require_model_folder(args.model)
    p = pipeline(task, model=args.model, head=args.head)
    outputs = p(list(args.images), batch_size=args.batch_size, **{k: v for k, v in call().items() if v is not None})
    rows = [{"image": image, **shape(args.command, out)} for image, out in zip(args.images, outputs)]
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        for row in rows:
            print(f"{row['image']}: {text(args.command, row)}")
    return 0


def generation(args: argparse.Namespace) -> dict[str, Any]:
    """The decoding options given on the command line; the rest come from the model's saved decoding."""
    given = {"num_beams": args.num_beams, "max_new_tokens": args.max_new_tokens, "do_sample": args.do_sample, "top_p": args.top_p}
    return {k: v for k, v in given.items() if v is not None}


def shape(command: str, out: list[dict[str, Any]]) -> dict[str, Any]:
    """One image's pipeline output as the JSON object --json prints."""
    if command in ("caption", "question"):
        return {"caption" if command == "caption" else "question": out[0]["generated_text"]}
    return {"answers" if command == "ask" else "tags": out}


def text(command: str, row: dict[str, Any]) -> str:
    if command in ("caption", "question"):
        return row["caption" if command == "caption" else "question"]
    key, label = ("answers", "answer") if command == "ask" else ("tags", "label")
    return ", ".join(f"{o[label]} ({o['score']:.2f})" for o in row[key]) or "(none above the threshold)"


if __name__ == "__main__":
    sys.exit(main())
