"""The official VQA v2 accuracy (GT-Vision-Lab/VQA, PythonEvaluationTools/vqaEvaluation/vqaEval.py),
reimplemented so that it gives the same numbers on the same files, quirks included. Two versions:

- "master" (the default; the official code since commit a013f00, "Fixed processing answers bug",
  March 2021): human answers and prediction lose tabs, newlines and outer spaces; when the ten human
  answers are all identical nothing more is done to either (so "Yes" against ten "yes" scores 0); when
  they differ, both get the punctuation step and the word step (lower case, number words to digits,
  articles dropped, contractions restored);
- "legacy" (the 2017 code, which LAVIS and BLIP vendor, so papers' numbers used it): the prediction
  is always normalized (punctuation + word step); the human answers are never lower-cased or
  digit-mapped, keep their tabs and newlines, and get the punctuation step only when they disagree.

In both:
- each human answer is left out in turn and the prediction scores min(1, matches among the other
  nine / 3); the question's accuracy is the mean of those;
- the period-stripping regex is applied with count=re.UNICODE (32 replacements at most), as the
  official code passes re.UNICODE positionally into `count`;
- overall / per question type / per answer type are means in the annotation file's order, times 100,
  rounded to 2 decimals; the results must answer every question of the annotation file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from vl.errors import DataFormatError

# The official tables, as data: the evaluation is only comparable if they are exactly these.
CONTRACTIONS = {
    "aint": "ain't",
    "arent": "aren't",
    "cant": "can't",
    "couldve": "could've",
    "couldnt": "couldn't",
    "couldn'tve": "couldn't've",
    "couldnt've": "couldn't've",
    "didnt": "didn't",
    "doesnt": "doesn't",
    "dont": "don't",
    "hadnt": "hadn't",
    "hadnt've": "hadn't've",
    "hadn'tve": "hadn't've",
    "hasnt": "hasn't",
    "havent": "haven't",
    "hed": "he'd",
    "hed've": "he'd've",
    "he'dve": "he'd've",
    "hes": "he's",
    "howd": "how'd",
    "howll": "how'll",
    "hows": "how's",
    "Id've": "I'd've",
    "I'dve": "I'd've",
    "Im": "I'm",
    "Ive": "I've",
    "isnt": "isn't",
    "itd": "it'd",
    "itd've": "it'd've",
    "it'dve": "it'd've",
    "itll": "it'll",
    "let's": "let's",
    "maam": "ma'am",
    "mightnt": "mightn't",
    "mightnt've": "mightn't've",
    "mightn'tve": "mightn't've",
    "mightve": "might've",
    "mustnt": "mustn't",
    "mustve": "must've",
    "neednt": "needn't",
    "notve": "not've",
    "oclock": "o'clock",
    "oughtnt": "oughtn't",
    "ow's'at": "'ow's'at",
    "'ows'at": "'ow's'at",
    "'ow'sat": "'ow's'at",
    "shant": "shan't",
    "shed've": "she'd've",
    "she'dve": "she'd've",
    "she's": "she's",
    "shouldve": "should've",
    "shouldnt": "shouldn't",
    "shouldnt've": "shouldn't've",
    "shouldn'tve": "shouldn't've",
    "somebody'd": "somebodyd",
    "somebodyd've": "somebody'd've",
    "somebody'dve": "somebody'd've",
    "somebodyll": "somebody'll",
    "somebodys": "somebody's",
    "someoned": "someone'd",
    "someoned've": "someone'd've",
    "someone'dve": "someone'd've",
    "someonell": "someone'll",
    "someones": "someone's",
    "somethingd": "something'd",
    "somethingd've": "something'd've",
    "something'dve": "something'd've",
    "somethingll": "something'll",
    "thats": "that's",
    "thered": "there'd",
    "thered've": "there'd've",
    "there'dve": "there'd've",
    "therere": "there're",
    "theres": "there's",
    "theyd": "they'd",
    "theyd've": "they'd've",
    "they'dve": "they'd've",
    "theyll": "they'll",
    "theyre": "they're",
    "theyve": "they've",
    "twas": "'twas",
    "wasnt": "wasn't",
    "wed've": "we'd've",
    "we'dve": "we'd've",
    "weve": "we've",
    "werent": "weren't",
    "whatll": "what'll",
    "whatre": "what're",
    "whats": "what's",
    "whatve": "what've",
    "whens": "when's",
    "whered": "where'd",
    "wheres": "where's",
    "whereve": "where've",
    "whod": "who'd",
    "whod've": "who'd've",
    "who'dve": "who'd've",
    "wholl": "who'll",
    "whos": "who's",
    "whove": "who've",
    "whyll": "why'll",
    "whyre": "why're",
    "whys": "why's",
    "wont": "won't",
    "wouldve": "would've",
    "wouldnt": "wouldn't",
    "wouldnt've": "wouldn't've",
    "wouldn'tve": "wouldn't've",
    "yall": "y'all",
    "yall'll": "y'all'll",
    "y'allll": "y'all'll",
    "yall'd've": "y'all'd've",
    "y'alld've": "y'all'd've",
    "y'all'dve": "y'all'd've",
    "youd": "you'd",
    "youd've": "you'd've",
    "you'dve": "you'd've",
    "youll": "you'll",
    "youre": "you're",
    "youve": "you've",
}
NUMBER_WORDS = {
    "none": "0",
    "zero": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
    "ten": "10",
}
ARTICLES = ("a", "an", "the")
PUNCTUATION = (";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`", ",", "?", "!")
PERIOD_STRIP = re.compile(r"(?!<=\d)(\.)(?!\d)")  # sic: a lookahead for "<=\d", not a lookbehind
COMMA_STRIP = re.compile(r"(\d)(,)(\d)")
PERIOD_STRIP_COUNT = int(re.UNICODE)  # the official call passes re.UNICODE (32) as sub()'s count


def process_punctuation(text: str) -> str:
    """The official punctuation step: a mark next to a space (or any mark, in a text with a
    thousands comma) is deleted, any other mark becomes a space; then periods not before a digit go."""
    out = text
    drop_all = COMMA_STRIP.search(text) is not None
    for p in PUNCTUATION:
        if drop_all or p + " " in text or " " + p in text:
            out = out.replace(p, "")
        else:
            out = out.replace(p, " ")
    return PERIOD_STRIP.sub("", out, count=PERIOD_STRIP_COUNT)


def process_digit_article(text: str) -> str:
    """The official word step: lower case, number words to digits, articles dropped, contractions restored."""
    words = [NUMBER_WORDS.get(w, w) for w in text.lower().split()]
    words = [w for w in words if w not in ARTICLES]
    return " ".join(CONTRACTIONS.get(w, w) for w in words)


VQAEval = Literal["master", "legacy"]
VQA_EVALS: dict[str, str] = {
    "master": "official vqaEval.py, current master (2021: answers normalized only when the humans disagree)",
    "legacy": "official vqaEval.py as of 2017 (LAVIS/BLIP's copy: prediction always normalized, humans punctuation-only)",
}


def _clean(text: str) -> str:
    return text.replace("\n", " ").replace("\t", " ").strip()


def normalize_answer(answer: str) -> str:
    """An answer fully normalized as the official evaluation normalizes it: "Two." -> "2", "the dog" ->
    "dog". What training targets and answer vocabularies use (so "2" and "two" are one class), and what
    the legacy evaluation does to every prediction."""
    return process_digit_article(process_punctuation(_clean(answer)))


def question_accuracy(prediction: str, human_answers: Sequence[Mapping[str, Any] | str], version: VQAEval = "master") -> float:
    """Accuracy of one prediction against the human answers (the file's records with "answer" and
    "answer_id", or plain strings, numbered 1..10 as the files number them): each left out in turn,
    min(1, matches among the others / 3), averaged; answers compared as `version` of the official code does."""
    if version not in VQA_EVALS:
        raise ValueError(f"unknown VQA evaluation '{version}'; choose from {', '.join(VQA_EVALS)}")
    answers = [{"answer": a, "answer_id": k + 1} if isinstance(a, str) else dict(a) for k, a in enumerate(human_answers)]
    if version == "master":
        pred = _clean(prediction)
        for a in answers:
            a["answer"] = _clean(a["answer"])
        if len({a["answer"] for a in answers}) > 1:
            pred = process_digit_article(process_punctuation(pred))
            for a in answers:
                a["answer"] = process_digit_article(process_punctuation(a["answer"]))
    else:
        pred = normalize_answer(prediction)
        if len({a["answer"] for a in answers}) > 1:
            for a in answers:
                a["answer"] = process_punctuation(a["answer"])
    accs = []
    for held_out in answers:
        # The official code drops every record equal to the held-out one (records carry answer_id,
        # so normally exactly one); equal duplicates would all go, and so they do here.
        others = [a for a in answers if a != held_out]
        accs.append(min(1.0, sum(a["answer"] == pred for a in others) / 3))
    return sum(accs) / len(accs)


def vqa_accuracy(annotations: Sequence[Mapping[str, Any]], predictions: Mapping[int, str], ndigits: int = 2, version: VQAEval = "master") -> dict[str, Any]:
    """The official VQA v2 accuracy of `predictions` ({question_id: answer}) on `annotations` (the
    annotation file's records, in its order): {"overall", "perQuestionType", "perAnswerType",
    "perQuestion", "questions", "evaluation"} in percent, rounded as the official code rounds;
    `version`: "master" (today's official code) or "legacy" (2017's)."""
    qids = [a["question_id"] for a in annotations]
    missing = [q for q in qids if q not in predictions]
    extra = set(predictions) - set(qids)
    if missing or extra:
        raise DataFormatError(
            "the results must answer exactly the questions of the annotation file (as the official evaluation "
            f"requires): {len(missing)} questions have no answer (e.g. question_id {missing[0] if missing else '-'}), "
            f"{len(extra)} answers are for unknown questions (e.g. {next(iter(extra)) if extra else '-'})"
        )
    if not qids:
        raise DataFormatError("the annotation file has no questions to score")
    overall: list[float] = []
    by_qtype: dict[str, list[float]] = {}
    by_atype: dict[str, list[float]] = {}
    per_question = {}
    for ann in annotations:
        acc = question_accuracy(predictions[ann["question_id"]], ann["answers"], version)
        overall.append(acc)
        by_qtype.setdefault(ann["question_type"], []).append(acc)
        by_atype.setdefault(ann["answer_type"], []).append(acc)
        per_question[ann["question_id"]] = round(100 * acc, ndigits)

    def mean(values: list[float]) -> float:
        return round(100 * float(sum(values)) / len(values), ndigits)

    return {
        "overall": mean(overall),
        "perQuestionType": {k: mean(v) for k, v in by_qtype.items()},
        "perAnswerType": {k: mean(v) for k, v in by_atype.items()},
        "perQuestion": per_question,
        "questions": len(qids),
        "evaluation": version,
    }
