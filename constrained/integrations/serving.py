"""Serving-engine backend: the method set vLLM-style structured-output backends implement.

A serving engine owns the model, the scheduler and the token bitmask of a whole batch;
it asks a *backend* to compile a request's constraint (by request type: JSON Schema,
regex, grammar, choice) into a per-request *grammar* object, then, every step, lets each
grammar fill its row of the batch bitmask, accepts the sampled tokens, validates and
rolls back speculative (draft) tokens, and asks for jump-forward strings. Nothing here
imports a serving engine: the objects only use numpy (and torch tensors when handed
one), so they plug into vLLM's ``StructuredOutputBackend`` / ``StructuredOutputGrammar``
slots through a thin adapter (see docs/integrations.md).
"""
from __future__ import annotations

import enum
import json
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import BitmaskShapeError, CompileError, ConstrainedError

if TYPE_CHECKING:
    from ..matcher import Constraint, Matcher
    from ..vocab import Vocabulary


class RequestType(enum.Enum):
    """Kinds of structured-output request (the names serving engines use)."""

    JSON = "json"                # grammar_spec: a JSON Schema (JSON text or dict)
    JSON_OBJECT = "json_object"  # grammar_spec ignored: any JSON object
    REGEX = "regex"              # grammar_spec: a Python `re` pattern (full match)
    GRAMMAR = "grammar"          # grammar_spec: Lark grammar text (GBNF when it uses `::=`)
    CHOICE = "choice"            # grammar_spec: JSON list of strings (or a Python list)


class ServingGrammar:
    """One request's constraint state, driven token by token by a serving engine.

    Wraps a per-sequence :class:`~constrained.matcher.Matcher` and counts processed
    tokens so that speculative decoding can roll back exactly what it accepted.
    """

    def __init__(self, constraint: Constraint, vocab: Vocabulary) -> None:
        self._constraint = constraint
        self._vocab = vocab
        self._matcher: Matcher = constraint.matcher()
        self.num_processed_tokens = 0

    @property
    def matcher(self) -> Matcher:
        """The underlying matcher (for engines that want the raw API)."""
        return self._matcher

    def accept_tokens(self, request_id: str, tokens: Sequence[int]) -> bool:
        """Advance by ``tokens`` if ALL are allowed in order; otherwise change nothing.

        Returns ``False`` (state untouched) when some token is rejected, the way
        serving engines expect, so they can abort just that request.
        """
        ids = [int(t) for t in tokens]
        if self.validate_count(ids) != len(ids):
            return False
        eos = self._vocab.eos_token_ids
        for token in ids:
            repeat_eos = token in eos and self._matcher.is_terminated()
            self._matcher.advance(token)
            if not repeat_eos:  # a repeated EOS is a no-op the matcher does not stack
                self.num_processed_tokens += 1
        return True

    def validate_count(self, tokens: Sequence[int]) -> int:
        """Length of the longest prefix of ``tokens`` the constraint allows (no state change)."""
        return int(self._matcher.validate_tokens([int(t) for t in tokens]))

    def validate_tokens(self, tokens: Sequence[int]) -> list[int]:
        """The accepted prefix of ``tokens`` (draft tokens), without advancing."""
        ids = [int(t) for t in tokens]
        return ids[: self.validate_count(ids)]

    def rollback(self, num_tokens: int) -> None:
        """Undo the last ``num_tokens`` accepted tokens (rejected speculative tokens)."""
        if num_tokens < 0 or num_tokens > self.num_processed_tokens:
            raise ConstrainedError(
                f"cannot roll back {num_tokens} tokens: {self.num_processed_tokens} were accepted"
            )
        if num_tokens:
            self._matcher.rollback(num_tokens)
            self.num_processed_tokens -= num_tokens

    def fill_bitmask(self, bitmask: Any, batch_index: int) -> None:
        """Write this request's allowed-token bits into row ``batch_index`` of ``bitmask``.

        ``bitmask`` is ``int32[batch, ceil(W/32)]`` as numpy or a CPU torch tensor (the
        layout xgrammar/llguidance/vLLM share: bit i of word j = token 32*j+i allowed).
        """
        self._matcher.fill_bitmask(_as_numpy_bitmask(bitmask), batch_index)

    def is_terminated(self) -> bool:
        """True once EOS was accepted."""
        return bool(self._matcher.is_terminated())

    def is_accepting(self) -> bool:
        """True when the output so far is a complete match (EOS would be allowed)."""
        return bool(self._matcher.is_accepting())

    def reset(self) -> None:
        """Back to the initial state (request restarted / preempted and recomputed)."""
        self._matcher.reset()
        self.num_processed_tokens = 0

    def jump_forward_bytes(self) -> bytes:
        """Bytes every valid continuation must start with (may end inside a UTF-8 char)."""
        if self._matcher.is_terminated():
            return b""
        return bytes(self._matcher.forced_bytes())

    def jump_forward_string(self) -> str:
        """The forced continuation as text, cut to whole UTF-8 characters.

        The engine tokenizes it, feeds the tokens to the model in one prefill chunk and
        to :meth:`accept_tokens`; a partial trailing character is left for sampling.
        """
        data = self.jump_forward_bytes()
        for cut in range(len(data), max(len(data) - 4, -1), -1):
            try:
                return data[:cut].decode("utf-8")
            except UnicodeDecodeError:
                continue
        return ""


class ServingBackend:
    """Compiles requests into :class:`ServingGrammar` objects for one vocabulary.

    Compiled constraints are immutable and cached by ``(request type, spec)`` (LRU,
    ``cache_size`` entries), so concurrent requests with one schema share the work.
    """

    def __init__(self, vocab: Vocabulary, *, cache_size: int = 256) -> None:
        if cache_size < 1:
            raise ValueError("cache_size must be >= 1")
        self.vocab = vocab
        self._cache: OrderedDict[tuple[RequestType, str], Constraint] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    @property
    def vocab_size(self) -> int:
        """Logit width the bitmask covers (padding ids are always masked)."""
        return int(self.vocab.logit_width)

    def compile_grammar(self, request_type: RequestType | str, grammar_spec: Any = "") -> ServingGrammar:
        """A fresh per-request grammar for ``grammar_spec`` of ``request_type``."""
        kind = RequestType(request_type.value if isinstance(request_type, RequestType) else request_type)
        key = (kind, _spec_key(kind, grammar_spec))
        with self._lock:
            constraint = self._cache.get(key)
            if constraint is not None:
                self._cache.move_to_end(key)
        if constraint is None:
            constraint = self._compile(kind, grammar_spec)
            with self._lock:
                self._cache[key] = constraint
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return ServingGrammar(constraint, self.vocab)

    def _compile(self, kind: RequestType, spec: Any) -> Constraint:
        """Dispatch to the compiler for one request type."""
        import constrained

        if kind is RequestType.JSON:
            schema = json.loads(spec) if isinstance(spec, (str, bytes)) else spec
            return constrained.compile_json_schema(schema, self.vocab)
        if kind is RequestType.JSON_OBJECT:
            return constrained.compile_json_schema({"type": "object"}, self.vocab)
        if kind is RequestType.REGEX:
            if not isinstance(spec, str):
                raise CompileError(f"a regex request needs a pattern string, got {type(spec).__name__}")
            return constrained.compile_regex(spec, self.vocab)
        if kind is RequestType.GRAMMAR:
            if not isinstance(spec, str):
                raise CompileError(f"a grammar request needs grammar text, got {type(spec).__name__}")
            if "::=" in spec:
                return constrained.compile_gbnf(spec, self.vocab)
            return constrained.compile_lark(spec, self.vocab)
        choices = _choices(spec)
        return constrained.compile_choice(choices, self.vocab)

    def allocate_token_bitmask(self, max_num_seqs: int, *, framework: str = "numpy") -> Any:
        """An all-allowed ``int32[max_num_seqs, ceil(W/32)]`` bitmask (numpy or torch CPU)."""
        words = (self.vocab_size + 31) // 32
        if framework == "numpy":
            return np.full((max_num_seqs, words), -1, dtype=np.int32)
        if framework == "torch":
            import torch

            return torch.full((max_num_seqs, words), -1, dtype=torch.int32)
        raise ValueError(f"unknown framework {framework!r} (numpy or torch)")

    def destroy(self) -> None:
        """Drop cached compiled constraints."""
        with self._lock:
            self._cache.clear()


def _spec_key(kind: RequestType, spec: Any) -> str:
    """Canonical text of a request spec, used as the compile-cache key."""
    if kind is RequestType.JSON_OBJECT:
        return ""
    if isinstance(spec, str):
        return spec
    try:
        return json.dumps(spec, sort_keys=True)
    except TypeError as exc:  # pydantic classes and other objects: identity
        if isinstance(spec, type):
            return f"{spec.__module__}.{spec.__qualname__}@{id(spec)}"
        raise CompileError(f"cannot use {type(spec).__name__} as a {kind.value} spec") from exc


def _choices(spec: Any) -> list[str]:
    """The list of choice strings of a choice request (JSON list text or a list)."""
    if isinstance(spec, str):
        try:
            spec = json.loads(spec)
        except json.JSONDecodeError as exc:
            raise CompileError(f"a choice spec must be a JSON list of strings: {exc}") from exc
    if not isinstance(spec, (list, tuple)) or not all(isinstance(c, str) for c in spec) or not spec:
        raise CompileError("a choice spec must be a non-empty list of strings")
    return list(spec)


def _as_numpy_bitmask(bitmask: Any) -> np.ndarray:
    """A numpy view of a bitmask buffer (torch CPU tensors share memory)."""
    if isinstance(bitmask, np.ndarray):
        return bitmask
    module = type(bitmask).__module__
    if module.startswith("torch"):
        if bitmask.device.type != "cpu":
            raise BitmaskShapeError(
                "fill the bitmask on the CPU, then copy it to the device (as serving engines do)"
            )
        return bitmask.numpy()
    raise BitmaskShapeError(f"bitmask must be a numpy array or torch tensor, got {type(bitmask).__name__}")


__all__ = ["RequestType", "ServingBackend", "ServingGrammar"]
