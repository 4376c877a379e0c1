"""vl-suite: one shared visual encoder, many vision-language task heads."""

__version__ = "0.1.0"
