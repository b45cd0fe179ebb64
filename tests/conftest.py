"""Shared fixtures: the four real vocabularies, each loaded once per test session."""
from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from tests.testdata import vocab_path

# the real vocabularies every token-level test runs on (names of tests.testdata.VOCABS)
REAL_VOCABS = ("llama-spm", "llama-bpe", "gpt-2", "qwen2")


@pytest.fixture(scope="session")
def load_vocab() -> Callable[[str], "object"]:
    """``load_vocab(name)`` -> the ``constrained.Vocabulary`` of a real GGUF vocabulary (memoised)."""
    from constrained.vocab import Vocabulary

    loaded: dict[str, Vocabulary] = {}
    lock = threading.Lock()

    def get(name: str) -> Vocabulary:
        with lock:
            if name not in loaded:
                loaded[name] = Vocabulary.from_gguf(vocab_path(name))
            return loaded[name]

    return get


@pytest.fixture(scope="session", params=REAL_VOCABS)
def real_vocab(request: pytest.FixtureRequest, load_vocab: Callable[[str], object]) -> object:
    """Each real vocabulary in turn (session-scoped: loaded once)."""
    return load_vocab(request.param)
