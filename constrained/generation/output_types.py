"""Output types accepted by :func:`constrained.generate` and how each one compiles and parses.

``resolve_output_type`` turns whatever the user passed (a pydantic class, a JSON Schema dict,
``Regex`` / ``Lark`` / ``Choice``, a list of strings, a shipped grammar name, a Python type, or
``None`` for free text) into an :class:`OutputSpec`: a hashable cache key, a function compiling a
constraint for a vocabulary, and a function turning the finished text into the returned value.
"""
from __future__ import annotations

import enum
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import OutputTypeError, OutputValidationError


@dataclass(frozen=True)
class Regex:
    """Constrain the output to a full match of a Python-syntax regular expression; returns str."""

    pattern: str
    flags: int = 0


@dataclass(frozen=True)
class Lark:
    """Constrain the output to a Lark grammar (``start`` names the start rule); returns str."""

    grammar: str
    start: str = "start"


@dataclass(frozen=True)
class Choice:
    """Constrain the output to exactly one of the given strings; returns that string."""

    choices: tuple[str, ...]

    def __init__(self, choices: Any) -> None:
        values = tuple(choices)
        if not values or not all(isinstance(c, str) for c in values):
            raise OutputTypeError("Choice needs a non-empty sequence of strings")
        object.__setattr__(self, "choices", values)


@dataclass(frozen=True)
class Gbnf:
    """Constrain the output to a GBNF (llama.cpp) grammar; returns str."""

    grammar: str
    start: str = "root"


@dataclass(frozen=True)
class OutputSpec:
    """A resolved output type.

    ``compile(get_vocab)`` gives a Constraint (None = unconstrained); ``get_vocab()`` builds the
    model's Vocabulary on demand. ``parse(text)`` turns finished text into the returned value.
    """

    key: Any
    description: str
    compile: Callable[[Any], Any] = field(compare=False)
    parse: Callable[[str], Any] = field(compare=False)
    constrained: bool = True


def _identity(text: str) -> str:
    return text


def _regex_spec(spec: Regex) -> OutputSpec:
    def compile_(get_vocab: Callable[[], Any]) -> Any:
        vocab = get_vocab()
        from ..compile import compile_regex

        if spec.flags:
            return compile_regex(spec.pattern, vocab, flags=spec.flags)
        return compile_regex(spec.pattern, vocab)

    def parse(text: str) -> str:
        if re.fullmatch(spec.pattern, text, spec.flags) is None:
            raise OutputValidationError(f"output {text!r} does not match /{spec.pattern}/")
        return text

    return OutputSpec(("regex", spec.pattern, spec.flags), f"regex /{spec.pattern}/", compile_, parse)


def _choice_spec(spec: Choice) -> OutputSpec:
    def compile_(get_vocab: Callable[[], Any]) -> Any:
        vocab = get_vocab()
        from ..compile import compile_choice

        return compile_choice(list(spec.choices), vocab)

    def parse(text: str) -> str:
        if text not in spec.choices:
            raise OutputValidationError(f"output {text!r} is not one of {list(spec.choices)!r}")
        return text

    return OutputSpec(("choice", spec.choices), f"choice of {len(spec.choices)}", compile_, parse)


def _lark_spec(spec: Lark, label: str) -> OutputSpec:
    def compile_(get_vocab: Callable[[], Any]) -> Any:
        vocab = get_vocab()
        from ..grammar import compile_lark

        return compile_lark(spec.grammar, vocab, start=spec.start)

    def parse(text: str) -> str:
        import lark

        try:
            lark.Lark(spec.grammar, start=spec.start, parser="earley", lexer="dynamic").parse(text)
        except lark.exceptions.LarkError as exc:
            raise OutputValidationError(f"output {text!r} does not parse with the grammar: {exc}") from None
        return text

    return OutputSpec(("lark", spec.grammar, spec.start), label, compile_, parse)


def _gbnf_spec(spec: Gbnf) -> OutputSpec:
    def compile_(get_vocab: Callable[[], Any]) -> Any:
        vocab = get_vocab()
        from ..grammar import compile_gbnf

        return compile_gbnf(spec.grammar, vocab, start=spec.start)

    return OutputSpec(("gbnf", spec.grammar, spec.start), "GBNF grammar", compile_, _identity)


def _options_key(options: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted(options.items()))


def _schema_spec(schema: dict[str, Any] | bool, options: Mapping[str, Any]) -> OutputSpec:
    text = json.dumps(schema, sort_keys=True)

    def compile_(get_vocab: Callable[[], Any]) -> Any:
        vocab = get_vocab()
        from ..schema import compile_json_schema

        return compile_json_schema(schema, vocab, **options)

    def parse(out: str) -> Any:
        try:
            value = json.loads(out)
        except json.JSONDecodeError as exc:
            raise OutputValidationError(f"output is not JSON: {exc}") from None
        return value

    return OutputSpec(("schema", text, _options_key(options)), "JSON Schema", compile_, parse)


def _type_adapter_spec(tp: Any, options: Mapping[str, Any]) -> OutputSpec:
    import pydantic

    try:
        adapter = pydantic.TypeAdapter(tp)
        schema = adapter.json_schema()
    except (pydantic.PydanticSchemaGenerationError, pydantic.PydanticUserError, TypeError) as exc:
        raise OutputTypeError(f"cannot build a JSON Schema for output type {tp!r}: {exc}") from None
    is_model = isinstance(tp, type) and issubclass(tp, pydantic.BaseModel)
    text = json.dumps(schema, sort_keys=True)

    def compile_(get_vocab: Callable[[], Any]) -> Any:
        vocab = get_vocab()
        from ..schema import compile_json_schema

        # pydantic classes go in as classes: the schema compiler applies its pydantic policy
        return compile_json_schema(tp if is_model else schema, vocab, **options)

    def parse(out: str) -> Any:
        try:
            return adapter.validate_json(out)
        except pydantic.ValidationError as exc:
            raise OutputValidationError(f"output does not validate as {tp!r}: {exc}") from None

    name = tp.__name__ if isinstance(tp, type) else repr(tp)
    kind = "pydantic model" if is_model else "Python type"
    return OutputSpec(("type", text, name, _options_key(options)), f"{kind} {name}", compile_, parse)


def _free_text_spec() -> OutputSpec:
    def compile_(get_vocab: Callable[[], Any]) -> None:
        return None

    return OutputSpec(("text",), "free text", compile_, _identity, constrained=False)


def resolve_output_type(output_type: Any, schema_options: Mapping[str, Any] | None = None) -> OutputSpec:
    """Map a user-facing output type to an :class:`OutputSpec` (raises OutputTypeError).

    ``schema_options`` are passed to ``compile_json_schema`` for JSON outputs (schema dicts,
    pydantic classes, Python types), e.g. ``{"whitespace": "compact"}`` or ``{"indent": 2}``.
    """
    options = dict(schema_options or {})
    if output_type is None:
        return _free_text_spec()
    if isinstance(output_type, OutputSpec):
        return output_type
    if isinstance(output_type, Regex):
        return _regex_spec(output_type)
    if isinstance(output_type, Choice):
        return _choice_spec(output_type)
    if isinstance(output_type, Lark):
        return _lark_spec(output_type, "Lark grammar")
    if isinstance(output_type, Gbnf):
        return _gbnf_spec(output_type)
    if isinstance(output_type, (list, tuple)):
        return _choice_spec(Choice(output_type))
    if isinstance(output_type, bool) or isinstance(output_type, dict):
        return _schema_spec(output_type, options)
    if isinstance(output_type, str):
        return _grammar_name_spec(output_type)
    if isinstance(output_type, type) and issubclass(output_type, enum.Enum):
        return _type_adapter_spec(output_type, options)
    try:
        return _type_adapter_spec(output_type, options)
    except OutputTypeError:
        raise
    except Exception as exc:  # noqa: BLE001 - pydantic raises various errors for non-types
        raise OutputTypeError(f"unsupported output type {output_type!r}: {exc}") from None


def _grammar_name_spec(name: str) -> OutputSpec:
    """A string output type names a shipped grammar (``grammars.names()``)."""
    import grammars

    available = list(grammars.names())
    if name not in available:
        raise OutputTypeError(
            f"unknown grammar name {name!r} (shipped grammars: {', '.join(available) or 'none'}); "
            "use constrained.Regex(...) for a regex or constrained.Lark(text) for grammar text"
        )
    return _lark_spec(Lark(grammars.load(name)), f"grammar {name!r}")
