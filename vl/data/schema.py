"""Reading JSON annotation files with one-line errors that name the file, the entry and the key."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vl.errors import DataFormatError

_TYPE_NAMES = {int: "an integer", str: "a string", list: "a list", dict: "an object", float: "a number"}


def read_json(path: str | Path, what: str) -> Any:
    """Parse a JSON file; a missing or broken file is a DataFormatError that says which and where."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(f"{what} file not found: {path}")
    try:
        with path.open(encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as err:
        raise DataFormatError(f"{path}: not valid JSON (line {err.lineno}, column {err.colno}: {err.msg})") from None
    except UnicodeDecodeError as err:
        raise DataFormatError(f"{path}: not UTF-8 text ({err.reason}); is this really a {what} file?") from None


def field(obj: Any, key: str, kind: type | tuple[type, ...], where: str, path: str | Path, hint: str = "") -> Any:
    """obj[key], checked to be of `kind`; else a DataFormatError naming file, entry and key."""
    if not isinstance(obj, dict):
        raise DataFormatError(f"{path}: {where} should be {_name(dict)}, got {type(obj).__name__}{_hint(hint)}")
    if key not in obj:
        raise DataFormatError(f"{path}: {where} is missing key '{key}'{_hint(hint)}")
    value = obj[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        want = " or ".join(_name(k) for k in kinds)
        raise DataFormatError(f"{path}: {where}.{key} should be {want}, got {type(value).__name__} {_short(value)}{_hint(hint)}")
    return value


def image_file(folder: Path, name: str, path: str | Path, where: str) -> Path:
    """The image `folder/name`, which must exist."""
    image = folder / name
    if not image.is_file():
        raise DataFormatError(f"{path}: image file not found: {image} ({where}); is the image folder right?")
    return image


def _name(kind: type) -> str:
    return _TYPE_NAMES.get(kind, kind.__name__)


def _hint(hint: str) -> str:
    return f" ({hint})" if hint else ""


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def write_json(obj: Any, path: str | Path) -> Path:
    """Write JSON atomically (a temporary file renamed into place), creating parent folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8") as f:
        json.dump(obj, f)
    tmp.replace(path)
    return path


def image_folder(folder: str | Path, path: str | Path) -> Path:
    """An existing image folder, or a DataFormatError saying which one is missing."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataFormatError(f"{path}: image folder not found: {folder}")
    return folder
