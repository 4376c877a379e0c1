"""vl-suite: one shared visual encoder, many vision-language task heads.

`import vl` registers the suite with transformers: the "vl" model type and its processor with the Auto
classes, and the pipelines (image-captioning, image-question-answering, visual-question-generation,
image-tagging, image-text-retrieval) with `transformers.pipeline`."""

__version__ = "0.1.0"

import vl.pipelines  # noqa: E402,F401 (registration happens on import)
