"""Vocabulary: token id -> the exact bytes the token adds to the decoded text.

A constraint only needs three facts about a tokenizer: the byte string of every token,
which ids are control tokens (never produced by a constraint, except EOS), and how wide
the model's logit vector is. Constructors normalise every tokenizer family to that:
SentencePiece (``▁`` is a space, ``<0xNN>`` is one raw byte), GPT-2 byte-level BPE
(printable stand-in characters map back to bytes) and raw byte vocabularies.
"""
from __future__ import annotations

import hashlib
import json
import mmap
import os
import struct
from collections.abc import Iterable, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from .errors import VocabularyError

__all__ = ["Vocabulary", "gpt2_byte_decoder"]

_SPM_SPACE = "\u2581"  # '▁', SentencePiece's visible space

# llama.cpp token types (tokenizer.ggml.token_type)
_TT_UNDEFINED, _TT_NORMAL, _TT_UNKNOWN, _TT_CONTROL, _TT_USER_DEFINED, _TT_UNUSED, _TT_BYTE = range(7)

# HF special-token names recognised as end-of-sequence when nothing says otherwise
_EOS_NAMES = ("</s>", "<|endoftext|>", "<|end_of_text|>", "<|eot_id|>", "<|im_end|>", "<eos>",
              "<end_of_turn>", "<|end|>")


def gpt2_byte_decoder() -> dict[str, int]:
    """GPT-2's byte-level alphabet: printable stand-in character -> the byte it encodes.

    Bytes that are printable and not whitespace stand for themselves; the other 68 bytes
    are shifted, in order, to code points 256, 257, ... so every token is printable text.
    """
    direct = [*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    table = {chr(b): b for b in direct}
    shifted = 0
    for b in range(256):
        if b not in direct:
            table[chr(256 + shifted)] = b
            shifted += 1
    return table


_BYTE_DECODER = gpt2_byte_decoder()


def _byte_level_bytes(text: str, where: str) -> bytes:
    """Bytes of a GPT-2 byte-level token string; unknown characters are an error."""
    try:
        return bytes(_BYTE_DECODER[ch] for ch in text)
    except KeyError as exc:
        raise VocabularyError(f"{where}: token {text!r} has a character outside the "
                              f"byte-level alphabet: {exc.args[0]!r}") from None


def _byte_fallback(piece: str) -> int | None:
    """The byte of a SentencePiece ``<0xNN>`` piece, else None."""
    if len(piece) == 6 and piece.startswith("<0x") and piece.endswith(">"):
        try:
            return int(piece[3:5], 16)
        except ValueError:
            return None
    return None


class Vocabulary:
    """Immutable token table of one model: bytes per id, EOS / control ids, logit width.

    ``tokens[i]`` is exactly what token ``i`` appends to the output bytes (control tokens
    keep their display text but are never allowed by a constraint, except EOS when the
    output is accepted). Ids in ``[len(tokens), logit_width)`` are padding: always masked.
    """

    __slots__ = ("tokens", "eos_token_ids", "special_token_ids", "logit_width", "__dict__")

    tokens: tuple[bytes, ...]
    eos_token_ids: tuple[int, ...]
    special_token_ids: frozenset[int]
    logit_width: int

    def __init__(self, tokens: Sequence[bytes], eos_token_ids: Iterable[int],
                 special_token_ids: Iterable[int] = (), logit_width: int | None = None) -> None:
        toks = tuple(tokens)
        for i, t in enumerate(toks):
            if not isinstance(t, bytes):
                raise VocabularyError(f"token {i} is {type(t).__name__}, expected bytes")
        n = len(toks)
        if n == 0:
            raise VocabularyError("a vocabulary needs at least one token")
        eos = tuple(dict.fromkeys(int(e) for e in eos_token_ids))
        if not eos:
            raise VocabularyError("a vocabulary needs at least one EOS token id")
        special = frozenset(int(s) for s in special_token_ids) | frozenset(eos)
        for what, ids in (("EOS", eos), ("special", special)):
            bad = [i for i in ids if not 0 <= i < n]
            if bad:
                raise VocabularyError(f"{what} token id(s) {sorted(bad)[:5]} outside [0, {n})")
        width = n if logit_width is None else int(logit_width)
        if width < n:
            raise VocabularyError(f"logit_width {width} is smaller than the {n} tokens")
        object.__setattr__(self, "tokens", toks)
        object.__setattr__(self, "eos_token_ids", eos)
        object.__setattr__(self, "special_token_ids", special)
        object.__setattr__(self, "logit_width", width)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in Vocabulary.__slots__:
            raise AttributeError(f"Vocabulary is immutable (cannot set {name!r})")
        object.__setattr__(self, name, value)  # cached_property values only

    def __delattr__(self, name: str) -> None:
        raise AttributeError("Vocabulary is immutable")

    # ----------------------------------------------------------------- derived facts
    def __len__(self) -> int:
        return len(self.tokens)

    def __repr__(self) -> str:
        return (f"Vocabulary({len(self.tokens)} tokens, eos={list(self.eos_token_ids)}, "
                f"{len(self.special_token_ids)} special, logit_width={self.logit_width})")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and other.fingerprint == self.fingerprint

    def __hash__(self) -> int:
        return hash(self.fingerprint)

    @cached_property
    def fingerprint(self) -> str:
        """Stable content hash (tokens, EOS/special ids, width): the key of every cache."""
        h = hashlib.sha256()
        lengths = np.fromiter((len(t) for t in self.tokens), dtype="<u4", count=len(self.tokens))
        h.update(np.asarray([len(self.tokens), self.logit_width], dtype="<u8").tobytes())
        h.update(lengths.tobytes())
        h.update(b"".join(self.tokens))
        h.update(np.asarray(self.eos_token_ids, dtype="<u8").tobytes())
        h.update(np.asarray(sorted(self.special_token_ids), dtype="<u8").tobytes())
        return h.hexdigest()[:32]

    @cached_property
    def text_token_ids(self) -> np.ndarray:
        """Ids a constraint may allow as text: not special and not empty (read-only int32)."""
        ok = np.fromiter((len(t) > 0 for t in self.tokens), dtype=bool, count=len(self.tokens))
        if self.special_token_ids:
            ok[np.fromiter(self.special_token_ids, dtype=np.int64)] = False
        ids = np.flatnonzero(ok).astype(np.int32)
        ids.setflags(write=False)
        return ids

    def decode(self, ids: Iterable[int]) -> bytes:
        """Concatenated bytes of ``ids`` (special tokens contribute their display text)."""
        try:
            return b"".join(self.tokens[i] for i in ids)
        except (IndexError, TypeError) as exc:
            raise VocabularyError(f"cannot decode ids: {exc}") from None

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_tokens(cls, tokens: Sequence[bytes], eos_token_ids: Iterable[int],
                    special_token_ids: Iterable[int] = (),
                    logit_width: int | None = None) -> "Vocabulary":
        """A vocabulary from raw token byte strings (tiktoken-style or hand-made)."""
        return cls(tokens, eos_token_ids, special_token_ids, logit_width)

    @classmethod
    def from_model(cls, model: Any) -> "Vocabulary":
        """The vocabulary of any object with the LM protocol (duck-typed, no engine import).

        Reads ``model.tokenizer.token_bytes``, ``.special_ids``, ``.eos_token_ids`` and
        ``model.logit_width``.
        """
        try:
            tok = model.tokenizer
            token_bytes = list(tok.token_bytes)
            special = list(tok.special_ids)
            eos = list(tok.eos_token_ids)
            width = int(model.logit_width)
        except AttributeError as exc:
            raise VocabularyError(f"object does not implement the LM protocol: {exc}") from None
        return cls(token_bytes, eos, special, width)

    @classmethod
    def from_gguf(cls, path: str | os.PathLike[str],
                  logit_width: int | None = None) -> "Vocabulary":
        """Read ``tokenizer.ggml.*`` metadata of a GGUF file (any GGUF: model or vocab-only).

        The metadata is scanned directly (see :func:`_read_gguf_metadata`): the ``gguf``
        package's reader materialises every array element and takes ~10 s on a 128k
        vocabulary; the tests check both readers agree.

        SentencePiece-style models (``llama``, ``t5``) map ``▁`` to a space and ``<0xNN>``
        byte tokens to their byte; ``gpt2`` (byte-level BPE) maps the byte alphabet back.
        Control, unknown and unused tokens are special; user-defined tokens are literal text.
        EOS ids: ``eos_token_id`` plus ``eot_token_id`` / ``eom_token_id`` when present.
        """
        where = os.fspath(path)
        if not Path(where).is_file():
            raise VocabularyError(f"{where}: no such GGUF file")
        meta = _read_gguf_metadata(where, prefix="tokenizer.ggml.")

        def field(name: str) -> Any:
            if name not in meta:
                raise VocabularyError(f"{where}: missing GGUF metadata {name!r}")
            return meta[name]

        def scalar(name: str) -> int | None:
            value = meta.get(name)
            return None if value is None else int(value)

        model_kind = field("tokenizer.ggml.model")
        if not isinstance(model_kind, str):
            raise VocabularyError(f"{where}: tokenizer.ggml.model is not a string")
        raw_tokens = field("tokenizer.ggml.tokens")
        if not isinstance(raw_tokens, list):
            raise VocabularyError(f"{where}: tokenizer.ggml.tokens is not a string array")
        texts = [t.decode("utf-8", errors="surrogateescape") for t in raw_tokens]
        n = len(texts)
        raw_types = meta.get("tokenizer.ggml.token_type")
        if raw_types is not None:
            types = np.asarray(raw_types, dtype=np.int64)
            if len(types) != n:
                raise VocabularyError(f"{where}: {len(types)} token types for {n} tokens")
        else:
            types = np.full(n, _TT_NORMAL, dtype=np.int64)

        if model_kind in ("llama", "t5"):
            spm = True
        elif model_kind == "gpt2":
            spm = False
        else:
            raise VocabularyError(f"{where}: tokenizer model {model_kind!r} is not supported "
                                  "(supported: llama/t5 SentencePiece, gpt2 byte-level BPE)")

        tokens: list[bytes] = []
        special: list[int] = []
        for i, (text, ty) in enumerate(zip(texts, types.tolist())):
            if ty in (_TT_CONTROL, _TT_UNKNOWN, _TT_UNUSED):
                special.append(i)
                tokens.append(text.encode("utf-8", errors="surrogateescape"))
            elif ty == _TT_BYTE or (spm and _byte_fallback(text) is not None
                                    and ty != _TT_USER_DEFINED):
                b = _byte_fallback(text)
                if b is None:
                    raise VocabularyError(f"{where}: byte token {i} is {text!r}, not <0xNN>")
                tokens.append(bytes([b]))
            elif ty == _TT_USER_DEFINED:
                raw = text.replace(_SPM_SPACE, " ") if spm else text
                tokens.append(raw.encode("utf-8", errors="surrogateescape"))
            elif spm:
                tokens.append(text.replace(_SPM_SPACE, " ").encode("utf-8", errors="surrogateescape"))
            else:
                tokens.append(_byte_level_bytes(text, f"{where}: token {i}"))

        eos = [e for e in (scalar("tokenizer.ggml.eos_token_id"),
                           scalar("tokenizer.ggml.eot_token_id"),
                           scalar("tokenizer.ggml.eom_token_id")) if e is not None and e >= 0]
        if not eos:
            raise VocabularyError(f"{where}: missing GGUF metadata 'tokenizer.ggml.eos_token_id'")
        return cls(tokens, eos, special, logit_width)

    @classmethod
    def from_sentencepiece(cls, path: str | os.PathLike[str],
                           eos_token_ids: Iterable[int] | None = None,
                           logit_width: int | None = None) -> "Vocabulary":
        """Read a SentencePiece ``.model`` file (``▁`` -> space, ``<0xNN>`` byte pieces)."""
        import sentencepiece

        where = os.fspath(path)
        if not Path(where).is_file():
            raise VocabularyError(f"{where}: no such SentencePiece model")
        sp = sentencepiece.SentencePieceProcessor()
        try:
            sp.Load(where)
        except (OSError, RuntimeError) as exc:
            raise VocabularyError(f"{where}: not a SentencePiece model ({exc})") from None
        tokens: list[bytes] = []
        special: list[int] = []
        for i in range(sp.GetPieceSize()):
            piece = sp.IdToPiece(i)
            if sp.IsControl(i) or sp.IsUnknown(i) or sp.IsUnused(i):
                special.append(i)
                tokens.append(piece.encode("utf-8"))
            elif sp.IsByte(i):
                b = _byte_fallback(piece)
                if b is None:
                    raise VocabularyError(f"{where}: byte piece {i} is {piece!r}")
                tokens.append(bytes([b]))
            else:
                tokens.append(piece.replace(_SPM_SPACE, " ").encode("utf-8"))
        if eos_token_ids is None:
            eos_token_ids = [sp.eos_id()] if sp.eos_id() >= 0 else []
            if not eos_token_ids:
                raise VocabularyError(f"{where}: the model defines no EOS piece; pass eos_token_ids")
        return cls(tokens, eos_token_ids, special, logit_width)

    @classmethod
    def from_hf_tokenizer(cls, tokenizer: Any, eos_token_ids: Iterable[int] | None = None,
                          logit_width: int | None = None) -> "Vocabulary":
        """From a ``tokenizers.Tokenizer``, a ``tokenizer.json`` path or a folder holding one.

        The decoder decides the token text convention: ``ByteLevel`` (GPT-2 alphabet) or
        SentencePiece-style (``▁`` / ``Metaspace`` / ``ByteFallback``). Special added tokens
        are control tokens. EOS: ``eos_token_ids``, else ``tokenizer_config.json`` next to
        the file, else a well-known EOS name among the special tokens.
        """
        import tokenizers

        config_eos: str | None = None
        if isinstance(tokenizer, tokenizers.Tokenizer):
            tok = tokenizer
        else:
            p = Path(os.fspath(tokenizer))
            file = p / "tokenizer.json" if p.is_dir() else p
            if not file.is_file():
                raise VocabularyError(f"{p}: no tokenizer.json found")
            try:
                tok = tokenizers.Tokenizer.from_file(str(file))
            except Exception as exc:  # tokenizers raises a bare Exception on bad JSON
                raise VocabularyError(f"{file}: not a tokenizers JSON file ({exc})") from None
            cfg = file.parent / "tokenizer_config.json"
            if cfg.is_file():
                try:
                    value = json.loads(cfg.read_text(encoding="utf-8")).get("eos_token")
                except (OSError, ValueError, AttributeError):
                    value = None
                if isinstance(value, dict):
                    value = value.get("content")
                config_eos = value if isinstance(value, str) else None

        spec = json.loads(tok.to_str())
        byte_level = _decoder_is_byte_level(spec.get("decoder"))
        vocab_size = tok.get_vocab_size(with_added_tokens=True)
        added = tok.get_added_tokens_decoder()
        tokens: list[bytes] = []
        special: list[int] = []
        for i in range(vocab_size):
            text = tok.id_to_token(i)
            if text is None:
                # a hole in the id space: never producible
                special.append(i)
                tokens.append(b"")
                continue
            a = added.get(i)
            if a is not None:
                if a.special:
                    special.append(i)
                tokens.append(text.encode("utf-8"))
            elif byte_level:
                tokens.append(_byte_level_bytes(text, f"token {i}"))
            else:
                b = _byte_fallback(text)
                tokens.append(bytes([b]) if b is not None
                              else text.replace(_SPM_SPACE, " ").encode("utf-8"))
        if eos_token_ids is None:
            eos_list: list[int] = []
            config_eos_id = tok.token_to_id(config_eos) if config_eos is not None else None
            if config_eos_id is not None:
                eos_list.append(config_eos_id)
            else:
                for i in special:
                    if tokens[i].decode("utf-8", errors="replace") in _EOS_NAMES:
                        eos_list.append(i)
            if not eos_list:
                raise VocabularyError("cannot tell the EOS token of this tokenizer; pass eos_token_ids")
            eos_token_ids = eos_list
        return cls(tokens, eos_token_ids, special, logit_width)


_GGUF_MAGIC = b"GGUF"
# GGUF value type -> numpy dtype of scalars / array elements (8 = string, 9 = array)
_GGUF_NUMERIC = {0: "<u1", 1: "<i1", 2: "<u2", 3: "<i2", 4: "<u4", 5: "<i4", 6: "<f4", 7: "<u1",
                 10: "<u8", 11: "<i8", 12: "<f8"}


def _read_gguf_metadata(path: str, prefix: str = "") -> dict[str, Any]:
    """Key/value metadata of a little-endian GGUF v2/v3 file, for keys starting with ``prefix``.

    Strings come back as ``str`` (invalid UTF-8 kept via surrogateescape), string arrays
    as ``list[bytes]``, numeric arrays as numpy arrays, scalars as Python numbers.
    Raises ``VocabularyError`` for anything that is not a well-formed GGUF header.
    """
    try:
        with open(path, "rb") as fh:
            data = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError) as exc:
        raise VocabularyError(f"{path}: not a readable GGUF file ({exc})") from None
    try:
        return _parse_gguf_metadata(path, data, prefix)
    finally:
        data.close()


def _parse_gguf_metadata(path: str, data: mmap.mmap, prefix: str) -> dict[str, Any]:
    """The scan behind :func:`_read_gguf_metadata` (``data`` is the mapped file)."""
    buf = data
    u32, u64 = struct.Struct("<I"), struct.Struct("<Q")
    if data[:4] != _GGUF_MAGIC:
        raise VocabularyError(f"{path}: not a readable GGUF file (bad magic {data[:4]!r})")
    try:
        version = u32.unpack_from(buf, 4)[0]
        if version not in (2, 3):
            raise VocabularyError(f"{path}: not a readable GGUF file (unsupported version "
                                  f"{version}; little-endian v2/v3 only)")
        n_kv = u64.unpack_from(buf, 16)[0]
        off = 24
        out: dict[str, Any] = {}

        def read_str(off: int) -> tuple[bytes, int]:
            n = u64.unpack_from(buf, off)[0]
            end = off + 8 + n
            if end > len(data):
                raise VocabularyError(f"{path}: not a readable GGUF file (truncated string)")
            return data[off + 8:end], end

        for _ in range(n_kv):
            key_b, off = read_str(off)
            vtype = u32.unpack_from(buf, off)[0]
            off += 4
            key = key_b.decode("utf-8", errors="replace")
            keep = key.startswith(prefix)
            if vtype == 8:
                s, off = read_str(off)
                value: Any = s.decode("utf-8", errors="surrogateescape")
            elif vtype in _GGUF_NUMERIC:
                dt = np.dtype(_GGUF_NUMERIC[vtype])
                value = np.frombuffer(data[off:off + dt.itemsize], dtype=dt)[0].item()
                off += dt.itemsize
            elif vtype == 9:
                etype = u32.unpack_from(buf, off)[0]
                count = u64.unpack_from(buf, off + 4)[0]
                off += 12
                if etype == 8:
                    items: list[bytes] = []
                    append = items.append
                    unpack = u64.unpack_from
                    for _ in range(count):
                        n = unpack(buf, off)[0]
                        append(data[off + 8:off + 8 + n])
                        off += 8 + n
                    if off > len(data):
                        raise VocabularyError(f"{path}: not a readable GGUF file (truncated array)")
                    value = items
                elif etype in _GGUF_NUMERIC:
                    dt = np.dtype(_GGUF_NUMERIC[etype])
                    size = dt.itemsize * count
                    if off + size > len(data):
                        raise VocabularyError(f"{path}: not a readable GGUF file (truncated array)")
                    value = np.frombuffer(data[off:off + size], dtype=dt)
                    off += size
                else:
                    raise VocabularyError(f"{path}: GGUF key {key!r} has an unsupported array type {etype}")
            else:
                raise VocabularyError(f"{path}: GGUF key {key!r} has an unknown value type {vtype}")
            if keep:
                out[key] = value
        return out
    except (struct.error, ValueError) as exc:
        raise VocabularyError(f"{path}: not a readable GGUF file ({exc})") from None


def _decoder_is_byte_level(decoder: Any) -> bool:
    """Whether a tokenizers decoder spec (JSON) contains a ByteLevel decoder."""
    if not isinstance(decoder, dict):
        return False
    if decoder.get("type") == "ByteLevel":
        return True
    return any(_decoder_is_byte_level(d) for d in decoder.get("decoders", []) or [])
