"""Task kinds: how each type of head is fed, trained, run and scored (the contract is in base.py).
Every module here registers its kind with @TASKS.register("<head type>") and is imported below, so a
new kind is one new file."""

from vl.registry import TASKS, import_modules
from vl.tasks.base import Report, TaskKind

import_modules(__name__, __path__)


def task_kind(model_or_cfg_heads, name: str):
    """The TaskKind class of head `name`, from a VLModel or a {name: head spec} dict."""
    heads = getattr(model_or_cfg_heads, "heads", model_or_cfg_heads)
    head = heads[name]
    return TASKS.get(head.registry_name if hasattr(head, "registry_name") else head.get("type", name))


__all__ = ["TASKS", "Report", "TaskKind", "task_kind"]
