"""Normalise what users pass as a schema: dict, bool, JSON text, pydantic model, Python type."""
from __future__ import annotations

import json
from typing import Any

from ..errors import SchemaError

JsonSchema = dict[str, Any] | bool


def is_pydantic_model(obj: object) -> bool:
    """Whether ``obj`` is a pydantic v2 model class (without importing pydantic eagerly)."""
    return isinstance(obj, type) and hasattr(obj, "model_json_schema") and hasattr(obj, "model_validate_json")


def python_type_schema(tp: Any) -> dict[str, Any]:
    """JSON Schema of a Python type (int, list[str], Literal, TypedDict, dataclass ...)
    via pydantic's ``TypeAdapter``, the reference for how such types validate."""
    try:
        from pydantic import TypeAdapter
        from pydantic.errors import PydanticSchemaGenerationError
    except ImportError as exc:  # pragma: no cover - pydantic is a dependency
        raise SchemaError("Python types need pydantic installed") from exc
    try:
        return TypeAdapter(tp).json_schema()
    except (PydanticSchemaGenerationError, TypeError) as exc:
        raise SchemaError(f"cannot derive a JSON Schema from {tp!r}: {exc}") from exc


def load_schema(source: object) -> tuple[JsonSchema, bool]:
    """The schema as a JSON value and whether it came from a pydantic model / Python type.

    Accepts a dict, a bool, JSON text, a pydantic model class or another Python type.
    """
    if isinstance(source, bool):
        return source, False
    if isinstance(source, dict):
        return source, False
    if isinstance(source, (str, bytes, bytearray)):
        try:
            value = json.loads(source)
        except ValueError as exc:
            raise SchemaError(f"schema text is not valid JSON: {exc}") from exc
        if not isinstance(value, (dict, bool)):
            raise SchemaError(f"a JSON Schema must be an object or a boolean, not {type(value).__name__}")
        return value, False
    if is_pydantic_model(source):
        return source.model_json_schema(), True  # type: ignore[attr-defined]
    if isinstance(source, type) or getattr(source, "__origin__", None) is not None or hasattr(source, "__args__"):
        return python_type_schema(source), True
    raise SchemaError(f"cannot use {type(source).__name__} as a JSON Schema (dict, bool, JSON text, pydantic model or type)")
