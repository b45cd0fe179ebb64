"""Text generation loops over a Model: stop on EOS, stop strings, or a token budget; streaming."""
from __future__ import annotations

import codecs
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from .sampling import SamplingParams, sample

if TYPE_CHECKING:
    from .model import Model


def prompt_ids(model: Model, prompt: str | Sequence[int], add_bos: bool | None) -> list[int]:
    """Token ids of a prompt; BOS is added when the tokenizer's convention says so (add_bos=None).

    A text that already starts with the BOS token's text (chat templates render it) gets none.
    """
    if isinstance(prompt, str):
        tok = model.tokenizer
        if add_bos is None:
            add_bos = getattr(tok, "add_bos_default", False)
            if add_bos and tok.bos_token_id is not None:
                bos_text = tok.token_bytes[tok.bos_token_id].decode("utf-8", errors="replace")
                add_bos = not (bos_text and prompt.startswith(bos_text))
        return tok.encode(prompt, add_bos=add_bos)
    return [int(t) for t in prompt]


def generate_tokens(
    model: Model,
    prompt: Sequence[int],
    max_tokens: int,
    sampling: SamplingParams | None = None,
) -> Iterator[int]:
    """Yield generated token ids one by one; stops after an EOS token (yielded) or max_tokens."""
    params = sampling or SamplingParams()
    rng = params.rng()
    session = model.start([list(prompt)], max_new_tokens=max_tokens)
    eos = set(model.tokenizer.eos_token_ids)
    history = [list(prompt)]
    logits = session.logits
    for i in range(max_tokens):
        tok = int(sample(logits[:, : model.tokenizer.vocab_size], params, rng, history)[0])
        yield tok
        if tok in eos or i == max_tokens - 1:
            return
        history[0].append(tok)
        logits = session.step([[tok]])


def stream_text(
    model: Model,
    prompt: str | Sequence[int],
    max_tokens: int = 128,
    sampling: SamplingParams | None = None,
    stop: Sequence[str] = (),
    add_bos: bool | None = None,
) -> Iterator[str]:
    """Yield text pieces as they become final; EOS and stop strings are not included."""
    ids = prompt_ids(model, prompt, add_bos)
    tok = model.tokenizer
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    eos = set(tok.eos_token_ids)
    stops = [s for s in stop if s]
    hold = max((len(s) for s in stops), default=1) - 1
    text = ""
    emitted = 0
    for t in generate_tokens(model, ids, max_tokens, sampling):
        if t in eos:
            break
        text += decoder.decode(tok.token_bytes[t])
        if stops:
            hits = [i for i in (text.find(s, max(0, emitted - hold)) for s in stops) if i >= 0]
            if hits:
                cut = min(hits)
                if cut > emitted:
                    yield text[emitted:cut]
                return
        safe = len(text) - hold if stops else len(text)
        if safe > emitted:
            yield text[emitted:safe]
            emitted = safe
    text += decoder.decode(b"", final=True)
    if len(text) > emitted:
        yield text[emitted:]


def generate_text(
    model: Model,
    prompt: str | Sequence[int],
    max_tokens: int = 128,
    sampling: SamplingParams | None = None,
    stop: Sequence[str] = (),
    add_bos: bool | None = None,
) -> str:
    """The whole generated text (see `stream_text`)."""
    return "".join(stream_text(model, prompt, max_tokens, sampling, stop, add_bos))
