"""Our GGUF tokenizers reproduce llama.cpp's golden tokenizations (ggml-vocab-*.inp/.out)."""
from __future__ import annotations

import pytest

from engine.tokenizer import Tokenizer
from tests.testdata import golden_paths, vocab_path

SEPARATOR = "\n__ggml_vocab_test__\n"
NAMES = ["llama-spm", "llama-bpe", "qwen2", "gpt-2"]


def golden_cases(name: str) -> list[tuple[str, list[int]]]:
    """(text, expected ids) pairs, split exactly as llama.cpp's test-tokenizer-0 splits them."""
    inp, out = golden_paths(name)
    texts = inp.read_bytes().decode("utf-8").split(SEPARATOR)
    lines = out.read_text(encoding="utf-8").split("\n")
    assert len(lines) >= len(texts)
    return [(t, [int(x) for x in line.split()]) for t, line in zip(texts, lines)]


@pytest.fixture(scope="module", params=NAMES)
def named_tokenizer(request: pytest.FixtureRequest) -> tuple[str, Tokenizer]:
    return request.param, Tokenizer.from_gguf(vocab_path(request.param))


def test_golden_vectors(named_tokenizer: tuple[str, Tokenizer]) -> None:
    name, tok = named_tokenizer
    cases = golden_cases(name)
    assert len(cases) > 30
    failures = [(t, exp, got) for t, exp in cases if (got := tok.encode(t, parse_special=False)) != exp]
    assert not failures, f"{name}: {len(failures)} mismatches, first: {failures[0]!r}"


def test_round_trip(named_tokenizer: tuple[str, Tokenizer]) -> None:
    """decode(encode(x)) == x for the golden texts (byte-level and byte-fallback vocabularies)."""
    name, tok = named_tokenizer
    for text, _ in golden_cases(name):
        ids = tok.encode(text, parse_special=False)
        assert tok.decode(ids) == text, (name, text)
        assert b"".join(tok.token_bytes[i] for i in ids).decode("utf-8") == (
            (" " + text) if tok.kind == "spm" and text else text
        )


def test_token_bytes_shapes(named_tokenizer: tuple[str, Tokenizer]) -> None:
    _name, tok = named_tokenizer
    assert len(tok.token_bytes) == tok.vocab_size
    assert all(isinstance(b, bytes) for b in tok.token_bytes)
    assert tok.eos_token_ids and all(0 <= e < tok.vocab_size for e in tok.eos_token_ids)
    if tok.kind == "spm":
        # byte-fallback pieces <0x41> stand for one byte; '▁' stands for a space
        assert tok.token_bytes[tok.encode("A", parse_special=False)[-1]].endswith(b"A")
        byte_ids = [i for i, b in enumerate(tok.token_bytes) if len(b) == 1]
        assert len({tok.token_bytes[i] for i in byte_ids}) == 256
    else:
        # byte-level BPE: every single byte is some token
        assert len({b for b in tok.token_bytes if len(b) == 1}) == 256


def test_sentencepiece_model_file(tmp_path) -> None:
    """A `.model` file (our rebuilt proto, with the dummy prefix flag set) loads via from_sentencepiece
    and reproduces the llama-spm golden vectors."""
    from engine.tokenizer import _SpmEncoder, spm_add_dummy_prefix

    gguf_tok = Tokenizer.from_gguf(vocab_path("llama-spm"))
    encoder = gguf_tok._encoder
    assert isinstance(encoder, _SpmEncoder)
    proto = encoder.sp.serialized_model_proto()
    assert spm_add_dummy_prefix(proto) is False  # we add the prefix ourselves
    # flip NormalizerSpec.add_dummy_prefix to true, as in Llama-2's tokenizer.model
    patched = proto.replace(b"identity\x18\x00", b"identity\x18\x01")
    assert patched != proto and spm_add_dummy_prefix(patched) is True
    path = tmp_path / "tokenizer.model"
    path.write_bytes(patched)
    tok = Tokenizer.from_sentencepiece(path)
    assert tok.vocab_size == gguf_tok.vocab_size and tok.token_bytes == gguf_tok.token_bytes
    for text, expected in golden_cases("llama-spm"):
        assert tok.encode(text, parse_special=False) == expected, text
