"""transformers integration: the LogitsProcessor contract, then real ``model.generate`` runs.

Unit part: torch tensors shaped as transformers passes them (``input_ids [batch, seq]``,
``scores [batch, V]``) over the real GPT-2 vocabulary; masks are compared with fresh
matchers advanced along each row's history. Model part: SmolLM2 loaded by transformers
from the default model's GGUF; greedy, sampled, batched (left padding) and beam-search
generations must validate with `re`, `jsonschema` and Lark's own parser.
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable

import jsonschema
import lark
import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch not installed (pip install 'constrained[transformers]')")
pytest.importorskip("transformers", reason="transformers not installed (pip install 'constrained[transformers]')")

import constrained
from constrained import TokenRejected, Vocabulary
from constrained.integrations.transformers import (
    ConstrainedLogitsProcessor,
    vocabulary_from_transformers,
)

PHONE = r"[0-9]{3}-[0-9]{4}"
SCHEMA = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "maxLength": 10},
        "population": {"type": "integer", "minimum": 0},
    },
    "required": ["city", "population"],
    "additionalProperties": False,
}
LIST_GRAMMAR = r"""
start: "[" item (", " item)* "]"
item: NUMBER | WORD
NUMBER: /[0-9]{1,4}/
WORD: /[a-z]{1,8}/
"""


@pytest.fixture(scope="module")
def gpt2(load_vocab: Callable[[str], Vocabulary]) -> Vocabulary:
    return load_vocab("gpt-2")


def _reference_allowed(constraint: object, history: list[int], width: int) -> np.ndarray:
    """Allowed ids after ``history`` from a fresh matcher (independent of the processor's tracking)."""
    m = constraint.matcher()  # type: ignore[attr-defined]
    for t in history:
        m.advance(t)
    allowed = np.zeros(width, dtype=bool)
    mask = np.asarray(m.mask())
    allowed[: mask.shape[0]] = mask[:width]
    return allowed


def _ids(vocab: Vocabulary, text: bytes) -> list[int]:
    """Single-byte-token spelling of ``text`` (valid for any byte-level vocabulary)."""
    lookup = {vocab.tokens[i]: i for i in vocab.text_token_ids.tolist() if len(vocab.tokens[i]) == 1}
    return [lookup[bytes([b])] for b in text]


def test_processor_masks_batch_rows_and_padding_columns(gpt2: Vocabulary) -> None:
    c = constrained.compile_regex(r"(ab|cd)\d+", gpt2)
    proc = ConstrainedLogitsProcessor(c)
    prompt = torch.tensor([[5, 6, 7]] * 3)
    extra = 13  # model head wider than the vocabulary: padding ids
    width = gpt2.logit_width + extra
    histories = [[], [], []]
    rng = np.random.default_rng(0)
    for new in ([b"a", b"c", b"a"], [b"b", b"d", b"b"], [b"1", b"2", b"3"]):
        ids = torch.cat([prompt, torch.tensor([h for h in histories], dtype=torch.long).reshape(3, -1)], 1)
        scores = torch.from_numpy(rng.normal(size=(3, width)).astype(np.float32))
        out = proc(ids, scores.clone())
        assert out.shape == (3, width)
        for row in range(3):
            ref = _reference_allowed(c, histories[row], width)
            got = torch.isfinite(out[row]).numpy()
            assert np.array_equal(got, ref), f"row {row} after {histories[row]}"
            assert not got[gpt2.logit_width:].any()
            kept = scores[row].numpy()[ref]
            assert np.array_equal(out[row].numpy()[ref], kept)  # allowed scores untouched
        for row in range(3):
            histories[row] += _ids(gpt2, new[row])


def test_processor_follows_beam_reordering_and_finished_rows(gpt2: Vocabulary) -> None:
    c = constrained.compile_regex(r"x+y?", gpt2)
    proc = ConstrainedLogitsProcessor(c)
    x, y = _ids(gpt2, b"x")[0], _ids(gpt2, b"y")[0]
    eos = gpt2.eos_token_ids[0]
    pad = 0
    w = gpt2.logit_width
    steps = [
        [[], []],
        [[x], [x]],
        [[x, x], [x, y]],
        [[x, y], [x, x]],            # beams swapped rows
        [[x, y, eos], [x, x, x]],    # row 0 finished ...
        [[x, y, eos, pad], [x, x, x, x]],  # ... and is padded afterwards
    ]
    for hist in steps:
        ids = torch.tensor([[9] + h for h in hist], dtype=torch.long)
        out = proc(ids, torch.zeros(2, w))
        for row, h in enumerate(hist):
            got = torch.isfinite(out[row]).numpy()
            if eos in h:
                assert np.flatnonzero(got).tolist() == sorted(gpt2.eos_token_ids)
            else:
                assert np.array_equal(got, _reference_allowed(c, h, w)), (row, h)


def test_processor_rejects_tokens_that_bypassed_the_mask(gpt2: Vocabulary) -> None:
    c = constrained.compile_regex(r"\d+", gpt2)
    proc = ConstrainedLogitsProcessor(c)
    w = gpt2.logit_width
    proc(torch.tensor([[1, 2]]), torch.zeros(1, w))
    with pytest.raises(TokenRejected, match="bypass"):
        proc(torch.tensor([[1, 2] + _ids(gpt2, b"z")]), torch.zeros(1, w))
    proc.reset()
    out = proc(torch.tensor([[1, 2, 3]]), torch.zeros(1, w))
    assert np.array_equal(torch.isfinite(out[0]).numpy(), _reference_allowed(c, [], w))


# ------------------------------------------------------------------ real transformers model
@pytest.fixture(scope="module")
def hf() -> tuple[object, object, Vocabulary]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from engine.registry import model_path

    pytest.importorskip("accelerate", reason="transformers needs accelerate to load GGUF files "
                        "(pip install 'constrained[transformers]')")
    path = model_path()
    tok = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32)
    model.eval()
    return tok, model, vocabulary_from_transformers(tok, model)


def _generate(hf: tuple, prompts: list[str], constraint: object, **kwargs: object) -> tuple[list[str], ConstrainedLogitsProcessor]:
    tok, model, _vocab = hf
    tok.padding_side = "left"
    chats = [tok.apply_chat_template([{"role": "user", "content": p}], tokenize=False,
                                     add_generation_prompt=True) for p in prompts]
    enc = tok(chats, return_tensors="pt", padding=True, add_special_tokens=False)
    proc = ConstrainedLogitsProcessor(constraint)
    with torch.no_grad():
        out = model.generate(**enc, logits_processor=[proc], pad_token_id=tok.pad_token_id, **kwargs)
    texts = []
    for row in out[:, enc["input_ids"].shape[1]:].tolist():
        eos = [i for i, t in enumerate(row) if t in proc.vocab.eos_token_ids]
        assert eos, f"row did not finish with EOS: {row}"
        texts.append(tok.decode(row[: eos[0]]))
    return texts, proc


@pytest.mark.model
def test_vocabulary_from_transformers_matches_gguf(hf: tuple) -> None:
    from engine.registry import model_path

    _tok, _model, vocab = hf
    ref = Vocabulary.from_gguf(model_path())
    assert vocab.tokens == ref.tokens
    assert set(ref.eos_token_ids) <= set(vocab.eos_token_ids)
    assert vocab.logit_width == ref.logit_width


@pytest.mark.model
def test_generate_regex_greedy_and_beam(hf: tuple) -> None:
    c = constrained.compile_regex(PHONE, hf[2])
    texts, proc = _generate(hf, ["Give me a phone number."], c, max_new_tokens=16, do_sample=False)
    assert re.fullmatch(PHONE, texts[0]), texts
    assert proc.matchers[0].is_accepting()  # generate stops at EOS before calling us again
    texts, _ = _generate(hf, ["Give me a phone number."], c, max_new_tokens=16, do_sample=False,
                         num_beams=2)
    assert re.fullmatch(PHONE, texts[0]), texts
    torch.manual_seed(0)
    texts, _ = _generate(hf, ["Give me a phone number."] * 3, c, max_new_tokens=16, do_sample=True,
                         temperature=1.0)
    for text in texts:
        assert re.fullmatch(PHONE, text), texts


@pytest.mark.model
def test_generate_json_schema_batched_left_padding(hf: tuple) -> None:
    c = constrained.compile_json_schema(SCHEMA, hf[2])
    prompts = ["Describe Paris as JSON.", "Give the biggest city of Japan and its population as JSON."]
    texts, _ = _generate(hf, prompts, c, max_new_tokens=48, do_sample=False)
    for text in texts:
        jsonschema.validate(json.loads(text), SCHEMA)


@pytest.mark.model
def test_generate_lark_grammar(hf: tuple) -> None:
    c = constrained.compile_lark(LIST_GRAMMAR, hf[2])
    texts, _ = _generate(hf, ["List three fruits."], c, max_new_tokens=40, do_sample=False)
    lark.Lark(LIST_GRAMMAR).parse(texts[0])


@pytest.mark.model
def test_generate_assisted_decoding(hf: tuple) -> None:
    """Assisted generation: draft tokens from an assistant, verified by the model (rollbacks)."""
    c = constrained.compile_json_schema(SCHEMA, hf[2])
    texts, _ = _generate(hf, ["Describe Paris as JSON."], c, max_new_tokens=48, do_sample=False,
                         assistant_model=hf[1])
    jsonschema.validate(json.loads(texts[0]), SCHEMA)
    plain, _ = _generate(hf, ["Describe Paris as JSON."], c, max_new_tokens=48, do_sample=False)
    assert texts == plain  # greedy assisted decoding must give the greedy output
