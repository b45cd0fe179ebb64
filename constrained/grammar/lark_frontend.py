"""Lark grammar text -> grammar IR, using Lark itself to load and normalise the grammar.

Lark expands EBNF operators, templates, ``%import``s, inlined rules and aliases; we take
its terminals (pattern, flags, priority) as lexemes and its expanded rules as IR rules.
Terminal regexes go through ``automata.parse_regex`` (Python ``re`` syntax, the syntax
Lark uses), so a construct no automaton can honour (lookaround, backrefs) fails loudly.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from ..automata.ast import (
    ANY_BYTE,
    Alt,
    And,
    ByteSet,
    Concat,
    Node,
    Not,
    Repeat,
    literal,
)
from ..errors import (
    GrammarSyntaxError,
    GrammarUnsupported,
    RegexSyntaxError,
    RegexUnsupported,
)
from .ir import Grammar, Lexeme, Rule

# Lark's pattern flags -> Python re flags (Lark stores them as letters)
_FLAGS = {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL, "u": re.UNICODE, "x": re.VERBOSE}

# Lark options that only shape the parse tree: accepted and ignored, they do not change
# the language.
_TREE_OPTIONS = {"ambiguity", "keep_all_tokens", "maybe_placeholders", "propagate_positions",
                 "tree_class", "transformer", "debug", "cache", "priority", "regex",
                 "ordered_sets", "use_bytes", "strict", "source_path",
                 "postlex_name"}

# Lark's own library terminals that use lookbehind, rewritten to equal lookaround-free
# regexes with the same *match* (not just full-match) behaviour:
# common.ESCAPED_STRING = "\"" /.*?/ /(?<!\\)(\\\\)*?/ "\"": a quote, then the shortest
# run of non-newline characters ending in an even number of backslashes, then a quote,
# i.e. every backslash escapes the next (non-newline) character.
_KNOWN_REWRITES = {
    r'".*?(?<!\\)(\\\\)*?"': r'"(?:[^"\\\n]|\\.)*"',
}

#: default bound on the bytes of one ``%ignore``d lexeme (whitespace, comments)
DEFAULT_IGNORE_MAX_BYTES = 256
#: default bound on ignored lexemes in a row
DEFAULT_MAX_IGNORE = 16


def terminal_regex(name: str, pattern: Any) -> Node:
    """The byte-level AST of one Lark terminal pattern (PatternStr or PatternRE)."""
    from ..automata import parse_regex

    flags = 0
    for letter in sorted(pattern.flags):
        if letter not in _FLAGS:
            raise GrammarUnsupported(f"terminal {name}: regex flag {letter!r} is not supported")
        flags |= _FLAGS[letter]
    is_str = type(pattern).__name__ == "PatternStr"
    if is_str and not flags:
        return literal(pattern.value)
    source = re.escape(pattern.value) if is_str else pattern.value
    source = _KNOWN_REWRITES.get(source, source)
    try:
        node = parse_regex(source, flags)
        if not is_str and _has_lazy(source, flags):
            # a lazy quantifier makes Python's match stop early (".*?" ends at the first
            # quote); the lexeme keeps only matches with no accepted proper prefix
            node = And((node, Not(Concat((node, ANY_BYTE, Repeat(ANY_BYTE, 0, None))))))
        return node
    except RegexUnsupported as e:
        raise GrammarUnsupported(f"terminal {name} /{pattern.value}/: {e}") from e
    except RegexSyntaxError as e:
        raise GrammarSyntaxError(f"terminal {name} /{pattern.value}/: {e}") from e


_LOOKAHEAD_TAIL = re.compile(r"\(\?!(\[(?:\\.|[^\]\\])*\]|\\.|[^()\\|])\)$")


def _top_level_branches(source: str) -> list[str] | None:
    """Split a regex at its top-level ``|`` (None if the pattern is not simple to scan)."""
    out: list[str] = []
    depth, start, i, in_class = 0, 0, 0, False
    while i < len(source):
        c = source[i]
        if c == "\\":
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
            if source[i + 1:i + 2] == "]":
                i += 1
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == "|" and depth == 0:
            out.append(source[start:i])
            start = i + 1
        i += 1
    if depth != 0 or in_class:
        return None
    out.append(source[start:])
    return out


def split_trailing_lookahead(source: str, flags: int) -> list[tuple[str, frozenset[int]]] | None:
    """``A|B(?!c)`` -> [("A", {}), ("B", bytes of c)] when every negative lookahead is a
    single character (class) at the very end of a top-level alternative; else None.

    The forbidden bytes are the ASCII characters the class matches, plus every non-ASCII
    lead byte when it matches a non-ASCII character (conservative: never more strings).
    """
    if "(?!" not in source:
        return None
    branches = _top_level_branches(source)
    if branches is None:
        return None
    out: list[tuple[str, frozenset[int]]] = []
    for br in branches:
        m = _LOOKAHEAD_TAIL.search(br)
        if m is None:
            if "(?!" in br or "(?=" in br or "(?<" in br:
                return None
            out.append((br, frozenset()))
            continue
        body = br[:m.start()]
        if "(?!" in body or "(?=" in body or "(?<" in body:
            return None
        try:
            cls = re.compile(m.group(1), flags)
        except re.error:
            return None
        forbidden = {b for b in range(128) if cls.fullmatch(chr(b))}
        if any(cls.fullmatch(ch) for ch in ("\x80", "\u00e9", "\u4e00", "\U0001f600")):
            forbidden |= set(range(0xC2, 0xF5))
        out.append((body, frozenset(forbidden)))
    return out


def _flags_of(name: str, pattern: Any) -> int:
    flags = 0
    for letter in sorted(pattern.flags):
        if letter not in _FLAGS:
            raise GrammarUnsupported(f"terminal {name}: regex flag {letter!r} is not supported")
        flags |= _FLAGS[letter]
    return flags


def _lookahead_split(pattern: Any) -> list[tuple[str, frozenset[int]]] | None:
    """Branches of a regex terminal with trailing single-character negative lookaheads."""
    if type(pattern).__name__ != "PatternRE":
        return None
    flags = 0
    for letter in pattern.flags:
        flags |= _FLAGS.get(letter, 0)
    return split_trailing_lookahead(pattern.value, flags)


def _nullable_regex(source: str, flags: int) -> bool:
    return re.fullmatch(source, "", flags) is not None


def _lazy_aware(name: str, source: str, flags: int) -> Node:
    """``parse_regex`` plus the lazy-quantifier policy, errors naming the terminal."""
    from ..automata import parse_regex

    try:
        node = parse_regex(source, flags)
    except RegexUnsupported as e:
        raise GrammarUnsupported(f"terminal {name} /{source}/: {e}") from e
    except RegexSyntaxError as e:
        raise GrammarSyntaxError(f"terminal {name} /{source}/: {e}") from e
    if _has_lazy(source, flags):
        node = And((node, Not(Concat((node, ANY_BYTE, Repeat(ANY_BYTE, 0, None))))))
    return node


def _has_lazy(source: str, flags: int) -> bool:
    """Whether a regex uses a lazy quantifier (``*?``, ``+?``, ``??``, ``{m,n}?``)."""
    from re import _constants as C  # type: ignore[attr-defined]
    from re import _parser as P  # type: ignore[attr-defined]

    def walk(items: object) -> bool:
        for op, av in items:  # type: ignore[attr-defined]
            if op is C.MIN_REPEAT:
                return True
            if op in (C.MAX_REPEAT, C.POSSESSIVE_REPEAT) and walk(av[2]):
                return True
            if op is C.SUBPATTERN and walk(av[-1]):
                return True
            if op is C.BRANCH and any(walk(b) for b in av[1]):
                return True
        return False

    return walk(P.parse(source, flags))


def _width(node: Node) -> tuple[int, int | None]:
    """(min, max) length in bytes of the strings of ``node`` (max None = unbounded)."""
    if isinstance(node, ByteSet):
        return (1, 1)
    if isinstance(node, Concat):
        lo, hi = 0, 0  # type: int, int | None
        for it in node.items:
            a, b = _width(it)
            lo += a
            hi = None if hi is None or b is None else hi + b
        return lo, hi
    if isinstance(node, Alt):
        if not node.items:
            return (0, 0)
        ws = [_width(it) for it in node.items]
        his = [b for _, b in ws]
        return min(a for a, _ in ws), None if None in his else max(his)  # type: ignore[type-var]
    if isinstance(node, Repeat):
        a, b = _width(node.item)
        return a * node.min, None if node.max is None or b is None else b * node.max
    return (0, None)


def _cap(node: Node, budget: int) -> Node | None:
    """A sub-language of ``node`` with strings of at most ``budget`` bytes, built by capping
    unbounded repetitions (cheap for the lazy DFA); None if the shape is not handled."""
    _, hi = _width(node)
    if hi is not None:
        return node if hi <= budget else None
    if isinstance(node, Repeat) and node.max is None:
        _, b = _width(node.item)
        if b is None or b == 0:
            return None
        count = budget // b
        return Repeat(node.item, node.min, count) if count >= node.min else None
    if isinstance(node, Concat):
        unbounded = [i for i, it in enumerate(node.items) if _width(it)[1] is None]
        if len(unbounded) != 1:
            return None
        i = unbounded[0]
        rest = sum(_width(it)[1] or 0 for j, it in enumerate(node.items) if j != i)
        inner = _cap(node.items[i], budget - rest)
        if inner is None:
            return None
        return Concat(node.items[:i] + (inner,) + node.items[i + 1:])
    if isinstance(node, Alt):
        capped = [_cap(it, budget) for it in node.items]
        return None if any(c is None for c in capped) else Alt(tuple(capped))  # type: ignore[arg-type]
    return None


def _bounded(node: Node, max_bytes: int | None) -> Node:
    """``node`` restricted to strings of at most ``max_bytes`` bytes (None = unchanged).

    Unbounded repetitions are capped so the whole stays within the budget (a repetition of
    multi-byte characters is capped by its widest character); other shapes fall back to
    an intersection with ``.{0,max_bytes}``, which the DFA builds by product (slower).
    """
    if max_bytes is None:
        return node
    capped = _cap(node, max_bytes)
    if capped is not None:
        return capped
    return And((node, Repeat(ANY_BYTE, 0, max_bytes)))


def _non_empty(node: Node) -> Node:
    """``node`` without the empty string (a lexeme never matches zero bytes)."""
    return And((node, Concat((ANY_BYTE, Repeat(ANY_BYTE, 0, None)))))


def _load(text: str, start: str, import_paths: list[Any], source_path: str | None
          ) -> tuple[list[Any], list[Any], list[str]]:
    """Lark's grammar loading without building a Lark parser: (terminals, rules, ignore).

    ``lark.load_grammar`` is what ``lark.Lark`` itself runs first; skipping the Earley
    table construction saves most of the load time. Falls back to ``lark.Lark`` if the
    internal entry point ever changes shape.
    """
    import lark

    try:
        from lark.load_grammar import load_grammar
    except ImportError:  # pragma: no cover - depends on the installed lark
        load_grammar = None  # type: ignore[assignment]
    if load_grammar is not None:
        try:
            g, _ = load_grammar(text, source_path or "<string>", import_paths, False)
            compiled = g.compile([start], set())
        except TypeError:  # pragma: no cover - a different lark internals signature
            compiled = None
        if compiled is not None:
            terms, rules, ignore = compiled
            return list(terms), list(rules), list(ignore)
    loaded = lark.Lark(text, start=start, parser="earley", lexer="dynamic",
                       import_paths=import_paths,
                       **({"source_path": source_path} if source_path else {}))
    return list(loaded.terminals), list(loaded.rules), list(loaded.ignore_tokens)


def lark_to_grammar(text: str, start: str = "start", *,
                    ignore_max_bytes: int | None = DEFAULT_IGNORE_MAX_BYTES,
                    max_ignore: int | None = DEFAULT_MAX_IGNORE,
                    import_paths: Sequence[Any] = (), **options: Any) -> Grammar:
    """Load ``text`` with Lark and lower it to a :class:`Grammar`.

    ``ignore_max_bytes`` bounds each ``%ignore``d lexeme and ``max_ignore`` how many may
    follow each other (None = unbounded), so a model cannot loop on whitespace forever.
    ``options`` are Lark options; those that only shape trees are ignored, a post-lexer
    or a custom lexer raises :class:`GrammarUnsupported`.
    """
    from lark.exceptions import (
        ConfigurationError,
        GrammarError,
        LarkError,
        UnexpectedInput,
    )

    if not isinstance(text, str):
        raise GrammarSyntaxError(f"a Lark grammar must be text, not {type(text).__name__}")
    if options.get("postlex") is not None:
        raise GrammarUnsupported("Lark post-lexers (postlex=...) run Python code between the "
                                 "lexer and the parser and cannot be enforced on token masks")
    lexer = options.pop("lexer", None)
    if lexer is not None and not isinstance(lexer, str):
        raise GrammarUnsupported("custom Lark lexer classes cannot be enforced on token masks")
    parser = options.pop("parser", "earley")
    if parser not in ("earley", "lalr"):
        raise GrammarUnsupported(f"Lark parser={parser!r}: only the Earley and LALR languages "
                                 "are supported")
    unknown = set(options) - _TREE_OPTIONS - {"postlex", "start"}
    if unknown:
        raise GrammarUnsupported(f"unsupported Lark option(s): {sorted(unknown)}")
    try:
        term_defs, lark_rules, ignore_names = _load(text, start, list(import_paths),
                                                    options.get("source_path"))
    except UnexpectedInput as e:
        raise GrammarSyntaxError(f"grammar syntax error at line {e.line}, column {e.column}: "
                                 f"{e}") from e
    except (GrammarError, ConfigurationError) as e:
        raise GrammarSyntaxError(f"invalid Lark grammar: {e}") from e
    except LarkError as e:
        raise GrammarSyntaxError(f"invalid Lark grammar: {e}") from e
    except (FileNotFoundError, OSError) as e:
        raise GrammarSyntaxError(f"Lark grammar import failed: {e}") from e

    terminals = {t.name: t for t in term_defs}
    rules: dict[str, list[tuple[str, ...]]] = {}
    used: set[str] = set()
    nullable_terms: set[str] = set()
    for r in lark_rules:
        alt: list[str] = []
        for sym in r.expansion:
            if sym.is_term:
                if sym.name not in terminals:
                    raise GrammarUnsupported(
                        f"terminal {sym.name} is %declare'd without a pattern (it is meant to "
                        "be produced by Python code such as a post-lexer)")
                used.add(sym.name)
            alt.append(sym.name)
        rules.setdefault(r.origin.name, []).append(tuple(alt))
    if start not in rules:
        raise GrammarSyntaxError(f"start rule {start!r} is not defined")
    for lhs, rule_alts in rules.items():
        for ref in rule_alts:
            for sym in ref:
                if sym not in rules and sym not in terminals:
                    raise GrammarSyntaxError(f"rule {lhs!r} uses undefined rule {sym!r}")
    ignore = tuple(n for n in ignore_names if n in terminals)
    lexemes: dict[str, Lexeme] = {}
    for name in sorted(used | set(ignore)):
        t = terminals[name]
        split = _lookahead_split(t.pattern)
        if split is not None and name not in ignore:
            # /A|B(?!c)/: one lexeme per restricted branch, the terminal becomes a rule
            subs: list[tuple[str, ...]] = []
            for i, (branch, forbidden) in enumerate(split):
                sub = f"{name}__la{i}"
                node = _lazy_aware(name, branch, _flags_of(name, t.pattern))
                lexemes[sub] = Lexeme(name=sub, regex=_non_empty(node) if _nullable_regex(
                    branch, _flags_of(name, t.pattern)) else node, priority=int(t.priority),
                    not_followed_by=forbidden)
                subs.append((sub,))
            rules[name] = subs
            continue
        node = terminal_regex(name, t.pattern)
        if t.pattern.min_width == 0:
            if name in ignore and name not in used:
                node = _non_empty(node)
            else:
                nullable_terms.add(name)
                node = _non_empty(node)
        if name in ignore:
            node = _bounded(node, ignore_max_bytes)
        lit = t.pattern.value.encode("utf-8") if (
            type(t.pattern).__name__ == "PatternStr" and not t.pattern.flags) else None
        lexemes[name] = Lexeme(name=name, regex=node, priority=int(t.priority), literal=lit)
    # a terminal that can match "" becomes an optional symbol (lexemes are never empty)
    for name in sorted(nullable_terms):
        opt = f"__{name}_or_empty"
        rules[opt] = [(name,), ()]
        for lhs, alts in rules.items():
            if lhs != opt:
                rules[lhs] = [tuple(opt if s == name else s for s in a) for a in alts]
    return Grammar(
        rules={k: Rule(k, tuple(v)) for k, v in rules.items()},
        lexemes=lexemes, start=start, ignore=ignore, max_ignore=max_ignore,
        meta={"source": "lark", "lark_parser": parser, "lark_lexer": lexer,
              "ignore_max_bytes": ignore_max_bytes},
    )


__all__ = [
    "DEFAULT_IGNORE_MAX_BYTES",
    "DEFAULT_MAX_IGNORE",
    "lark_to_grammar",
    "terminal_regex",
]
