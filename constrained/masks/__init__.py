"""Token masks: the vocabulary trie, vectorised trie walks and the int32 bitmask layout.

``trie.TokenTrie`` (level-ordered numpy trie, cached per vocabulary), ``walk.walk``
(node states for one automaton state) and ``bitmask`` (layout + apply helpers).
"""
from __future__ import annotations

from .bitmask import (
    allocate_token_bitmask, apply_token_bitmask, bitmask_to_bool, bitmask_words, bool_to_bitmask,
    check_bitmask,
)
from .trie import TokenTrie
from .walk import token_end_states, walk

__all__ = [
    "TokenTrie", "walk", "token_end_states", "allocate_token_bitmask", "apply_token_bitmask",
    "bitmask_to_bool", "bitmask_words", "bool_to_bitmask", "check_bitmask",
]
