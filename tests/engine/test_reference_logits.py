"""SmolLM2 logits and greedy continuations match transformers + torch on the same GGUF.

The fixture is produced by scripts/make_reference_logits.py (run in a torch environment);
this test needs neither torch nor transformers.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from engine import Model

pytestmark = pytest.mark.model

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "engine" / "smollm2_reference.npz"


@pytest.fixture(scope="module")
def reference() -> tuple[dict[str, np.ndarray], dict[str, object]]:
    data = dict(np.load(FIXTURE))
    meta = json.loads(bytes(data.pop("meta_json")).decode("utf-8"))
    return data, meta


def test_fixture_matches_model_file(smollm: Model, reference: tuple[dict, dict]) -> None:
    from engine.registry import sha256_of

    _, meta = reference
    assert meta["gguf_sha256"] == sha256_of(smollm.path)


def test_tokenizer_agrees_with_transformers(smollm: Model, reference: tuple[dict, dict]) -> None:
    data, meta = reference
    for i, prompt in enumerate(meta["prompts"]):
        assert smollm.tokenizer.encode(prompt) == data[f"prompt{i}_ids"].tolist(), prompt
    for i, text in enumerate(meta["tokenizer_texts"]):
        assert smollm.tokenizer.encode(text) == data[f"text{i}_ids"].tolist(), text


def test_next_token_logits(smollm: Model, reference: tuple[dict, dict]) -> None:
    data, meta = reference
    for i in range(len(meta["prompts"])):
        ref = data[f"prompt{i}_logits"]
        ours = smollm.logits(data[f"prompt{i}_ids"].tolist())
        assert ours.shape == ref.shape
        err = float(np.abs(ours - ref).max())
        assert err < 1e-3, f"prompt {i}: max-abs error {err}"
        assert np.argsort(-ours)[:5].tolist() == np.argsort(-ref)[:5].tolist()


def test_greedy_continuation(smollm: Model, reference: tuple[dict, dict]) -> None:
    data, meta = reference
    prompts = [data[f"prompt{i}_ids"].tolist() for i in range(len(meta["prompts"]))]
    expected = [data[f"prompt{i}_continuation"].tolist() for i in range(len(prompts))]
    n = len(expected[0])
    # all prompts decoded together as one batch (rows of different lengths)
    session = smollm.start(prompts, max_new_tokens=n)
    got: list[list[int]] = [[] for _ in prompts]
    suppressed = meta["suppressed_eos_ids"]  # transformers' min_new_tokens masks EOS meanwhile
    assert suppressed
    for _ in range(n):
        logits = session.logits.copy()
        logits[:, suppressed] = -np.inf
        nxt = logits.argmax(axis=1)
        for row, t in zip(got, nxt):
            row.append(int(t))
        session.step([[int(t)] for t in nxt])
    for i, (g, e) in enumerate(zip(got, expected)):
        assert g == e, f"prompt {i}: {smollm.tokenizer.decode(g)!r} != {smollm.tokenizer.decode(e)!r}"


def test_chat_template_renders_like_transformers(smollm: Model, reference: tuple[dict, dict]) -> None:
    _, meta = reference
    assert len(meta["chats"]) >= 3
    for case in meta["chats"]:
        ours = smollm.tokenizer.apply_chat_template(case["messages"], add_generation_prompt=case["add_generation_prompt"])
        assert ours == case["rendered"]
