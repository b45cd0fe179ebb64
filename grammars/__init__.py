"""Shipped Lark grammars: ``load(name)`` returns a grammar's text, ``names()`` lists them.

Every ``<name>.lark`` file here starts with a comment saying what it accepts; each is
tested to load in Lark and to constrain sampling so that Lark parses every output.
"""
from __future__ import annotations

from importlib import resources

__all__ = ["load", "names", "path"]


def names() -> list[str]:
    """Names of the shipped grammars (file stems), sorted."""
    return sorted(p.name[:-5] for p in resources.files(__name__).iterdir()
                  if p.name.endswith(".lark"))


def load(name: str) -> str:
    """The Lark text of the shipped grammar ``name`` (KeyError naming the choices if unknown)."""
    if name not in names():
        raise KeyError(f"no shipped grammar {name!r}; available: {', '.join(names())}")
    return resources.files(__name__).joinpath(f"{name}.lark").read_text(encoding="utf-8")


def path(name: str) -> str:
    """Filesystem path of the shipped grammar ``name``."""
    load(name)
    return str(resources.files(__name__).joinpath(f"{name}.lark"))
