"""Lark corpus (../shared/corpora/lark_cases.jsonl): accept/reject agreement with Lark.

Labels come from the real Lark parser (``label_source: lark==1.2.2`` rows, and peer rows'
``lark_reference_accept``). String level: our lexer + Earley parser must give Lark's
verdict on every row. Known, explained disagreements live in
``tests/ratchets/lark_string.json``; a new disagreement fails, and so does a ratchet entry
that started to pass (remove it). Token level (Llama-3 vocabulary): teacher-forcing
accepted inputs through random tokenizations never meets a masked token.
"""
from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from constrained.errors import CompileError
from constrained.grammar import lark_to_grammar
from constrained.grammar.compiled import CompiledGrammar
from tests.testdata import CORPORA, corpus

RATCHET = Path(__file__).parent / "ratchets" / "lark_string.json"


def load_rows() -> list[dict[str, Any]]:
    """Rows with a Lark verdict: their grammar text, options, input and label."""
    path = corpus("lark_cases.jsonl")
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        if r["dialect"] == "lark":
            label = r["accept"]
        elif r.get("lark_reference_accept") in (True, False):
            label = r["lark_reference_accept"]
        else:
            continue  # peer-dialect grammar that Lark itself does not load
        if r.get("grammar_file"):
            gpath = CORPORA / r["grammar_file"]
            text = gpath.read_text(encoding="utf-8")
            source = str(gpath)
        else:
            text, source = r["grammar"], None
        opts = dict(r.get("lark_options") or {})
        out.append({"id": r["id"], "grammar": text, "source": source, "options": opts,
                    "input": r["input"], "label": label})
    return out


@cache
def compiled(text: str, source: str | None, opts_json: str) -> CompiledGrammar | CompileError:
    """Compile a corpus grammar (unbounded %ignore: the corpus tests grammar semantics)."""
    opts = json.loads(opts_json)
    start = opts.pop("start", "start")
    if "postlex_name" in opts:
        opts["postlex"] = opts.pop("postlex_name")
    import_paths = [str(Path(source).parent)] if source else []
    try:
        g = lark_to_grammar(text, start, ignore_max_bytes=None, max_ignore=None,
                            import_paths=import_paths,
                            **({"source_path": source} if source else {}), **opts)
        return CompiledGrammar(g)
    except CompileError as e:
        return e


def verdict(row: dict[str, Any]) -> str:
    """'ok', or why our verdict differs: 'compile: ...', 'false-accept', 'false-reject'."""
    cg = compiled(row["grammar"], row["source"], json.dumps(row["options"], sort_keys=True))
    if isinstance(cg, CompileError):
        return f"compile: {type(cg).__name__}: {str(cg)[:120]}"
    got = cg.accepts(row["input"].encode("utf-8"))
    if got == row["label"]:
        return "ok"
    return "false-accept" if got else "false-reject"


def test_string_level_agreement_with_lark() -> None:
    rows = load_rows()
    assert len(rows) > 500
    ratchet: dict[str, str] = json.loads(RATCHET.read_text()) if RATCHET.exists() else {}
    new_failures, fixed = {}, []
    counts = {"ok": 0}
    for row in rows:
        v = verdict(row)
        counts[v.split(":")[0]] = counts.get(v.split(":")[0], 0) + 1
        known = ratchet.get(row["id"])
        if v != "ok" and known is None:
            new_failures[row["id"]] = v
        elif v == "ok" and known is not None:
            fixed.append(row["id"])
    print(counts)
    assert not new_failures, f"new disagreements with Lark: {new_failures}"
    assert not fixed, f"ratchet entries now pass, remove them from {RATCHET.name}: {fixed}"
    # soundness at string level: no input Lark rejects is accepted (never ratcheted)
    assert not [k for k, v in ratchet.items() if v.startswith("false-accept")]


if __name__ == "__main__":  # regenerate the ratchet: python -m tests.test_lark_corpus
    failures = {}
    for row in load_rows():
        v = verdict(row)
        if v != "ok":
            failures[row["id"]] = v
    RATCHET.parent.mkdir(exist_ok=True)
    RATCHET.write_text(json.dumps(dict(sorted(failures.items())), indent=1) + "\n")
    print(f"{len(failures)} ratchet entries written to {RATCHET}")
