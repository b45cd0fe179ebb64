"""Vocabulary: token bytes agree with each tokenizer's own decoding; bad input fails loudly."""
from __future__ import annotations

import io
import random
from pathlib import Path

import numpy as np
import pytest
import tokenizers
from tokenizers import decoders, models, pre_tokenizers

from constrained import VocabularyError
from constrained.vocab import Vocabulary, gpt2_byte_decoder
from tests.conftest import REAL_VOCABS
from tests.testdata import golden_paths, vocab_path

SEPARATOR = b"\n__ggml_vocab_test__\n"


def _golden(name: str) -> list[tuple[bytes, list[int]]]:
    inp, out = golden_paths(name)
    texts = inp.read_bytes().split(SEPARATOR)
    if texts and texts[-1].endswith(b"\n__ggml_vocab_test__"):
        texts[-1] = texts[-1][: -len(b"\n__ggml_vocab_test__")]
    ids = [[int(x) for x in line.split()] for line in out.read_text().split("\n")]
    assert len(texts) >= 30
    return list(zip(texts, ids[: len(texts)]))


@pytest.fixture(scope="module")
def reader_fields():
    """``reader_fields(name)``: the `gguf` package's GGUFReader fields of a vocabulary (memoised)."""
    from gguf import GGUFReader

    memo: dict[str, dict] = {}

    def get(name: str) -> dict:
        if name not in memo:
            memo[name] = dict(GGUFReader(vocab_path(name)).fields)
        return memo[name]

    return get


@pytest.fixture(scope="module")
def gpt2_strings(reader_fields) -> dict[str, list[str]]:
    """GPT-2's raw token and merge strings straight from the GGUF (reference for `tokenizers`)."""
    fields = reader_fields("gpt-2")
    return {key: [bytes(fields[f"tokenizer.ggml.{key}"].parts[i]).decode("utf-8")
                  for i in fields[f"tokenizer.ggml.{key}"].data]
            for key in ("tokens", "merges")}


@pytest.mark.parametrize("name", REAL_VOCABS)
def test_golden_tokenizations_decode_to_their_text(name: str, load_vocab) -> None:
    """llama.cpp's golden ids, decoded through our token bytes, give the golden input text."""
    vocab = load_vocab(name)
    spm = name == "llama-spm"
    for text, ids in _golden(name):
        decoded = vocab.decode(ids)
        # SentencePiece adds one dummy-prefix space to non-empty input
        expected = (b" " + text) if spm and text else text
        assert decoded == expected, (name, text[:40])


@pytest.mark.parametrize("name", REAL_VOCABS)
def test_real_vocab_shape(name: str, load_vocab) -> None:
    vocab = load_vocab(name)
    sizes = {"llama-spm": 32000, "llama-bpe": 128256, "gpt-2": 50257, "qwen2": 151936}
    assert len(vocab.tokens) == sizes[name] == vocab.logit_width
    eos = {"llama-spm": 2, "llama-bpe": 128001, "gpt-2": 50256, "qwen2": 151643}[name]
    assert eos in vocab.eos_token_ids and eos in vocab.special_token_ids
    assert all(isinstance(t, bytes) for t in vocab.tokens)
    # every single byte is reachable as one text token (byte fallback / byte-level alphabet)
    singles = {vocab.tokens[i] for i in vocab.text_token_ids.tolist() if len(vocab.tokens[i]) == 1}
    assert len(singles) == 256
    assert not set(vocab.text_token_ids.tolist()) & vocab.special_token_ids


def test_spm_byte_fallback_and_space(load_vocab) -> None:
    vocab = load_vocab("llama-spm")
    assert vocab.tokens[3] == b"\x00" and vocab.tokens[3 + 0xE2] == b"\xe2"  # <0x00>, <0xE2>
    assert vocab.tokens[15043] == b" Hello"  # '▁Hello'
    assert vocab.tokens[1] == b"<s>" and 1 in vocab.special_token_ids
    assert 0 in vocab.special_token_ids  # <unk>


def test_byte_level_tokens_match_tokenizers_decoder(load_vocab, gpt2_strings) -> None:
    """Our byte-level mapping agrees with the `tokenizers` ByteLevel decoder on every GPT-2 token."""
    vocab = load_vocab("gpt-2")
    texts = gpt2_strings["tokens"]
    dec = decoders.ByteLevel()
    for i in vocab.text_token_ids.tolist():
        assert dec.decode([texts[i]]) == vocab.tokens[i].decode("utf-8", errors="replace"), i


def test_gpt2_byte_alphabet_is_a_bijection() -> None:
    table = gpt2_byte_decoder()
    assert sorted(table.values()) == list(range(256))
    assert table["Ġ"] == 0x20 and table["Ċ"] == 0x0A and table["A"] == 0x41


def test_from_hf_tokenizer_byte_level(tmp_path: Path, load_vocab, gpt2_strings) -> None:
    """A `tokenizers` BPE built from GPT-2's vocabulary: same tokens, and its own encodings decode back."""
    ref = load_vocab("gpt-2")
    texts = gpt2_strings["tokens"]
    merges = [tuple(m.split(" ", 1)) for m in gpt2_strings["merges"]]
    tok = tokenizers.Tokenizer(models.BPE({t: i for i, t in enumerate(texts)}, merges))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(["<|endoftext|>"])
    path = tmp_path / "tokenizer.json"
    tok.save(str(path))
    vocab = Vocabulary.from_hf_tokenizer(tmp_path)
    assert vocab.tokens == ref.tokens
    assert vocab.eos_token_ids == (50256,) and vocab.special_token_ids == ref.special_token_ids
    assert Vocabulary.from_hf_tokenizer(tok).fingerprint == vocab.fingerprint
    for text, golden_ids in _golden("gpt-2"):
        ids = tok.encode(text.decode("utf-8")).ids
        assert vocab.decode(ids) == text
        assert ids == golden_ids  # the reference tokenizer really is GPT-2's


def test_from_hf_tokenizer_eos_from_config(tmp_path: Path) -> None:
    tok = tokenizers.Tokenizer(models.BPE({"a": 0, "b": 1, "<end>": 2}, []))
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(["<end>"])
    tok.save(str(tmp_path / "tokenizer.json"))
    with pytest.raises(VocabularyError, match="EOS"):
        Vocabulary.from_hf_tokenizer(tmp_path)
    (tmp_path / "tokenizer_config.json").write_text('{"eos_token": {"content": "<end>"}}')
    vocab = Vocabulary.from_hf_tokenizer(tmp_path)
    assert vocab.eos_token_ids == (2,) and vocab.tokens[:2] == (b"a", b"b")
    with pytest.raises(VocabularyError):
        Vocabulary.from_hf_tokenizer(tmp_path / "missing")


@pytest.fixture(scope="module")
def spm_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small SentencePiece BPE model with byte fallback, trained here."""
    import sentencepiece as spm

    rng = random.Random(1)
    words = ["hello", "world", "token", "mask", "regex", "json", "schema", "byte", "trie", "walk"]
    lines = [" ".join(rng.choice(words) for _ in range(8)) for _ in range(300)]
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(lines), model_writer=buf, vocab_size=360,
                                   model_type="bpe", byte_fallback=True, character_coverage=1.0,
                                   normalization_rule_name="identity", remove_extra_whitespaces=False,
                                   minloglevel=2)
    path = tmp_path_factory.mktemp("spm") / "tiny.model"
    path.write_bytes(buf.getvalue())
    return path


def test_from_sentencepiece_matches_sentencepiece_encoding(spm_model: Path) -> None:
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(spm_model))
    vocab = Vocabulary.from_sentencepiece(spm_model)
    assert len(vocab.tokens) == sp.get_piece_size()
    assert vocab.eos_token_ids == (sp.eos_id(),)
    assert {sp.unk_id(), sp.bos_id(), sp.eos_id()} <= vocab.special_token_ids
    for text in ["hello world", "schema json  regex", "ünïcødé 🦙 bytes", "tab\there\nnewline", "x"]:
        ids = sp.encode(text)
        # the dummy prefix '▁' becomes a leading space; byte pieces give raw UTF-8 bytes
        assert vocab.decode(ids) == (" " + text).encode("utf-8")
    with pytest.raises(VocabularyError):
        Vocabulary.from_sentencepiece(spm_model.parent / "nope.model")


def test_from_tokens_and_validation() -> None:
    v = Vocabulary.from_tokens([b"a", b"b", b"</s>"], eos_token_ids=[2], logit_width=40)
    assert v.logit_width == 40 and v.special_token_ids == frozenset({2})
    assert v.text_token_ids.tolist() == [0, 1]
    with pytest.raises(VocabularyError, match="outside"):
        Vocabulary.from_tokens([b"a"], eos_token_ids=[1])
    with pytest.raises(VocabularyError, match="smaller"):
        Vocabulary.from_tokens([b"a", b"b"], eos_token_ids=[1], logit_width=1)
    with pytest.raises(VocabularyError, match="bytes"):
        Vocabulary.from_tokens(["a", b"b"], eos_token_ids=[1])  # type: ignore[list-item]
    with pytest.raises(VocabularyError, match="EOS"):
        Vocabulary.from_tokens([b"a"], eos_token_ids=[])
    with pytest.raises(VocabularyError, match="outside"):
        Vocabulary.from_tokens([b"a", b"b"], eos_token_ids=[1], special_token_ids=[-1])
    # empty tokens are never text tokens
    assert Vocabulary.from_tokens([b"", b"x", b"e"], eos_token_ids=[2]).text_token_ids.tolist() == [1]


def test_immutable_and_fingerprint() -> None:
    v = Vocabulary.from_tokens([b"a", b"b", b"e"], eos_token_ids=[2])
    with pytest.raises(AttributeError):
        v.tokens = ()  # type: ignore[misc]
    with pytest.raises(AttributeError):
        v.logit_width = 9  # type: ignore[misc]
    same = Vocabulary.from_tokens([b"a", b"b", b"e"], eos_token_ids=[2])
    assert v.fingerprint == same.fingerprint and v == same and hash(v) == hash(same)
    variants = [
        Vocabulary.from_tokens([b"a", b"c", b"e"], eos_token_ids=[2]),
        Vocabulary.from_tokens([b"ab", b"", b"e"], eos_token_ids=[2]),  # same concatenation
        Vocabulary.from_tokens([b"a", b"b", b"e"], eos_token_ids=[2], logit_width=64),
        Vocabulary.from_tokens([b"a", b"b", b"e"], eos_token_ids=[2], special_token_ids=[0]),
        Vocabulary.from_tokens([b"a", b"b", b"e"], eos_token_ids=[1, 2]),
    ]
    assert len({x.fingerprint for x in variants} | {v.fingerprint}) == len(variants) + 1


def test_from_model_duck_typing() -> None:
    class Tok:
        token_bytes = [b"x", b"y", b"<eos>", b"<bos>"]
        special_ids = [3]
        eos_token_ids = [2]

    class Model:
        tokenizer = Tok()
        logit_width = 64

    v = Vocabulary.from_model(Model())
    assert v.tokens == (b"x", b"y", b"<eos>", b"<bos>") and v.logit_width == 64
    assert v.special_token_ids == frozenset({2, 3}) and v.eos_token_ids == (2,)
    with pytest.raises(VocabularyError, match="LM protocol"):
        Vocabulary.from_model(object())


def test_from_gguf_bad_files(tmp_path: Path) -> None:
    import gguf

    with pytest.raises(VocabularyError, match="no such"):
        Vocabulary.from_gguf(tmp_path / "missing.gguf")
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"not a gguf file at all" * 10)
    with pytest.raises(VocabularyError, match="not a readable GGUF"):
        Vocabulary.from_gguf(junk)

    def write(path: Path, model: str | None, tokens: list[str] | None, eos: int | None) -> Path:
        w = gguf.GGUFWriter(str(path), "llama")
        if model is not None:
            w.add_tokenizer_model(model)
        if tokens is not None:
            w.add_token_list(tokens)
        if eos is not None:
            w.add_eos_token_id(eos)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        return path

    with pytest.raises(VocabularyError, match="tokenizer.ggml.model"):
        Vocabulary.from_gguf(write(tmp_path / "a.gguf", None, ["a"], 0))
    with pytest.raises(VocabularyError, match="tokenizer.ggml.tokens"):
        Vocabulary.from_gguf(write(tmp_path / "b.gguf", "gpt2", None, 0))
    with pytest.raises(VocabularyError, match="eos_token_id"):
        Vocabulary.from_gguf(write(tmp_path / "c.gguf", "gpt2", ["a", "b"], None))
    with pytest.raises(VocabularyError, match="not supported"):
        Vocabulary.from_gguf(write(tmp_path / "d.gguf", "bert", ["a", "b"], 1))
    with pytest.raises(VocabularyError, match="outside"):
        Vocabulary.from_gguf(write(tmp_path / "e.gguf", "gpt2", ["a", "b"], 7))
    ok = Vocabulary.from_gguf(write(tmp_path / "f.gguf", "gpt2", ["a", "Ġb", "</s>"], 2),
                              logit_width=10)
    assert ok.tokens == (b"a", b" b", b"</s>") and ok.logit_width == 10
    assert np.array_equal(ok.text_token_ids, [0, 1])


@pytest.mark.parametrize("name", ["llama-spm", "gpt-2"])
def test_metadata_scan_agrees_with_gguf_reader(name: str, reader_fields) -> None:
    """Our direct GGUF metadata scan returns exactly what the `gguf` package's reader returns."""
    from gguf import GGUFValueType

    from constrained.vocab import _read_gguf_metadata

    ours = _read_gguf_metadata(str(vocab_path(name)), prefix="tokenizer.")
    fields = {k: f for k, f in reader_fields(name).items() if k.startswith("tokenizer.")}
    assert set(ours) == set(fields)
    for key, f in fields.items():
        if f.types[0] == GGUFValueType.ARRAY and f.types[1] == GGUFValueType.STRING:
            assert ours[key] == [bytes(f.parts[i]) for i in f.data], key
        elif f.types[0] == GGUFValueType.ARRAY:
            assert np.array_equal(ours[key], np.concatenate([f.parts[i] for i in f.data])), key
        elif f.types[0] == GGUFValueType.STRING:
            assert ours[key] == bytes(f.parts[-1]).decode("utf-8"), key
        else:
            assert ours[key] == f.parts[-1][0], key


def test_truncated_gguf(tmp_path: Path) -> None:
    data = vocab_path("llama-spm").read_bytes()
    for cut in (10, 30, 5000, len(data) // 3):
        bad = tmp_path / f"cut{cut}.gguf"
        bad.write_bytes(data[:cut])
        with pytest.raises(VocabularyError, match="GGUF"):
            Vocabulary.from_gguf(bad)
