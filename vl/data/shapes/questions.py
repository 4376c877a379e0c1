"""Question-answer pairs: Sort-of-CLEVR's non-relational and relational questions, plus counting,
existence and comparison. Objects are named by their color, unique within a scene (as in Sort-of-CLEVR).

Answers are balanced by construction: a yes/no (or left/right, top/bottom, small/large) type is asked
as a pair with both answers in the same image, or not at all; multi-answer types pick the answer
first, uniformly among those the scene allows, then an object that has it.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable

from vl.data.shapes.catalog import PLURALS
from vl.data.shapes.scene import Scene, ShapeObject, clear_margin

QUESTION_FAMILIES: dict[str, str] = {
    "shape": "non-relational",
    "horizontal": "non-relational",
    "vertical": "non-relational",
    "size": "non-relational",
    "closest": "relational",
    "farthest": "relational",
    "count_same_shape": "relational",
    "relative_position": "relational",
    "count": "counting",
    "exist": "existence",
    "compare_count": "comparison",
    "compare_size": "comparison",
    "compare_shape": "comparison",
}
MARGIN = 0.05  # share of the canvas: a subject this close to the midline, or a near-tie, is not asked about
# count_same_shape: "1" (a unique shape) is what most scenes offer; ask it less so no answer dominates.
# (Measured on 6,000 train scenes: 1 -> 45%, 2 -> 44%, 3 -> 10%, 4+ -> 1%.)
ONLY_ONE_KEEP = 0.5  # how often the question is asked when every shape in the scene is unique
SHARED_FIRST = 0.5  # how often the most shared shape is chosen when the scene has one

QA = tuple[str, str, str]  # (question, answer, question_type)


def answer_type(answer: str) -> str:
    """VQA v2 answer type of a Shapes answer."""
    return "yes/no" if answer in ("yes", "no") else "number" if answer.isdigit() else "other"


def write_questions(scene: Scene, rng: random.Random, shapes: list[str], sizes: list[str], avoid: set[str]) -> list[QA]:
    """All questions of the scene, each type once (or as a balanced pair), in a fixed type order.

    `shapes`/`sizes`: the world's vocabularies; `avoid`: color+shape pairs never to mention (held out).
    """
    out: list[QA] = []
    for qtype, ask in ASKERS.items():
        out += [(q, a, qtype) for q, a in ask(scene, rng, shapes, sizes, avoid)]
    return out


def _name(o: ShapeObject) -> str:
    return f"the {o.color} object"


def _binary_pair(yes: tuple[str, str] | None, no: tuple[str, str] | None, rng: random.Random) -> list[tuple[str, str]]:
    """Both questions, in random order, or none: keeps each binary type exactly balanced."""
    if yes is None or no is None:
        return []
    pair = [yes, no]
    rng.shuffle(pair)
    return pair


def _shape(scene, rng, shapes, sizes, avoid):
    o = rng.choice(scene.objects)
    form = rng.choice(("what is the shape of {}?", "what shape is {}?"))
    return [(form.format(_name(o)), o.shape)]


def _side_question(axis: str, low: str, high: str, form: str):
    def ask(scene, rng, shapes, sizes, avoid):
        mid, m = scene.size / 2, MARGIN * scene.size
        lows = [o for o in scene.objects if getattr(o, axis) < mid - m]
        highs = [o for o in scene.objects if getattr(o, axis) > mid + m]
        if not lows or not highs:
            return []
        return _binary_pair((form.format(_name(rng.choice(lows))), low), (form.format(_name(rng.choice(highs))), high), rng)

    return ask


def _size(scene, rng, shapes, sizes, avoid):
    if len(sizes) != 2:
        return []
    small, large = ([o for o in scene.objects if o.size == s] for s in sizes)
    if not small or not large:
        return []
    form = f"is {{}} {sizes[0]} or {sizes[1]}?"
    return _binary_pair((form.format(_name(rng.choice(small))), sizes[0]), (form.format(_name(rng.choice(large))), sizes[1]), rng)


def _extreme(nearest: bool):
    word = "closest to" if nearest else "farthest from"

    def ask(scene, rng, shapes, sizes, avoid):
        clear = [o for o in scene.objects if len(scene.objects) > 1 and clear_margin(scene, o, nearest) >= MARGIN * scene.size]
        if not clear:
            return []
        a = rng.choice(clear)
        b = scene.closest(a) if nearest else scene.farthest(a)
        attr = rng.choice(("shape", "color"))
        return [(f"what is the {attr} of the object {word} {_name(a)}?", getattr(b, attr))]

    return ask


def _count_same_shape(scene, rng, shapes, sizes, avoid):
    counts = Counter(o.shape for o in scene.objects)
    answers = sorted(set(counts.values()))
    if answers == [1] and rng.random() >= ONLY_ONE_KEEP:
        return []
    shared = [n for n in answers if n > 1]
    n = max(shared) if shared and rng.random() < SHARED_FIRST else rng.choice(answers)
    a = rng.choice([o for o in scene.objects if counts[o.shape] == n])
    return [(f"how many objects have the shape of {_name(a)}?", str(n))]


_RELATIONS = {
    "left_of": ("to the left of", lambda a, b: a.x < b.x),
    "right_of": ("to the right of", lambda a, b: a.x > b.x),
    "above": ("above", lambda a, b: a.y < b.y),
    "below": ("below", lambda a, b: a.y > b.y),
}


def _relative_position(scene, rng, shapes, sizes, avoid):
    if len(scene.objects) < 2:
        return []
    found: dict[str, tuple[str, str]] = {}
    for _ in range(8):
        a, b = rng.sample(scene.objects, 2)
        words, holds = _RELATIONS[rng.choice(sorted(_RELATIONS))]
        answer = "yes" if holds(a, b) else "no"
        found.setdefault(answer, (f"is {_name(a)} {words} {_name(b)}?", answer))
    return _binary_pair(found.get("yes"), found.get("no"), rng)


def _count(scene, rng, shapes, sizes, avoid):
    form = rng.choice(("shape", "shape", "total", "size"))
    if form == "total":
        return [(rng.choice(("how many objects are there?", "how many shapes are there?")), str(len(scene.objects)))]
    if form == "size" and len(sizes) > 1:
        counts = Counter(o.size for o in scene.objects)
        size = rng.choice(sizes)
        return [(f"how many {size} objects are there?", str(counts[size]))]
    counts = Counter(o.shape for o in scene.objects)
    by_answer: dict[int, list[str]] = {}
    for s in shapes:
        by_answer.setdefault(counts[s], []).append(s)
    n = rng.choice(sorted(by_answer))
    return [(f"how many {PLURALS[rng.choice(by_answer[n])]} are there?", str(n))]


def _exist(scene, rng, shapes, sizes, avoid):
    if rng.random() < 0.5:  # "is there a red circle?"
        present = {o.pair for o in scene.objects}
        absent = [f"{o.color} {s}" for o in scene.objects for s in shapes if f"{o.color} {s}" not in present | avoid]
        yes, no = rng.choice(sorted(present)), (rng.choice(absent) if absent else None)
        form = "is there a {}?"
    else:  # "are there any triangles?"
        present = {o.shape for o in scene.objects}
        absent = [s for s in shapes if s not in present]
        yes, no = rng.choice(sorted(present)), (rng.choice(absent) if absent else None)
        yes, no = PLURALS[yes], (PLURALS[no] if no else None)
        form = "are there any {}?"
    return _binary_pair((form.format(yes), "yes"), (form.format(no), "no") if no else None, rng)


def _compare_count(scene, rng, shapes, sizes, avoid):
    counts = Counter(o.shape for o in scene.objects)
    pairs = [(s, t) for s in shapes for t in shapes if s != t and (counts[s] or counts[t])]
    more = [(s, t) for s, t in pairs if counts[s] > counts[t]]
    not_more = [(s, t) for s, t in pairs if counts[s] <= counts[t]]
    if not more or not not_more:
        return []
    q = "are there more {} than {}?"
    yes, no = rng.choice(more), rng.choice(not_more)
    return _binary_pair((q.format(PLURALS[yes[0]], PLURALS[yes[1]]), "yes"), (q.format(PLURALS[no[0]], PLURALS[no[1]]), "no"), rng)


def _compare_pairwise(forms: tuple[str, ...], holds: Callable[[ShapeObject, ShapeObject], bool]):
    def ask(scene, rng, shapes, sizes, avoid):
        pairs = [(a, b) for a in scene.objects for b in scene.objects if a is not b]
        yes = [p for p in pairs if holds(*p)]
        no = [p for p in pairs if not holds(*p)]
        if not yes or not no:
            return []
        form = rng.choice(forms)
        (a, b), (c, d) = rng.choice(yes), rng.choice(no)
        return _binary_pair((form.format(_name(a), _name(b)), "yes"), (form.format(_name(c), _name(d)), "no"), rng)

    return ask


def _larger(a: ShapeObject, b: ShapeObject) -> bool:
    return a.radius > b.radius


ASKERS: dict[str, Callable[..., list[tuple[str, str]]]] = {
    "shape": _shape,
    "horizontal": _side_question("x", "left", "right", "is {} on the left or the right of the image?"),
    "vertical": _side_question("y", "top", "bottom", "is {} at the top or the bottom of the image?"),
    "size": _size,
    "closest": _extreme(nearest=True),
    "farthest": _extreme(nearest=False),
    "count_same_shape": _count_same_shape,
    "relative_position": _relative_position,
    "count": _count,
    "exist": _exist,
    "compare_count": _compare_count,
    "compare_size": _compare_pairwise(("is {} larger than {}?",), _larger),
    "compare_shape": _compare_pairwise(("do {} and {} have the same shape?", "is {} the same shape as {}?"), lambda a, b: a.shape == b.shape),
}
assert set(ASKERS) == set(QUESTION_FAMILIES)
