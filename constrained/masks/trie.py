"""The vocabulary's text tokens as a byte trie stored level by level in numpy arrays.

Level order (all depth-1 nodes, then all depth-2 nodes, ...; inside a level sorted by
bytes, hence grouped by parent) lets a walk advance a whole frontier of nodes with one
vectorised automaton step per level. Several tokens may end at the same node (equal
bytes). One trie per vocabulary content, cached by ``Vocabulary.fingerprint``.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from ..vocab import Vocabulary

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

    @property
    def n_nodes(self) -> int:
        return int(self.parent.shape[0])

    @property
    def max_depth(self) -> int:
        return int(self.level_offsets.shape[0]) - 2

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
        return TokenTrie(
            fingerprint=vocab.fingerprint,
            parent=_readonly(parent), byte=_readonly(byte), depth=_readonly(depth),
            level_offsets=_readonly(np.asarray(offsets, dtype=np.int64)),
            child_start=_readonly(child_start), child_end=_readonly(child_end),
            token_ids=_readonly(np.array(ids, dtype=np.int32)),
            token_nodes=_readonly(token_nodes), node_of_token=_readonly(node_of_token),
        )

    @staticmethod
    def for_vocab(vocab: Vocabulary) -> "TokenTrie":
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
