"""constrained: make a language model's output provably parse.

Compile a regex, JSON Schema / pydantic model or Lark grammar against a vocabulary,
then mask the model's logits with the compiled constraint at every step.
Public names are resolved lazily (PEP 562) so ``import constrained`` stays cheap and
never imports the inference core.
"""
from __future__ import annotations

import importlib
from typing import Any

from .errors import (
    BitmaskShapeError,
    CompileError,
    ConstrainedError,
    ConstraintTooComplex,
    GrammarSyntaxError,
    GrammarUnsupported,
    IncompleteOutput,
    InvalidTokenId,
    MatcherTerminated,
    RegexSyntaxError,
    RegexUnsupported,
    SchemaError,
    SchemaUnsupported,
    TokenRejected,
    VocabularyError,
)

__version__ = "0.1.0"

# public name -> module (relative to this package) that defines it
_LAZY: dict[str, str] = {
    "Vocabulary": ".vocab",
    "Constraint": ".matcher",
    "Matcher": ".matcher",
    "compile_regex": ".compile",
    "compile_choice": ".compile",
    "compile_json_schema": ".schema",
    "compile_lark": ".grammar",
    "compile_gbnf": ".grammar",
    "allocate_token_bitmask": ".masks.bitmask",
    "apply_token_bitmask": ".masks.bitmask",
    "generate": ".generate",
    "stream": ".generate",
    "Regex": ".generate",
    "Lark": ".generate",
    "Choice": ".generate",
}

__all__ = sorted(
    [
        "BitmaskShapeError", "CompileError", "ConstrainedError", "ConstraintTooComplex",
        "GrammarSyntaxError", "GrammarUnsupported", "IncompleteOutput", "InvalidTokenId",
        "MatcherTerminated", "RegexSyntaxError", "RegexUnsupported", "SchemaError",
        "SchemaUnsupported", "TokenRejected", "VocabularyError", *_LAZY,
    ]
)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'constrained' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


# `constrained.generate` names both a submodule and the function it defines. Importing the
# submodule (``from constrained.generate import ...``) would rebind the package attribute to the
# module object and shadow the function, so bind the two functions eagerly (cheap: numpy only).
from .generate import generate, stream  # noqa: E402
