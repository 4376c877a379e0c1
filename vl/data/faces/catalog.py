"""What a face is made of: identity attributes (with their words) and the expressions' geometry."""

from __future__ import annotations

from dataclasses import dataclass

FACE_WIDTHS: dict[str, float] = {"narrow": 0.86, "oval": 0.95, "round": 1.05, "broad": 1.14}
SKIN_TONES: dict[str, tuple[int, int, int]] = {
    "pale": (250, 224, 205),
    "fair": (238, 200, 170),
    "olive": (205, 165, 120),
    "tan": (180, 130, 90),
    "brown": (135, 90, 60),
    "dark": (90, 58, 40),
}
HAIR_COLORS: dict[str, tuple[int, int, int]] = {
    "black": (25, 20, 20),
    "brown": (100, 60, 30),
    "blond": (225, 190, 100),
    "red": (170, 60, 25),
    "gray": (150, 150, 150),
    "blue": (50, 90, 200),
}
HAIR_STYLES = ("short", "long", "bun", "bangs", "curly")
EYE_COLORS: dict[str, tuple[int, int, int]] = {"brown": (80, 45, 20), "blue": (40, 90, 170), "green": (40, 120, 60), "gray": (90, 90, 100)}
BACKGROUND = (200, 210, 220)


@dataclass(frozen=True)
class Expression:
    """Face geometry of one expression, in fractions of the head's half-height (y down)."""

    brow_raise: float = 0.0  # both brows up (-) or down (+)
    brow_inner: float = 0.0  # inner ends down (+, a frown) or up (-, worry)
    brow_tilt: float = 0.0  # the brows' asymmetry: the right one lower by this much
    eye_open: float = 1.0  # eye height, relative to neutral
    smile: float = 0.0  # mouth corners above (+) or below (-) its middle
    mouth_open: float = 0.0  # height of an open mouth
    mouth_width: float = 1.0
    sneer: float = 0.0  # the right mouth corner raised on its own
    nose_wrinkle: bool = False


EXPRESSIONS: dict[str, Expression] = {
    "neutral": Expression(),
    "happy": Expression(brow_raise=-0.02, eye_open=0.75, smile=0.14, mouth_open=0.07, mouth_width=1.15),
    "sad": Expression(brow_inner=-0.1, eye_open=0.8, smile=-0.12, mouth_width=0.9),
    "surprised": Expression(brow_raise=-0.1, eye_open=1.6, mouth_open=0.18, mouth_width=0.55),
    "angry": Expression(brow_raise=0.03, brow_inner=0.12, eye_open=0.6, smile=-0.04, mouth_width=0.95),
    "disgusted": Expression(brow_inner=0.05, brow_tilt=0.06, eye_open=0.55, smile=-0.03, sneer=0.1, nose_wrinkle=True),
}
# the words captions use for each expression
EXPRESSION_WORDS: dict[str, tuple[str, ...]] = {
    "neutral": ("neutral", "calm", "expressionless"),
    "happy": ("happy", "smiling", "cheerful"),
    "sad": ("sad", "unhappy", "gloomy"),
    "surprised": ("surprised", "astonished", "amazed"),
    "angry": ("angry", "furious", "irate"),
    "disgusted": ("disgusted", "repulsed", "grossed out"),
}
