"""Provisioning of external test data (vocabularies, golden tokenizations, corpora).

Real vocabularies come from the llama-cpp-python sdist (``vendor/llama.cpp/models``:
``ggml-vocab-*.gguf`` plus ``.inp``/``.out`` golden tokenizations), fetched once with
``pip download`` into a per-user cache. Tests and benchmarks import these helpers.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

LLAMA_CPP_SDIST = "llama-cpp-python==0.3.36"
REPO_ROOT = Path(__file__).resolve().parent.parent
CORPORA = REPO_ROOT.parent / "shared" / "corpora"

# name used in tests -> file stem in vendor/llama.cpp/models
VOCABS = {
    "llama-spm": "ggml-vocab-llama-spm",   # Llama-2, SentencePiece 32k
    "llama-bpe": "ggml-vocab-llama-bpe",   # Llama-3, byte-level BPE 128k
    "gpt-2": "ggml-vocab-gpt-2",           # GPT-2, byte-level BPE 50k
    "qwen2": "ggml-vocab-qwen2",           # Qwen2, byte-level BPE 151k
}


def cache_dir() -> Path:
    """Per-user cache for test data (``$CONSTRAINED_TEST_CACHE`` overrides)."""
    root = os.environ.get("CONSTRAINED_TEST_CACHE")
    path = Path(root) if root else Path.home() / ".cache" / "constrained-tests"
    path.mkdir(parents=True, exist_ok=True)
    return path


def llama_cpp_models_dir() -> Path:
    """Folder holding ``ggml-vocab-*`` files, downloading the sdist on first use."""
    target = cache_dir() / "llama-cpp-vocab"
    marker = target / ".complete"
    if marker.exists():
        return target
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
             "--quiet", "-d", tmp, LLAMA_CPP_SDIST],
            check=True,
        )
        (archive,) = Path(tmp).glob("*.tar.gz")
        target.mkdir(parents=True, exist_ok=True)
        with tarfile.open(archive) as tar:
            for member in tar.getmembers():
                if "/vendor/llama.cpp/models/ggml-vocab-" in member.name and member.isfile():
                    src = tar.extractfile(member)
                    assert src is not None
                    (target / Path(member.name).name).write_bytes(src.read())
    marker.touch()
    return target


def vocab_path(name: str) -> Path:
    """Path of the GGUF vocabulary file for ``name`` (a key of VOCABS)."""
    return llama_cpp_models_dir() / f"{VOCABS[name]}.gguf"


def golden_paths(name: str) -> tuple[Path, Path]:
    """The ``.inp`` / ``.out`` golden tokenization files for ``name``."""
    base = llama_cpp_models_dir() / VOCABS[name]
    return Path(f"{base}.gguf.inp"), Path(f"{base}.gguf.out")


def corpus(name: str) -> Path:
    """Path of a shared corpus file; skips the calling test (with a message) if absent."""
    path = CORPORA / name
    if not path.exists():
        pytest.skip(f"shared corpus {path} not present")
    return path


def lark_accepts(parser: object, text: str) -> bool:
    """The reference verdict: whether Lark's own ``parser.parse(text)`` succeeds."""
    import lark

    try:
        parser.parse(text)  # type: ignore[attr-defined]
    except lark.exceptions.LarkError:
        return False
    return True


def run_threads(target: Callable[[], object], n: int = 4) -> None:
    """Run ``target`` in ``n`` threads at once and wait for all of them."""
    threads = [threading.Thread(target=target) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
