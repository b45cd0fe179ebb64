"""JSON-Schema-Test-Suite (draft2020-12 + draft7, shared corpus) at string level.

Every schema compiles or raises SchemaUnsupported (refused groups are listed in the
ratchet); in compiled ones every invalid instance is rejected in every spelling
(INVALID ACCEPTED MUST BE 0) and every valid instance written under the policy is
accepted, except the ratchet's documented policy exclusions.
"""
from __future__ import annotations

import collections
import json
from typing import Any

from constrained.errors import SchemaUnsatisfiable, SchemaUnsupported
from tests.test_schema_helpers import (
    acceptor,
    invalid_spellings,
    load_ratchet,
    maybe_update_ratchet,
    policy_dumps,
    with_draft,
)
from tests.testdata import corpus

RATCHET = "jsonschema_suite.json"


def _groups() -> collections.OrderedDict[str, list[dict[str, Any]]]:
    groups: collections.OrderedDict[str, list[dict[str, Any]]] = collections.OrderedDict()
    with open(corpus("jsonschema_suite.jsonl")) as f:
        for line in f:
            row = json.loads(line)
            groups.setdefault(row["group_id"], []).append(row)
    return groups


def _reason(row: dict[str, Any]) -> str:
    text = json.dumps(row["schema"])
    if "ecmascript-regex" in row["file"]:
        return "pattern: only strings both ECMA-262 and Python re (jsonschema's engine) accept"
    if '"format"' in text:
        return "format: policy writes a stricter subset (no leap seconds, bounded digits) / format asserted"
    if row["file"].startswith(("optional/bignum", "optional/float-overflow")) or "type.json" in row["file"] \
            or "enum" in row["file"] or "const" in row["file"]:
        return "number text: integers without fraction / bounded digits, or enum key order"
    return "key order: declared order of merged subschemas"


def test_suite_compiles_or_refuses_and_never_accepts_invalid() -> None:
    ratchet = load_ratchet(RATCHET)
    refused: dict[str, str] = {}
    valid_rejected: dict[str, str] = {}
    invalid_accepted: list[str] = []
    counts: collections.Counter[str] = collections.Counter()
    for gid, rows in _groups().items():
        if rows[0]["needs_remote_refs"]:
            counts["skipped_remote_refs"] += 1  # counted, not silently dropped
            continue
        schema = with_draft(rows[0]["schema"], rows[0]["draft"])
        try:
            accepts = acceptor(schema)
        except SchemaUnsupported as exc:
            refused[gid] = str(exc)[:160]
            continue
        except SchemaUnsatisfiable:
            # nothing accepted: that is right only if no instance of the group is valid
            counts["unsatisfiable"] += 1
            assert not any(r["valid"] for r in rows), f"{gid}: refused as unsatisfiable but has valid instances"
            counts["invalid_rejected"] += len(rows)
            continue
        counts["compiled"] += 1
        for row in rows:
            inst = row["instance"]
            if row["valid"]:
                ok = accepts(policy_dumps(inst, schema).encode())
                counts["valid_accepted" if ok else "valid_rejected"] += 1
                if not ok:
                    valid_rejected[row["id"]] = _reason(row)
            else:
                for text in invalid_spellings(inst):
                    if accepts(text.encode()):
                        invalid_accepted.append(f"{row['id']}: {text[:80]}")
                        break
                else:
                    counts["invalid_rejected"] += 1
    print(dict(counts), f"refused={len(refused)}")
    assert invalid_accepted == [], "INVALID ACCEPTED (must be 0):\n" + "\n".join(invalid_accepted)
    if maybe_update_ratchet(RATCHET, {"refused": refused, "valid_rejected": valid_rejected}):
        return
    newly_refused = sorted(set(refused) - set(ratchet.get("refused", {})))
    newly_rejected = sorted(set(valid_rejected) - set(ratchet.get("valid_rejected", {})))
    assert not newly_refused, f"schemas newly refused: {newly_refused}"
    assert not newly_rejected, f"valid instances newly rejected: {newly_rejected}"
    assert counts["compiled"] >= 300 and counts["valid_accepted"] >= 800
