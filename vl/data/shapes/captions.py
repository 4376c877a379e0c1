"""Reference captions drawn from the grammar in captions.cfg; every claim a caption makes is true.

The grammar (nltk CFG notation) holds the sentence frames and all the wording; the slots below fill
in what depends on the scene. Noun phrases omit attributes at random ("a circle", "a red shape"),
use "the" only when the description is unique in the scene, and count words are exact.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Callable
from importlib import resources

from nltk import CFG, Nonterminal

from vl.data.shapes.catalog import GENERIC_NOUNS, NUMBER_WORDS, PLURALS, SHAPE_WORDS, SIZE_WORDS
from vl.data.shapes.scene import Scene, ShapeObject, clear_margin, places

GRAMMAR = CFG.fromstring(resources.files("vl.data.shapes").joinpath("captions.cfg").read_text())
# lhs -> list of right-hand sides; each item is (is_symbol, name-or-word). Built once for speed.
_RULES: dict[str, list[tuple[tuple[bool, str], ...]]] = {}
for _p in GRAMMAR.productions():
    _RULES.setdefault(_p.lhs().symbol(), []).append(tuple((True, s.symbol()) if isinstance(s, Nonterminal) else (False, s) for s in _p.rhs()))
MARGIN = 0.05  # closest/farthest must win by this share of the canvas to be said ("next to", "far from")


class NoFit(Exception):
    """A slot cannot be filled for this scene; the caption is rejected and another is drawn."""


class CaptionWriter:
    """One caption in the making: the scene, the random stream, and the objects bound to A and B."""

    def __init__(self, scene: Scene, rng: random.Random, background: str):
        self.scene, self.rng, self.background = scene, rng, background
        self.a: ShapeObject | None = None
        self.b: ShapeObject | None = None
        self.used: set[int] = set()  # objects already bound, so two clauses speak of different ones

    def expand(self, symbol: str) -> list[str]:
        """Words for `symbol`: a slot's filling, or the expansion of one of its rules."""
        slot = SLOTS.get(symbol)
        if slot is not None:
            return slot(self)
        words: list[str] = []
        for is_symbol, item in self.rng.choice(_RULES[symbol]):
            if is_symbol:
                words += self.expand(item)
            else:
                words.append(item)
        return words

    def bind(self, a: ShapeObject, b: ShapeObject | None, then: str) -> list[str]:
        self.a, self.b = a, b
        self.used.update(o.id for o in (a, b) if o is not None)
        return self.expand(then)

    def fresh(self, objects: list[ShapeObject]) -> list[ShapeObject]:
        """Objects not yet bound: a second clause speaks of another object, or the caption is redrawn."""
        out = [o for o in objects if o.id not in self.used]
        if not out:
            raise NoFit
        return out


def write_captions(scene: Scene, rng: random.Random, n: int, background: str) -> list[str]:
    """`n` distinct captions of the scene (duplicates only if the grammar cannot give n distinct ones)."""
    out: list[str] = []
    for _ in range(40 * n):
        try:
            words = CaptionWriter(scene, rng, background).expand("S")
        except NoFit:
            continue
        text = _finish(words)
        if text not in out:
            out.append(text)
            if len(out) == n:
                return out
    while len(out) < n:  # only for degenerate configs; still true captions
        out.append(out[len(out) % max(len(out), 1)] if out else _finish(noun_phrase(scene.objects[0], scene, rng)))
    return out


def noun_phrase(obj: ShapeObject, scene: Scene, rng: random.Random) -> list[str]:
    """'a small red circle', 'the purple star', 'a circle', 'an orange shape'... always true of obj."""
    use_size = rng.random() < 0.35
    use_color = rng.random() < 0.85
    generic = use_color and rng.random() < 0.12
    noun = rng.choice(GENERIC_NOUNS) if generic else rng.choice(SHAPE_WORDS[obj.shape])
    words = ([rng.choice(SIZE_WORDS[obj.size])] if use_size else []) + ([obj.color] if use_color else []) + [noun]
    matches = sum((not use_size or o.size == obj.size) and (not use_color or o.color == obj.color) and (generic or o.shape == obj.shape) for o in scene.objects)
    det = "the" if matches == 1 and rng.random() < 0.4 else "a"
    return [det, *words]


def _join(phrases: list[list[str]]) -> list[str]:
    words: list[str] = []
    for i, phrase in enumerate(phrases):
        if i:
            words.append("and" if i == len(phrases) - 1 else ",")
        words += phrase
    return words


def _count_phrase(count: int, noun: str, rng: random.Random, adjective: tuple[str, ...] = ()) -> list[str]:
    if count == 1:
        return [rng.choice(("one", "a")), *adjective, noun]
    return [NUMBER_WORDS[count], *adjective, PLURALS[noun]]


def _some(w: CaptionWriter) -> list[str]:
    objs = w.rng.sample(w.scene.objects, w.rng.randint(1, len(w.scene.objects)))
    return _join([noun_phrase(o, w.scene, w.rng) for o in objs])


def _all(w: CaptionWriter) -> list[str]:
    objs = w.rng.sample(w.scene.objects, len(w.scene.objects))
    return _join([noun_phrase(o, w.scene, w.rng) for o in objs])


def _total(w: CaptionWriter) -> list[str]:
    n, noun = len(w.scene.objects), w.rng.choice(GENERIC_NOUNS)
    if n == 1:
        return w.rng.choice((["one", noun], ["a", "single", noun]))
    return [NUMBER_WORDS[n], PLURALS[noun]]


def _kinds(w: CaptionWriter) -> list[str]:
    counts = Counter(o.shape for o in w.scene.objects)
    kinds = w.rng.sample(sorted(counts), w.rng.randint(1, len(counts)))
    return _join([_count_phrase(counts[k], w.rng.choice(SHAPE_WORDS[k]), w.rng) for k in kinds])


def _sized(w: CaptionWriter) -> list[str]:
    counts = Counter(o.size for o in w.scene.objects)
    sizes = w.rng.sample(sorted(counts), w.rng.randint(1, len(counts)))
    phrases = [_count_phrase(counts[s], w.rng.choice(GENERIC_NOUNS), w.rng, (w.rng.choice(SIZE_WORDS[s]),)) for s in sizes]
    return _join(phrases)


def _pair(w: CaptionWriter) -> tuple[ShapeObject, ShapeObject]:
    if len(w.scene.objects) < 2:
        raise NoFit
    a = w.rng.choice(w.fresh(list(w.scene.objects)))
    b = w.rng.choice([o for o in w.scene.objects if o is not a])
    return a, b


def _pick_side(w: CaptionWriter) -> list[str]:
    a, b = _pair(w)
    return w.bind(*((a, b) if a.x < b.x else (b, a)), then="IS_LEFT")


def _pick_level(w: CaptionWriter) -> list[str]:
    a, b = _pair(w)
    return w.bind(*((a, b) if a.y < b.y else (b, a)), then="IS_ABOVE")


def _pick_extreme(nearest: bool) -> Callable[[CaptionWriter], list[str]]:
    def pick(w: CaptionWriter) -> list[str]:
        objs = w.scene.objects
        clear = [o for o in objs if len(objs) > 1 and clear_margin(w.scene, o, nearest) >= MARGIN * w.scene.size]
        if not clear:
            raise NoFit
        a = w.rng.choice(w.fresh(clear))
        b = w.scene.closest(a) if nearest else w.scene.farthest(a)
        return w.bind(a, b, then="IS_NEAR" if nearest else "IS_FAR")

    return pick


def _pick_place(w: CaptionWriter) -> list[str]:
    options = [(o, p) for o in w.fresh(list(w.scene.objects)) for p in places(o, w.scene.size)]
    if not options:
        raise NoFit
    obj, place = w.rng.choice(options)
    return w.bind(obj, None, then="AT_" + place.upper())


def _bound(attr: str) -> Callable[[CaptionWriter], list[str]]:
    return lambda w: noun_phrase(getattr(w, attr), w.scene, w.rng)


SLOTS: dict[str, Callable[[CaptionWriter], list[str]]] = {
    "SOME": _some,
    "ALL": _all,
    "TOTAL": _total,
    "KINDS": _kinds,
    "SIZED": _sized,
    "BG": lambda w: [w.background],
    "A": _bound("a"),
    "B": _bound("b"),
    "PICK_SIDE": _pick_side,
    "PICK_LEVEL": _pick_level,
    "PICK_NEAR": _pick_extreme(nearest=True),
    "PICK_FAR": _pick_extreme(nearest=False),
    "PICK_PLACE": _pick_place,
}
_missing = {s.symbol() for p in GRAMMAR.productions() for s in p.rhs() if isinstance(s, Nonterminal)} - set(_RULES) - set(SLOTS)
assert not _missing, f"captions.cfg uses symbols with neither rules nor a slot: {_missing}"

_SPACE_BEFORE_PUNCT = re.compile(r" ([,:;])")
_A_BEFORE_VOWEL = re.compile(r"\ba (?=[aeiou])")


def _finish(words: list[str]) -> str:
    text = _SPACE_BEFORE_PUNCT.sub(r"\1", " ".join(words))
    return _A_BEFORE_VOWEL.sub("an ", text)
