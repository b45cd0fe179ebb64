"""The collector pause around compilation (constrained/gcpause.py)."""
from __future__ import annotations

import gc
import threading
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from constrained import gcpause
from constrained.gcpause import collector_paused
from tests.testdata import run_threads


@pytest.fixture(autouse=True)
def _collector_on() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()


def test_pause_disables_and_restores() -> None:
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_nested_pauses_restore_once_at_the_outermost() -> None:
    with collector_paused():
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the inner exit must not re-enable
    assert gc.isenabled()


def test_restored_after_an_exception() -> None:
    with pytest.raises(ValueError), collector_paused():
        raise ValueError("boom")
    assert gc.isenabled()


def test_an_application_that_disabled_the_collector_keeps_it_disabled() -> None:
    gc.disable()
    with collector_paused():
        assert not gc.isenabled()
    assert not gc.isenabled()


def test_concurrent_pauses_leave_the_collector_enabled() -> None:
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for k in range(200):
                with collector_paused():
                    if k == 0:  # every thread inside a pause at once
                        barrier.wait(timeout=10)
                    assert not gc.isenabled()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    run_threads(work)
    assert not errors
    assert gc.isenabled()


def test_switched_off_leaves_the_collector_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gcpause, "ENABLED", False)
    with collector_paused():
        assert gc.isenabled()


def test_schema_compilation_runs_no_collection(load_vocab: Callable[[str], object]) -> None:
    """A schema compile allocates far more than a young collection's threshold; none runs
    inside it (the deferred one runs when the pause ends, in ``compile_json_schema``)."""
    import constrained
    from constrained.schema import _CACHE, compile_json_schema

    vocab = load_vocab("gpt-2")
    schema = {"type": "object",
              "properties": {f"field_{i}": {"type": "string", "maxLength": 20 + i}
                             for i in range(40)},
              "required": ["field_0"]}
    package = Path(constrained.__file__).parent
    outer = {package / "schema" / "__init__.py", package / "gcpause.py"}
    inside: list[str] = []
    collections = 0

    def on_gc(phase: str, info: dict[str, int]) -> None:
        nonlocal collections
        if phase != "start":
            return
        collections += 1
        for frame in traceback.extract_stack():
            path = Path(frame.filename)
            if package in path.parents and path not in outer:
                inside.append(f"{path.name}:{frame.lineno}")
                return

    _CACHE.items.clear()
    gc.collect()
    gc.callbacks.append(on_gc)
    try:
        compile_json_schema(schema, vocab)
    finally:
        gc.callbacks.remove(on_gc)
    assert inside == []
    assert gc.isenabled()


def test_the_compile_test_sees_collections_when_switched_off(
        load_vocab: Callable[[str], object], monkeypatch: pytest.MonkeyPatch) -> None:
    """The test above can fail: without the pause, collections run inside the compile."""
    monkeypatch.setattr(gcpause, "ENABLED", False)
    with pytest.raises(AssertionError):
        test_schema_compilation_runs_no_collection(load_vocab)
