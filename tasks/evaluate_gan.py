"""Score a trained face generator with a classifier trained on real faces (no Inception download).

    python -m tasks.evaluate_gan --generator runs/gan-faces/generator [--classifier DIR] [--n 600]
    python -m tasks.evaluate_gan --generator runs/gan-faces/generator --reader runs/faces-expression/model
    python -m tasks.evaluate_gan --generator runs/gan-faces/checkpoints/step_0007000 --reader DIR --reader-only

Prints and writes (default: <generator>/scores.json) the classifier's accuracy on real test faces,
pose / expression / identity accuracy on generated views (each test face redrawn at a random pose
and expression), FD in the classifier's feature space, and CAS (a classifier trained on generated
views only, tested on real faces); writes <generator>/examples.png (sources, then their redrawings).
With --reader, also the independent read (gan/reader.py): another model, trained on other people,
reads the target expression of its own people's faces redrawn at the poses it knows, at a random
expression and at the face's own (data.gan_augment.keep_expression's views); --reader-only skips the rest.
A checkpoints/step_N folder scores the generator's EMA at that step.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import torch

from gan.data import stack_faces, to_image
from gan.evaluate import ClassifierConfig, accuracies, classifier_at, frechet_distance, summary, train_classifier
from gan.reader import independent_read
from gan.sample import load_generator, redraw, run_folder
from tasks.common.cli import cli
from vl.data.faces.dataset import build_faces_dataset
from vl.errors import ConfigError


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="tasks.evaluate_gan", description=__doc__.split("\n")[0])
    p.add_argument("--generator", type=Path, required=True, help="the generator/ folder a tasks.train_gan run writes")
    p.add_argument(
        "--classifier",
        type=Path,
        default=None,
        help="a face classifier folder; trained on real faces and saved there when missing (default: <generator>/../face_classifier)",
    )
    p.add_argument("--n", type=int, default=600, help="real test faces to redraw")
    p.add_argument("--classifier-steps", type=int, default=1500)
    p.add_argument("--train-faces", type=int, default=6000, help="real training faces (every pose) for the judging classifier")
    p.add_argument("--cas-steps", type=int, default=1500)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--reader",
        type=Path,
        default=None,
        help="an expression recognizer (a tasks.train model folder, one classify head) to read generated views independently of the judge",
    )
    p.add_argument("--reader-only", action="store_true", help="only the independent read (a minute, not the judge's and CAS's several)")
    p.add_argument("--reader-faces", type=int, default=1200, help="faces of the reader's people to redraw and read")
    p.add_argument("--out", type=Path, default=None, help="scores JSON (default: <generator>/scores.json)")
    return p.parse_args(argv)


@cli
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.reader_only and not args.reader:
        raise ConfigError("--reader-only needs --reader DIR: the expression recognizer to read the generated faces")
    generator, cfg = load_generator(args.generator, kind="faces")
    out = args.out or args.generator / "scores.json"
    if args.reader_only:
        return _report(_reads(generator, cfg, args), {"generator": str(args.generator), "reader": str(args.reader)}, out, f"{args.reader_faces} faces read")
    # the judge sees every pose, whatever the GAN was trained on
    faces = replace(cfg.data.faces, train_poses=None, splits={"train": args.train_faces, "test": args.n})
    test_x, test_y = stack_faces(build_faces_dataset(faces, splits=["test"])["test"], faces)
    ccfg = ClassifierConfig.of(faces)
    folder = args.classifier or run_folder(args.generator) / "face_classifier"
    train = lambda: stack_faces(build_faces_dataset(faces, splits=["train"])["train"], faces)  # noqa: E731
    judge = classifier_at(folder, train, ccfg, args.classifier_steps, args.seed, "judge on real faces")
    g = torch.Generator().manual_seed(args.seed)
    target = {
        "pose": torch.randint(len(faces.poses), (len(test_x),), generator=g),
        "expression": torch.randint(len(faces.expressions), (len(test_x),), generator=g),
    }
    fake = torch.cat(
        [redraw(generator, test_x[i : i + 256], target["pose"][i : i + 256], target["expression"][i : i + 256]) for i in range(0, len(test_x), 256)]
    )
    fake_y = {**target, "identity": test_y["identity"]}
    metrics = {f"real_{k}_acc": v for k, v in accuracies(judge, test_x, test_y).items()}
    metrics |= {f"gen_{k}_acc": v for k, v in accuracies(judge, fake, fake_y).items()}
    metrics["fd"] = frechet_distance(judge, test_x, fake)
    metrics["fd_real_vs_real"] = frechet_distance(judge, test_x[: len(test_x) // 2], test_x[len(test_x) // 2 :])  # the floor at this sample size
    cas = train_classifier(fake, fake_y, ccfg, steps=args.cas_steps, seed=args.seed, heads=("pose", "expression"), desc="CAS on generated faces")
    metrics |= {f"cas_{k}_acc": v for k, v in accuracies(cas, test_x, {k: test_y[k] for k in ("pose", "expression")}).items()}
    if args.reader:
        metrics |= _reads(generator, cfg, args)
    _examples(test_x[:8], fake[:8], args.generator / "examples.png")
    about = {"generator": str(args.generator), "classifier": str(folder), "n": len(test_x)}
    return _report(metrics, about, out, f"{len(test_x)} test faces", also=args.generator / "examples.png")


def _reads(generator, cfg, args: argparse.Namespace) -> dict[str, float]:
    """The independent read at a random target expression and at each face's own."""
    read = lambda keep: independent_read(generator, cfg.data.faces, args.reader, args.reader_faces, args.seed, keep_expression=keep)  # noqa: E731
    return read(False) | read(True)


def _report(metrics: dict[str, float], about: dict, out: Path, what: str, also: Path | None = None) -> int:
    out.write_text(json.dumps({**metrics, **about}, indent=1))
    print("\n".join(f"{k:24} {v:.4f}" for k, v in metrics.items()))
    print(f"{what}; {summary(metrics)}; wrote {out}" + (f" and {also}" if also else ""))
    return 0


def _examples(real: torch.Tensor, fake: torch.Tensor, path: Path) -> None:
    """Two rows: real faces, then each redrawn at its random target pose and expression."""
    rows = [torch.cat(list(x), dim=2) for x in (real, fake)]  # (3, H, n*W)
    to_image(torch.cat(rows, dim=1)).save(path)


if __name__ == "__main__":
    sys.exit(main())
