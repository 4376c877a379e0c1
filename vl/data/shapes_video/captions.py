"""Reference captions of a clip: its events in time order, joined by "while" when they overlap in time
and by "then"/"before" when one ends before the next starts; every sentence is true of the clip."""

from __future__ import annotations

import random

from vl.data.shapes.catalog import SHAPE_WORDS
from vl.data.shapes_video.clip import Clip, ClipObject, Event

VERBS: dict[str, tuple[str, ...]] = {
    "move_left": ("moves left", "moves to the left", "slides left", "goes left"),
    "move_right": ("moves right", "moves to the right", "slides right", "goes right"),
    "move_up": ("moves up", "rises", "goes up", "slides up"),
    "move_down": ("moves down", "falls", "goes down", "slides down"),
    "grow": ("grows", "gets bigger", "becomes larger", "grows larger"),
    "shrink": ("shrinks", "gets smaller", "becomes smaller", "shrinks down"),
    "change_color": ("turns {color}", "changes color to {color}", "becomes {color}"),
    "appear": ("appears", "shows up", "fades in"),
    "disappear": ("disappears", "vanishes", "fades out"),
}


def write_clip_captions(clip: Clip, rng: random.Random, n: int) -> list[str]:
    """n captions (distinct when the wording allows), each naming every event of the clip."""
    out: list[str] = []
    for _ in range(4 * n):
        text = _caption(clip, rng)
        if text not in out:
            out.append(text)
        if len(out) == n:
            break
    while len(out) < n:  # a clip with little to say: repeat wordings rather than return fewer
        out.append(out[len(out) % max(1, len(out))])
    return out


def _caption(clip: Clip, rng: random.Random) -> str:
    events = list(clip.events)
    text = _clause(clip.objects[events[0].object], events[0], rng)
    for before, event in zip(events, events[1:]):
        joint = " while " if event.start <= before.end else rng.choice((", then ", " and then ", " before "))
        text += joint + _clause(clip.objects[event.object], event, rng)
    still = [o for o in clip.objects if clip.event_of(o) is None]
    if still and rng.random() < 0.4:
        obj = rng.choice(still)
        text += f", and the {_name(obj, rng)} " + rng.choice(("stays still", "does not move", "stays where it is"))
    return text


def _clause(obj: ClipObject, event: Event, rng: random.Random) -> str:
    name, verb = _name(obj, rng), rng.choice(VERBS[event.action]).format(color=obj.new_color)
    article = ("an" if name[0] in "aeiou" else "a") if event.action == "appear" else "the"
    return f"{article} {name} {verb}"


def _name(obj: ClipObject, rng: random.Random) -> str:
    return f"{obj.color} {rng.choice(SHAPE_WORDS[obj.shape])}"
