"""vl-suite: one shared visual encoder, many vision-language task heads.

`import vl` registers the suite with transformers: the "vl" model type and its processor with the Auto
classes, and the pipelines (image-captioning, image-question-answering, visual-question-generation,
image-tagging, image-text-retrieval) with `transformers.pipeline`."""

import logging

__version__ = "0.1.0"

# torchao (which transformers imports when it is installed) registers enums with torch's pytree the old
# way, and torch >= 2.10 logs a deprecation warning for each on every start: not ours to fix, only noise.
logging.getLogger("torch.utils._pytree").setLevel(logging.ERROR)

import vl.pipelines  # noqa: E402,F401 (registration happens on import)
