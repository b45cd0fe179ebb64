"""Compilation options for JSON Schema constraints (the generation policy, one place)."""
from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, Literal

from ..errors import SchemaError

Whitespace = Literal["flexible", "compact"]


@dataclass(frozen=True)
class SchemaOptions:
    """How a schema's language is narrowed into a finite-choice generation policy.

    * ``whitespace``: ``"flexible"`` allows up to ``max_whitespace`` of space/newline/tab
      /CR at each place JSON allows whitespace; ``"compact"`` allows none. ``indent=N``
      (overrides ``whitespace``) demands ``json.dumps(..., indent=N)`` layout exactly.
    * ``additional_properties``: ``None`` follows the schema; ``False`` forbids
      properties the schema does not declare even where the schema allows them.
    * ``lenient``: widen instead of raising ``SchemaUnsupported`` (docs/json-schema.md).
    * number digit bounds: see ``constrained.schema.numeric``.
    * ``split_lexemes``: objects and arrays become grammar rules over small lexemes even
      when regular (``compile_json_schema`` retries this way when one automaton for the
      whole document would exceed the limits).
    """

    whitespace: Whitespace = "flexible"
    max_whitespace: int = 8
    indent: int | None = None
    additional_properties: bool | None = None
    lenient: bool = False
    max_integer_digits: int = 20
    max_fraction_digits: int = 10
    max_exponent_digits: int = 3
    max_unrolled: int = 1000
    split_lexemes: bool = False

    def __post_init__(self) -> None:
        if self.whitespace not in ("flexible", "compact"):
            raise SchemaError(f"whitespace must be 'flexible' or 'compact', not {self.whitespace!r}")
        if self.indent is not None and (not isinstance(self.indent, int) or self.indent < 0):
            raise SchemaError(f"indent must be a non-negative int, not {self.indent!r}")
        for name in ("max_whitespace", "max_integer_digits", "max_fraction_digits",
                     "max_exponent_digits", "max_unrolled"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise SchemaError(f"{name} must be a non-negative int, not {value!r}")
        if self.max_integer_digits < 1:
            raise SchemaError("max_integer_digits must be at least 1")

    @staticmethod
    def from_kwargs(base: SchemaOptions | None = None, **kwargs: Any) -> SchemaOptions:
        """Options from keyword arguments, naming any unknown one."""
        known = {f.name for f in fields(SchemaOptions)}
        unknown = sorted(set(kwargs) - known)
        if unknown:
            raise SchemaError(f"unknown JSON Schema option(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return replace(base or SchemaOptions(), **kwargs)
