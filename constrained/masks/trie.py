"""The vocabulary's text tokens as a byte trie stored level by level in numpy arrays.

Level order (all depth-1 nodes, then all depth-2 nodes, ...; inside a level sorted by
bytes, hence grouped by parent) is what the numpy reference walk (``walk.py``) steps a
frontier through; the masks use the same trie in preorder (:attr:`TokenTrie.preorder`,
``kernels.py``) and its slices (:attr:`TokenTrie.slices`). Several tokens may end at
the same node (equal bytes). One trie per vocabulary content, cached by
``Vocabulary.fingerprint``.
"""
from __future__ import annotations

import array
import functools
import threading
from collections import OrderedDict
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
    ``node_token_ptr`` / ``node_token_ids`` list the tokens ending at each node (CSR), and
    ``subtree_size`` bounds the work below a node, so walks can pick a strategy.
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
    def preorder(self) -> PreorderTrie:
        """This trie laid out for the compiled depth-first walks (built on first use)."""
        from .kernels import preorder_trie

        return preorder_trie(self)

    @functools.cached_property
    def slices(self) -> TokenSlices:
        """The vocabulary slices of :mod:`constrained.masks.slices` (built on first use)."""
        from .slices import build_slices

        return build_slices(self.preorder)

    @staticmethod
    def build(vocab: Vocabulary) -> TokenTrie:
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
        token_nodes = np.fromiter((index[t] for t in toks), dtype=np.int32, count=len(toks))
        node_of_token = np.full(len(vocab.tokens), -1, dtype=np.int32)
        node_of_token[ids] = token_nodes
        return TokenTrie._assemble(vocab.fingerprint, parent, byte, depth,
                                   np.asarray(offsets, dtype=np.int64), np.array(ids, dtype=np.int32),
                                   token_nodes, node_of_token)

    @staticmethod
    def _assemble(fingerprint: str, parent: np.ndarray, byte: np.ndarray, depth: np.ndarray,
                  offsets: np.ndarray, token_ids: np.ndarray, token_nodes: np.ndarray,
                  node_of_token: np.ndarray) -> TokenTrie:
        """Derive child ranges, subtree sizes and the node->tokens index; freeze everything."""
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
        # 16-bit keys take numpy's O(n) radix sort
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
    def for_vocab(vocab: Vocabulary) -> TokenTrie:
        """The trie of ``vocab``, built once per vocabulary fingerprint (bounded cache)."""
        return _TRIE_CACHE.get(vocab)


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
        with self._lock:
            self._items[key] = trie
            self._items.move_to_end(key)
            while len(self._items) > self._capacity:
                self._items.popitem(last=False)
        return trie


_TRIE_CACHE = _TrieCache()
