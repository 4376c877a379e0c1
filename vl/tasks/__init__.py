"""Task kinds: how each type of head is fed, trained, run and scored (the contract is in base.py).
Every module here registers its kind with @TASKS.register("<head type>") and is imported below, so a
new kind is one new file."""

from vl.registry import TASKS, import_modules
from vl.tasks.base import Report, TaskKind

import_modules(__name__, __path__)


def task_kind(model, name: str) -> type[TaskKind]:
    """The TaskKind class of the model's head `name`."""
    return TASKS.get(model.heads[name].registry_name)


__all__ = ["TASKS", "Report", "TaskKind", "task_kind"]
