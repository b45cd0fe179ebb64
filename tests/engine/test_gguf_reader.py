"""Our GGUF parser agrees with the gguf package's GGUFReader (the reference implementation)."""
from __future__ import annotations

import copy
from pathlib import Path

import gguf
import numpy as np
import pytest

from engine.formats.gguf_reader import GGUFFile
from tests.engine.test_architectures import SPECS
from tests.engine.tiny_models import write_tiny_gguf
from tests.testdata import vocab_path


def _compare(path: Path) -> None:
    ours = GGUFFile(path)
    ref = gguf.GGUFReader(path, "r")
    for key, field in ref.fields.items():
        if key.startswith("GGUF."):
            continue
        mine = ours.fields[key]
        theirs = field.contents()
        if isinstance(mine, list) and mine and isinstance(mine[0], bytes):
            assert [bytes(field.parts[i]) for i in field.data] == mine, key
        elif isinstance(mine, np.ndarray):
            np.testing.assert_array_equal(mine, np.asarray(theirs), err_msg=key)
        else:
            assert mine == pytest.approx(theirs) if isinstance(mine, float) else mine == theirs, key
    assert set(ours.fields) == {k for k in ref.fields if not k.startswith("GGUF.")}
    assert list(ours.tensors) == [t.name for t in ref.tensors]
    for t in ref.tensors:
        mine_t = ours.tensors[t.name]
        assert mine_t.shape == tuple(int(x) for x in t.shape)
        assert mine_t.qtype == int(t.tensor_type)
        assert mine_t.data.tobytes() == np.asarray(t.data).tobytes()


def test_vocab_file_matches_gguf_reader() -> None:
    _compare(vocab_path("llama-spm"))


def test_tiny_model_matches_gguf_reader(tmp_path: Path) -> None:
    path = tmp_path / "q.gguf"
    write_tiny_gguf(path, copy.deepcopy(SPECS["qwen2"]))
    _compare(path)
