"""Is a caption true of its clip? The reader for the captions the video world writes (and a model learns
to write): clauses "<the|a|an> <color> <shape> <verb phrase>" joined by "while" (the two events overlap in
time), "then" / "and then" / "before" (the first ends before the second starts), and a trailing
"and the <color> <shape> stays still" (an object that does nothing). Each clause claims an object exists
(a mention), that it does that action (a color change: to that color), and each joint claims a timing.
A caption is true when it reads and every claim holds; `events_named` is the share of the clip's events
it mentions (a caption may leave some out and still be true)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from vl.data.shapes.catalog import SHAPE_WORDS
from vl.data.shapes_video.captions import VERBS

STILL_PHRASES = ("stays still", "does not move", "stays where it is")
JOINTS = {" while ": "overlap", ", then ": "after", " and then ": "after", " before ": "after"}
_SHAPE_OF = {word: shape for shape, words in SHAPE_WORDS.items() for word in words}
_SHAPE_WORDS = sorted(_SHAPE_OF, key=len, reverse=True)  # "plus sign" is tried before a shorter word
_SPLIT = re.compile("(" + "|".join(re.escape(j) for j in [*JOINTS, ", and the "]) + ")")


def read_caption(text: str, colors: Iterable[str]) -> list[dict[str, Any]] | None:
    """The clauses of a caption as [{color, shape, action, new_color, joint}] (joint: how it relates to
    the clause before: overlap, after, or still for a trailing still clause); None when it does not read."""
    colors = set(colors)
    parts = _SPLIT.split(" ".join(text.lower().replace(".", " ").split()).replace(" ,", ","))
    out, joint = [], None
    for k, part in enumerate(parts):
        if k % 2:
            joint = "still" if part == ", and the " else JOINTS[part]
            continue
        clause = _clause(part if joint != "still" else "the " + part, colors, still=joint == "still")
        if clause is None:
            return None
        out.append({**clause, "joint": joint})
    return out


def _clause(text: str, colors: set[str], still: bool) -> dict[str, Any] | None:
    words = text.split()
    if len(words) < 3 or words[0] not in ("the", "a", "an") or words[1] not in colors:
        return None
    rest = " ".join(words[2:])
    word = next((w for w in _SHAPE_WORDS if rest.startswith(w + " ")), None)
    if word is None:
        return None
    shape, phrase = _SHAPE_OF[word], rest[len(word) + 1 :]
    if still:
        return {"color": words[1], "shape": shape, "action": "still", "new_color": ""} if phrase in STILL_PHRASES else None
    for action, verbs in VERBS.items():
        for verb in verbs:
            if "{color}" in verb:
                head = verb.split("{color}")[0]
                if phrase.startswith(head) and phrase[len(head) :] in colors:
                    return {"color": words[1], "shape": shape, "action": action, "new_color": phrase[len(head) :]}
            elif phrase == verb:
                return {"color": words[1], "shape": shape, "action": action, "new_color": ""}
    return None


def caption_truth(clips: Iterable[Mapping[str, Any]], captions: Mapping[Any, str], colors: Iterable[str]) -> dict[str, float]:
    """Over the clips (rows with image_id, objects, events) that have a caption: the share of captions
    that read, whose every claim is true, whose mentions name an object of the clip; and the share of the
    clips' events the captions name."""
    colors = list(colors)
    n = readable = all_true = mentions = real = named = events = 0
    for clip in clips:
        if clip["image_id"] not in captions:
            continue
        n += 1
        objects, clip_events = clip["objects"], clip["events"]
        events += len(clip_events)
        clauses = read_caption(captions[clip["image_id"]], colors)
        if clauses is None:
            continue
        readable += 1
        ok, seen, previous = True, set(), None
        for c in clauses:
            obj = next((o for o in objects if o["color"] == c["color"] and o["shape"] == c["shape"]), None)
            mentions += 1
            real += obj is not None
            event = next((e for e in clip_events if obj is not None and e["object"] == obj["id"]), None)
            if obj is None:
                ok = False
            elif c["action"] == "still":
                ok &= event is None
            else:
                ok &= obj["action"] == c["action"] and (c["action"] != "change_color" or obj["new_color"] == c["new_color"])
                if event is not None:
                    seen.add(event["object"])
                    if previous is not None and c["joint"] == "overlap":
                        ok &= event["start"] <= previous["end"] and previous["start"] <= event["end"]
                    elif previous is not None and c["joint"] == "after":
                        ok &= previous["end"] < event["start"]
                previous = event
        all_true += ok
        named += len(seen)
    return {
        "all_claims_true": all_true / max(1, n),
        "readable": readable / max(1, n),
        "mentions_exist": real / max(1, mentions),
        "events_named": named / max(1, events),
        "clips": float(n),
    }
