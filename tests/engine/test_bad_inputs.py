"""Corrupt, truncated, foreign or unsupported files raise specific errors; quant types load."""
from __future__ import annotations

import copy
from pathlib import Path

import gguf
import numpy as np
import pytest
from gguf.quants import quantize

from engine import Tokenizer, load_model
from engine.errors import (
    ChatTemplateError,
    ModelFormatError,
    ProvisioningError,
    TokenizerError,
    UnsupportedArchitecture,
)
from engine.formats.gguf_file import dequantize_tensor, read_gguf
from tests.engine.test_architectures import SPECS
from tests.engine.tiny_models import write_tiny_gguf


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bad") / "llama.gguf"
    write_tiny_gguf(path, copy.deepcopy(SPECS["llama"]))
    return path


def test_not_gguf(tmp_path: Path) -> None:
    p = tmp_path / "x.gguf"
    p.write_bytes(b"PK\x03\x04 definitely a zip")
    with pytest.raises(ModelFormatError, match="not a GGUF file"):
        load_model(p)
    with pytest.raises(ModelFormatError, match="no such model"):
        load_model(tmp_path / "missing.gguf")


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.97])
def test_truncated_gguf(tiny_path: Path, tmp_path: Path, keep: float) -> None:
    data = tiny_path.read_bytes()
    p = tmp_path / "t.gguf"
    p.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(ModelFormatError, match="truncated|corrupt"):
        load_model(p)


def test_unknown_architecture(tmp_path: Path) -> None:
    p = tmp_path / "mamba.gguf"
    w = gguf.GGUFWriter(str(p), "mamba")
    w.add_block_count(1)
    w.add_tensor("token_embd.weight", np.zeros((4, 4), np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    with pytest.raises(UnsupportedArchitecture, match="mamba"):
        load_model(p)


def test_unsupported_tokenizer_and_pre(tmp_path: Path) -> None:
    p = tmp_path / "v.gguf"
    w = gguf.GGUFWriter(str(p), "llama")
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("klingon")
    w.add_token_list(["a", "b"])
    w.add_token_merges(["a b"])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    with pytest.raises(TokenizerError, match="klingon"):
        Tokenizer.from_gguf(p)


def test_tokenizer_errors(tiny_path: Path) -> None:
    tok = load_model(tiny_path).tokenizer
    with pytest.raises(TokenizerError, match="out of range"):
        tok.decode([tok.vocab_size])
    with pytest.raises(TokenizerError):
        tok.encode(b"bytes")  # type: ignore[arg-type]
    with pytest.raises(ChatTemplateError, match="no chat template"):
        tok.apply_chat_template([{"role": "user", "content": "x"}])
    with pytest.raises(ChatTemplateError, match="boom"):
        tok.apply_chat_template([{"role": "user", "content": "x"}], chat_template="{{ raise_exception('boom') }}")


def test_unknown_registry_model() -> None:
    from engine.registry import model_path

    with pytest.raises(ProvisioningError, match="unknown model"):
        model_path("no-such-model")


def test_registry_rejects_bad_wheel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A wheel whose model file has the wrong checksum is refused and nothing is cached."""
    import zipfile

    from engine.registry import MODELS, model_path

    spec = MODELS["smollm2-135m-instruct"]
    wheel = tmp_path / "fake.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr(spec.parts[0].member, b"GGUF" + b"\0" * 100)
    monkeypatch.setenv("CONSTRAINED_MODEL_CACHE", str(tmp_path / "cache"))
    with pytest.raises(ProvisioningError, match="sha256"):
        model_path(wheels=[wheel], progress=False)
    assert not list((tmp_path / "cache").rglob("*.gguf*"))


QUANT_TOLERANCE = {"F16": 1e-3, "BF16": 1e-2, "Q8_0": 2e-2, "Q5_0": 0.1, "Q5_1": 0.1, "Q4_0": 0.2, "Q4_1": 0.2}


def test_quantised_tensors_dequantise(tmp_path: Path) -> None:
    """Tensors stored in each quant type gguf can write come back close to the originals."""
    rng = np.random.default_rng(0)
    originals = {name: rng.standard_normal((8, 64)).astype(np.float32) for name in QUANT_TOLERANCE}
    p = tmp_path / "q.gguf"
    w = gguf.GGUFWriter(str(p), "llama")
    for name, arr in originals.items():
        qtype = gguf.GGMLQuantizationType[name]
        w.add_tensor(name, quantize(arr, qtype), raw_dtype=qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    tensors = read_gguf(p).tensors
    for name, arr in originals.items():
        got = dequantize_tensor(tensors[name], p)
        assert got.dtype == np.float32 and got.shape == arr.shape
        err = np.abs(got - arr).max() / np.abs(arr).max()
        assert err < QUANT_TOLERANCE[name], (name, err)
