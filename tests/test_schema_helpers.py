"""Shared helpers for the JSON Schema tests (no tests here).

String-level acceptance runs the real engine path: the lazy DFA for regular schemas,
the grammar engine's byte-level matcher (lexer + Earley) for the others.
"""
from __future__ import annotations

import json
import re
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from constrained.automata import LazyDFA
from constrained.errors import ConstraintTooComplex
from constrained.grammar.compiled import CompiledGrammar
from constrained.grammar.ir import Grammar
from constrained.schema import schema_to_language

RATCHETS = Path(__file__).resolve().parent / "ratchets"
DRAFT7 = "http://json-schema.org/draft-07/schema#"


def acceptor(schema: Any, **options: Any) -> Callable[[bytes], bool]:
    """A function telling whether bytes are in the schema's language (string level)."""
    lang = schema_to_language(schema, **options)
    if not isinstance(lang, Grammar):
        try:
            return LazyDFA([lang]).matches
        except ConstraintTooComplex:  # as compile_json_schema: retry with small lexemes
            lang = schema_to_language(schema, **options, split_lexemes=True)
    compiled = CompiledGrammar(lang)
    return compiled.accepts


def with_draft(schema: Any, draft: str) -> Any:
    """Make a suite row's draft explicit (the suite runs each file under its draft)."""
    if draft == "draft7" and isinstance(schema, dict) and "$schema" not in schema:
        return {"$schema": DRAFT7, **schema}
    return schema


def reference_validator(schema: Any) -> Any:
    """jsonschema's validator for ``schema`` with format checking on."""
    from jsonschema.validators import validator_for

    cls = validator_for(schema if isinstance(schema, dict) else {})
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def _resolve_local(schema: Any, root: Any) -> Any:
    seen = 0
    while isinstance(schema, dict) and isinstance(schema.get("$ref"), str) and schema["$ref"].startswith("#/") and seen < 20:
        node = root
        for tok in schema["$ref"][2:].split("/"):
            tok = tok.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and tok in node:
                node = node[tok]
            else:
                return schema
        rest = {k: v for k, v in schema.items() if k != "$ref"}
        schema = {**node, **{k: v for k, v in rest.items() if k not in node}} if isinstance(node, dict) else node
        if rest.get("properties") and isinstance(node, dict):
            schema["properties"] = {**rest["properties"], **node.get("properties", {})}
        seen += 1
    return schema


def declared_order(schema: Any, root: Any) -> list[str]:
    """Property names in the order the policy writes them: ``properties`` of the schema
    and of its allOf members (depth first), then ``required`` names not among them,
    resolving local ``$ref`` — the test's view of the policy (docs/json-schema.md)."""
    names: list[str] = []

    def add(ns: Any) -> None:
        for n in ns:
            if isinstance(n, str) and n not in names:
                names.append(n)

    def walk(sch: Any, keyword: str) -> None:
        sch = _resolve_local(sch, root)
        if isinstance(sch, dict):
            add(sch.get(keyword, {}))
            for sub in sch.get("allOf", []):
                walk(sub, keyword)

    walk(schema, "properties")
    walk(schema, "required")
    return names


def policy_dumps(instance: Any, schema: Any, root: Any | None = None, **dump: Any) -> str:
    """``json.dumps`` under the generation policy: declared properties first, in declared
    order (recursively, following properties / items / local refs), then the rest."""
    root = schema if root is None else root

    def order(value: Any, sch: Any) -> Any:
        sch = _resolve_local(sch, root)
        if isinstance(sch, dict):
            for key in ("anyOf", "oneOf"):
                for branch in sch.get(key, []):
                    try:
                        if reference_validator(_with_defs(_resolve_local(branch, root), root)).is_valid(value):
                            merged = dict(sch)
                            merged.pop(key)
                            b = _resolve_local(branch, root)
                            if isinstance(b, dict):
                                # the compiler merges the siblings first, then the branch
                                merged = {**b, **merged, "properties": {**merged.get("properties", {}),
                                                                        **b.get("properties", {})}}
                            return order(value, merged)
                    except Exception:
                        continue
        if isinstance(value, dict):
            names = declared_order(sch, root)
            for v_enum in (sch.get("enum", []) + ([sch["const"]] if "const" in sch else [])) if isinstance(sch, dict) else []:
                if isinstance(v_enum, dict) and v_enum == value:
                    return v_enum
            keys = [k for k in names if k in value] + [k for k in value if k not in names]
            props = sch.get("properties", {}) if isinstance(sch, dict) else {}
            extra = sch.get("additionalProperties", True) if isinstance(sch, dict) else True
            patterns = sch.get("patternProperties", {}) if isinstance(sch, dict) else {}
            return {k: order(value[k], props[k] if k in props else _pattern_schema(k, patterns, extra))
                    for k in keys}
        if isinstance(value, list):
            prefix = sch.get("prefixItems", []) if isinstance(sch, dict) else []
            items = sch.get("items", True) if isinstance(sch, dict) else True
            if isinstance(items, list):
                prefix, items = items, sch.get("additionalItems", True)
            return [order(v, prefix[i] if i < len(prefix) else items) for i, v in enumerate(value)]
        return value

    dump.setdefault("ensure_ascii", False)
    return json.dumps(order(instance, schema), **dump)


def _with_defs(branch: Any, root: Any) -> Any:
    """``branch`` as a schema of its own: the root's definitions (for its local refs) and
    draft, none of the root's own keywords."""
    if not isinstance(branch, dict) or not isinstance(root, dict):
        return branch
    keep = {k: root[k] for k in ("$schema", "$defs", "definitions") if k in root}
    return {**keep, **branch}


def _pattern_schema(key: str, patterns: dict[str, Any], default: Any) -> Any:
    """The subschema a non-declared key's value follows: its first matching
    ``patternProperties`` entry (searched with Python's ``re``), else ``default``."""
    for pattern, sub in patterns.items():
        try:
            if re.search(pattern, key):
                return sub
        except re.error:
            continue
    return default


def invalid_spellings(instance: Any) -> set[str]:
    """Several serialisations of an instance (an invalid one must be rejected in all)."""
    return {json.dumps(instance, ensure_ascii=False), json.dumps(instance),
            json.dumps(instance, separators=(",", ":"), ensure_ascii=False),
            json.dumps(instance, indent=2, ensure_ascii=False),
            json.dumps(instance, sort_keys=True, ensure_ascii=False)}


def load_ratchet(name: str) -> dict[str, Any]:
    path = RATCHETS / name
    return json.loads(path.read_text()) if path.exists() else {}


def maybe_update_ratchet(name: str, data: dict[str, Any]) -> bool:
    """Rewrite a ratchet when CONSTRAINED_UPDATE_RATCHETS=1 (returns whether it did)."""
    if os.environ.get("CONSTRAINED_UPDATE_RATCHETS") != "1":
        return False
    RATCHETS.mkdir(exist_ok=True)
    (RATCHETS / name).write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    return True
