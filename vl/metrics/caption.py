"""Caption metrics through pycocoevalcap itself: BLEU-1..4, METEOR, ROUGE-L, CIDEr-D (and SPICE when
Stanford CoreNLP 3.6.0 is installed), after its PTB tokenizer, exactly as COCOEvalCap computes them."""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

CAPTION_METRICS = ("Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "METEOR", "ROUGE_L", "CIDEr", "SPICE")
FAST_METRICS = ("Bleu_4", "CIDEr")  # no Java scorer start-up beyond the tokenizer: for periodic evaluation
SPICE_JARS = ("stanford-corenlp-3.6.0.jar", "stanford-corenlp-3.6.0-models.jar")


def spice_status() -> str:
    """'' when SPICE can run here, else the reason it is skipped (we never let pycocoevalcap download)."""
    import pycocoevalcap.spice

    lib = Path(pycocoevalcap.spice.__file__).parent / "lib"
    missing = [jar for jar in SPICE_JARS if not (lib / jar).is_file()]
    if missing:
        return f"Stanford CoreNLP 3.6.0 not installed ({', '.join(missing)} missing in {lib}); copy the jars there to enable SPICE"
    if shutil.which("java") is None:
        return "java not found on PATH"
    return ""


def caption_scores(
    references: Mapping[Any, Sequence[str]],
    predictions: Mapping[Any, str],
    metrics: Sequence[str] = CAPTION_METRICS,
) -> dict[str, Any]:
    """{"metrics": {name: score}, "skipped": {name: reason}, "images": n} for one caption per image.

    Every metric is skipped, with the reason, where no `java` is on PATH (the PTB tokenizer is Java).
    Images are scored in the order of `predictions` (put them in the annotation file's image order
    to reproduce COCOEvalCap to the last bit).
    """
    missing = [i for i in predictions if i not in references]
    if missing:
        raise ValueError(f"{len(missing)} predicted images have no references (e.g. image_id {missing[0]})")
    if not predictions:
        raise ValueError("no predictions to score")
    if shutil.which("java") is None:  # pycocoevalcap's PTB tokenizer, which every score goes through, is a Java program
        reason = "java not found on PATH (pycocoevalcap's PTB tokenizer needs it); install a Java runtime to score captions"
        return {"metrics": {}, "skipped": dict.fromkeys(metrics, reason), "images": len(predictions)}
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    gts = {i: [{"caption": c} for c in references[i]] for i in predictions}
    res = {i: [{"caption": predictions[i]}] for i in predictions}
    with _quiet():
        tokenizer = PTBTokenizer()
        gts, res = tokenizer.tokenize(gts), tokenizer.tokenize(res)
    out: dict[str, Any] = {"metrics": {}, "skipped": {}, "images": len(res)}
    for names, make in _scorers(metrics):
        if names == ["SPICE"] and (reason := spice_status()):
            out["skipped"]["SPICE"] = reason
            continue
        scorer = make()
        with _quiet():
            score, _ = scorer.compute_score(gts, res)
        _close(scorer)
        scores = score if isinstance(score, list) else [score]
        out["metrics"].update({n: float(s) for n, s in zip(names, scores) if n in metrics})
    return out


def _scorers(metrics: Sequence[str]) -> Iterator[tuple[list[str], Any]]:
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.meteor.meteor import Meteor
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.spice.spice import Spice

    table = [
        (["Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4"], lambda: Bleu(4)),
        (["METEOR"], Meteor),
        (["ROUGE_L"], Rouge),
        (["CIDEr"], Cider),
        (["SPICE"], Spice),
    ]
    for names, make in table:
        if any(n in metrics for n in names):
            yield names, make


def _close(scorer: Any) -> None:
    """Stop METEOR's Java process now rather than at interpreter exit."""
    proc = getattr(scorer, "meteor_p", None)
    if proc is not None:
        with contextlib.suppress(Exception):
            with scorer.lock:
                proc.stdin.close()
                proc.kill()
                proc.wait()


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence pycocoevalcap's prints and its Java tools' stderr chatter (fd-level)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def format_table(columns: Mapping[str, Mapping[str, float]], skipped: Mapping[str, str] | None = None) -> str:
    """A metric-per-row table with one column per system (e.g. model, baseline), skipped metrics noted."""
    names = [m for m in CAPTION_METRICS if any(m in c for c in columns.values())]
    head = f"{'metric':10}" + "".join(f"{c:>12}" for c in columns)
    rows = [head, "-" * len(head)]
    for m in names:
        rows.append(f"{m:10}" + "".join(f"{c[m]:12.4f}" if m in c else f"{'-':>12}" for c in columns.values()))
    for m, reason in (skipped or {}).items():
        rows.append(f"{m:10} skipped: {reason}")
    return "\n".join(rows)
