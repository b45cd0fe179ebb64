"""CUDA runs of the engine backends (torch and CuPy) against the numpy backend.

Each check runs when its library sees a CUDA device and is skipped with the reason
otherwise (CI has no GPU; docs/gpu.md records where these ran). Tiny random models of
every architecture and the default SmolLM2 must give the numpy backend's logits (1e-4
absolute + 1e-5 relative), batched sessions must agree step by step, and constrained
decoding on the device must produce outputs that `re` / `jsonschema` accept.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from tests.gpu.conftest import TINY_IDS, cuda_reason, cupy_reason

ATOL, RTOL = 1e-4, 1e-5
REASONS = {"torch": cuda_reason(), "cupy": cupy_reason()}
BACKENDS = [
    pytest.param(name, marks=[pytest.mark.gpu, pytest.mark.skipif(REASONS[name] is not None,
                                                                  reason=str(REASONS[name]))])
    for name in ("torch", "cupy")
]


@pytest.fixture(scope="module")
def numpy_smollm() -> object:
    from engine import load_model

    return load_model()


@pytest.mark.parametrize("backend", BACKENDS)
def test_tiny_models_match_numpy(backend: str, tiny_gguf: Path) -> None:
    from engine import load_model

    ref = load_model(tiny_gguf)
    dev = load_model(tiny_gguf, backend=backend, device="cuda")
    np.testing.assert_allclose(dev.logits(TINY_IDS), ref.logits(TINY_IDS), atol=ATOL, rtol=RTOL)
    prompts = [TINY_IDS[:7], TINY_IDS[:3]]
    sr, sd = ref.start(prompts, max_new_tokens=6), dev.start(prompts, max_new_tokens=6)
    for step in range(4):
        feed = [[int(r.argmax())] for r in sr.logits]
        if step == 1:
            feed = [feed[0] + [9, 10], []]
        np.testing.assert_allclose(sd.step(feed), sr.step(feed), atol=ATOL, rtol=RTOL)


@pytest.mark.model
@pytest.mark.parametrize("backend", BACKENDS)
def test_smollm_logits_and_batch_match_numpy(backend: str, numpy_smollm: object) -> None:
    from engine import load_model

    mn = numpy_smollm
    md = load_model(backend=backend, device="cuda")
    prompts = ["Hello", "The capital of France is", '{"name": "Ada", "age":']
    ids = [mn.tokenizer.encode(p) for p in prompts]  # type: ignore[attr-defined]
    for row in ids:
        np.testing.assert_allclose(md.logits(row), mn.logits(row), atol=ATOL, rtol=RTOL)  # type: ignore[attr-defined]
    sn, sd = mn.start(ids, max_new_tokens=8), md.start(ids, max_new_tokens=8)  # type: ignore[attr-defined]
    for _ in range(5):
        feed = [[int(r.argmax())] for r in sn.logits]
        np.testing.assert_allclose(sd.step(feed), sn.step(feed), atol=ATOL, rtol=RTOL)


@pytest.mark.model
@pytest.mark.parametrize("backend", BACKENDS)
def test_constrained_decoding_on_device(backend: str, numpy_smollm: object) -> None:
    import jsonschema

    import constrained
    from constrained.integrations.device_decode import DeviceDecoder
    from engine import load_model

    md = load_model(backend=backend, device="cuda")
    vocab = constrained.Vocabulary.from_model(md)
    schema = {"type": "object", "properties": {"city": {"type": "string", "maxLength": 12}},
              "required": ["city"], "additionalProperties": False}
    regex = constrained.compile_regex(r"[0-9]{3}-[0-9]{4}", vocab)
    js = constrained.compile_json_schema(schema, vocab)
    tok = md.tokenizer
    prompts = [tok.encode(tok.apply_chat_template([{"role": "user", "content": c}]))
               for c in ("Give me a phone number.", "Name a city as JSON.")]
    dev = DeviceDecoder(md, prompts * 4, [regex, js] * 4, max_new_tokens=40)
    outs = dev.run()
    for i, ids in enumerate(outs):
        text = tok.decode(ids)
        if i % 2 == 0:
            assert re.fullmatch(r"[0-9]{3}-[0-9]{4}", text), text
        else:
            jsonschema.validate(json.loads(text), schema)
    # greedy on the device gives the host (numpy) path's tokens
    host = DeviceDecoder(numpy_smollm, prompts, [regex, js], max_new_tokens=40).run()
    assert outs[:2] == host
