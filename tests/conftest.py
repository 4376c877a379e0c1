"""Test session setup: nothing waits on a hub, and every cache lives in a temporary folder."""

import os
import tempfile

_CACHE = tempfile.mkdtemp(prefix="vl-tests-")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ["HF_DATASETS_CACHE"] = os.path.join(_CACHE, "hf-datasets")
os.environ["VL_CACHE"] = os.path.join(_CACHE, "vl")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
