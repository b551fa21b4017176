"""Replacing one method on transformers classes we speed up, keeping the shipped one."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Any


def patch_method(
    targets: Sequence[tuple[str, str]],
    name: str,
    replacement: Callable[..., Any],
    stock: dict[type, Callable[..., Any]],
) -> list[type]:
    """Set method `name` of every importable (module, class) in `targets` to `replacement`,
    recording the shipped method in `stock` the first time; return the classes (idempotent;
    classes this transformers lacks are skipped)."""
    classes = []
    for module_name, class_name in targets:
        try:
            cls = getattr(importlib.import_module(module_name), class_name)
        except (ImportError, AttributeError):
            continue
        if cls not in stock:
            stock[cls] = getattr(cls, name)
            setattr(cls, name, replacement)
        classes.append(cls)
    return classes
