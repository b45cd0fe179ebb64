"""JSON Schema -> language (regex AST, or grammar IR when recursion needs the parser).

One :class:`SchemaCompiler` per document. ``compile`` maps each subschema to a piece
(see ``pieces.py``); keywords are enforced exactly or refused with
:class:`SchemaUnsupported` naming the keyword and the JSON pointer (``lenient=True``
widens instead, as docs/json-schema.md lists per keyword).
"""
from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from decimal import Decimal
from functools import partial
from typing import Any

from ..automata.ast import (
    EMPTY,
    NOTHING,
    And,
    Node,
    Not,
    Repeat,
    alt,
    concat,
    literal,
)
from ..automata.regex_syntax import parse_regex
from ..errors import (
    ConstraintTooComplex,
    RegexSyntaxError,
    RegexUnsupported,
    SchemaError,
    SchemaUnsupported,
)
from ..grammar.ir import Grammar
from . import numeric
from .combinators import (
    ALL_TYPE_SET,
    MAX_PATTERN_SUBSETS,
    TYPE_GROUPS,
    cliques,
    closed_apart,
    languages_disjoint,
    negated_required,
    overlap_graph,
    required_only,
    restricted,
    vacuous,
)
from .ecma import EcmaSyntaxError, EcmaUnsupported, ecma_to_python
from .formats import format_node
from .jsontext import (
    ANY_CHAR,
    ANY_STRING_CONTENT,
    Layout,
    number_node,
    string_literal,
    string_node,
    strings_except,
    value_node,
)
from .merge import ANNOTATIONS, merge_all, type_set
from .options import SchemaOptions
from .pieces import GrammarBuilder, Piece, Seq, is_nothing, is_regular
from .refs import ROOT_URI, SchemaIndex, Target, detect_draft, escape_pointer_token

#: patternProperties of one object (their pairwise overlaps are checked at compile time)
MAX_PATTERN_PROPERTIES = 32
MAX_CHOICE_PRODUCT = 256
#: containers nested in one compiled value (no real schema comes close; a recursion
#: that closes becomes a rule and adds no nesting)
MAX_NESTING = 48


@dataclass(frozen=True)
class Ctx:
    """Where a subschema sits: JSON pointer (for messages), base URI, container depth."""

    pointer: str
    base: str
    depth: int = 0

    def at(self, *tokens: str | int) -> Ctx:
        ptr = self.pointer + "".join("/" + escape_pointer_token(str(t)) for t in tokens)
        return replace(self, pointer=ptr)

    def deeper(self) -> Ctx:
        return replace(self, depth=self.depth + 1)


class SchemaCompiler:
    """Compiles one schema document under one set of options."""

    def __init__(self, root: Any, options: SchemaOptions, from_model: bool = False) -> None:
        if not isinstance(root, (dict, bool)):
            raise SchemaError(f"a JSON Schema must be an object or a boolean, not {type(root).__name__}")
        self.root = root
        self.options = options
        self.from_model = from_model
        self.draft = detect_draft(root)
        self.index = SchemaIndex(root, self.draft)
        self.layout = Layout(options)
        self.builder = GrammarBuilder()
        self.memo: dict[tuple[int, int], Piece] = {}
        self.active: dict[int, str] = {}
        self.recursive: set[int] = set()
        self.enc_memo: dict[int, Node] = {}
        self.keep: list[Any] = []  # merged schemas stay alive while memoised by id
        self._any: Piece | None = None
        self._any_string: Node | None = None
        self._validator: Any = None
        self._merge_memo: dict[tuple[Any, ...], dict[str, Any]] = {}
        self._one_of_memo: dict[tuple[int, tuple[str, ...], bool, bool], list[Any]] = {}
        self._root_base = self.index.base_of(root, ROOT_URI) if isinstance(root, dict) else ROOT_URI

    # -- entry points ---------------------------------------------------------------------
    def compile_root(self) -> Piece:
        return self.compile(self.root, Ctx("", self.index.base_of(self.root, "constrained-root:/schema.json")))

    def grammar(self, piece: Piece) -> Grammar:
        return self.builder.finish(piece, meta={"source": "json-schema"})

    # -- helpers ----------------------------------------------------------------------------
    def unsupported(self, keyword: str, ctx: Ctx, why: str) -> None:
        """Refuse ``keyword`` at ``ctx`` (or, when lenient, return so the caller widens)."""
        if self.options.lenient:
            return
        raise SchemaUnsupported(f"{keyword}: {why} (at {ctx.pointer or '/'}; lenient=True widens)")

    def validator(self) -> Any:
        if self._validator is None:
            try:
                from jsonschema.validators import validator_for
            except ImportError as exc:  # pragma: no cover - declared dependency
                raise SchemaUnsupported("enum/const filtering needs the jsonschema package") from exc
            cls = validator_for(self.root if isinstance(self.root, dict) else {}, default=None)
            if cls is None:
                from jsonschema import Draft202012Validator as cls  # type: ignore[no-redef]
            # formats asserted, as everywhere in the policy (docs/json-schema.md)
            self._validator = cls(self.root, format_checker=cls.FORMAT_CHECKER)
        return self._validator

    def value_valid(self, value: Any, schema: Any) -> bool:
        """Whether ``value`` validates against subschema ``schema`` (reference validator)."""
        try:
            return bool(self.validator().evolve(schema=_public(schema)).is_valid(value))
        except Exception as exc:  # referencing errors etc.
            raise SchemaUnsupported(f"enum/const: cannot check values against their schema: {exc}") from exc

    def any_value(self) -> Piece:
        """Any JSON value (recursive: a grammar rule)."""
        if self._any is None:
            if self.layout.indented:
                raise SchemaUnsupported("indent: an unconstrained nested value (any JSON) cannot be indented "
                                        "exactly; use whitespace='flexible' or 'compact'")
            b = self.builder
            name = b.new_rule("json_value")
            self._any = Seq((name,))
            lay = self.layout
            members = b.new_rule("json_members")
            elements = b.new_rule("json_elements")
            key = concat(string_node(ANY_STRING_CONTENT, self.enc_memo), lay.colon())
            b.rules[members] = [(key, name), (members, lay.sep(0), key, name)]
            b.rules[elements] = [(name,), (elements, lay.sep(0), name)]
            b.rules[name] = [
                (lay.empty("{}"),), (lay.open("{", 0), members, lay.close("}", 0)),
                (lay.empty("[]"),), (lay.open("[", 0), elements, lay.close("]", 0)),
                (string_node(ANY_STRING_CONTENT, self.enc_memo),), (number_node(self.options),),
                (alt(literal("true"), literal("false"), literal("null")),),
            ]
        return self._any

    # -- dispatch ---------------------------------------------------------------------------
    def compile(self, schema: Any, ctx: Ctx) -> Piece:
        if schema is True:
            return self.any_value()
        if schema is False:
            return NOTHING
        if not isinstance(schema, dict):
            raise SchemaError(f"schema at {ctx.pointer or '/'} must be an object or a boolean, "
                              f"not {type(schema).__name__}")
        if ctx.depth > MAX_NESTING:
            # a recursion through merged schemas that never meets the same schema again
            # (each level merges fresh subschemas): refuse it early, as before such
            # recursion was compiled at all
            raise SchemaUnsupported(f"allOf/$ref: recursive reference through merged schemas that "
                                    f"does not close (over {MAX_NESTING} nested containers at "
                                    f"{ctx.pointer[:200] or '/'})")
        key = (id(schema), ctx.depth if self.layout.indented else 0)
        hit = self.memo.get(key)
        if hit is not None:
            return hit
        sid = id(schema)
        if sid in self.active:
            if self.layout.indented:
                raise SchemaUnsupported(f"indent: recursive schema at {ctx.pointer or '/'} cannot be indented exactly")
            self.recursive.add(sid)
            return Seq((self.active[sid],))
        self.active[sid] = self.builder.new_rule("ref")
        try:
            piece = self._compile_dict(schema, replace(ctx, base=self.index.base_of(schema, ctx.base)))
        finally:
            name = self.active.pop(sid)
        if sid in self.recursive:
            self.builder.define(name, [piece])
            piece = Seq((name,))
        self.memo[key] = piece
        self.keep.append(schema)
        return piece

    def _resolve_ref(self, schema: dict[str, Any], ctx: Ctx) -> Target:
        ref = schema["$ref"]
        if not isinstance(ref, str):
            raise SchemaError(f"$ref at {ctx.pointer or '/'} must be a string")
        return self.index.resolve(ref, ctx.base, ctx.pointer)

    def _conjuncts(self, schema: dict[str, Any], ctx: Ctx, seen: frozenset[int] = frozenset()) -> list[Any]:
        """``schema`` split into conjuncts: own keywords, ``$ref`` target, ``allOf`` members.
        A schema being compiled may be inlined (recursion through a merge, e.g. an anyOf
        of ``$ref``s beside ``type``): merged schemas are memoised by their parts
        (``_merged``), so the recursion meets the same merged object and becomes a rule."""
        if id(schema) in seen:
            raise SchemaUnsupported(f"allOf/$ref: recursive reference inside allOf at {ctx.pointer or '/'}")
        seen = seen | {id(schema)}
        self._check_unevaluated(schema, ctx)
        own = {k: v for k, v in schema.items() if k not in ("allOf", "$ref")}
        parts: list[Any] = [self._normalize(own, ctx)]
        if "$ref" in schema:
            target = self._resolve_ref(schema, ctx)
            if self.draft == "draft7":
                parts = []
            if isinstance(target.schema, dict):
                parts += self._conjuncts(target.schema, Ctx(target.pointer, target.base, ctx.depth), seen)
            else:
                parts.append(target.schema)
            if self.draft == "draft7":
                return parts
        for i, sub in enumerate(schema.get("allOf", [])):
            if isinstance(sub, dict):
                parts += self._conjuncts(sub, ctx.at("allOf", i), seen)
            else:
                parts.append(sub)
        return parts

    def _check_unevaluated(self, schema: dict[str, Any], ctx: Ctx) -> None:
        """``unevaluated*`` is supported only where it equals ``additional*`` (no
        in-place applicators that could evaluate more properties / items)."""
        for key in ("unevaluatedProperties", "unevaluatedItems"):
            if key in schema and schema[key] is not True:
                for other in ("allOf", "anyOf", "oneOf", "$ref", "$dynamicRef", "if", "dependentSchemas",
                              "not", "dependencies", "contains"):
                    if other in schema:
                        self.unsupported(key, ctx.at(key), f"{key} next to {other} is not supported")
                        return

    def _normalize(self, schema: dict[str, Any], ctx: Ctx) -> dict[str, Any]:
        """draft-07 spellings -> 2020-12 (items arrays, dependencies); ``unevaluated*``
        without applicators -> ``additional*``; draft-07 content assertions refused."""
        if self.draft == "draft7":
            for key in ("contentMediaType", "contentEncoding"):
                if key in schema:
                    self.unsupported(key, ctx.at(key), "draft-07 content assertions are not enforced")
        if "unevaluatedProperties" in schema:
            schema = dict(schema)
            value = schema.pop("unevaluatedProperties")
            if value is not True and "additionalProperties" not in schema:
                schema["additionalProperties"] = value
        if "unevaluatedItems" in schema:
            schema = dict(schema)
            value = schema.pop("unevaluatedItems")
            if value is not True and "items" not in schema and not isinstance(schema.get("items"), list):
                schema["items"] = value
        items = schema.get("items")
        if isinstance(items, list):
            schema = dict(schema)
            schema["prefixItems"] = items
            del schema["items"]
            if "additionalItems" in schema:
                schema["items"] = schema.pop("additionalItems")
        elif "additionalItems" in schema:
            schema = {k: v for k, v in schema.items() if k != "additionalItems"}  # ignored without items array
        if "dependencies" in schema:
            schema = dict(schema)
            deps = schema.pop("dependencies")
            if isinstance(deps, dict):
                for name, dep in deps.items():
                    if isinstance(dep, list):
                        schema.setdefault("dependentRequired", {})[name] = dep
                    else:
                        schema.setdefault("dependentSchemas", {})[name] = dep
        names = negated_required(schema)
        if names is not None:
            # not {required: [a, b]}: an object missing a or b (for any other value
            # ``required`` holds vacuously, so its negation fails); as a choice, so that
            # several of them merge across allOf members
            schema = {k: v for k, v in schema.items() if k != "not"}
            types = type_set(schema)
            schema["type"] = sorted((types if types is not None else {"object"}) & {"object"})
            if names:
                schema["x-choices"] = [*schema.get("x-choices", []),
                                       ("anyOf", [{"properties": {n: False}} for n in dict.fromkeys(names)])]
            else:
                schema["type"] = []  # not {required: []} fails for every value
        return schema

    def _compile_dict(self, schema: dict[str, Any], ctx: Ctx) -> Piece:
        origin = id(schema)  # the schema object as compiled (rewrites below copy it)
        for key in schema:
            if not isinstance(key, str):
                raise SchemaError(f"schema keys must be strings (at {ctx.pointer or '/'})")
        finite = self._finite_by_validation(schema, ctx)
        if finite is not None:
            return finite
        if "$ref" in schema and self.draft == "draft7":
            target = self._resolve_ref(schema, ctx)
            return self.compile(target.schema, Ctx(target.pointer, target.base, ctx.depth))
        constraint_keys = [k for k in schema if k not in ANNOTATIONS and k != "$ref"]
        if "$ref" in schema and not constraint_keys:
            target = self._resolve_ref(schema, ctx)
            return self.compile(target.schema, Ctx(target.pointer, target.base, ctx.depth))
        if "$ref" in schema or "allOf" in schema:
            if "allOf" in schema and not isinstance(schema["allOf"], list):
                raise SchemaError(f"allOf at {ctx.pointer or '/'} must be an array")
            merged = self._merged(("allOf", id(schema)),
                                  lambda: merge_all(self._conjuncts(schema, ctx), lambda s: [s], ctx.pointer))
            return self.compile(merged, ctx)
        self._check_unevaluated(schema, ctx)
        schema = self._normalize(schema, ctx)
        for key in ("$dynamicRef", "$recursiveRef"):
            if key in schema:
                self.unsupported(key, ctx, "dynamic references are not supported")
        choices = list(schema.get("x-choices", []))
        schema, deps = self._dependencies(schema, ctx)
        choices += deps
        for key in ("anyOf", "oneOf"):
            if key in schema:
                if not isinstance(schema[key], list) or not schema[key]:
                    raise SchemaError(f"{key} at {ctx.pointer or '/'} must be a non-empty array")
                choices.append((key, schema[key]))
        if choices:
            return self._compile_choices(schema, choices, ctx, origin)
        return self._compile_plain(schema, ctx)

    def _finite_by_validation(self, schema: dict[str, Any], ctx: Ctx) -> Piece | None:
        """A schema bounded by an ``enum`` / ``const`` (its own, or an allOf member's or
        a ``$ref`` target's) is the bounding values that validate against the whole
        schema, checked by the reference validator: exact whatever the other keywords
        (``not``, overlapping ``oneOf``, ``if``, ...). None where no such bound is found,
        the schema sits in a nested ``$id`` resource (the validator would start in the
        wrong scope) or a value cannot be checked."""
        values = self._bounding_values(schema, ctx, 0)
        if values is None or ctx.base != ROOT_URI and ctx.base != self._root_base:
            return None
        nothing_else = (all(k in ANNOTATIONS for k in schema if k not in ("enum", "const"))
                        and not ("enum" in schema and "const" in schema))
        try:  # nothing else to check: no validator to load
            return self._values_piece(values, None if nothing_else else schema, ctx)
        except SchemaUnsupported:
            return None

    def _values_piece(self, values: list[Any], against: Any, ctx: Ctx) -> Node:
        """The policy spellings of the ``values`` that validate against ``against`` (the
        reference validator; None: all of them)."""
        kept = values if against is None else [v for v in values if self.value_valid(v, against)]
        return alt(*(value_node(v, self.layout, ctx.depth, self.enc_memo) for v in kept))

    def _bounding_values(self, schema: Any, ctx: Ctx, depth: int) -> list[Any] | None:
        """The values of an enum/const that bounds ``schema``: its own, or (shallowly) an
        allOf member's or a local ``$ref`` target's; None if there is none."""
        if not isinstance(schema, dict) or depth > 8:
            return None
        if "const" in schema:
            return [schema["const"]]
        if isinstance(schema.get("enum"), list):
            return list(schema["enum"])
        members = schema.get("allOf")
        for sub in members if isinstance(members, list) else []:
            found = self._bounding_values(sub, ctx, depth + 1)
            if found is not None:
                return found
        if isinstance(schema.get("$ref"), str):
            try:
                target = self._resolve_ref(schema, ctx)
            except (SchemaError, SchemaUnsupported):
                return None
            return self._bounding_values(target.schema, Ctx(target.pointer, target.base, ctx.depth),
                                         depth + 1)
        return None

    def _dependencies(self, schema: dict[str, Any], ctx: Ctx) -> tuple[dict[str, Any], list[tuple[str, list[Any]]]]:
        """``dependentRequired`` / ``dependentSchemas`` as choices: for each trigger
        property, either it is absent or it is present with its dependencies (exact)."""
        out: list[tuple[str, list[Any]]] = []
        if "dependentRequired" not in schema and "dependentSchemas" not in schema:
            return schema, out
        schema = dict(schema)
        for name, deps in (schema.pop("dependentRequired", None) or {}).items():
            if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
                raise SchemaError(f"dependentRequired/{name} at {ctx.pointer or '/'} must be an array of strings")
            out.append(("anyOf", [{"properties": {name: False}}, {"required": [name, *deps]}]))
        for name, sub in (schema.pop("dependentSchemas", None) or {}).items():
            out.append(("anyOf", [{"properties": {name: False}}, {"required": [name], "allOf": [sub]}]))
        return schema, out

    def _negation(self, schema: dict[str, Any], ctx: Ctx) -> tuple[set[str] | None, list[str] | Node]:
        """``not`` where it is exact: returns (types to remove, or None for all; string
        values to exclude, or the decoded language of strings to exclude). Refuses other
        negations."""
        neg = schema["not"]
        if neg is True or neg == {}:
            return None, []
        if neg is False:
            return set(), []
        if isinstance(neg, dict) and {k for k in neg if k not in ANNOTATIONS} == {"pattern"} \
                and isinstance(neg["pattern"], str):
            # not {pattern: p}: the strings p does not match (every other value satisfies
            # ``pattern`` vacuously, so its negation fails)
            node = self.pattern_node(neg["pattern"], ctx.at("not", "pattern"))
            if node is not None:
                return set(ALL_TYPE_SET) - {"string"}, node
        if isinstance(neg, dict):
            keys = {k for k in neg if k not in ANNOTATIONS}
            if keys == {"type"}:
                removed = {neg["type"]} if isinstance(neg["type"], str) else set(neg["type"])
                if "number" in removed:
                    removed.add("integer")
                return removed, []
            if keys <= {"enum", "const", "type"} and keys & {"enum", "const"}:
                vals = list(neg.get("enum", [])) + ([neg["const"]] if "const" in neg else [])
                t = neg.get("type")
                if all(isinstance(v, str) for v in vals) and t in (None, "string"):
                    return set(), vals
        self.unsupported("not", ctx.at("not"), "only negated types, string values and {} are supported")
        return set(), []

    # -- anyOf / oneOf ----------------------------------------------------------------------
    def _merged(self, key: tuple[Any, ...], build: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """The merged schema for ``key`` (ids of the schema objects it merges), built once:
        the compile memo and recursion detection are keyed by schema object."""
        hit = self._merge_memo.get(key)
        if hit is None:
            hit = self._merge_memo[key] = build()
            self.keep.append(hit)
        return hit

    def _compile_choices(self, schema: dict[str, Any], choices: list[tuple[str, list[Any]]], ctx: Ctx,
                         origin: int) -> Piece:
        base = {k: v for k, v in schema.items() if k not in ("anyOf", "oneOf", "x-choices")}
        base_constrains = any(k not in ANNOTATIONS for k in base)
        choices = [("anyOf", self._one_of_as_any_of(base, branches, ctx))
                   if kind == "oneOf" and len(branches) > 1 else (kind, branches)
                   for kind, branches in choices]
        total = math.prod(len(b) for _, b in choices)
        if total > MAX_CHOICE_PRODUCT:
            raise ConstraintTooComplex(f"anyOf/oneOf combinations ({total}) exceed {MAX_CHOICE_PRODUCT} at "
                                       f"{ctx.pointer or '/'}")
        self.keep.append(choices)  # merged schemas are memoised by the ids of these branches

        def resolve(s: Any) -> list[Any]:
            return self._conjuncts(s, ctx) if isinstance(s, dict) else [s]

        pieces: list[Piece] = []
        for combo in itertools.product(*[list(enumerate(b)) for _, b in choices]):
            if len(combo) == 1 and not base_constrains:
                i, branch = combo[0]
                pieces.append(self.compile(branch, ctx.at(choices[0][0], i)))
                continue
            merged = self._merged(("choice", origin, tuple(id(b) for _, b in combo)),
                                  partial(merge_all, [base] + [b for _, b in combo], resolve, ctx.pointer))
            pieces.append(self.compile(merged, ctx))
        return self.builder.choice(*pieces, hint="any_of")

    def _one_of_as_any_of(self, base: dict[str, Any], branches: list[Any], ctx: Ctx) -> list[Any]:
        """oneOf as an anyOf that is exact: per JSON type, the branches that admit it must
        be provably disjoint there, except that a type two branches do not constrain at
        all (``required`` says nothing of a string) is matched twice by every value of
        it, so oneOf excludes that type. Refuses (lenient: anyOf) otherwise."""
        allowed = self._types_of(base)
        resolved = [self._with_base(base, b, ctx.at("oneOf", i)) for i, b in enumerate(branches)]
        types = [set() if r is False else (self._types_of(r) if isinstance(r, dict) else set(ALL_TYPE_SET))
                 & allowed for r in resolved]
        excluded: set[str] = set()
        no_empty_object = False
        # oneOf of bare ``required`` lists (an exclusive choice of fields): each branch
        # also lacks a name of every other branch, which is exact however they overlap
        required = [required_only(self._effective(b, ctx)) for b in branches]
        exclusive = all(r for r in required)
        for group in TYPE_GROUPS:
            names = {group, "integer"} if group == "number" else {group}
            members = [i for i in range(len(resolved)) if types[i] & names]
            for i, j in itertools.combinations(members, 2):
                ri = restricted(resolved[i], types[i] & names)
                rj = restricted(resolved[j], types[j] & names)
                if self._disjoint(ri, rj):
                    continue
                if vacuous(resolved[i], group) and vacuous(resolved[j], group):
                    excluded |= names
                    break
                if group == "object" and exclusive:
                    continue
                if group == "object" and closed_apart(ri, rj):
                    # only {} can match both (closed objects, no common property): if
                    # both admit it, oneOf excludes it; else they are disjoint
                    if self.value_valid({}, ri) and self.value_valid({}, rj):
                        no_empty_object = True
                    continue
                self.unsupported("oneOf", ctx.at("oneOf"),
                                 f"branches {i} and {j} are not provably disjoint")
                return branches
        exclusive = exclusive and "object" in allowed - excluded
        if not excluded and not no_empty_object and not exclusive:
            return branches
        keep = sorted(allowed - excluded)
        # the same wrappers for the same branches: the compile memo is keyed by schema
        # object, and fresh wrappers per visit recompiled shared definitions every time
        memo_key = (id(branches), tuple(keep), no_empty_object, exclusive)
        out = self._one_of_memo.get(memo_key)
        if out is None:
            extra: dict[str, Any] = {"type": keep}
            if no_empty_object:
                extra["minProperties"] = 1  # objects only: other values are unaffected
            out = []
            for i, b in enumerate(branches):
                parts: list[Any] = [b]
                if exclusive:  # an object missing a name of each other branch
                    parts += [{"anyOf": [{"properties": {n: False}} for n in r]}
                              for j, r in enumerate(required) if j != i and r]
                out.append({"allOf": parts, **extra} if keep else False)
            self.keep.append(branches)
            self._one_of_memo[memo_key] = out
        return out

    def _with_base(self, base: dict[str, Any], branch: Any, ctx: Ctx) -> Any:
        """A oneOf branch with its sibling keywords merged in (for the disjointness
        checks; the branch alone where merging is refused)."""
        if isinstance(branch, dict) and any(k not in ANNOTATIONS for k in base):
            try:
                return merge_all(self._conjuncts({"allOf": [base, branch]}, ctx), lambda s: [s],
                                 ctx.pointer)
            except (SchemaUnsupported, SchemaError):
                pass
        return self._effective(branch, ctx)

    def _effective(self, schema: Any, ctx: Ctx) -> Any:
        if isinstance(schema, dict) and ("$ref" in schema or "allOf" in schema):
            try:
                return merge_all(self._conjuncts(schema, ctx), lambda s: [s], ctx.pointer)
            except SchemaUnsupported:
                return schema
        return schema

    def _disjoint(self, a: Any, b: Any) -> bool:
        """Conservative: True only when no JSON value can satisfy both schemas."""
        if a is False or b is False:
            return True
        if not isinstance(a, dict) or not isinstance(b, dict):
            return False
        ta, tb = self._types_of(a), self._types_of(b)
        if not (ta & tb):
            return True
        for x, y in ((a, b), (b, a)):
            values = self._finite_values(x)
            if values is not None and not any(self.value_valid(v, y) for v in values):
                return True
        if ta == {"integer"} or ta <= {"integer", "number"} and tb <= {"integer", "number"}:
            ra, rb = self._num_range(a), self._num_range(b)
            if ra is not None and rb is not None and (ra[1] < rb[0] or rb[1] < ra[0]):
                return True
        for kinds, lo_key, hi_key in (({"object"}, "minProperties", "maxProperties"),
                                      ({"array"}, "minItems", "maxItems"),
                                      ({"string"}, "minLength", "maxLength")):
            if ta == tb == kinds:  # sizes that cannot agree
                for x, y in ((a, b), (b, a)):
                    lo, hi = x.get(lo_key), y.get(hi_key)
                    if (isinstance(lo, int) and isinstance(hi, int) and not isinstance(lo, bool)
                            and not isinstance(hi, bool) and lo > hi):
                        return True
        if ta == tb == {"string"} and isinstance(a.get("pattern"), str) and isinstance(b.get("pattern"), str):
            na = self.pattern_node(a["pattern"], Ctx("", ""))
            nb = self.pattern_node(b["pattern"], Ctx("", ""))
            if na is not None and nb is not None and languages_disjoint(na, nb):
                return True  # no string matches both patterns
        if ta == tb == {"object"}:
            for x, y in ((a, b), (b, a)):
                for name in x.get("required", []):
                    if self._forbids(y, name):
                        return True
            req = set(a.get("required", [])) & set(b.get("required", []))
            for name in req:
                pa = a.get("properties", {}).get(name)
                pb = b.get("properties", {}).get(name)
                if pa is not None and pb is not None and self._disjoint(self._effective(pa, Ctx("", "")),
                                                                      self._effective(pb, Ctx("", ""))):
                    return True
        return False

    @staticmethod
    def _forbids(s: dict[str, Any], name: str) -> bool:
        """Whether object schema ``s`` cannot have property ``name``."""
        if negated_required(s) == [name] or any(
                len(branches) == 1 and branches[0] == {"properties": {name: False}}
                for _, branches in s.get("x-choices", [])):
            return True
        props = s.get("properties", {})
        if name in props:
            return props[name] is False or props[name] == {"not": {}}
        if s.get("patternProperties"):
            return False
        return s.get("additionalProperties", True) is False

    @staticmethod
    def _types_of(s: dict[str, Any]) -> set[str]:
        t = type_set(s)
        out = set(t) if t is not None else {"null", "boolean", "object", "array", "number", "integer", "string"}
        if "number" in out:
            out.add("integer")
        if negated_required(s):
            out &= {"object"}  # ``required`` holds for every other value: its negation fails
        if "enum" in s or "const" in s:
            vals = list(s.get("enum", [])) + ([s["const"]] if "const" in s else [])
            kinds = set()
            for v in vals:
                kinds |= _json_types(v)
            out &= kinds
        return out

    @staticmethod
    def _finite_values(s: dict[str, Any]) -> list[Any] | None:
        if "const" in s:
            return [s["const"]]
        if "enum" in s and isinstance(s["enum"], list):
            return list(s["enum"])
        return None

    @staticmethod
    def _num_range(s: dict[str, Any]) -> tuple[float, float] | None:
        keys = ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum")
        if not any(k in s for k in keys) or any(not isinstance(s.get(k, 0), (int, float)) for k in keys):
            return None
        lo = max([s[k] for k in ("minimum", "exclusiveMinimum") if k in s], default=-math.inf)
        hi = min([s[k] for k in ("maximum", "exclusiveMaximum") if k in s], default=math.inf)
        if "exclusiveMinimum" in s or "exclusiveMaximum" in s:
            return None if lo == hi else (lo, hi)
        return (lo, hi)

    # -- plain schemas (no combinators) -------------------------------------------------------
    def _compile_plain(self, schema: dict[str, Any], ctx: Ctx) -> Piece:
        excluded_strings: list[str] | Node = []
        removed_types: set[str] = set()
        if "not" in schema:
            negated, excluded_strings = self._negation(schema, ctx)
            if negated is None:
                return NOTHING
            removed_types = negated
        for key in ("if", "then", "else", "contains", "minContains", "maxContains"):
            if key in ("contains", "minContains") and self._simple_contains(schema):
                continue
            if key in schema:
                if key in ("then", "else") and "if" not in schema:
                    continue
                if key in ("minContains", "maxContains") and "contains" not in schema:
                    continue
                self.unsupported(key, ctx, "keyword not supported")
        types = type_set(schema)
        if types is not None:
            for t in types:
                if t not in ("null", "boolean", "object", "array", "number", "string", "integer"):
                    raise SchemaError(f"type {t!r} at {ctx.pointer or '/'} is not a JSON Schema type")
        if "enum" in schema or "const" in schema:
            return self._compile_enum(schema, ctx)
        order = ["null", "boolean", "integer", "number", "string", "array", "object"]
        wanted = [t for t in order if (types is None or t in types) and t not in removed_types]
        if "number" in wanted and "integer" in wanted:
            wanted.remove("integer")
        if "number" in removed_types and "integer" in wanted:
            wanted.remove("integer")
        if "integer" in removed_types and "number" in wanted:
            self.unsupported("not", ctx.at("not"), "numbers that are not integers")
        pieces: list[Piece] = []
        for t in wanted:
            if t == "null":
                pieces.append(literal("null"))
            elif t == "boolean":
                pieces.append(alt(literal("true"), literal("false")))
            elif t in ("integer", "number"):
                pieces.append(self._number(schema, ctx, integer=(t == "integer")))
            elif t == "string":
                if isinstance(excluded_strings, list) and excluded_strings:
                    content = And((self.string_content(schema, ctx), strings_except(excluded_strings)))
                    pieces.append(string_node(content, self.enc_memo))
                elif not isinstance(excluded_strings, list):  # a negated pattern
                    content = And((self.string_content(schema, ctx), Not(excluded_strings)))
                    pieces.append(string_node(content, self.enc_memo))
                else:
                    pieces.append(self._string(schema, ctx))
            elif t == "array":
                pieces.append(self._array(schema, ctx))
            else:
                pieces.append(self._object(schema, ctx))
        return self.builder.choice(*pieces, hint="types")

    def _compile_enum(self, schema: dict[str, Any], ctx: Ctx) -> Piece:
        values: list[Any]
        if "enum" in schema:
            if not isinstance(schema["enum"], list):
                raise SchemaError(f"enum at {ctx.pointer or '/'} must be an array")
            values = list(schema["enum"])
        else:
            values = [schema["const"]]
        if "const" in schema and "enum" in schema:
            values = [v for v in values if self.value_valid(v, {"const": schema["const"]})]
        rest = {k: v for k, v in schema.items() if k not in ("enum", "const")}
        return self._values_piece(values, _public(rest) if any(k not in ANNOTATIONS for k in rest)
                                  else None, ctx)

    # -- numbers -------------------------------------------------------------------------------
    def _number(self, schema: dict[str, Any], ctx: Ctx, integer: bool) -> Piece:
        opts = self.options
        for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"):
            if key in schema and (isinstance(schema[key], bool) or not isinstance(schema[key], (int, float))):
                raise SchemaError(f"{key} at {ctx.pointer or '/'} must be a number")
        lo: Decimal | None = None
        lo_ex = False
        hi: Decimal | None = None
        hi_ex = False
        if "minimum" in schema:
            lo = numeric.to_decimal(schema["minimum"])
        if "exclusiveMinimum" in schema:
            d = numeric.to_decimal(schema["exclusiveMinimum"])
            if lo is None or d >= lo:
                lo, lo_ex = d, True
        if "maximum" in schema:
            hi = numeric.to_decimal(schema["maximum"])
        if "exclusiveMaximum" in schema:
            d = numeric.to_decimal(schema["exclusiveMaximum"])
            if hi is None or d <= hi:
                hi, hi_ex = d, True
        for b in (lo, hi):
            if b is not None and not b.is_finite():
                raise SchemaError(f"non-finite numeric bound at {ctx.pointer or '/'}")
        int_lo = None if lo is None else (math.floor(lo) + 1 if lo_ex else math.ceil(lo))
        int_hi = None if hi is None else (math.ceil(hi) - 1 if hi_ex else math.floor(hi))
        try:
            if "multipleOf" in schema:
                m = schema["multipleOf"]
                if m <= 0:
                    raise SchemaError(f"multipleOf at {ctx.pointer or '/'} must be > 0")
                if isinstance(m, float) and not m.is_integer():
                    if integer and (1 / m).is_integer() and m > 0 and _is_pow2(1 / m):
                        m = 1
                    else:
                        self.unsupported("multipleOf", ctx.at("multipleOf"),
                                         f"non-integer multipleOf {m} is not enforced exactly")
                        m = None
                if m is not None:
                    return numeric.integer_multiples(int(m), int_lo, int_hi, opts.max_integer_digits)
            if integer:
                return numeric.integer_range(int_lo, int_hi, opts.max_integer_digits)
            if lo is None and hi is None:
                return number_node(opts)
            return numeric.decimal_range(lo, lo_ex, hi, hi_ex, opts.max_integer_digits, opts.max_fraction_digits)
        except numeric.NumericUnsupported as exc:
            self.unsupported("multipleOf" if "multipleOf" in schema else "minimum", ctx, str(exc))
            return numeric.integer_range(int_lo, int_hi, opts.max_integer_digits) if integer else number_node(opts)

    # -- strings -------------------------------------------------------------------------------
    def string_content(self, schema: dict[str, Any], ctx: Ctx) -> Node:
        """Decoded-string language (UTF-8 bytes of the value) of a schema's string keywords."""
        parts: list[Node] = []
        lo = schema.get("minLength", 0)
        hi = schema.get("maxLength")
        for key, v in (("minLength", lo), ("maxLength", hi)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0
                                  or (isinstance(v, float) and not v.is_integer())):
                raise SchemaError(f"{key} at {ctx.pointer or '/'} must be a non-negative integer")
        lo = int(lo)
        hi = None if hi is None else int(hi)
        if hi is not None and hi < lo:
            return NOTHING
        patterns = schema.get("pattern", [])
        patterns = [patterns] if isinstance(patterns, str) else list(patterns)
        for p in patterns:
            node = self.pattern_node(p, ctx.at("pattern"))
            if node is not None:
                parts.append(node)
        formats = schema.get("format", [])
        formats = [formats] if isinstance(formats, str) else list(formats)
        for f in formats:
            node = format_node(f) if isinstance(f, str) else None
            if node is None:
                self.unsupported("format", ctx.at("format"), f"unknown format {f!r}")
            else:
                parts.append(node)
        if lo > 0 or hi is not None:
            length = Repeat(ANY_CHAR, lo, hi)
            if not parts:
                return length
            parts.append(length)
        if not parts:
            return ANY_STRING_CONTENT
        return parts[0] if len(parts) == 1 else And(tuple(parts))

    def pattern_node(self, pattern: Any, ctx: Ctx) -> Node | None:
        if not isinstance(pattern, str):
            raise SchemaError(f"pattern at {ctx.pointer or '/'} must be a string")
        try:
            return parse_regex(ecma_to_python(pattern))
        except (EcmaUnsupported, RegexUnsupported) as exc:
            self.unsupported("pattern", ctx, f"{pattern!r}: {exc}")
            return None
        except (EcmaSyntaxError, RegexSyntaxError) as exc:
            raise SchemaError(f"pattern at {ctx.pointer or '/'} is not a valid ECMA-262 regex: {pattern!r}: {exc}") from None

    def _string(self, schema: dict[str, Any], ctx: Ctx) -> Piece:
        content = self.string_content(schema, ctx)
        if content is ANY_STRING_CONTENT:
            if self._any_string is None:
                self._any_string = string_node(content, self.enc_memo)
            return self._any_string
        return string_node(content, self.enc_memo)

    # -- arrays --------------------------------------------------------------------------------
    @staticmethod
    def _simple_contains(schema: dict[str, Any]) -> bool:
        """``contains`` (at least one matching item) without counts or prefix items."""
        return ("contains" in schema and "maxContains" not in schema and schema.get("minContains", 1) == 1
                and not schema.get("prefixItems") and "minItems" not in schema and "maxItems" not in schema)

    def _array_contains(self, schema: dict[str, Any], ctx: Ctx) -> Piece:
        """Arrays with at least one item in ``items`` AND ``contains``: ``[x*, c, x*]``."""
        b = self.builder
        inner = ctx.deeper()
        items = schema.get("items", True)
        rest = self.compile(items, inner.at("items"))
        merged = merge_all([items, schema["contains"]],
                           lambda s: self._conjuncts(s, inner) if isinstance(s, dict) else [s], inner.pointer)
        self.keep.append(merged)
        hit = self.compile(merged, inner.at("contains"))
        if is_nothing(hit):
            return NOTHING
        grammar_mode = self.options.split_lexemes or not (is_regular(rest) and is_regular(hit))
        if grammar_mode:
            rest, hit = b.sealed(rest), b.sealed(hit)
        lay = self.layout
        sep = lay.sep(ctx.depth)
        before = b.repeat(b.seq(rest, sep), 0, None, as_rule=grammar_mode)
        after = b.repeat(b.seq(sep, rest), 0, None, as_rule=grammar_mode)
        return b.seq(lay.open("[", ctx.depth), before, hit, after, lay.close("]", ctx.depth))

    def _array(self, schema: dict[str, Any], ctx: Ctx) -> Piece:
        b = self.builder
        if "contains" in schema and self._simple_contains(schema):
            if schema.get("uniqueItems") is True:
                self.unsupported("uniqueItems", ctx.at("uniqueItems"), "uniqueness of items is not enforceable by an automaton")
            return self._array_contains(schema, ctx)
        lo = int(schema.get("minItems", 0))
        hi = schema.get("maxItems")
        hi = None if hi is None else int(hi)
        if hi is not None and hi < lo:
            return NOTHING
        if schema.get("uniqueItems") is True and (hi is None or hi > 1):
            self.unsupported("uniqueItems", ctx.at("uniqueItems"), "uniqueness of items is not enforceable by an automaton")
        prefix_schemas = schema.get("prefixItems", [])
        if not isinstance(prefix_schemas, list):
            raise SchemaError(f"prefixItems at {ctx.pointer or '/'} must be an array")
        inner = ctx.deeper()
        prefix = [self.compile(s, inner.at("prefixItems", i)) for i, s in enumerate(prefix_schemas)]
        if hi is not None:
            prefix = prefix[:hi]
        rest_schema = schema.get("items", True)
        rest = self.compile(rest_schema, inner.at("items")) if rest_schema is not False else NOTHING
        # the first NOTHING prefix position caps the length
        for i, p in enumerate(prefix):
            if is_nothing(p):
                prefix = prefix[:i]
                hi = i if hi is None else min(hi, i)
                rest = NOTHING
                break
        if is_nothing(rest):
            hi = len(prefix) if hi is None else min(hi, len(prefix))
        if hi is not None and lo > hi:
            return NOTHING
        grammar_mode = self.options.split_lexemes or not all(is_regular(p) for p in prefix + [rest])
        if grammar_mode:
            prefix = [b.sealed(p) for p in prefix]
            rest = b.sealed(rest)
        lay = self.layout
        sep = lay.sep(ctx.depth)
        n = len(prefix)

        def tail(i: int) -> Piece:
            """Elements from position ``i`` (0-based, i >= 1) on, each after a separator."""
            if hi is not None and i >= hi:
                return EMPTY
            if i < n:
                more = b.seq(sep, prefix[i], tail(i + 1))
                return more if i < lo else b.optional(more, as_rule=grammar_mode)
            r_lo = max(0, lo - i)
            r_hi = None if hi is None else hi - i
            return b.repeat(b.seq(sep, rest), r_lo, r_hi, as_rule=grammar_mode,
                            max_unrolled=self.options.max_unrolled)

        first = prefix[0] if n else rest
        try:
            body = b.seq(first, tail(1)) if (hi is None or hi >= 1) else NOTHING
        finally:
            # a recursive closure is a reference cycle (function -> cell -> function) that
            # held this compiler and every piece it built until a full collection: over the
            # MaskBench sample ~150k objects per schema were cyclic garbage
            del tail
        full = b.seq(lay.open("[", ctx.depth), body, lay.close("]", ctx.depth))
        return b.choice(lay.empty("[]") if lo == 0 else NOTHING, full, hint="array")

    # -- objects -------------------------------------------------------------------------------
    def _key_ok(self, name: str, schema: dict[str, Any]) -> bool:
        names = schema.get("propertyNames")
        if names is None or names is True:
            return True
        return self.value_valid(name, names)

    def _object(self, schema: dict[str, Any], ctx: Ctx) -> Piece:
        b = self.builder
        lay = self.layout
        props = schema.get("properties", {})
        if not isinstance(props, dict):
            raise SchemaError(f"properties at {ctx.pointer or '/'} must be an object")
        required = schema.get("required", [])
        if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
            raise SchemaError(f"required at {ctx.pointer or '/'} must be an array of strings")
        patterns = schema.get("patternProperties", {})
        extra_schema = schema.get("additionalProperties", True)
        if self.options.additional_properties is False and props and extra_schema is not False:
            extra_schema = False
        compiled_patterns: list[tuple[str, Node, re.Pattern[str], Any]] = []
        for p, sub in patterns.items():
            node = self.pattern_node(p, ctx.at("patternProperties", p))
            if node is None:
                continue
            compiled_patterns.append((p, node, re.compile(ecma_to_python(p), re.DOTALL), sub))
        if len(compiled_patterns) > MAX_PATTERN_PROPERTIES:
            raise SchemaUnsupported(f"patternProperties: more than {MAX_PATTERN_PROPERTIES} patterns "
                                    f"(at {ctx.pointer or '/'})")
        overlaps = overlap_graph([c[1] for c in compiled_patterns])
        subsets = cliques(overlaps)
        if len(subsets) - len(compiled_patterns) > MAX_PATTERN_SUBSETS:
            raise SchemaUnsupported(f"patternProperties: more than {MAX_PATTERN_SUBSETS} combinations of "
                                    f"overlapping patterns (at {ctx.pointer or '/'})")
        inner = ctx.deeper()
        names = list(props) + [r for r in dict.fromkeys(required) if r not in props]
        declared: list[tuple[str, Piece, bool]] = []
        for name in names:
            is_req = name in required
            subs: list[Any] = []
            if name in props:
                subs.append(props[name])
            matching = [sub for (_, _, rx, sub) in compiled_patterns if rx.fullmatch(name)]
            subs += matching
            if name not in props and not matching:
                subs.append(extra_schema)
            if not self._key_ok(name, schema):
                value: Piece = NOTHING
            elif len(subs) == 1:
                value = self.compile(subs[0], inner.at("properties", name))
            else:
                merged = merge_all(subs, lambda s: self._conjuncts(s, inner) if isinstance(s, dict) else [s],
                                   inner.pointer)
                self.keep.append(merged)
                value = self.compile(merged, inner.at("properties", name))
            if is_nothing(value):
                if is_req:
                    return NOTHING
                continue
            declared.append((name, value, is_req))
        # one additional member (key: value) for undeclared keys
        extras: list[tuple[Node, Piece]] = []
        except_declared = strings_except(names) if names else None
        names_node = schema.get("propertyNames")
        names_lang: Node | None = None
        if names_node is not None and names_node is not True:
            names_lang = self._property_names(names_node, ctx.at("propertyNames"))
        for subset in subsets + [()]:
            if subset == () and extra_schema is False:
                continue
            inside = [compiled_patterns[i][1] for i in subset]
            # a key of the subset's patterns can only also match a pattern overlapping
            # each of them: only those are excluded (disjoint patterns need no complement)
            outside = [compiled_patterns[q][1] for q in range(len(compiled_patterns))
                       if q not in subset and all(q in overlaps[i] for i in subset)]
            key_parts: list[Node] = list(inside)
            if outside:
                key_parts.append(Not(alt(*outside)))
            if except_declared is not None:
                key_parts.append(except_declared)
            if names_lang is not None:
                key_parts.append(names_lang)
            key_lang: Node = (ANY_STRING_CONTENT if not key_parts else
                              key_parts[0] if len(key_parts) == 1 and not isinstance(key_parts[0], Not)
                              else And((ANY_STRING_CONTENT, *key_parts)))
            subs = [compiled_patterns[i][3] for i in subset] or [extra_schema]
            if len(subs) == 1:
                value = self.compile(subs[0], inner.at("additionalProperties" if not subset else "patternProperties"))
            else:
                merged = merge_all(subs, lambda s: self._conjuncts(s, inner) if isinstance(s, dict) else [s],
                                   inner.pointer)
                self.keep.append(merged)
                value = self.compile(merged, inner.at("patternProperties"))
            if is_nothing(value):
                continue
            extras.append((key_lang, value))
        # in a non-regular object, keys and values are separate lexemes (small lexer modes)
        grammar_mode = (self.options.split_lexemes or not all(is_regular(v) for _, v, _ in declared)
                        or not all(is_regular(v) for _, v in extras))
        seal = b.sealed if grammar_mode else (lambda p: p)
        declared = [(name, b.seq(string_literal(name), lay.colon(), seal(value)), req)
                    for name, value, req in declared]
        extra = b.choice(*(b.seq(self.key_node(k), lay.colon(), seal(v)) for k, v in extras),
                         hint="extra") if extras else NOTHING
        lo = int(schema.get("minProperties", 0))
        hi = schema.get("maxProperties")
        hi = None if hi is None else int(hi)
        n_req = sum(1 for _, _, r in declared if r)
        if hi is not None and hi < n_req:
            return NOTHING
        has_extra = not is_nothing(extra)
        if lo > len(declared) and has_extra and lo > 1:
            self.unsupported("minProperties", ctx.at("minProperties"),
                             "counting additional properties is unsound with duplicate keys")
            lo = min(lo, len(declared) + 1)
        if lo > len(declared) + (1 if has_extra else 0) and not has_extra:
            return NOTHING
        body = self._members(declared, extra, lo, hi, ctx)
        full = b.seq(lay.open("{", ctx.depth), body, lay.close("}", ctx.depth))
        empty_ok = lo == 0 and n_req == 0
        return b.choice(lay.empty("{}") if empty_ok else NOTHING, full, hint="object")

    def key_node(self, decoded: Node) -> Node:
        """A property name (JSON string) from its decoded language."""
        return string_node(decoded, self.enc_memo)

    def _property_names(self, names: Any, ctx: Ctx) -> Node:
        if names is False:
            return NOTHING
        if not isinstance(names, dict):
            raise SchemaError(f"propertyNames at {ctx.pointer or '/'} must be a schema")
        merged = merge_all(self._conjuncts(names, ctx), lambda s: [s], ctx.pointer)
        if not isinstance(merged, dict):
            return NOTHING if merged is False else ANY_STRING_CONTENT
        t = type_set(merged)
        if t is not None and "string" not in t:
            return NOTHING
        allowed = {"type", "pattern", "format", "minLength", "maxLength", "enum", "const"}
        for key in merged:
            if key not in allowed and key not in ANNOTATIONS and key not in (
                    "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf",
                    "items", "prefixItems", "properties", "required", "additionalProperties",
                    "minItems", "maxItems", "minProperties", "maxProperties", "patternProperties"):
                self.unsupported("propertyNames", ctx, f"keyword {key!r} inside propertyNames")
        if "enum" in merged or "const" in merged:
            vals = list(merged.get("enum", [])) + ([merged["const"]] if "const" in merged else [])
            vals = [v for v in vals if isinstance(v, str) and self.value_valid(v, _public(merged))]
            return alt(*(literal(v) if v else EMPTY for v in vals)) if vals else NOTHING
        return self.string_content(merged, ctx)

    def _members(self, declared: list[tuple[str, Piece, bool]], extra: Piece, lo: int, hi: int | None,
                 ctx: Ctx) -> Piece:
        """Object members: declared ones in order (optional ones skippable), then extras;
        between ``lo`` and ``hi`` members in all (at least one, the caller adds ``{}``)."""
        b = self.builder
        sep = self.layout.sep(ctx.depth)
        grammar_mode = (self.options.split_lexemes or not all(is_regular(p) for _, p, _ in declared)
                        or not is_regular(extra))
        n = len(declared)
        cap = max(lo, 1) if hi is None else hi
        memo: dict[tuple[int, int], Piece] = {}
        if n * (cap + 1) > 20_000:
            raise ConstraintTooComplex(f"min/maxProperties over {n} properties at {ctx.pointer or '/'}")

        def nxt(c: int) -> int:
            return min(c + 1, cap) if hi is None else c + 1

        def rest(i: int, c: int) -> Piece:
            key = (i, c)
            hit = memo.get(key)
            if hit is not None:
                return hit
            if hi is not None and c > hi:
                out: Piece = NOTHING
            elif i == n:
                out = self._extras(extra, c, lo, hi, sep, grammar_mode)
            else:
                _, member, req = declared[i]
                lead = b.seq(sep, member) if c > 0 else member
                take = b.seq(lead, rest(i + 1, nxt(c)))
                if req:
                    out = take
                elif c > 0 and nxt(c) == c:
                    out = b.seq(b.optional(lead, as_rule=grammar_mode), rest(i + 1, c))
                else:
                    out = b.choice(take, rest(i + 1, c), hint="member")
            if grammar_mode and not is_regular(out) and not (isinstance(out, Seq) and len(out.symbols) == 1):
                name = b.new_rule("members")
                b.define(name, [out])
                out = Seq((name,))
            memo[key] = out
            return out

        try:
            return rest(0, 0)
        finally:
            del rest  # a recursive closure refers to itself: break it (see _array)

    def _extras(self, extra: Piece, c: int, lo: int, hi: int | None, sep: Node, grammar_mode: bool) -> Piece:
        b = self.builder
        need = max(0, lo - c)
        room = None if hi is None else hi - c
        if room is not None and room < need:
            return NOTHING
        if is_nothing(extra):
            return EMPTY if need == 0 and c > 0 else NOTHING
        if c > 0:
            return b.repeat(b.seq(sep, extra), need, room, as_rule=grammar_mode, max_unrolled=self.options.max_unrolled)
        if room == 0:
            return NOTHING
        more = b.repeat(b.seq(sep, extra), max(0, need - 1), None if room is None else room - 1,
                        as_rule=grammar_mode, max_unrolled=self.options.max_unrolled)
        return b.seq(extra, more)


def _public(schema: Any) -> Any:
    """An internal merged schema written back as plain JSON Schema (for the validator),
    recursively (merged subschemas sit under properties, items ...)."""
    if isinstance(schema, list):
        return [_public(x) for x in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    all_of: list[Any] = []
    for k, v in schema.items():
        if k in ("pattern", "format") and isinstance(v, list):
            all_of += [{k: x} for x in v]
        elif k == "x-choices":
            all_of += [{kind: _public(branches)} for kind, branches in v]
        elif k in ("enum", "const", "default", "examples"):
            out[k] = v
        elif isinstance(v, (dict, list)):
            out[k] = ({n: _public(x) for n, x in v.items()} if isinstance(v, dict) and k in (
                "properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
                else _public(v))
        else:
            out[k] = v
    if all_of:
        out["allOf"] = list(out.get("allOf", [])) + all_of
    return out


def _json_types(v: Any) -> set[str]:
    if v is None:
        return {"null"}
    if isinstance(v, bool):
        return {"boolean"}
    if isinstance(v, int):
        return {"integer", "number"}
    if isinstance(v, float):
        return {"integer", "number"} if v.is_integer() else {"number"}
    if isinstance(v, str):
        return {"string"}
    if isinstance(v, list):
        return {"array"}
    return {"object"}


def _is_pow2(x: float) -> bool:
    n = int(x)
    return n > 0 and n & (n - 1) == 0
