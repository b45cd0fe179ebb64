"""Real-world and peer JSON Schema corpora at string level (ratchets in tests/ratchets).

* MaskBench / JSONSchemaBench real-world schemas: a deterministic sample (every
  ``MASKBENCH_EVERY``-th schema of the file, all categories); the share that compiles,
  valid instances accepted after re-serialisation under the policy, invalid rejected in
  every spelling. Invalid accepted must be 0.
* Peer test cases (llguidance, xgrammar, outlines-core, llama.cpp): our verdict must agree
  with ``spec_valid`` whenever we accept (soundness, always); rejections of spec-valid
  instances are policy exclusions listed in the ratchet.
"""
from __future__ import annotations

import collections
import gzip
import json
from typing import Any

from constrained.errors import (
    ConstraintTooComplex,
    SchemaError,
    SchemaUnsatisfiable,
    SchemaUnsupported,
)
from tests.test_schema_helpers import (
    acceptor,
    invalid_spellings,
    load_ratchet,
    maybe_update_ratchet,
    policy_dumps,
    reference_validator,
)
from tests.testdata import corpus

MASKBENCH_EVERY = 50


def test_maskbench_sample() -> None:
    ratchet_name = "jsonschema_maskbench.json"
    ratchet = load_ratchet(ratchet_name)
    with gzip.open(corpus("maskbench.jsonl.gz"), "rt") as f:
        rows = [json.loads(line) for i, line in enumerate(f) if i % MASKBENCH_EVERY == 0]
    refused: dict[str, str] = {}
    valid_rejected: list[str] = []
    invalid_accepted: list[str] = []
    counts: collections.Counter[str] = collections.Counter()
    for row in rows:
        try:
            accepts = acceptor(row["schema"])
        except (SchemaUnsupported, ConstraintTooComplex, SchemaUnsatisfiable, SchemaError) as exc:
            refused[row["id"]] = f"{type(exc).__name__}: {str(exc)[:120]}"
            continue
        try:
            verdicts = []
            for test in row["tests"]:
                if test["valid"]:
                    verdicts.append(accepts(policy_dumps(test["instance"], row["schema"]).encode()))
                else:
                    verdicts.append(any(accepts(t.encode()) for t in invalid_spellings(test["instance"])))
        except ConstraintTooComplex as exc:  # lexer modes of grammars are built lazily
            refused[row["id"]] = f"{type(exc).__name__} while matching: {str(exc)[:100]}"
            continue
        counts["compiled"] += 1
        for i, (test, ok) in enumerate(zip(row["tests"], verdicts)):
            if test["valid"]:
                counts["valid_accepted" if ok else "valid_rejected"] += 1
                if not ok:
                    valid_rejected.append(f"{row['id']}#{i}")
            elif ok:
                invalid_accepted.append(f"{row['id']}#{i}")
            else:
                counts["invalid_rejected"] += 1
    share = counts["compiled"] / len(rows)
    print(dict(counts), f"schemas={len(rows)} compiled share={share:.1%}")
    assert invalid_accepted == [], f"INVALID ACCEPTED (must be 0): {invalid_accepted}"
    if maybe_update_ratchet(ratchet_name, {"refused": refused, "valid_rejected": sorted(valid_rejected)}):
        return
    assert not sorted(set(refused) - set(ratchet.get("refused", {}))), "schemas newly refused"
    assert not sorted(set(valid_rejected) - set(ratchet.get("valid_rejected", []))), "valid newly rejected"


def test_peer_cases_agree_with_spec() -> None:
    ratchet_name = "jsonschema_peers.json"
    ratchet = load_ratchet(ratchet_name)
    by_schema: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    with open(corpus("peer_jsonschema_cases.jsonl")) as f:
        for line in f:
            row = json.loads(line)
            if row["spec_valid"] is not None:
                by_schema[json.dumps(row["schema"], sort_keys=True)].append(row)
    refused: dict[str, str] = {}
    valid_rejected: list[str] = []
    wrong: list[str] = []
    counts: collections.Counter[str] = collections.Counter()
    for rows in by_schema.values():
        schema = rows[0]["schema"]
        try:
            accepts = acceptor(schema)
        except SchemaUnsatisfiable:
            for row in rows:
                if row["spec_valid"]:
                    wrong.append(f"{row['id']}: refused as unsatisfiable but spec-valid")
            counts["unsatisfiable"] += 1
            continue
        except (SchemaUnsupported, ConstraintTooComplex, SchemaError) as exc:  # SchemaError: malformed
            refused[rows[0]["group_id"]] = f"{type(exc).__name__}: {str(exc)[:120]}"
            continue
        validator = reference_validator(schema)
        for row in rows:
            texts = []
            if row.get("instance_text") is not None:
                texts.append(row["instance_text"])
                try:
                    texts.append(policy_dumps(json.loads(row["instance_text"]), schema))
                except ValueError:
                    pass
            elif "instance" in row:
                texts.append(policy_dumps(row["instance"], schema))
            verdicts = [accepts(t.encode()) for t in texts]
            for t, ok in zip(texts, verdicts):
                if ok:  # soundness: whatever we accept is spec-valid and validates
                    if not row["spec_valid"] or not validator.is_valid(json.loads(t)):
                        wrong.append(f"{row['id']}: accepted {t[:80]!r}")
            if row["spec_valid"] and not any(verdicts):
                valid_rejected.append(row["id"])
                counts["valid_rejected"] += 1
            else:
                counts["agree"] += 1
    print(dict(counts), f"refused schemas={len(refused)}")
    assert wrong == [], "disagreements with spec_valid:\n" + "\n".join(wrong)
    if maybe_update_ratchet(ratchet_name, {"refused": refused, "valid_rejected": sorted(valid_rejected)}):
        return
    assert not sorted(set(refused) - set(ratchet.get("refused", {}))), "schemas newly refused"
    assert not sorted(set(valid_rejected) - set(ratchet.get("valid_rejected", []))), "valid newly rejected"
