"""Bitmask layout and helpers, the level-ordered token trie, and the vectorised trie walk."""
from __future__ import annotations

import numpy as np
import pytest

from constrained import BitmaskShapeError
from constrained.masks import (
    TokenTrie,
    allocate_token_bitmask,
    apply_token_bitmask,
    bitmask_to_bool,
    bitmask_words,
    bool_to_bitmask,
    check_bitmask,
    token_end_states,
    walk,
)
from constrained.masks.kernels import compress_preorder, end_state, walk_tokens
from constrained.masks.walk import live_tokens, walk_sparse
from constrained.vocab import Vocabulary


# ------------------------------------------------------------------------------ bitmask
@pytest.mark.parametrize("width", [1, 31, 32, 33, 64, 1000, 50257])
def test_bitmask_layout_bit_i_of_word_j(width: int) -> None:
    rng = np.random.default_rng(width)
    mask = rng.random(width) < 0.3
    bm = bool_to_bitmask(mask)
    assert bm.dtype == np.int32 and bm.shape == (bitmask_words(width),)
    # the layout, checked bit by bit with plain Python integers
    for tok in rng.choice(width, size=min(width, 200), replace=False).tolist():
        word = int(bm[tok // 32]) & 0xFFFFFFFF
        assert bool((word >> (tok % 32)) & 1) == mask[tok]
    # padding bits beyond the width are clear
    if width % 32:
        assert (int(bm[-1]) & 0xFFFFFFFF) >> (width % 32) == 0
    assert np.array_equal(bitmask_to_bool(bm, width), mask)


def test_bitmask_batch_and_allocate() -> None:
    bm = allocate_token_bitmask(3, 70)
    assert bm.shape == (3, 3) and bm.dtype == np.int32 and (bm == -1).all()
    mask = np.random.default_rng(0).random((3, 70)) < 0.5
    assert np.array_equal(bitmask_to_bool(bool_to_bitmask(mask), 70), mask)
    with pytest.raises(BitmaskShapeError):
        allocate_token_bitmask(0, 70)


def test_apply_numpy() -> None:
    rng = np.random.default_rng(1)
    logits = rng.standard_normal((2, 100)).astype(np.float32)
    mask = rng.random((2, 100)) < 0.5
    expected = np.where(mask, logits, -np.inf)
    out = apply_token_bitmask(logits, bool_to_bitmask(mask))
    assert out is logits and np.array_equal(logits, expected)
    one = rng.standard_normal(100).astype(np.float32)
    exp1 = np.where(mask[0], one, -np.inf)
    apply_token_bitmask(one, bool_to_bitmask(mask[0]))
    assert np.array_equal(one, exp1)


def test_apply_torch() -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    logits = rng.standard_normal((2, 77)).astype(np.float32)
    mask = rng.random((2, 77)) < 0.5
    t = torch.from_numpy(logits.copy())
    apply_token_bitmask(t, torch.from_numpy(bool_to_bitmask(mask)))
    assert np.array_equal(t.numpy(), np.where(mask, logits, -np.inf))
    t2 = torch.from_numpy(logits[0].copy())
    apply_token_bitmask(t2, bool_to_bitmask(mask[0]))  # numpy bitmask on a torch tensor
    assert np.array_equal(t2.numpy(), np.where(mask[0], logits[0], -np.inf))
    with pytest.raises(BitmaskShapeError):
        apply_token_bitmask(t, torch.zeros((2, 2), dtype=torch.int32))
    with pytest.raises(BitmaskShapeError):
        apply_token_bitmask(t, torch.zeros((2, 3), dtype=torch.int64))


@pytest.mark.gpu
def test_apply_torch_cuda() -> None:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    rng = np.random.default_rng(3)
    logits = rng.standard_normal((4, 1000)).astype(np.float32)
    mask = rng.random((4, 1000)) < 0.5
    t = torch.from_numpy(logits).cuda()
    apply_token_bitmask(t, torch.from_numpy(bool_to_bitmask(mask)).cuda())
    assert np.array_equal(t.cpu().numpy(), np.where(mask, logits, -np.inf))


def test_bitmask_shape_errors() -> None:
    logits = np.zeros((2, 64), dtype=np.float32)
    with pytest.raises(BitmaskShapeError, match="dtype"):
        apply_token_bitmask(logits, np.zeros((2, 2), dtype=np.int64))
    with pytest.raises(BitmaskShapeError, match="shape"):
        apply_token_bitmask(logits, np.zeros((2, 3), dtype=np.int32))
    with pytest.raises(BitmaskShapeError, match="disagree"):
        apply_token_bitmask(logits, np.zeros((3, 2), dtype=np.int32))
    with pytest.raises(BitmaskShapeError, match="floating"):
        apply_token_bitmask(np.zeros(64, dtype=np.int64), np.zeros(2, dtype=np.int32))
    with pytest.raises(BitmaskShapeError):
        check_bitmask([0, 0], 64)
    with pytest.raises(BitmaskShapeError):
        bitmask_to_bool(np.zeros(1, dtype=np.int32), 64)


# --------------------------------------------------------------------------------- trie
def _check_trie(vocab: Vocabulary, trie: TokenTrie) -> None:
    """Every trie invariant, against prefixes computed directly from the token bytes."""
    text_ids = vocab.text_token_ids.tolist()
    prefixes = {b""} | {vocab.tokens[i][:d] for i in text_ids for d in range(1, len(vocab.tokens[i]) + 1)}
    assert trie.n_nodes == len(prefixes)
    # rebuild each node's bytes from parent pointers
    node_bytes: list[bytes] = [b""] * trie.n_nodes
    for n in range(1, trie.n_nodes):
        p = int(trie.parent[n])
        assert p < n and trie.depth[n] == trie.depth[p] + 1
        node_bytes[n] = node_bytes[p] + bytes([int(trie.byte[n])])
    assert set(node_bytes) == prefixes
    # level order, sorted inside a level, children contiguous
    assert np.all(np.diff(trie.depth) >= 0)
    for d in range(trie.max_depth + 1):
        lo, hi = trie.level_offsets[d], trie.level_offsets[d + 1]
        assert (trie.depth[lo:hi] == d).all()
        assert node_bytes[lo:hi] == sorted(node_bytes[lo:hi])
    for n in range(trie.n_nodes):
        kids = range(int(trie.child_start[n]), int(trie.child_end[n]))
        assert all(int(trie.parent[k]) == n for k in kids)
    assert sum(int(trie.child_end[n] - trie.child_start[n]) for n in range(trie.n_nodes)) == trie.n_nodes - 1
    # tokens -> nodes (duplicates share a node), specials and empties excluded
    assert trie.token_ids.tolist() == text_ids
    for tid, node in zip(trie.token_ids.tolist(), trie.token_nodes.tolist()):
        assert node_bytes[node] == vocab.tokens[tid] and trie.node_of_token[tid] == node
    for sid in vocab.special_token_ids:
        assert trie.node_of_token[sid] == -1


def test_trie_small_with_duplicates_and_specials() -> None:
    toks = [b"a", b"ab", b"abc", b"b", b"ab", b"", b"<eos>", b"\xff\x00", b"\xff"]
    vocab = Vocabulary.from_tokens(toks, eos_token_ids=[6], logit_width=12)
    trie = TokenTrie.build(vocab)
    _check_trie(vocab, trie)
    assert trie.node_of_token[1] == trie.node_of_token[4]  # equal bytes, same node
    assert trie.node_of_token[5] == -1                      # empty token
    assert TokenTrie.for_vocab(vocab) is TokenTrie.for_vocab(
        Vocabulary.from_tokens(toks, eos_token_ids=[6], logit_width=12))  # cached by content


def test_trie_real_vocab(load_vocab) -> None:
    vocab = load_vocab("llama-spm")
    _check_trie(vocab, TokenTrie.for_vocab(vocab))


# --------------------------------------------------------------------------------- walk
class TableDFA:
    """A hand-written DFA over bytes (test double): ``table[state, byte]``, 0 dead."""

    def __init__(self, table: np.ndarray) -> None:
        self.table = table.astype(np.int32)
        self.steps = 0  # transitions taken, vectorised or scalar

    def step(self, state: int, byte: int) -> int:
        assert state > 0, "the walk must never step dead states"
        self.steps += 1
        return int(self.table[state, byte])

    def step_many(self, states: np.ndarray, data: np.ndarray) -> np.ndarray:
        self.steps += len(states)
        assert (np.asarray(states) > 0).all(), "the walk must never step dead states"
        return self.table[states, data]

    def kernel_view(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, None]:
        """What the compiled walks read: every byte its own class, no row unknown, no
        fork table."""
        return (np.ascontiguousarray(self.table), np.arange(256, dtype=np.int32),
                np.zeros(self.table.shape[0], dtype=bool), None)

    def expand(self, state: int) -> None:
        raise AssertionError("a complete table has no unknown rows")


class VectorOnlyDFA(TableDFA):
    """The same double without a scalar ``step``: the walk must use levels only."""

    step = None  # type: ignore[assignment]


def _random_dfa(seed: int, n_states: int = 6, density: float = 0.4) -> TableDFA:
    rng = np.random.default_rng(seed)
    table = rng.integers(1, n_states, size=(n_states, 256))
    table[rng.random((n_states, 256)) > density] = 0
    table[0] = 0
    return TableDFA(table)


def _token_end(dfa: TableDFA, state: int, data: bytes) -> int:
    for b in data:
        state = dfa.step(state, b)
        if state == 0:
            return 0
    return state


@pytest.mark.parametrize("seed", range(4))
def test_walk_matches_token_by_token_stepping(seed: int, load_vocab) -> None:
    """Walk results equal stepping every token's bytes one by one (reference, no trie)."""
    vocab = load_vocab("gpt-2")
    trie = TokenTrie.for_vocab(vocab)
    dfa = _random_dfa(seed, density=0.97)  # dense: long tokens survive, deep levels get walked
    state = 1 + seed % 5
    ref = {i: _token_end(dfa, state, vocab.tokens[i]) for i in vocab.text_token_ids.tolist()}
    expected_ids = [i for i, e in ref.items() if e > 0]
    for automaton in (dfa, VectorOnlyDFA(dfa.table)):
        node_states = walk(trie, automaton, state)
        ids, ends = token_end_states(trie, node_states)
        assert ids.tolist() == expected_ids
        assert ends.tolist() == [ref[i] for i in expected_ids]
        assert node_states[0] == state
        # the sparse form lists the same live nodes, and its token extraction agrees
        nodes, states = walk_sparse(trie, automaton, state)
        assert sorted(nodes.tolist()) == np.flatnonzero(node_states).tolist()
        tids, tends = live_tokens(trie, nodes, states)
        assert dict(zip(tids.tolist(), tends.tolist())) == {i: ref[i] for i in expected_ids}


@pytest.mark.parametrize("seed", range(3))
def test_compressed_trie_walk_equals_byte_trie_walk(seed: int, load_vocab) -> None:
    """Merging edges by byte class (a partition the DFA respects) keeps every token's end state."""
    vocab = load_vocab("llama-spm")
    trie = TokenTrie.for_vocab(vocab)
    rng = np.random.default_rng(seed)
    class_of = rng.integers(0, 4 + seed, size=256)
    n_states = 7
    per_class = rng.integers(0, n_states, size=(n_states, class_of.max() + 1))
    per_class[rng.random(per_class.shape) < 0.15] = 0
    per_class[0] = 0
    dfa = TableDFA(per_class[:, class_of])  # columns equal inside a class
    pre = trie.preorder
    small = compress_preorder(pre, class_of)
    assert small.n_nodes < pre.n_nodes
    n_words = bitmask_words(vocab.logit_width)
    for state in range(1, n_states):
        ids, ends = token_end_states(trie, walk(trie, dfa, state))
        reference = dict(zip(ids.tolist(), ends.tolist()))
        words, nodes, states, _ = walk_tokens(small, dfa, state, n_words)
        allowed = np.flatnonzero(bitmask_to_bool(words, vocab.logit_width)).tolist()
        assert allowed == sorted(reference)
        assert all(end_state(small, nodes, states, t) == e for t, e in reference.items())
    assert int(small.skip[0]) == small.n_nodes
    assert int(trie.subtree_size[0]) == trie.n_nodes


def test_walk_prunes_dead_subtrees() -> None:
    # language: 'a' then anything; tokens starting with other bytes die at depth 1
    table = np.zeros((3, 256), dtype=np.int32)
    table[1, ord("a")] = 2
    table[2, :] = 2
    dfa = TableDFA(table)
    toks = [b"a", b"ab", b"abc", b"b", b"bcdefgh", b"c" * 30, b"<e>"]
    vocab = Vocabulary.from_tokens(toks, eos_token_ids=[6])
    trie = TokenTrie.build(vocab)
    node_states = walk(trie, dfa, 1)
    ids, ends = token_end_states(trie, node_states)
    assert ids.tolist() == [0, 1, 2] and ends.tolist() == [2, 2, 2]
    assert dfa.steps == 5  # a, b, c, then ab, abc: dead subtrees (b..., c*30) never entered
    vec = VectorOnlyDFA(table)
    assert np.array_equal(walk(trie, vec, 1), node_states) and vec.steps == 5
    assert (walk(trie, dfa, 0) == 0).all()
