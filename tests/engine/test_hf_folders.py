"""HF folders (config.json + safetensors, F32/F16/BF16, sharded) load and match the reference."""
from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest

from engine import load_model
from engine.errors import ModelFormatError, UnsupportedArchitecture
from tests.engine.test_architectures import IDS, SPECS
from tests.engine.tiny_models import (
    TinySpec,
    make_weights,
    reference_logits,
    tiny_vocab,
    write_tiny_gguf,
    write_tiny_hf,
)


def _spec(arch: str) -> TinySpec:
    spec = copy.deepcopy(SPECS[arch])
    spec.weights = make_weights(spec, len(tiny_vocab()[0]))
    return spec


@pytest.mark.parametrize("arch", sorted(SPECS))
@pytest.mark.parametrize("dtype", ["F32", "F16", "BF16"])
def test_hf_folder_matches_reference(arch: str, dtype: str, tmp_path: Path) -> None:
    spec = _spec(arch)
    stored = write_tiny_hf(tmp_path / "m", spec, dtype, shards=2 if dtype == "BF16" else 1)
    model = load_model(tmp_path / "m")
    assert model.config.arch == arch
    rounded = copy.deepcopy(spec)
    rounded.weights = stored
    ref = reference_logits(rounded, IDS)[-1]
    np.testing.assert_allclose(model.logits(IDS), ref, atol=2e-4 * max(1.0, np.abs(ref).max()), rtol=0)


def test_hf_and_gguf_agree(tmp_path: Path) -> None:
    """The same llama weights through GGUF (permuted Q/K) and HF (halves) give the same logits."""
    spec = copy.deepcopy(SPECS["llama"])
    write_tiny_gguf(tmp_path / "m.gguf", spec)
    write_tiny_hf(tmp_path / "hf", spec, "F32")
    a, b = load_model(tmp_path / "m.gguf"), load_model(tmp_path / "hf")
    np.testing.assert_allclose(a.logits(IDS), b.logits(IDS), atol=1e-5, rtol=0)
    # the tokenizers agree too (GGUF BPE rebuilt vs tokenizer.json)
    for text in ["the abc", " the\n\tabcab  x", "<|im_start|>hi<|im_end|>"]:
        assert a.tokenizer.encode(text) == b.tokenizer.encode(text)
        assert a.tokenizer.decode(a.tokenizer.encode(text)) == text
    assert b.tokenizer.eos_token_ids == (len(tiny_vocab()[0]) - 1,)
    chat = b.tokenizer.apply_chat_template([{"role": "user", "content": "hi"}])
    assert chat == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"


def test_hf_folder_errors(tmp_path: Path) -> None:
    spec = _spec("llama")
    write_tiny_hf(tmp_path / "m", spec, "F32")
    cfg = (tmp_path / "m" / "config.json").read_text()
    (tmp_path / "m" / "config.json").write_text(cfg.replace('"llama"', '"mamba"'))
    with pytest.raises(UnsupportedArchitecture, match="mamba"):
        load_model(tmp_path / "m")
    (tmp_path / "m" / "config.json").write_text(cfg)
    shard = next((tmp_path / "m").glob("*.safetensors"))
    shard.write_bytes(shard.read_bytes()[:-100])
    with pytest.raises(ModelFormatError, match="truncated"):
        load_model(tmp_path / "m")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelFormatError, match="config.json"):
        load_model(tmp_path / "empty")
