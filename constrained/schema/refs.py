"""Local ``$ref`` resolution: ``$id`` base URIs, ``$anchor``, JSON pointers, ``$defs``.

The whole document is indexed once; a reference resolves to the referenced subschema
plus its base URI and a JSON pointer from the document root (for error messages).
References outside the document are refused: nothing is fetched.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urldefrag, urljoin

from ..errors import SchemaError, SchemaUnsupported

ROOT_URI = "constrained-root:/schema.json"

SINGLE_KEYWORDS = ("additionalProperties", "not", "if", "then", "else", "contains", "propertyNames",
                   "unevaluatedItems", "unevaluatedProperties", "additionalItems", "items")
MAP_KEYWORDS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas", "dependencies")
LIST_KEYWORDS = ("allOf", "anyOf", "oneOf", "prefixItems", "items")


def escape_pointer_token(token: str) -> str:
    """One JSON-pointer reference token, escaped (``~`` -> ``~0``, ``/`` -> ``~1``)."""
    return token.replace("~", "~0").replace("/", "~1")


def join_uri(base: str, ref: str) -> str:
    """``ref`` resolved against ``base`` (RFC 3986, plus URNs, which urljoin ignores)."""
    if not ref:
        return base
    if ":" in ref.split("/", 1)[0] and not ref.startswith("#"):
        return ref  # absolute
    if ref.startswith("#"):
        return urldefrag(base)[0] + ref
    if "//" not in base and not base.startswith(ROOT_URI.split(":")[0]) and ":" in base:
        raise SchemaUnsupported(f"relative $ref {ref!r} against non-hierarchical base {base!r}")
    return urljoin(base, ref)


def detect_draft(schema: Any) -> str:
    """``"draft7"`` for draft-04/06/07 documents (``$schema``), else ``"draft2020-12"``."""
    if isinstance(schema, dict):
        declared = str(schema.get("$schema", ""))
        if any(tag in declared for tag in ("draft-04", "draft-06", "draft-07")):
            return "draft7"
    return "draft2020-12"


@dataclass(frozen=True)
class Target:
    """A resolved reference: the subschema, its base URI and its pointer in the document."""

    schema: Any
    base: str
    pointer: str


class SchemaIndex:
    """All resources (``$id``), anchors and subschema locations of one schema document."""

    def __init__(self, root: Any, draft: str) -> None:
        self.root = root
        self.draft = draft
        self.resources: dict[str, Target] = {}
        self.anchors: dict[str, Target] = {}
        self.locations: dict[int, Target] = {}
        self._walk(root, ROOT_URI, "", top=True)
        self.resources.setdefault(ROOT_URI, Target(root, ROOT_URI, ""))

    def _walk(self, node: Any, base: str, pointer: str, top: bool = False) -> None:
        if not isinstance(node, dict):
            return
        if "$ref" in node and self.draft == "draft7" and not top:
            # draft-07: siblings of $ref (even $id) are ignored
            self.locations.setdefault(id(node), Target(node, base, pointer))
            return
        node_id = node.get("$id", node.get("id") if self.draft == "draft7" and isinstance(node.get("id"), str) else None)
        if isinstance(node_id, str):
            if node_id.startswith("#") and self.draft == "draft7":
                self.anchors[urldefrag(base)[0] + node_id] = Target(node, base, pointer)
            else:
                base = join_uri(base, node_id)
                resource, frag = urldefrag(base)
                self.resources[resource] = Target(node, resource, pointer)
                if frag and self.draft == "draft7":
                    self.anchors[resource + "#" + frag] = Target(node, resource, pointer)
                base = resource
        for key in ("$anchor", "$dynamicAnchor"):
            anchor = node.get(key)
            if isinstance(anchor, str):
                self.anchors.setdefault(urldefrag(base)[0] + "#" + anchor, Target(node, base, pointer))
        self.locations.setdefault(id(node), Target(node, base, pointer))
        for key, value in node.items():
            if key in ("enum", "const", "examples", "default"):
                continue
            sub = pointer + "/" + escape_pointer_token(key)
            if key in SINGLE_KEYWORDS and isinstance(value, (dict, bool)):
                self._walk(value, base, sub)
            elif key in MAP_KEYWORDS and isinstance(value, dict):
                for name, child in value.items():
                    self._walk(child, base, sub + "/" + escape_pointer_token(name))
            elif key in LIST_KEYWORDS and isinstance(value, list):
                for i, child in enumerate(value):
                    self._walk(child, base, f"{sub}/{i}")

    def base_of(self, node: Any, default: str) -> str:
        """Base URI in effect inside ``node`` (its own ``$id`` applied)."""
        target = self.locations.get(id(node))
        return target.base if target is not None else default

    def resolve(self, ref: str, base: str, where: str) -> Target:
        """Resolve ``ref`` written at pointer ``where`` under base URI ``base``."""
        uri = join_uri(base, ref)
        resource_uri, fragment = urldefrag(uri)
        fragment = unquote(fragment)
        resource = self.resources.get(resource_uri)
        if resource is None:
            if uri in self.anchors:
                return self.anchors[uri]
            raise SchemaUnsupported(f"$ref {ref!r} at {where or '/'} points outside this document "
                                    f"({resource_uri}); remote references are not fetched")
        if not fragment:
            return resource
        if not fragment.startswith("/"):
            target = self.anchors.get(resource_uri + "#" + fragment)
            if target is None:
                raise SchemaError(f"$ref {ref!r} at {where or '/'}: no anchor {fragment!r}")
            return target
        node: Any = resource.schema
        pointer = resource.pointer
        for raw in fragment[1:].split("/"):
            token = raw.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and token in node:
                node = node[token]
            elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
                node = node[int(token)]
            else:
                raise SchemaError(f"$ref {ref!r} at {where or '/'} does not resolve (no {token!r})")
            pointer += "/" + escape_pointer_token(token)
        if not isinstance(node, (dict, bool)):
            raise SchemaError(f"$ref {ref!r} at {where or '/'} points at a non-schema value")
        known = self.locations.get(id(node)) if isinstance(node, dict) else None
        return Target(node, known.base if known else resource.base, pointer)
