"""High-level generation: ``generate`` / ``stream`` over any model implementing the LM protocol.

``generate(model, prompt, output_type)`` resolves the output type (pydantic class, JSON Schema
dict, Regex, Lark, choice list, grammar name, Python type, or None for free text), compiles it
against the model's vocabulary (cached per model), decodes under the constraint's mask and
returns the typed value. A list of prompts runs as one batch. Never imports ``engine``.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from .errors import IncompleteOutput, PromptError
from .generation.lm import LMAdapter, model_info
from .generation.loop import BatchConfig, BatchRun, RowState
from .generation.output_types import (
    Choice,
    Gbnf,
    Lark,
    OutputSpec,
    Regex,
    resolve_output_type,
)
from .generation.results import GenerationResult, GenerationStats
from .generation.sampling import SamplingParams

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "Choice",
    "Gbnf",
    "GenerationResult",
    "GenerationStats",
    "Lark",
    "Regex",
    "generate",
    "stream",
]

DEFAULT_MAX_TOKENS = 512

Message = Mapping[str, str]


def _is_messages(prompt: Any) -> bool:
    return isinstance(prompt, (list, tuple)) and len(prompt) > 0 and all(isinstance(m, Mapping) for m in prompt)


def _split_prompts(prompt: Any) -> tuple[list[Any], bool]:
    """(prompts, is_batch): a str or one message list is a single prompt; a list of them is a batch."""
    if isinstance(prompt, str) or _is_messages(prompt):
        return [prompt], False
    if isinstance(prompt, (list, tuple)):
        if not prompt:
            raise PromptError("empty prompt list")
        for p in prompt:
            if not (isinstance(p, str) or _is_messages(p)):
                raise PromptError(
                    f"each prompt must be a str or a list of chat messages, got {type(p).__name__}"
                )
        return list(prompt), True
    raise PromptError(f"prompt must be a str, a list of chat messages, or a list of those; got {type(prompt).__name__}")


def _has_chat_template(tokenizer: Any) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def _render_prompt(tokenizer: Any, prompt: Any, chat: bool | None, system: str | None) -> list[int]:
    """Token ids for one prompt, applying the chat template when asked / available."""
    messages: list[dict[str, str]]
    if _is_messages(prompt):
        messages = [dict(m) for m in prompt]
        for m in messages:
            if "role" not in m or "content" not in m:
                raise PromptError(f"chat message needs 'role' and 'content': {m!r}")
    else:
        messages = [{"role": "user", "content": prompt}]
    if system is not None and not any(m["role"] == "system" for m in messages):
        messages.insert(0, {"role": "system", "content": system})
    use_chat = _has_chat_template(tokenizer) if chat is None else chat
    if use_chat:
        if not _has_chat_template(tokenizer):
            raise PromptError("chat=True but the model's tokenizer has no chat template")
        text = tokenizer.apply_chat_template(messages, add_generation_prompt=True)
        return list(tokenizer.encode(text, add_bos=False))
    if _is_messages(prompt):
        raise PromptError("chat messages need the chat template; do not pass chat=False with messages")
    text = "\n\n".join(m["content"] for m in messages)
    add_bos = bool(getattr(tokenizer, "add_bos", False))
    return list(tokenizer.encode(text, add_bos=add_bos))


def _rngs(seed: int | Sequence[int] | None, n: int) -> list[np.random.Generator]:
    """One Generator per sequence; the same seed gives each sequence the draws it gets alone."""
    if seed is None or isinstance(seed, (int, np.integer)):
        return [np.random.default_rng(None if seed is None else int(seed)) for _ in range(n)]
    seeds = list(seed)
    if len(seeds) != n:
        raise PromptError(f"got {len(seeds)} seeds for {n} prompts")
    return [np.random.default_rng(int(s)) for s in seeds]


def _prepare(
    model: Any,
    prompt: Any,
    output_type: Any,
    *,
    max_tokens: int,
    temperature: float,
    top_p: float,
    top_k: int,
    seed: int | Sequence[int] | None,
    stop: str | Sequence[str] | None,
    chat: bool | None,
    system: str | None,
    jump_forward: bool,
    schema_options: Mapping[str, Any] | None = None,
) -> tuple[BatchRun, OutputSpec, bool]:
    prompts, is_batch = _split_prompts(prompt)
    if max_tokens < 0:
        raise PromptError(f"max_tokens must be >= 0, got {max_tokens}")
    params = SamplingParams(temperature=float(temperature), top_k=int(top_k), top_p=float(top_p))
    spec = resolve_output_type(output_type, schema_options)
    info = model_info(model)
    constraint = info.constraint(model, spec)
    ids = [_render_prompt(info.tokenizer, p, chat, system) for p in prompts]
    stops = (stop,) if isinstance(stop, str) else tuple(stop or ())
    if any(not s for s in stops):
        raise PromptError("stop strings must be non-empty")
    matchers = [constraint.matcher() if constraint is not None else None for _ in prompts]
    config = BatchConfig(sampling=params, max_tokens=int(max_tokens), stop=stops, jump_forward=jump_forward)
    run = BatchRun(LMAdapter(model, info), ids, matchers, _rngs(seed, len(prompts)), config)
    return run, spec, is_batch


def _final_text(row: RowState) -> str:
    text = row.text.text
    return text[: row.stop_cut] if row.stop_cut is not None else text


def _finish_row(row: RowState, spec: OutputSpec, index: int, is_batch: bool) -> GenerationResult:
    """Parse a finished row, raising IncompleteOutput when the budget cut it short."""
    text = _final_text(row)
    if row.finish_reason == "length" and not row.accepted():
        where = f"prompt {index}: " if is_batch else ""
        exc = IncompleteOutput(
            f"{where}max_tokens={row.stats.generated_tokens} reached before the output was complete "
            f"({spec.description}); raise max_tokens. Partial output: {text[:200]!r}",
            partial=text,
        )
        exc.index = index  # type: ignore[attr-defined]
        raise exc
    value = spec.parse(text)
    return GenerationResult(value=value, text=text, token_ids=list(row.token_ids), stats=row.stats)


def generate(
    model: Any,
    prompt: str | Sequence[Message] | Sequence[str | Sequence[Message]],
    output_type: Any = None,
    *,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    temperature: float = 0.0,
    top_p: float = 1.0,
    top_k: int = 0,
    seed: int | Sequence[int] | None = None,
    stop: str | Sequence[str] | None = None,
    chat: bool | None = None,
    system: str | None = None,
    jump_forward: bool = True,
    schema_options: Mapping[str, Any] | None = None,
    return_stats: bool = False,
) -> Any:
    """Generate output of ``output_type`` for ``prompt`` (a list of prompts runs as one batch).

    Returns the parsed value (pydantic instance, JSON value, str ...), a list of them for a batch,
    or :class:`GenerationResult` objects with ``return_stats=True``. ``temperature=0`` is greedy.
    ``schema_options`` go to ``compile_json_schema`` for JSON outputs (e.g. ``{"indent": 2}``:
    fixed layout, so jump-forward feeds all structure; ``{"whitespace": "compact"}``).
    Raises :class:`~constrained.IncompleteOutput` when ``max_tokens`` ends generation first.
    """
    run, spec, is_batch = _prepare(
        model, prompt, output_type, max_tokens=max_tokens, temperature=temperature, top_p=top_p,
        top_k=top_k, seed=seed, stop=stop, chat=chat, system=system, jump_forward=jump_forward,
        schema_options=schema_options,
    )
    run.run()
    results = [_finish_row(row, spec, i, is_batch) for i, row in enumerate(run.rows)]
    out: list[Any] = results if return_stats else [r.value for r in results]
    return out if is_batch else out[0]


def stream(
    model: Any,
    prompt: str | Sequence[Message],
    output_type: Any = None,
    *,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    temperature: float = 0.0,
    top_p: float = 1.0,
    top_k: int = 0,
    seed: int | None = None,
    stop: str | Sequence[str] | None = None,
    chat: bool | None = None,
    system: str | None = None,
    jump_forward: bool = True,
    schema_options: Mapping[str, Any] | None = None,
) -> Iterator[str]:
    """Yield the output text in pieces as it is generated (never splitting a UTF-8 character).

    Same arguments as :func:`generate` for one prompt. Text that might begin a stop string is held
    back until it cannot. After the last piece the output is checked as ``generate`` would, so a
    truncated output raises :class:`~constrained.IncompleteOutput` at the end of iteration.
    """
    run, spec, is_batch = _prepare(
        model, prompt, output_type, max_tokens=max_tokens, temperature=temperature, top_p=top_p,
        top_k=top_k, seed=seed, stop=stop, chat=chat, system=system, jump_forward=jump_forward,
        schema_options=schema_options,
    )
    if is_batch:
        raise PromptError("stream() takes one prompt; use generate() for a batch")
    row = run.rows[0]
    hold = max((len(s) for s in run.config.stop), default=1) - 1
    emitted = 0
    for _ in run.steps():
        text = row.text.text
        limit = row.stop_cut if row.stop_cut is not None else (len(text) if row.done else len(text) - hold)
        if limit > emitted:
            yield text[emitted:limit]
            emitted = limit
    final = _final_text(row)
    if len(final) > emitted:
        yield final[emitted:]
    _finish_row(row, spec, 0, False)
