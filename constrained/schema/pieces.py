"""Languages that are regular (a regex AST) or not (symbols of a grammar being built).

The schema compiler composes *pieces*: a regular piece is a :class:`Node`; a piece that
needs the parser (recursion, unconstrained nested values) is a :class:`Seq` of symbols,
each a rule name or a lexeme node. Composition stays regular whenever all parts are, so
non-recursive schemas never touch the parser.

Schema grammars keep every lexing where an accepted lexeme cannot go on
(``Grammar.lexing = "all"``), but a lexeme that can go on is read on, greedily; so a
lexeme must not end in an optional tail that the next lexeme could also start with.
Callers therefore pass ``as_rule=True`` to :meth:`GrammarBuilder.optional` /
:meth:`GrammarBuilder.repeat` in contexts that are not regular; every lexeme then ends
at a JSON token boundary.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from ..automata.ast import EMPTY, Alt, And, Concat, Node, Not, Repeat, alt, concat
from ..errors import ConstraintTooComplex
from ..grammar.ir import Grammar, Lexeme, Rule
from .jsontext import nullable

Symbol = Union[str, Node]


@dataclass(frozen=True, eq=False)
class Seq:
    """A non-regular piece: a sequence of rule names and lexeme nodes."""

    symbols: tuple[Symbol, ...]


Piece = Union[Node, Seq]


def is_nothing(p: Piece) -> bool:
    """Whether ``p`` is the empty language (``Alt(())``)."""
    return isinstance(p, Alt) and not p.items


def is_regular(p: Piece) -> bool:
    return not isinstance(p, Seq)


class GrammarBuilder:
    """Collects rules while pieces are composed; :meth:`finish` yields the Grammar IR."""

    def __init__(self, max_rules: int = 100_000) -> None:
        self.rules: dict[str, list[tuple[Symbol, ...]]] = {}
        self._count = 0
        self._max_rules = max_rules
        self._sealed: dict[int, str] = {}
        self._keep: list[Piece] = []

    def new_rule(self, hint: str = "r") -> str:
        self._count += 1
        if self._count > self._max_rules:
            raise ConstraintTooComplex(f"JSON Schema grammar exceeds {self._max_rules} rules")
        return f"{hint}_{self._count}"

    def define(self, name: str, alternatives: list[Piece]) -> None:
        self.rules[name] = [s for s in (self._symbols(p) for p in alternatives) if s is not None]

    @staticmethod
    def _symbols(p: Piece) -> tuple[Symbol, ...] | None:
        if isinstance(p, Seq):
            return p.symbols
        if is_nothing(p):
            return None
        if isinstance(p, Concat) and not p.items:
            return ()
        return (p,)

    # -- composition ----------------------------------------------------------------------
    def seq(self, *pieces: Piece) -> Piece:
        if any(is_nothing(p) for p in pieces):
            return Alt(())
        if all(is_regular(p) for p in pieces):
            return concat(*pieces)  # type: ignore[arg-type]
        out: list[Symbol] = []
        for p in pieces:
            syms = self._symbols(p)
            assert syms is not None
            for s in syms:
                if not isinstance(s, str) and out and not isinstance(out[-1], str):
                    out[-1] = concat(out[-1], s)
                else:
                    out.append(s)
        return Seq(tuple(out))

    def choice(self, *pieces: Piece, hint: str = "alt") -> Piece:
        kept = [p for p in pieces if not is_nothing(p)]
        if not kept:
            return Alt(())
        if len(kept) == 1:
            return kept[0]
        if all(is_regular(p) for p in kept):
            return alt(*kept)  # type: ignore[arg-type]
        name = self.new_rule(hint)
        self.define(name, kept)
        return Seq((name,))

    def sealed(self, p: Piece) -> Piece:
        """``p`` as its own lexeme(s): a regular piece is wrapped in a rule so that
        :meth:`seq` does not merge it with neighbours (small lexemes, shared by id)."""
        if not is_regular(p) or is_nothing(p):
            return p
        name = self._sealed.get(id(p))
        if name is None:
            name = self.new_rule("lex")
            self.define(name, [p])
            self._sealed[id(p)] = name
            self._keep.append(p)
        return Seq((name,))

    def optional(self, p: Piece, as_rule: bool = False) -> Piece:
        if is_nothing(p):
            return EMPTY
        if is_regular(p) and not as_rule:
            return Repeat(p, 0, 1)  # type: ignore[arg-type]
        name = self.new_rule("opt")
        self.define(name, [p, EMPTY])
        return Seq((name,))

    def repeat(self, p: Piece, lo: int, hi: int | None, as_rule: bool = False,
               max_unrolled: int = 1000) -> Piece:
        """``p{lo,hi}`` (hi None = unbounded)."""
        if hi is not None and hi < lo:
            return Alt(())
        if is_nothing(p):
            return EMPTY if lo == 0 else Alt(())
        if is_regular(p) and not as_rule:
            return Repeat(p, lo, hi) if (lo, hi) != (1, 1) else p  # type: ignore[arg-type]
        if lo + (0 if hi is None else hi - lo) > max_unrolled:
            raise ConstraintTooComplex(f"repetition {{{lo},{hi}}} of a non-regular value exceeds {max_unrolled}")
        tail: Piece
        if hi is None:
            name = self.new_rule("star")
            self.rules[name] = [(), (name,)]  # placeholder (recursion), replaced below
            body = self._symbols(p)
            assert body is not None
            self.rules[name] = [(), (name, *body)]
            tail = Seq((name,))
        else:
            tail = EMPTY
            for _ in range(hi - lo):
                tail = self.optional(self.seq(p, tail), as_rule=True)
        return self.seq(*([p] * lo), tail)

    # -- output ---------------------------------------------------------------------------------
    def finish(self, start: Piece, meta: dict[str, object] | None = None) -> Grammar:
        """The Grammar IR with ``start`` as start symbol; lexemes deduplicated by identity."""
        lexemes: dict[int, str] = {}
        lex_nodes: dict[str, Node] = {}
        keep: list[Node] = []

        def lexeme_name(node: Node) -> str:
            name = lexemes.get(id(node))
            if name is None:
                name = f"l_{len(lexemes)}"
                lexemes[id(node)] = name
                lex_nodes[name] = node
                keep.append(node)
            return name

        nullable_memo: dict[int, bool] = {}
        rules: dict[str, Rule] = {}
        extra: dict[str, list[tuple[str, ...]]] = {}

        def sym(s: Symbol) -> str:
            if isinstance(s, str):
                return s
            if _nullable(s, nullable_memo):
                # a lexeme must consume bytes: split into "empty" | "non-empty"
                inner = lexeme_name(And((s, Not(EMPTY))))
                name = f"n_{inner}"
                extra[name] = [(), (inner,)]
                return name
            return lexeme_name(s)

        start_name = "start"
        all_rules = dict(self.rules)
        start_syms = self._symbols(start)
        all_rules[start_name] = [tuple(start_syms)] if start_syms is not None else []
        for name, alts in all_rules.items():
            rules[name] = Rule(name, tuple(tuple(sym(s) for s in a) for a in alts))
        for name, names in extra.items():
            rules[name] = Rule(name, tuple(names))  # type: ignore[arg-type]
        lex = {n: Lexeme(n, node) for n, node in lex_nodes.items()}
        # split lexing: a choice may hold a whole regular value as one lexeme beside
        # another branch's first token (``[``), which greedy lexing would run past
        return Grammar(rules=rules, lexemes=lex, start=start_name, lexing="all",
                       meta=dict(meta or {}))


def _nullable(node: Node, memo: dict[int, bool]) -> bool:
    hit = memo.get(id(node))
    if hit is None:
        if isinstance(node, Concat):
            hit = all(_nullable(i, memo) for i in node.items)
        elif isinstance(node, Alt):
            hit = any(_nullable(i, memo) for i in node.items)
        elif isinstance(node, Repeat):
            hit = node.min == 0 or _nullable(node.item, memo)
        else:
            hit = nullable(node)
        memo[id(node)] = hit
    return hit
