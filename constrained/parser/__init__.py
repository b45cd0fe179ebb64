"""Earley parser over lexemes (see ``earley.py``; design notes in README.md)."""
from __future__ import annotations

from .earley import EarleyParser, EarleySet, ParserLimits

__all__ = ["EarleyParser", "EarleySet", "ParserLimits"]
