"""The vocabulary's text tokens as a byte trie stored level by level in numpy arrays.

Level order (all depth-1 nodes, then all depth-2 nodes, ...; inside a level sorted by
bytes, hence grouped by parent) lets a walk advance a whole frontier of nodes with one
vectorised automaton step per level. Several tokens may end at the same node (equal
bytes). One trie per vocabulary content, cached by ``Vocabulary.fingerprint``.
"""
from __future__ import annotations

import array
import functools
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..vocab import Vocabulary

if TYPE_CHECKING:
    from .kernels import PreorderTrie
    from .slices import TokenSlices

__all__ = ["TokenTrie"]


def _readonly(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class TokenTrie:
    """Level-ordered byte trie of a vocabulary's text (non-special, non-empty) tokens.

    Node 0 is the root (empty prefix). For node ``n``: ``parent[n]`` (-1 for the root),
    ``byte[n]`` (the byte on the edge from its parent), ``depth[n]``; its children are
    nodes ``child_start[n]:child_end[n]``. Level ``d`` is nodes
    ``level_offsets[d]:level_offsets[d+1]``. ``token_ids[k]`` ends at node ``token_nodes[k]``
    (ids ascending); ``node_of_token[id]`` is -1 for tokens not in the trie.
    ``node_token_ptr`` / ``node_token_ids`` list the tokens ending at each node (CSR; the
    byte trie has it, compressed tries skip the sort it needs), and ``subtree_size``
    bounds the work below a node, so walks can pick a strategy.
    """

    fingerprint: str
    parent: np.ndarray        # int32[n_nodes]
    byte: np.ndarray          # uint8[n_nodes]
    depth: np.ndarray         # int32[n_nodes]
    level_offsets: np.ndarray  # int64[max_depth + 2]
    child_start: np.ndarray   # int32[n_nodes]
    child_end: np.ndarray     # int32[n_nodes]
    token_ids: np.ndarray     # int32[k], ascending
    token_nodes: np.ndarray   # int32[k]
    node_of_token: np.ndarray  # int32[len(vocab)]
    subtree_size: np.ndarray   # int32[n_nodes]: nodes in the subtree (itself included)
    node_token_ptr: np.ndarray | None  # int32[n_nodes + 1]: tokens ending at node n are
    node_token_ids: np.ndarray | None  # node_token_ids[ptr[n]:ptr[n + 1]] (None: not indexed)

    @property
    def n_nodes(self) -> int:
        return int(self.parent.shape[0])

    @property
    def max_depth(self) -> int:
        return int(self.level_offsets.shape[0]) - 2

    @functools.cached_property
    def flat_children(self) -> tuple[array.array[int], array.array[int], bytes]:
        """(child_start, child_end, byte) as flat Python sequences for node-by-node steps.

        ``array``/``bytes`` rather than lists: indexing is as fast, and the cyclic garbage
        collector never traverses them (three 274k-element lists made every full
        collection ~8 ms slower). Built on first use, kept with the trie.
        """
        return (array.array("i", self.child_start.astype(np.int32).tobytes()),
                array.array("i", self.child_end.astype(np.int32).tobytes()),
                self.byte.astype(np.uint8).tobytes())

    @functools.cached_property
    def preorder(self) -> "PreorderTrie":
        """This trie laid out for the compiled depth-first walks (built on first use)."""
        from .kernels import preorder_trie

        return preorder_trie(self)

    @functools.cached_property
    def slices(self) -> "TokenSlices":
        """The vocabulary slices of :mod:`constrained.masks.slices` (built on first use)."""
        from .slices import build_slices

        return build_slices(self.preorder)

    @staticmethod
    def build(vocab: Vocabulary) -> "TokenTrie":
        """Build the trie of ``vocab`` (uncached; see :meth:`for_vocab`)."""
        ids = vocab.text_token_ids
        toks = [vocab.tokens[i] for i in ids.tolist()]
        max_len = max((len(t) for t in toks), default=0)
        levels: list[set[bytes]] = [set() for _ in range(max_len + 1)]
        levels[0].add(b"")
        for t in toks:
            for d in range(1, len(t) + 1):
                levels[d].add(t[:d])
        index: dict[bytes, int] = {}
        ordered: list[bytes] = []
        offsets = [0]
        for level in levels:
            for p in sorted(level):
                index[p] = len(ordered)
                ordered.append(p)
            offsets.append(len(ordered))
        n = len(ordered)
        parent = np.fromiter((index[p[:-1]] if p else -1 for p in ordered), dtype=np.int32, count=n)
        byte = np.fromiter((p[-1] if p else 0 for p in ordered), dtype=np.uint8, count=n)
        depth = np.fromiter((len(p) for p in ordered), dtype=np.int32, count=n)
        nodes = np.arange(n, dtype=np.int32)
        child_start = np.searchsorted(parent, nodes, side="left").astype(np.int32)
        child_end = np.searchsorted(parent, nodes, side="right").astype(np.int32)
        token_nodes = np.fromiter((index[t] for t in toks), dtype=np.int32, count=len(toks))
        node_of_token = np.full(len(vocab.tokens), -1, dtype=np.int32)
        node_of_token[ids] = token_nodes
        return TokenTrie._assemble(vocab.fingerprint, parent, byte, depth,
                                   np.asarray(offsets, dtype=np.int64), np.array(ids, dtype=np.int32),
                                   token_nodes, node_of_token)

    @staticmethod
    def _assemble(fingerprint: str, parent: np.ndarray, byte: np.ndarray, depth: np.ndarray,
                  offsets: np.ndarray, token_ids: np.ndarray, token_nodes: np.ndarray,
                  node_of_token: np.ndarray, with_index: bool = True) -> "TokenTrie":
        """Derive child ranges, subtree sizes and the node->tokens index; freeze everything.

        ``with_index=False`` skips the index unless node ids fit 16 bits (cheap sort).
        """
        n = parent.shape[0]
        nodes = np.arange(n, dtype=np.int32)
        child_start = np.searchsorted(parent, nodes, side="left").astype(np.int32)
        child_end = np.searchsorted(parent, nodes, side="right").astype(np.int32)
        size = np.ones(n, dtype=np.int64)
        for d in range(offsets.shape[0] - 2, 0, -1):
            lo, hi = int(offsets[d]), int(offsets[d + 1])
            plo, phi = int(offsets[d - 1]), int(offsets[d])
            size[plo:phi] += np.bincount(parent[lo:hi] - plo, weights=size[lo:hi],
                                         minlength=phi - plo).astype(np.int64)
        ptr: np.ndarray | None = None
        by_node: np.ndarray | None = None
        if with_index or n <= 0xFFFF:
            # 16-bit keys take numpy's O(n) radix sort; a 128k-token sort costs ~1 ms then
            keys = token_nodes.astype(np.uint16) if n <= 0xFFFF else token_nodes
            order = np.argsort(keys, kind="stable")
            ptr = np.zeros(n + 1, dtype=np.int32)
            np.cumsum(np.bincount(token_nodes, minlength=n), out=ptr[1:])
            by_node = _readonly(token_ids[order].astype(np.int32))
            ptr = _readonly(ptr)
        return TokenTrie(
            fingerprint=fingerprint,
            parent=_readonly(parent.astype(np.int32)), byte=_readonly(byte.astype(np.uint8)),
            depth=_readonly(depth.astype(np.int32)), level_offsets=_readonly(offsets),
            child_start=_readonly(child_start), child_end=_readonly(child_end),
            token_ids=_readonly(token_ids), token_nodes=_readonly(token_nodes.astype(np.int32)),
            node_of_token=_readonly(node_of_token.astype(np.int32)),
            subtree_size=_readonly(size.astype(np.int32)), node_token_ptr=ptr,
            node_token_ids=by_node,
        )

    @staticmethod
    def for_vocab(vocab: Vocabulary) -> "TokenTrie":
        """The trie of ``vocab``, built once per vocabulary fingerprint (bounded cache)."""
        return _TRIE_CACHE.get(vocab)

    def compress(self, class_of: np.ndarray, with_index: bool = False) -> "TokenTrie":
        """This trie with sibling edges merged when their bytes are in the same class.

        ``class_of`` (``[256]`` ints) must be a partition every automaton that walks the
        result treats uniformly (a DFA's byte equivalence classes): then a walk over the
        compressed trie gives every token the same end state as over the byte trie, while
        visiting far fewer nodes (all-letter tokens collapse per class sequence). Each
        compressed edge keeps one representative byte of its class. Cached per partition.
        ``with_index``: also build the node->tokens index (a sort, ~5 ms on 128k tokens;
        always built when node ids fit 16 bits).
        """
        cls = np.asarray(class_of, dtype=np.int64)
        if cls.shape != (256,):
            raise ValueError(f"class_of must have 256 entries, got shape {cls.shape}")
        key = (self.fingerprint, hashlib.sha1(cls.tobytes()).hexdigest(), with_index)
        return _COMPRESSED_CACHE.get_or_build(
            key, lambda: self._compress_from_base(cls, key[1][:16], with_index))

    @staticmethod
    def cheap_to_compress(class_of: np.ndarray) -> bool:
        """Whether :meth:`compress` by ``class_of`` starts from the small per-vocabulary
        base trie (every base class inside one class: a few ms) rather than the byte trie
        (~20 ms on a 128k vocabulary)."""
        cls = np.asarray(class_of, dtype=np.int64)
        return bool(np.array_equal(cls[_BASE_REP[_BASE_CLASSES]], cls))

    def _compress_from_base(self, cls: np.ndarray, tag: str, with_index: bool = False) -> "TokenTrie":
        """Compress starting from the vocabulary's base-class trie when ``cls`` is coarser.

        The base trie (built once per vocabulary) is this trie compressed by a fixed
        partition (``_BASE_CLASSES``); when every base class lies inside one class of
        ``cls``, compressing it further gives the same nodes, tokens and order as
        compressing the byte trie (representatives differ but stay in their class), at a
        fraction of the cost (tens of thousands of nodes instead of ~274k).
        """
        base = _BASE_TRIES.get(self.fingerprint)
        if base is not None and TokenTrie.cheap_to_compress(cls):
            return base._compress(cls, tag, self.fingerprint, with_index)
        return self._compress(cls, tag, with_index=with_index)

    def _compress_tail(self, d0: int, offs: list[int], node_cls: np.ndarray, n_cls: int,
                       new_id: np.ndarray, offsets: list[int], parents: list[np.ndarray],
                       reps: list[np.ndarray]) -> None:
        """Levels ``d0..`` of :meth:`_compress` in plain Python (same ids and order)."""
        lo0 = offs[d0]
        par = self.parent[lo0:].tolist()
        cls_l = node_cls[lo0:].tolist()
        byte_l = self.byte[lo0:].tolist()
        prev_ids = new_id[offs[d0 - 1]:lo0].tolist()  # compressed ids of the level above
        prev_off = offs[d0 - 1]
        tail_ids: list[int] = []
        for d in range(d0, len(offs) - 1):
            lo, hi = offs[d] - lo0, offs[d + 1] - lo0
            base, prev_base = offsets[-1], offsets[-2]
            keys = [(prev_ids[par[i] - prev_off] - prev_base) * n_cls + cls_l[i] for i in range(lo, hi)]
            first: dict[int, int] = {}
            for i, k in enumerate(keys):
                if k not in first:
                    first[k] = byte_l[lo + i]
            uniq = sorted(first)
            pos = {k: base + j for j, k in enumerate(uniq)}
            ids = [pos[k] for k in keys]
            tail_ids.extend(ids)
            parents.append(np.asarray([prev_base + k // n_cls for k in uniq], dtype=np.int32))
            reps.append(np.asarray([first[k] for k in uniq], dtype=np.uint8))
            offsets.append(base + len(uniq))
            prev_ids, prev_off = ids, offs[d]
        new_id[lo0:lo0 + len(tail_ids)] = tail_ids

    def _compress(self, cls: np.ndarray, tag: str, fingerprint: str | None = None,
                  with_index: bool = False) -> "TokenTrie":
        n_cls = int(cls.max()) + 1
        node_cls = cls.astype(np.int32)[self.byte]
        parent, byte = self.parent, self.byte
        new_id = np.zeros(self.n_nodes, dtype=np.int32)  # int32 halves the memory traffic
        parents: list[np.ndarray] = [np.full(1, -1, dtype=np.int32)]
        reps: list[np.ndarray] = [np.zeros(1, dtype=np.uint8)]
        offsets = [0, 1]
        offs = self.level_offsets.tolist()
        # scratch buffers reused across levels (dense dedup: mark used keys, rank them)
        cap = 1024
        mark = np.zeros(cap, dtype=bool)
        rank = np.empty(cap, dtype=np.int32)
        n_total = offs[-1]
        for d in range(1, self.max_depth + 1):
            lo, hi = offs[d], offs[d + 1]
            prev_lo, base = offsets[-2], offsets[-1]
            if n_total - lo <= _PY_TAIL_NODES:
                # few deep nodes left: per-level numpy calls cost more than plain Python
                self._compress_tail(d, offs, node_cls, n_cls, new_id, offsets, parents, reps)
                break
            # key = (compressed parent, class), local to the previous compressed level
            keys = new_id[parent[lo:hi]]
            keys -= prev_lo
            keys *= n_cls
            keys += node_cls[lo:hi]
            span = (base - prev_lo) * n_cls
            if span <= 8 * (hi - lo) + 256:
                if span > cap:
                    cap = max(span, 2 * cap)
                    mark = np.zeros(cap, dtype=bool)
                    rank = np.empty(cap, dtype=np.int32)
                mark[keys] = True
                uniq = np.flatnonzero(mark[:span])
                mark[uniq] = False  # leave the scratch clean for the next level
                k = uniq.shape[0]
                rank[uniq] = np.arange(base, base + k, dtype=np.int32)
                ids = rank[keys]
                rep = np.empty(k, dtype=np.uint8)
                rep[ids - base] = byte[lo:hi]  # any byte of the class represents it
                new_id[lo:hi] = ids
            else:
                uniq, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
                k = uniq.shape[0]
                rep = byte[lo + first]
                new_id[lo:hi] = base + inverse
            # keys ascending = (compressed parent, class): children stay contiguous
            parents.append((prev_lo + uniq // n_cls).astype(np.int32, copy=False))
            reps.append(rep)
            offsets.append(base + k)
        offsets_arr = np.asarray(offsets, dtype=np.int64)
        depth = np.repeat(np.arange(offsets_arr.shape[0] - 1, dtype=np.int32), np.diff(offsets_arr))
        token_nodes = new_id[self.token_nodes]
        node_of_token = np.where(self.node_of_token >= 0,
                                 new_id[np.maximum(self.node_of_token, 0)], -1).astype(np.int32)
        return TokenTrie._assemble(f"{fingerprint or self.fingerprint}/classes:{tag}",
                                   np.concatenate(parents), np.concatenate(reps),
                                   depth, offsets_arr,
                                   self.token_ids, token_nodes, node_of_token, with_index=with_index)


class _TrieCache:
    """Bounded LRU of tries keyed by vocabulary fingerprint (tries are immutable)."""

    def __init__(self, capacity: int = 8) -> None:
        self._capacity = capacity
        self._items: OrderedDict[str, TokenTrie] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, vocab: Vocabulary) -> TokenTrie:
        key = vocab.fingerprint
        with self._lock:
            trie = self._items.get(key)
            if trie is not None:
                self._items.move_to_end(key)
                return trie
        trie = TokenTrie.build(vocab)  # outside the lock: slow, and idempotent
        # per-vocabulary base for class compression (see TokenTrie._compress_from_base)
        base = trie._compress(_BASE_CLASSES, "base")
        with self._lock:
            self._items[key] = trie
            self._items.move_to_end(key)
            _BASE_TRIES[key] = base
            while len(self._items) > self._capacity:
                _BASE_TRIES.pop(self._items.popitem(last=False)[0], None)
        return trie


class _KeyedCache:
    """Bounded LRU of immutable values under explicit keys (thread-safe)."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._items: OrderedDict[object, TokenTrie] = OrderedDict()
        self._lock = threading.Lock()

    def get_or_build(self, key: object, build: Callable[[], TokenTrie]) -> TokenTrie:
        with self._lock:
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
                return hit
        value = build()
        with self._lock:
            self._items[key] = value
            while len(self._items) > self._capacity:
                self._items.popitem(last=False)
        return value


def _base_classes() -> tuple[np.ndarray, np.ndarray]:
    """A fixed byte partition most regex DFAs' classes coarsen: [a-z], [A-Z], [0-9], every
    other ASCII byte alone, non-ASCII bytes by UTF-8 role (continuation ranges, lead
    ranges with distinct second-byte rules). Returns (class of each byte, a byte of each class).
    """
    groups: list[list[int]] = [list(range(0x61, 0x7B)), list(range(0x41, 0x5B)), list(range(0x30, 0x3A))]
    groups += [[b] for b in range(0x80) if not (0x61 <= b < 0x7B or 0x41 <= b < 0x5B or 0x30 <= b < 0x3A)]
    for lo, hi in ((0x80, 0x8F), (0x90, 0x9F), (0xA0, 0xBF), (0xC0, 0xC1), (0xC2, 0xDF), (0xE0, 0xE0),
                   (0xE1, 0xEC), (0xED, 0xED), (0xEE, 0xEF), (0xF0, 0xF0), (0xF1, 0xF3), (0xF4, 0xF4),
                   (0xF5, 0xFF)):
        groups.append(list(range(lo, hi + 1)))
    cls = np.zeros(256, dtype=np.int64)
    rep = np.zeros(len(groups), dtype=np.int64)
    for i, g in enumerate(groups):
        cls[g] = i
        rep[i] = g[0]
    return cls, rep


_BASE_CLASSES, _BASE_REP = _base_classes()
_PY_TAIL_NODES = 2048  # _compress finishes in Python once this few deep nodes are left
_BASE_TRIES: dict[str, TokenTrie] = {}  # per vocabulary fingerprint, next to _TRIE_CACHE's tries
_TRIE_CACHE = _TrieCache()
_COMPRESSED_CACHE = _KeyedCache(capacity=64)
