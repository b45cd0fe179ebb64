"""Tokenizers: GGUF vocabularies, SentencePiece `.model` files, HF `tokenizer.json`; chat templates.

Every tokenizer exposes the same surface (`encode`, `decode`, `token_bytes`, `special_ids`,
`eos_token_ids`, `bos_token_id`, `apply_chat_template`). GGUF byte-level BPE vocabularies
become a `tokenizers` BPE with llama.cpp's pre-tokenizer regexes; GGUF SentencePiece
vocabularies become a serialized SentencePiece ModelProto that `sentencepiece` loads.
"""
from __future__ import annotations

import json
import re
import struct
from collections.abc import Callable, Sequence
from datetime import datetime
from functools import cache, cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ChatTemplateError, TokenizerError

if TYPE_CHECKING:
    from .formats.gguf_reader import GGUFFile

# GGUF / SentencePiece token types
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6
SPECIAL_TYPES = frozenset({UNKNOWN, CONTROL, UNUSED})

# Text of control tokens that end generation in common chat formats (llama.cpp's EOG list).
END_OF_GENERATION_TEXTS = frozenset(
    {"<|endoftext|>", "<|im_end|>", "<|eot_id|>", "<|eom_id|>", "<end_of_turn>", "<|end|>",
     "<|end_of_text|>", "</s>", "<|return|>", "<|call|>"}
)

_GPT2_SPLIT = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"
_LLAMA3_SPLIT = (
    r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_QWEN2_SPLIT = (
    r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
# GGUF `tokenizer.ggml.pre` -> (pre-tokenizer regexes applied in sequence, ignore_merges),
# the same splits llama.cpp applies for these names.
PRE_TOKENIZERS: dict[str, tuple[tuple[str, ...], bool]] = {
    "default": ((r"[\p{P}\$\+<=>\^~\|]+", _GPT2_SPLIT, r"\p{N}+", r"[0-9][0-9][0-9]"), False),
    "gpt-2": ((_GPT2_SPLIT,), False),
    "phi-2": ((_GPT2_SPLIT,), False),
    "mpt": ((_GPT2_SPLIT,), False),
    "olmo": ((_GPT2_SPLIT,), False),
    "smollm": ((r"\p{N}", _GPT2_SPLIT), False),
    "starcoder": ((r"\p{N}", _GPT2_SPLIT), False),
    "refact": ((r"\p{N}", _GPT2_SPLIT), False),
    "llama3": ((_LLAMA3_SPLIT,), True),
    "llama-v3": ((_LLAMA3_SPLIT,), True),
    "llama-bpe": ((_LLAMA3_SPLIT,), True),
    "falcon3": ((_LLAMA3_SPLIT,), True),
    "dbrx": ((_LLAMA3_SPLIT,), False),
    "smaug-bpe": ((_LLAMA3_SPLIT,), False),
    "qwen2": ((_QWEN2_SPLIT,), False),
    "deepseek-r1-qwen": ((_QWEN2_SPLIT,), False),
    "stablelm2": ((_QWEN2_SPLIT,), False),
}


@cache
def gpt2_byte_decoder() -> dict[str, int]:
    """GPT-2 byte-level alphabet: printable char -> the byte it stands for."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(
        range(ord("®"), ord("ÿ") + 1)
    )
    mapping: dict[str, int] = {chr(b): b for b in keep}
    extra = 0
    for b in range(256):
        if b not in keep:
            mapping[chr(256 + extra)] = b
            extra += 1
    return mapping


def byte_level_to_bytes(token: str) -> bytes:
    """Bytes a GPT-2 byte-level token stands for (characters outside the alphabet pass as UTF-8)."""
    table = gpt2_byte_decoder()
    out = bytearray()
    for ch in token:
        b = table.get(ch)
        if b is None:
            out += ch.encode("utf-8")
        else:
            out.append(b)
    return bytes(out)


_BYTE_PIECE = re.compile(r"<0x([0-9A-Fa-f]{2})>")


def spm_piece_to_bytes(piece: str, kind: int) -> bytes:
    """Bytes a SentencePiece piece adds to text: `▁` -> space, `<0xNN>` -> that byte."""
    if kind == BYTE:
        m = _BYTE_PIECE.fullmatch(piece)
        if m:
            return bytes([int(m.group(1), 16)])
    if kind in SPECIAL_TYPES:
        return piece.encode("utf-8")
    return piece.replace("\u2581", " ").encode("utf-8")


# ---------------------------------------------------------------- SentencePiece ModelProto
def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field_varint(num: int, value: int) -> bytes:
    return _varint(num << 3) + _varint(value)


def _field_bytes(num: int, value: bytes) -> bytes:
    return _varint((num << 3) | 2) + _varint(len(value)) + value


def _field_float(num: int, value: float) -> bytes:
    return _varint((num << 3) | 5) + struct.pack("<f", value)


def sentencepiece_model_proto(
    pieces: Sequence[bytes],
    scores: Sequence[float],
    types: Sequence[int],
    *,
    unk_id: int,
    bos_id: int,
    eos_id: int,
    pad_id: int,
    byte_fallback: bool,
) -> bytes:
    """Serialize a SentencePiece BPE ModelProto (wire format written by hand: no protobuf needed).

    Field numbers are those of sentencepiece_model.proto. The normalizer is the identity
    without a dummy prefix: the tokenizer adds the prefix itself, per text fragment.
    """
    body = bytearray()
    for piece, score, kind in zip(pieces, scores, types):
        kind = kind if kind in (NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE) else NORMAL
        sp = _field_bytes(1, piece) + _field_float(2, float(score)) + _field_varint(3, kind)
        body += _field_bytes(1, sp)
    trainer = (
        _field_varint(3, 2)  # model_type = BPE
        + _field_varint(4, len(pieces))
        + _field_varint(35, int(byte_fallback))
        + _field_varint(40, unk_id)
        + _field_varint(41, bos_id)
        + _field_varint(42, eos_id)
        + _field_varint(43, pad_id)
    )
    normalizer = (
        _field_bytes(1, b"identity")
        + _field_varint(3, 0)  # add_dummy_prefix
        + _field_varint(4, 0)  # remove_extra_whitespaces
        + _field_varint(5, 1)  # escape_whitespaces
    )
    body += _field_bytes(2, trainer) + _field_bytes(3, normalizer)
    return bytes(body)


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def _proto_fields(data: bytes) -> list[tuple[int, int | bytes]]:
    """Top-level (field number, value) pairs of a protobuf message (varint / bytes / fixed)."""
    out: list[tuple[int, int | bytes]] = []
    pos = 0
    while pos < len(data):
        key, pos = _read_varint(data, pos)
        num, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _read_varint(data, pos)
            out.append((num, value))
        elif wire == 2:
            n, pos = _read_varint(data, pos)
            out.append((num, data[pos : pos + n]))
            pos += n
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            out.append((num, data[pos : pos + size]))
            pos += size
        else:
            raise TokenizerError(f"unsupported protobuf wire type {wire}")
    return out


def spm_add_dummy_prefix(model_bytes: bytes) -> bool:
    """NormalizerSpec.add_dummy_prefix of a serialized SentencePiece model (default True)."""
    try:
        for num, value in _proto_fields(model_bytes):
            if num == 3 and isinstance(value, bytes):
                for n2, v2 in _proto_fields(value):
                    if n2 == 3 and isinstance(v2, int):
                        return bool(v2)
    except (IndexError, TokenizerError):
        return True
    return True


# ---------------------------------------------------------------- encoders
class _SpmEncoder:
    """SentencePiece encoding of plain text fragments (dummy prefix handled by the caller)."""

    def __init__(self, proto: bytes) -> None:
        import sentencepiece as spm

        self.sp = spm.SentencePieceProcessor()
        try:
            self.sp.LoadFromSerializedProto(proto)
        except Exception as exc:
            raise TokenizerError(f"sentencepiece rejected the rebuilt model: {exc}") from exc

    def __call__(self, text: str) -> list[int]:
        return list(self.sp.EncodeAsIds(text))


class _HFEncoder:
    """A `tokenizers.Tokenizer` encoding fragments without post-processing."""

    def __init__(self, tok: Any) -> None:
        self.tok = tok

    def __call__(self, text: str) -> list[int]:
        return list(self.tok.encode(text, add_special_tokens=False).ids)


class Tokenizer:
    """Text <-> token ids, plus the per-token byte strings constraints are built from.

    `token_bytes[i]` is exactly what token `i` adds to decoded text (control tokens: their
    text). `encode(text)` parses special-token text (e.g. `<|im_start|>`) into those ids
    unless `parse_special=False`; it never adds BOS unless `add_bos=True`.
    """

    def __init__(
        self,
        *,
        token_bytes: list[bytes],
        special_ids: frozenset[int],
        eos_token_ids: tuple[int, ...],
        bos_token_id: int | None,
        encoder: Callable[[str], list[int]],
        special_texts: dict[str, int],
        chat_template: str | None = None,
        dummy_prefix: bool = False,
        kind: str = "bpe",
        plain_encoder: Callable[[], Callable[[str], list[int]]] | None = None,
        source: str = "",
        add_bos_default: bool | None = None,
    ) -> None:
        self.token_bytes = token_bytes
        self.special_ids = special_ids
        self.eos_token_ids = eos_token_ids
        self.bos_token_id = bos_token_id
        self.chat_template = chat_template
        self.kind = kind
        self.source = source
        # whether prompts conventionally start with BOS (GGUF tokenizer.ggml.add_bos_token)
        self.add_bos_default = (kind == "spm") if add_bos_default is None else add_bos_default
        if self.bos_token_id is None:
            self.add_bos_default = False
        self._encoder = encoder
        self._plain_encoder_factory = plain_encoder
        self._special_texts = special_texts
        self._dummy_prefix = dummy_prefix
        self._special_re = (
            re.compile("|".join(re.escape(t) for t in sorted(special_texts, key=len, reverse=True)))
            if special_texts
            else None
        )

    # -------------------------------------------------------------- basics
    @property
    def vocab_size(self) -> int:
        """Number of token ids the tokenizer knows."""
        return len(self.token_bytes)

    def __len__(self) -> int:
        return len(self.token_bytes)

    @cached_property
    def _plain(self) -> Callable[[str], list[int]]:
        return self._plain_encoder_factory() if self._plain_encoder_factory else self._encoder

    def _fragment(self, text: str, first: bool, parse_special: bool) -> list[int]:
        if self._dummy_prefix and first:
            text = " " + text
        return (self._encoder if parse_special else self._plain)(text)

    def encode(self, text: str, add_bos: bool = False, parse_special: bool = True) -> list[int]:
        """Token ids of `text` (special-token text parsed into ids when `parse_special`)."""
        if not isinstance(text, str):
            raise TokenizerError(f"encode() expects str, got {type(text).__name__}")
        ids: list[int] = []
        if add_bos:
            if self.bos_token_id is None:
                raise TokenizerError("this tokenizer has no BOS token")
            ids.append(self.bos_token_id)
        if not text:
            return ids
        if self.kind == "spm":
            # SentencePiece sees special text only between fragments we split ourselves
            if parse_special and self._special_re is not None:
                pos, first = 0, True
                for m in self._special_re.finditer(text):
                    if m.start() > pos:
                        ids += self._fragment(text[pos : m.start()], first, True)
                    ids.append(self._special_texts[m.group()])
                    first = False
                    pos = m.end()
                if pos < len(text):
                    ids += self._fragment(text[pos:], first, True)
                return ids
            return ids + self._fragment(text, True, parse_special)
        return ids + (self._encoder if parse_special else self._plain)(text)

    def check_ids(self, ids: Sequence[int]) -> None:
        """Raise TokenizerError when an id is outside the vocabulary."""
        n = len(self.token_bytes)
        for i in ids:
            if not 0 <= int(i) < n:
                raise TokenizerError(f"token id {i} is out of range (vocabulary has {n} tokens)")

    def decode_bytes(self, ids: Sequence[int], skip_special: bool = False) -> bytes:
        """Concatenated bytes of `ids` (exact; may end inside a UTF-8 sequence)."""
        self.check_ids(ids)
        tb = self.token_bytes
        if skip_special:
            return b"".join(tb[i] for i in ids if i not in self.special_ids)
        return b"".join(tb[i] for i in ids)

    def decode(self, ids: Sequence[int], skip_special: bool = False) -> str:
        """Text of `ids`; SentencePiece's dummy-prefix space is dropped at the very start."""
        ids = [int(i) for i in ids]
        data = self.decode_bytes(ids, skip_special)
        if self._dummy_prefix and data.startswith(b" "):
            first = next((i for i in ids if i not in self.special_ids), None)
            if first is not None and self.token_bytes[first].startswith(b" "):
                data = data[1:]
        return data.decode("utf-8", errors="replace")

    # -------------------------------------------------------------- chat template
    def apply_chat_template(
        self,
        messages: Sequence[dict[str, Any]],
        add_generation_prompt: bool = True,
        chat_template: str | None = None,
        **kwargs: Any,
    ) -> str:
        """Render `messages` with the model's jinja2 chat template, as transformers does."""
        template = chat_template or self.chat_template
        if not template:
            raise ChatTemplateError(f"{self.source or 'tokenizer'}: no chat template available")
        special = {
            "bos_token": self._text_of(self.bos_token_id),
            "eos_token": self._text_of(self.eos_token_ids[0] if self.eos_token_ids else None),
        }
        return render_chat_template(
            template, list(messages), add_generation_prompt=add_generation_prompt, **{**special, **kwargs}
        )

    def _text_of(self, token_id: int | None) -> str:
        if token_id is None:
            return ""
        return self.token_bytes[token_id].decode("utf-8", errors="replace")

    # -------------------------------------------------------------- constructors
    @classmethod
    def from_gguf(cls, path: str | Path) -> Tokenizer:
        """The tokenizer stored in a GGUF file's metadata (vocabulary-only files work too)."""
        from .formats.gguf_file import read_gguf

        return cls.from_gguf_reader(read_gguf(Path(path)), source=str(path))

    @classmethod
    def from_gguf_reader(cls, reader: GGUFFile, source: str = "") -> Tokenizer:
        """Build from a parsed GGUF file (see `from_gguf`)."""
        from .formats.gguf_file import field_value, numeric_array, string_array

        model = field_value(reader, "tokenizer.ggml.model")
        raw_tokens = string_array(reader, "tokenizer.ggml.tokens")
        if model is None or raw_tokens is None:
            raise TokenizerError(f"{source}: GGUF file has no tokenizer metadata")
        types_arr = numeric_array(reader, "tokenizer.ggml.token_type")
        types = [int(t) for t in types_arr] if types_arr is not None else [NORMAL] * len(raw_tokens)
        texts = [t.decode("utf-8", errors="surrogateescape") for t in raw_tokens]

        def opt_id(key: str) -> int | None:
            v = field_value(reader, key)
            return None if v is None or int(v) < 0 or int(v) >= len(texts) else int(v)

        bos = opt_id("tokenizer.ggml.bos_token_id")
        eos = opt_id("tokenizer.ggml.eos_token_id")
        eos_ids: list[int] = [] if eos is None else [eos]
        for key in ("tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"):
            extra = opt_id(key)
            if extra is not None and extra not in eos_ids:
                eos_ids.append(extra)
        for i, (text, kind) in enumerate(zip(texts, types)):
            if kind == CONTROL and text in END_OF_GENERATION_TEXTS and i not in eos_ids:
                eos_ids.append(i)
        template = field_value(reader, "tokenizer.chat_template")
        add_bos = field_value(reader, "tokenizer.ggml.add_bos_token")
        special_ids = frozenset(i for i, k in enumerate(types) if k in SPECIAL_TYPES)
        if model == "gpt2":
            pre = str(field_value(reader, "tokenizer.ggml.pre", "default"))
            merges_raw = string_array(reader, "tokenizer.ggml.merges") or []
            merges = [m.decode("utf-8", errors="surrogateescape") for m in merges_raw]
            tok = _byte_level_bpe(texts, types, merges, pre, special_ids, tuple(eos_ids), bos, template, source)
            tok.add_bos_default = bool(add_bos) and bos is not None
            return tok
        if model == "llama":
            scores_arr = numeric_array(reader, "tokenizer.ggml.scores")
            scores = [float(s) for s in scores_arr] if scores_arr is not None else [0.0] * len(texts)
            add_prefix = bool(field_value(reader, "tokenizer.ggml.add_space_prefix", True))
            unk = opt_id("tokenizer.ggml.unknown_token_id")
            pad = opt_id("tokenizer.ggml.padding_token_id")
            tok = _sentencepiece_from_pieces(
                raw_tokens, scores, types, unk=unk, bos=bos, eos_ids=tuple(eos_ids), pad=pad,
                add_prefix=add_prefix, template=template, source=source,
            )
            if add_bos is not None:
                tok.add_bos_default = bool(add_bos) and bos is not None
            return tok
        raise TokenizerError(f"{source}: GGUF tokenizer model {model!r} is not supported (supported: gpt2, llama)")

    @classmethod
    def from_sentencepiece(cls, path: str | Path, chat_template: str | None = None) -> Tokenizer:
        """A SentencePiece `.model` file (pieces, scores and types read through sentencepiece)."""
        import sentencepiece as spm

        sp = spm.SentencePieceProcessor()
        try:
            sp.Load(str(path))
        except Exception as exc:
            raise TokenizerError(f"{path}: not a SentencePiece model ({exc})") from exc
        n = sp.GetPieceSize()
        pieces = [sp.IdToPiece(i).encode("utf-8") for i in range(n)]
        types = []
        for i in range(n):
            if sp.IsUnknown(i):
                types.append(UNKNOWN)
            elif sp.IsControl(i):
                types.append(CONTROL)
            elif sp.IsByte(i):
                types.append(BYTE)
            elif sp.IsUnused(i):
                types.append(UNUSED)
            else:
                types.append(NORMAL)
        scores = [sp.GetScore(i) for i in range(n)]

        def opt(v: int) -> int | None:
            return v if 0 <= v < n else None

        eos = opt(sp.eos_id())
        return _sentencepiece_from_pieces(
            pieces, scores, types, unk=opt(sp.unk_id()), bos=opt(sp.bos_id()),
            eos_ids=() if eos is None else (eos,), pad=opt(sp.pad_id()),
            add_prefix=spm_add_dummy_prefix(Path(path).read_bytes()),
            template=chat_template, source=str(path),
        )

    @classmethod
    def from_hf(cls, path: str | Path) -> Tokenizer:
        """An HF tokenizer: a folder with `tokenizer.json` (+ `tokenizer_config.json`) or the file."""
        p = Path(path)
        folder = p if p.is_dir() else p.parent
        tj = p / "tokenizer.json" if p.is_dir() else p
        if not tj.is_file():
            if (folder / "tokenizer.model").is_file():
                config = _read_json(folder / "tokenizer_config.json")
                return cls.from_sentencepiece(folder / "tokenizer.model", _chat_template_of(folder, config))
            raise TokenizerError(f"{p}: no tokenizer.json or tokenizer.model found")
        return _from_tokenizer_json(tj, folder)


# ---------------------------------------------------------------- builders
def _byte_level_bpe(
    texts: list[str],
    types: list[int],
    merges: list[str],
    pre: str,
    special_ids: frozenset[int],
    eos_ids: tuple[int, ...],
    bos: int | None,
    template: str | None,
    source: str,
) -> Tokenizer:
    from tokenizers import AddedToken, Regex, decoders, models, pre_tokenizers
    from tokenizers import Tokenizer as HFTokenizer

    if pre not in PRE_TOKENIZERS:
        raise TokenizerError(
            f"{source}: GGUF pre-tokenizer {pre!r} is not supported (supported: {', '.join(sorted(PRE_TOKENIZERS))})"
        )
    regexes, ignore_merges = PRE_TOKENIZERS[pre]
    vocab: dict[str, int] = {}
    for i, t in enumerate(texts):
        vocab.setdefault(t, i)
    pairs: list[tuple[str, str]] = []
    for m in merges:
        a, sep, b = m.partition(" ")
        if not sep:
            raise TokenizerError(f"{source}: malformed BPE merge {m!r}")
        pairs.append((a, b))
    try:
        bpe = models.BPE(vocab, pairs, ignore_merges=ignore_merges)
    except Exception as exc:
        raise TokenizerError(f"{source}: cannot build a BPE model from the GGUF vocabulary ({exc})") from exc

    def build(with_control: bool) -> HFTokenizer:
        tok = HFTokenizer(bpe)
        tok.pre_tokenizer = pre_tokenizers.Sequence(
            [pre_tokenizers.Split(Regex(r), behavior="isolated") for r in regexes]
            + [pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]
        )
        tok.decoder = decoders.ByteLevel()
        user = [AddedToken(texts[i], special=False, normalized=False) for i, k in enumerate(types) if k == USER_DEFINED]
        if user:
            tok.add_tokens(user)
        control = [
            AddedToken(texts[i], special=True, normalized=False)
            for i, k in enumerate(types)
            if k == CONTROL and texts[i] and vocab.get(texts[i]) == i
        ]
        if control:
            tok.add_special_tokens(control)
            if not with_control:
                tok.encode_special_tokens = True
        return tok

    token_bytes = [
        byte_level_to_bytes(t) if k in (NORMAL, BYTE) else t.encode("utf-8", errors="surrogateescape")
        for t, k in zip(texts, types)
    ]
    special_texts = {texts[i]: i for i in special_ids if texts[i]}
    return Tokenizer(
        token_bytes=token_bytes,
        special_ids=special_ids,
        eos_token_ids=eos_ids,
        bos_token_id=bos,
        encoder=_HFEncoder(build(True)),
        plain_encoder=lambda: _HFEncoder(build(False)),
        special_texts=special_texts,
        chat_template=template,
        kind="bpe",
        source=source,
    )


def _sentencepiece_from_pieces(
    pieces: Sequence[bytes],
    scores: Sequence[float],
    types: Sequence[int],
    *,
    unk: int | None,
    bos: int | None,
    eos_ids: tuple[int, ...],
    pad: int | None,
    add_prefix: bool,
    template: str | None,
    source: str,
) -> Tokenizer:
    if unk is None:
        unk = next((i for i, k in enumerate(types) if k == UNKNOWN), None)
    if unk is None:
        raise TokenizerError(f"{source}: SentencePiece vocabulary has no unknown token")
    types = list(types)
    types[unk] = UNKNOWN
    proto = sentencepiece_model_proto(
        pieces, scores, types,
        unk_id=unk,
        bos_id=-1 if bos is None else bos,
        eos_id=-1 if not eos_ids else eos_ids[0],
        pad_id=-1 if pad is None or pad in (unk, bos) or pad in eos_ids else pad,
        byte_fallback=any(k == BYTE for k in types),
    )
    texts = [p.decode("utf-8", errors="replace") for p in pieces]
    token_bytes = [spm_piece_to_bytes(t, k) for t, k in zip(texts, types)]
    special_ids = frozenset(i for i, k in enumerate(types) if k in SPECIAL_TYPES)
    special_texts = {texts[i]: i for i in special_ids if texts[i] and types[i] == CONTROL}
    return Tokenizer(
        token_bytes=token_bytes,
        special_ids=special_ids,
        eos_token_ids=eos_ids,
        bos_token_id=bos,
        encoder=_SpmEncoder(proto),
        special_texts=special_texts,
        chat_template=template,
        dummy_prefix=add_prefix,
        kind="spm",
        source=source,
    )


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise TokenizerError(f"{path}: unreadable JSON ({exc})") from exc
    return data if isinstance(data, dict) else {}


def _chat_template_of(folder: Path, config: dict[str, Any]) -> str | None:
    jinja = folder / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text(encoding="utf-8")
    tpl = config.get("chat_template")
    if isinstance(tpl, list):  # named templates: pick "default"
        named = {t.get("name"): t.get("template") for t in tpl if isinstance(t, dict)}
        tpl = named.get("default") or next(iter(named.values()), None)
    return tpl if isinstance(tpl, str) else None


def _token_text(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else None


def _from_tokenizer_json(tj: Path, folder: Path) -> Tokenizer:
    from tokenizers import Tokenizer as HFTokenizer

    try:
        tok = HFTokenizer.from_file(str(tj))
    except Exception as exc:
        raise TokenizerError(f"{tj}: not a tokenizer.json ({exc})") from exc
    spec = json.loads(tj.read_text(encoding="utf-8"))
    config = _read_json(folder / "tokenizer_config.json")
    n = tok.get_vocab_size(with_added_tokens=True)
    id_to_text = {i: tok.id_to_token(i) for i in range(n)}
    n = max(i for i, t in id_to_text.items() if t is not None) + 1
    added = {int(a["id"]): a for a in spec.get("added_tokens", [])}
    byte_level = "ByteLevel" in json.dumps(spec.get("decoder")) or "ByteLevel" in json.dumps(spec.get("pre_tokenizer"))
    token_bytes: list[bytes] = []
    for i in range(n):
        text = id_to_text.get(i) or ""
        if i in added:
            token_bytes.append(text.encode("utf-8"))
        elif byte_level:
            token_bytes.append(byte_level_to_bytes(text))
        else:
            token_bytes.append(spm_piece_to_bytes(text, BYTE if _BYTE_PIECE.fullmatch(text) else NORMAL))
    special_ids = frozenset(i for i, a in added.items() if a.get("special"))
    by_text = {id_to_text[i]: i for i in range(n) if id_to_text.get(i) is not None}

    def id_of(key: str) -> int | None:
        text = _token_text(config.get(key))
        return by_text.get(text) if text is not None else None

    eos_ids: list[int] = []
    eos = id_of("eos_token")
    if eos is not None:
        eos_ids.append(eos)
    gen = _read_json(folder / "generation_config.json").get("eos_token_id")
    for e in gen if isinstance(gen, list) else [gen] if isinstance(gen, int) else []:
        if e not in eos_ids and 0 <= e < n:
            eos_ids.append(e)
    plain_spec = tok.to_str()

    def plain() -> Callable[[str], list[int]]:
        t2 = HFTokenizer.from_str(plain_spec)
        t2.encode_special_tokens = True
        return _HFEncoder(t2)

    return Tokenizer(
        token_bytes=token_bytes,
        special_ids=special_ids,
        eos_token_ids=tuple(eos_ids),
        bos_token_id=id_of("bos_token"),
        encoder=_HFEncoder(tok),
        plain_encoder=plain,
        special_texts={t: i for i in special_ids if (t := id_to_text.get(i))},
        chat_template=_chat_template_of(folder, config),
        kind="hf",
        source=str(tj),
    )


# ---------------------------------------------------------------- chat templates
@cache
def _compiled_template(template: str) -> Any:
    import jinja2
    from jinja2.ext import loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str) -> None:
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x: Any, ensure_ascii: bool = False, indent: int | None = None,
               separators: tuple[str, str] | None = None, sort_keys: bool = False) -> str:
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(fmt: str) -> str:
        return datetime.now().strftime(fmt)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    try:
        return env.from_string(template)
    except jinja2.exceptions.TemplateError as exc:
        raise ChatTemplateError(f"chat template does not compile: {exc}") from exc


def render_chat_template(template: str, messages: list[dict[str, Any]], **variables: Any) -> str:
    """Render a chat template with jinja2 configured as transformers configures it."""
    import jinja2

    for i, m in enumerate(messages):
        if not isinstance(m, dict) or "role" not in m:
            raise ChatTemplateError(f"message {i} must be a dict with a 'role' (got {m!r})")
    try:
        return str(_compiled_template(template).render(messages=messages, **variables))
    except jinja2.exceptions.TemplateError as exc:
        raise ChatTemplateError(f"chat template failed: {exc}") from exc
