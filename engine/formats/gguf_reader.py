"""A lean GGUF parser: metadata into Python values, tensors as memory-mapped byte views.

gguf.GGUFReader builds a numpy array per string (tens of seconds and ~150 MB for a 128k
vocabulary); here string arrays are parsed in one pass into `bytes`. Dequantisation still
uses `gguf.quants`. Format: magic "GGUF", version (2/3), tensor count, KV count, KV pairs,
tensor infos, padding to `general.alignment`, tensor data.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelFormatError, UnsupportedQuantType

GGUF_MAGIC = b"GGUF"
# GGUF value types -> struct format (scalars)
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_NUMPY = {0: np.uint8, 1: np.int8, 2: np.uint16, 3: np.int16, 4: np.uint32, 5: np.int32, 6: np.float32,
          7: np.bool_, 10: np.uint64, 11: np.int64, 12: np.float64}
STRING, ARRAY = 8, 9


@dataclass(frozen=True)
class TensorInfo:
    """One tensor: name, ggml shape (fastest dimension first), quant type, raw bytes."""

    name: str
    shape: tuple[int, ...]
    qtype: int
    data: np.ndarray  # uint8 [rows, bytes_per_row] view into the file

    @property
    def type_name(self) -> str:
        """The quant type's name (e.g. Q4_1)."""
        import gguf

        return gguf.GGMLQuantizationType(self.qtype).name


class _Cursor:
    def __init__(self, buf: memoryview, path: Path) -> None:
        self.buf, self.pos, self.path = buf, 0, path

    def take(self, n: int) -> memoryview:
        end = self.pos + n
        if n < 0 or end > len(self.buf):
            raise ModelFormatError(f"{self.path}: truncated GGUF file (needed {n} bytes at offset {self.pos})")
        out = self.buf[self.pos : end]
        self.pos = end
        return out

    def unpack(self, fmt: str) -> Any:
        size = struct.calcsize(fmt)
        return struct.unpack(fmt, self.take(size))[0]

    def string(self) -> bytes:
        return bytes(self.take(self.unpack("<Q")))

    def value(self, vtype: int) -> Any:
        if vtype == STRING:
            return self.string().decode("utf-8", errors="surrogateescape")
        if vtype in _SCALARS:
            return self.unpack(_SCALARS[vtype])
        if vtype == ARRAY:
            itype, count = self.unpack("<I"), self.unpack("<Q")
            if itype == STRING:
                return self.strings(count)
            if itype in _NUMPY:
                dt = np.dtype(_NUMPY[itype])
                return np.frombuffer(self.take(count * dt.itemsize), dtype=dt).copy()
            if itype == ARRAY:
                return [self.value(ARRAY) for _ in range(count)]
        raise ModelFormatError(f"{self.path}: corrupt GGUF file (unknown value type {vtype} at offset {self.pos})")

    def strings(self, count: int) -> list[bytes]:
        buf, pos, n = self.buf, self.pos, len(self.buf)
        out: list[bytes] = []
        unpack_from = struct.unpack_from
        for _ in range(count):
            if pos + 8 > n:
                raise ModelFormatError(f"{self.path}: truncated GGUF file (string array at offset {pos})")
            (length,) = unpack_from("<Q", buf, pos)
            pos += 8
            if pos + length > n:
                raise ModelFormatError(f"{self.path}: truncated GGUF file (string array at offset {pos})")
            out.append(bytes(buf[pos : pos + length]))
            pos += length
        self.pos = pos
        return out


class GGUFFile:
    """Parsed GGUF metadata (`fields`) and tensors (`tensors`, by name), file memory-mapped."""

    def __init__(self, path: str | Path) -> None:
        import gguf

        self.path = Path(path)
        try:
            size = self.path.stat().st_size
            with open(self.path, "rb") as fh:
                magic = fh.read(4)
        except OSError as exc:
            raise ModelFormatError(f"{self.path}: cannot read ({exc})") from exc
        if magic != GGUF_MAGIC:
            raise ModelFormatError(f"{self.path}: not a GGUF file (magic {magic!r}, expected {GGUF_MAGIC!r})")
        self._map = np.memmap(self.path, dtype=np.uint8, mode="r")
        cur = _Cursor(memoryview(self._map), self.path)  # type: ignore[arg-type]
        cur.take(4)
        self.version = cur.unpack("<I")
        if self.version not in (2, 3):
            raise ModelFormatError(f"{self.path}: unsupported GGUF version {self.version}")
        n_tensors, n_kv = cur.unpack("<Q"), cur.unpack("<Q")
        if n_tensors > size or n_kv > size:
            raise ModelFormatError(f"{self.path}: corrupt GGUF header ({n_tensors} tensors, {n_kv} keys)")
        self.fields: dict[str, Any] = {}
        for _ in range(n_kv):
            key = cur.string().decode("utf-8", errors="replace")
            self.fields[key] = cur.value(cur.unpack("<I"))
        infos = []
        for _ in range(n_tensors):
            name = cur.string().decode("utf-8", errors="replace")
            n_dims = cur.unpack("<I")
            if n_dims > 8:
                raise ModelFormatError(f"{self.path}: corrupt tensor info for {name!r} ({n_dims} dims)")
            shape = tuple(cur.unpack("<Q") for _ in range(n_dims))
            infos.append((name, shape, cur.unpack("<I"), cur.unpack("<Q")))
        align = int(self.fields.get("general.alignment", 32))
        start = cur.pos + (-cur.pos % align)
        self.tensors: dict[str, TensorInfo] = {}
        for name, shape, qtype, offset in infos:
            sizes = gguf.GGML_QUANT_SIZES.get(gguf.GGMLQuantizationType(qtype)) if qtype in _QTYPES else None
            if sizes is None:
                raise UnsupportedQuantType(f"{self.path}: tensor {name!r} has unknown quantisation type {qtype}")
            block, type_size = sizes
            row = int(shape[0]) if shape else 1
            rows = int(np.prod(shape[1:])) if len(shape) > 1 else 1
            if row % block:
                raise ModelFormatError(f"{self.path}: tensor {name!r} row of {row} is not a multiple of {block}")
            row_bytes = row // block * type_size
            begin, end = start + offset, start + offset + rows * row_bytes
            if end > size:
                raise ModelFormatError(
                    f"{self.path}: truncated GGUF file: tensor {name!r} ends at byte {end} but the file has {size}"
                )
            data = self._map[begin:end].reshape(rows, row_bytes)
            self.tensors[name] = TensorInfo(name, shape, qtype, data)

    def get(self, key: str, default: Any = None) -> Any:
        """Metadata value of `key` (scalars as Python values, arrays as numpy / list[bytes])."""
        return self.fields.get(key, default)


def _known_qtypes() -> frozenset[int]:
    import gguf

    return frozenset(int(t) for t in gguf.GGMLQuantizationType)


_QTYPES = _known_qtypes()


def dequantize(t: TensorInfo, path: Path, chunk_rows: int = 4096) -> np.ndarray:
    """Tensor `t` as float32 [rows..., row] (numpy order), dequantised in row chunks."""
    import gguf
    from gguf.quants import dequantize as gg_dequantize

    qtype = gguf.GGMLQuantizationType(t.qtype)
    expected = tuple(int(x) for x in reversed(t.shape)) or (1,)
    try:
        parts = [np.asarray(gg_dequantize(np.asarray(t.data[i : i + chunk_rows]), qtype), dtype=np.float32)
                 for i in range(0, t.data.shape[0], chunk_rows)]
    except NotImplementedError as exc:
        raise UnsupportedQuantType(
            f"{path}: tensor {t.name!r} uses quantisation type {qtype.name}, which cannot be dequantised"
        ) from exc
    arr = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)
    if arr.size != int(np.prod(expected)):
        raise ModelFormatError(f"{path}: tensor {t.name!r} has {arr.size} values, expected shape {expected}")
    return arr.reshape(expected)
