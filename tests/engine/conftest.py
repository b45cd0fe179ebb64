"""Shared fixtures: the default model is loaded once per test session."""
from __future__ import annotations

import pytest

from engine import Model, load_model


@pytest.fixture(scope="session")
def smollm() -> Model:
    """SmolLM2-135M-Instruct (provisioned on first use into the per-user cache)."""
    return load_model()
