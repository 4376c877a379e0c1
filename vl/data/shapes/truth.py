"""An independent reader of Shapes captions and questions: is what a caption says true of its scene?

It knows the words, not the generator's code: it recomputes every relation from the objects'
coordinates and checks what each text claims (existence, uniqueness, counts, relations, places,
"and nothing else"), so a bug in the generator, or a model's false caption, shows up as a false claim.
The tests read every reference caption with it; tasks.evaluate reads generated captions with it.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

NOUNS = {
    "circle": "circle",
    "disc": "circle",
    "square": "square",
    "triangle": "triangle",
    "diamond": "diamond",
    "rhombus": "diamond",
    "star": "star",
    "cross": "cross",
    "plus sign": "cross",
    "hexagon": "hexagon",
}
GENERIC = {"shape", "object", "figure", "item"}
PLURAL = {
    "circles": "circle",
    "discs": "disc",
    "squares": "square",
    "triangles": "triangle",
    "diamonds": "diamond",
    "rhombuses": "rhombus",
    "stars": "star",
    "crosses": "cross",
    "plus signs": "plus sign",
    "hexagons": "hexagon",
    "shapes": "shape",
    "objects": "object",
    "figures": "figure",
    "items": "item",
}
SIZE = {"small": "small", "little": "small", "large": "large", "big": "large"}
COLORS = ["red", "orange", "yellow", "green", "cyan", "blue", "purple", "pink", "brown", "white"]
COUNT = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9}

_noun_words = sorted(set(NOUNS) | GENERIC | set(PLURAL), key=len, reverse=True)
NP = re.compile(
    r"\b(?P<det>an|a|the|one|two|three|four|five|six|seven|eight|nine) (?P<single>single )?"
    rf"(?:(?P<size>{'|'.join(SIZE)}) )?(?:(?P<color>{'|'.join(COLORS)}) )?(?P<noun>{'|'.join(_noun_words)})\b"
)
RELATIONS = {
    "left": r"(?:to the left of|left of|on the left of)",
    "right": r"(?:to the right of|right of|on the right of)",
    "above": r"(?:above|over|higher up than)",
    "below": r"(?:below|under|beneath|lower down than)",
    "near": r"(?:next to|close to|near|beside)",
    "far": r"(?:far from|far away from|a long way from)",
}
VERB = r"(?:(?:is|sits|lies|appears) )?"
PLACES = {
    "left": r"(?:on the left|on the left side|at the left of the image)",
    "right": r"(?:on the right|on the right side|at the right of the image)",
    "top": r"(?:at the top|near the top|at the top of the image)",
    "bottom": r"(?:at the bottom|near the bottom|at the bottom of the image)",
    "top_left": r"in the (?:top|upper) left corner",
    "top_right": r"in the (?:top|upper) right corner",
    "bottom_left": r"in the (?:bottom|lower) left corner",
    "bottom_right": r"in the (?:bottom|lower) right corner",
    "center": r"(?:in the middle|in the center|at the center of the image)",
}


CLAIM_GROUPS = {rel: "relation" for rel in RELATIONS}  # caption_truth reports the six relations as one kind


def dist(a: dict, b: dict) -> float:
    return math.hypot(a["x"] - b["x"], a["y"] - b["y"])


def closest(objs: list[dict], a: dict) -> dict:
    return min((o for o in objs if o is not a), key=lambda o: dist(a, o))


def farthest(objs: list[dict], a: dict) -> dict:
    return max((o for o in objs if o is not a), key=lambda o: dist(a, o))


def holds(rel: str, a: dict, b: dict, objs: list[dict]) -> bool:
    return {
        "left": lambda: a["x"] < b["x"],
        "right": lambda: a["x"] > b["x"],
        "above": lambda: a["y"] < b["y"],
        "below": lambda: a["y"] > b["y"],
        "near": lambda: closest(objs, a) is b,
        "far": lambda: farthest(objs, a) is b,
    }[rel]()


def in_place(place: str, o: dict, size: int) -> bool:
    fx, fy = o["x"] / size, o["y"] / size
    checks = {"left": fx < 0.35, "right": fx > 0.65, "top": fy < 0.35, "bottom": fy > 0.65}
    if place == "center":
        return 0.4 < fx < 0.6 and 0.4 < fy < 0.6
    return all(checks[p] for p in place.split("_"))


def matching(m: re.Match, objs: list[dict]) -> list[dict]:
    noun = PLURAL.get(m["noun"], m["noun"])
    return [
        o
        for o in objs
        if (m["size"] is None or o["size"] == SIZE[m["size"]])
        and (m["color"] is None or o["color"] == m["color"])
        and (noun in GENERIC or o["shape"] == NOUNS[noun])
    ]


@dataclass
class Reading:
    """What a caption claims, checked: the claims read by kind, the false ones (as messages), and its
    noun phrases ("mentions") with how many name something that is in the scene."""

    claims: Counter = field(default_factory=Counter)
    false: list[str] = field(default_factory=list)
    false_claims: Counter = field(default_factory=Counter)  # by kind, as claims
    mentions: int = 0
    mentions_exist: int = 0

    @property
    def true(self) -> bool:
        """Every claim holds (and the reader found something to check)."""
        return self.mentions > 0 and not self.false


def read_caption(caption: str, objs: list[dict], size: int) -> Reading:
    """Check every claim the caption makes against the objects (canvas `size` px)."""
    r = Reading()
    nps = list(NP.finditer(caption))
    if not nps:
        r.false.append(f"no noun phrase recognised in {caption!r}")
        return r
    for m in nps:
        found = matching(m, objs)
        r.mentions += 1
        r.mentions_exist += bool(found)
        det = m["det"]
        if det in ("a", "an") and not m["single"]:
            kind, ok, why = "exists", bool(found), f"nothing is '{m[0]}'"
        elif det == "the":
            kind, ok, why = "unique", len(found) == 1, f"'{m[0]}' is not unique ({len(found)} match)"
        else:
            n = 1 if m["single"] else COUNT[det]
            kind, ok, why = "count", len(found) == n, f"'{m[0]}' but {len(found)} match"
        r.claims[kind] += 1
        if not ok:
            r.false.append(f"{caption!r}: {why}")
            r.false_claims[kind] += 1
    for m1, m2 in zip(nps, nps[1:]):  # "<np> [verb] <relation> <np>"
        between = caption[m1.end() : m2.start()].strip()
        for rel, pattern in RELATIONS.items():
            if re.fullmatch(VERB + pattern, between):
                a_objs, b_objs = matching(m1, objs), matching(m2, objs)
                r.claims[rel] += 1
                if not any(holds(rel, a, b, objs) for a in a_objs for b in b_objs if a is not b):
                    r.false.append(f"{caption!r}: no '{m1[0]}' is {rel} '{m2[0]}'")
                    r.false_claims[rel] += 1
    for m in nps:  # "<np> [verb] <place>"
        after = caption[m.end() :]
        for place, pattern in PLACES.items():
            if re.match(r" " + VERB + pattern + r"(?:$|[,;]| and)", after):
                r.claims["place"] += 1
                if not any(in_place(place, o, size) for o in matching(m, objs)):
                    r.false.append(f"{caption!r}: '{m[0]}' not {place}")
                    r.false_claims["place"] += 1
    if caption.endswith("and nothing else"):
        r.claims["exhaustive"] += 1
        if len(nps) != len(objs):
            r.false.append(f"{caption!r}: lists {len(nps)} of {len(objs)} objects")
            r.false_claims["exhaustive"] += 1
    return r


def check_caption(caption: str, objs: list[dict], size: int) -> Counter:
    """Assert every claim the caption makes (the first false one is the message); return how many
    claims of each kind were checked."""
    reading = read_caption(caption, objs, size)
    assert not reading.false, reading.false[0]
    return reading.claims


def caption_truth(rows: Iterable[dict], preds: dict[int, str], size: int) -> dict[str, float]:
    """Over generated captions of Shapes rows (image_id, scene): the share whose every claim is true,
    the share of their mentions (noun phrases) that name something in the scene, claims per caption,
    and the share of claims that hold by kind of claim (`true/exists`, `true/count`, `true/relation`...)."""
    readings = [read_caption(preds[row["image_id"]], row["scene"]["objects"], size) for row in rows if row["image_id"] in preds]
    mentions = sum(r.mentions for r in readings)
    claims, false = Counter(), Counter()
    for r in readings:
        for kind, n in r.claims.items():
            claims[CLAIM_GROUPS.get(kind, kind)] += n
        for kind, n in r.false_claims.items():
            false[CLAIM_GROUPS.get(kind, kind)] += n
    return {
        "all_claims_true": sum(r.true for r in readings) / max(1, len(readings)),
        "mentions_exist": sum(r.mentions_exist for r in readings) / max(1, mentions),
        "claims_per_caption": sum(sum(r.claims.values()) for r in readings) / max(1, len(readings)),
        **{f"true/{kind}": 1 - false[kind] / n for kind, n in sorted(claims.items())},
    }


def question_objects(question: str, objs: list[dict]) -> list[dict]:
    """The objects a Shapes question points at, in order: each "the <color> object" it names, then, for
    "the object closest to / farthest from ...", the object meant. Empty for questions about kinds
    ("how many circles", "is there a red square") rather than objects."""
    by_color = {o["color"]: o for o in objs}
    named = [by_color[c] for c in re.findall(r"\bthe (\w+) object\b", question) if c in by_color]
    if named and (m := re.search(r"the object (closest to|farthest from) the", question)):
        named.append((closest if m[1] == "closest to" else farthest)(objs, named[0]))
    return named


def question_kinds(question: str, objs: list[dict]) -> list[list[dict]]:
    """The objects of each kind a Shapes question counts or asks about, one group per kind in order: "how many
    circles" -> [every circle], "are there more circles than squares" -> [circles, squares], "how many objects"
    -> [all of them]. A group can be empty ("are there any stars?" with none). Empty for questions that name
    objects (`question_objects` has those)."""
    q = question

    def shape_of(word: str) -> str | None:  # "circles" -> "circle"
        return NOUNS.get(PLURAL.get(word, word))

    if re.fullmatch(r"how many (?:objects|shapes) are there\?", q):
        return [list(objs)]
    if m := re.fullmatch(r"how many (small|large) objects are there\?", q):
        return [[o for o in objs if o["size"] == m[1]]]
    if (m := re.fullmatch(r"(?:how many (\w+) are there|are there any (\w+))\?", q)) and shape_of(m[1] or m[2]):
        return [[o for o in objs if o["shape"] == shape_of(m[1] or m[2])]]
    if m := re.fullmatch(r"is there an? (\w+) (\w+)\?", q):
        return [[o for o in objs if o["color"] == m[1] and o["shape"] == shape_of(m[2])]]
    if m := re.fullmatch(r"are there more (\w+) than (\w+)\?", q):
        return [[o for o in objs if o["shape"] == shape_of(m[k])] for k in (1, 2)]
    return []


def caption_objects(caption: str, objs: list[dict], size: int) -> list[tuple[int, int, dict]]:
    """The objects a Shapes caption speaks of, as (start, end, object) character spans: each noun phrase
    that names one object, with the relation words after it ("a red circle left of") or its place ("a
    red circle at the top"), where the claims leave one object it can be. A phrase that several objects
    fit ("a circle" among two, neither of them pinned by a claim) and counts ("two circles") are left out.
    For a true caption every span's object makes its claims true (what the caption decoder's pointer is
    taught to aim at, CaptionHead `pointer`)."""
    nps = list(NP.finditer(caption))
    fits = [matching(m, objs) if m["det"] in ("a", "an", "the") or m["single"] else [] for m in nps]
    ends = [m.end() for m in nps]
    for i, (m1, m2) in enumerate(zip(nps, nps[1:])):  # "<np> [verb] <relation> <np>": keep the pairs it holds for
        between = caption[m1.end() : m2.start()].strip()
        rel = next((r for r, pattern in RELATIONS.items() if re.fullmatch(VERB + pattern, between)), None)
        if rel is not None:
            pairs = [(a, b) for a in fits[i] for b in fits[i + 1] if a is not b and holds(rel, a, b, objs)]
            fits[i], fits[i + 1] = _unique(a for a, _ in pairs), _unique(b for _, b in pairs)
            ends[i] = m2.start()
    for i, m in enumerate(nps):  # "<np> [verb] <place>"
        for place, pattern in PLACES.items():
            if found := re.match(r" " + VERB + pattern + r"(?=$|[,;]| and)", caption[m.end() :]):
                fits[i] = [o for o in fits[i] if in_place(place, o, size)]
                ends[i] = m.end() + found.end()
    return [(m.start(), end, fit[0]) for m, end, fit in zip(nps, ends, fits) if len(fit) == 1]


def _unique(objs: Iterable[dict]) -> list[dict]:
    return list({id(o): o for o in objs}.values())


def answer(question: str, objs: list[dict], size: int) -> str:
    """The answer to a Shapes question, worked out from the objects alone."""
    by_color = {o["color"]: o for o in objs}
    q = question

    def obj(color: str) -> dict:
        return by_color[color]

    def yn(flag: bool) -> str:
        return "yes" if flag else "no"

    shapes = Counter(o["shape"] for o in objs)
    if m := re.fullmatch(r"what (?:is the shape of|shape is) the (\w+) object\?", q):
        return obj(m[1])["shape"]
    if m := re.fullmatch(r"is the (\w+) object on the left or the right of the image\?", q):
        return "left" if obj(m[1])["x"] < size / 2 else "right"
    if m := re.fullmatch(r"is the (\w+) object at the top or the bottom of the image\?", q):
        return "top" if obj(m[1])["y"] < size / 2 else "bottom"
    if m := re.fullmatch(r"is the (\w+) object (\w+) or (\w+)\?", q):
        return obj(m[1])["size"]
    if m := re.fullmatch(r"what is the (shape|color) of the object (closest to|farthest from) the (\w+) object\?", q):
        pick = closest if m[2] == "closest to" else farthest
        return pick(objs, obj(m[3]))[m[1]]
    if m := re.fullmatch(r"how many objects have the shape of the (\w+) object\?", q):
        return str(shapes[obj(m[1])["shape"]])
    if m := re.fullmatch(r"is the (\w+) object (to the left of|to the right of|above|below) the (\w+) object\?", q):
        rel = {"to the left of": "left", "to the right of": "right", "above": "above", "below": "below"}[m[2]]
        return yn(holds(rel, obj(m[1]), obj(m[3]), objs))
    if kinds := question_kinds(q, objs):  # how many ..., is there / are there any ..., are there more X than Y
        if q.startswith("how many"):
            return str(len(kinds[0]))
        return yn(len(kinds[0]) > len(kinds[1])) if len(kinds) == 2 else yn(bool(kinds[0]))
    if m := re.fullmatch(r"is the (\w+) object larger than the (\w+) object\?", q):
        return yn(obj(m[1])["size"] == "large" and obj(m[2])["size"] == "small")
    if m := re.fullmatch(r"(?:do the (\w+) object and the (\w+) object have the same shape|is the (\w+) object the same shape as the (\w+) object)\?", q):
        a, b = (m[1], m[2]) if m[1] else (m[3], m[4])
        return yn(obj(a)["shape"] == obj(b)["shape"])
    raise AssertionError(f"the checker cannot read {question!r}")
