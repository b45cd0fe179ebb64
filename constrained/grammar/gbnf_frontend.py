"""llama.cpp GBNF (and xgrammar's EBNF dialect of it) -> grammar IR.

GBNF is scannerless: string literals and character classes sit inside rules. To keep the
language exact under our greedy lexer, every lexeme is ONE code point (a string becomes a
sequence of one-character lexemes; a class is one lexeme). UTF-8 is prefix-free, so a
one-code-point lexeme ends exactly where the next begins and greedy lexing never has to
choose a split. Repetition operators become (left-recursive) helper rules.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..automata.ast import Node, literal
from ..errors import GrammarSyntaxError, GrammarUnsupported
from .ir import Grammar, Lexeme, Rule

_NAME = re.compile(r"[A-Za-z0-9_\-.]+")
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\", '"': '"', "'": "'", "[": "[", "]": "]",
            "-": "-", "^": "^", "/": "/", "0": "\0", "f": "\f", "v": "\v", "a": "\a", "b": "\b",
            "e": "\x1b", "`": "`", " ": " "}
_MAX_REPEAT = 10_000


@dataclass(frozen=True)
class _CharClass:
    ranges: tuple[tuple[int, int], ...]
    negated: bool


class _Parser:
    """Recursive-descent parser of GBNF text into IR rules (one instance per text)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.rules: dict[str, list[tuple[str, ...]]] = {}
        self.lexemes: dict[str, Lexeme] = {}
        self._lexeme_by_key: dict[object, str] = {}
        self._helper = 0
        self.referenced: dict[str, int] = {}

    # -- errors and whitespace -------------------------------------------------------------
    def error(self, msg: str, pos: int | None = None) -> GrammarSyntaxError:
        pos = self.pos if pos is None else pos
        line = self.text.count("\n", 0, pos) + 1
        col = pos - (self.text.rfind("\n", 0, pos) + 1) + 1
        return GrammarSyntaxError(f"GBNF syntax error at line {line}, column {col}: {msg}")

    def skip(self) -> None:
        """Skip blanks, newlines and ``#`` comments."""
        t = self.text
        while self.pos < len(t):
            c = t[self.pos]
            if c in " \t\r\n":
                self.pos += 1
            elif c == "#":
                end = t.find("\n", self.pos)
                self.pos = len(t) if end < 0 else end + 1
            else:
                break

    def at_rule_start(self) -> bool:
        """Whether the next thing is ``name ::=`` (the start of the next rule)."""
        m = _NAME.match(self.text, self.pos)
        if not m:
            return False
        rest = self.text[m.end():]
        return rest.lstrip(" \t").startswith("::=")

    # -- top level ----------------------------------------------------------------------
    def parse(self) -> None:
        self.skip()
        if self.pos >= len(self.text):
            raise self.error("empty grammar")
        while self.pos < len(self.text):
            m = _NAME.match(self.text, self.pos)
            if not m:
                raise self.error(f"expected a rule name, found {self.text[self.pos:self.pos + 10]!r}")
            name = m.group(0)
            self.pos = m.end()
            self.skip()
            if not self.text.startswith("::=", self.pos):
                raise self.error(f"expected '::=' after rule name {name!r}")
            self.pos += 3
            alts = self.alternatives(top=True)
            if name in self.rules:
                raise self.error(f"rule {name!r} is defined twice")
            self.rules[name] = alts
            self.skip()

    def alternatives(self, top: bool) -> list[tuple[str, ...]]:
        alts = [self.sequence(top)]
        while True:
            self.skip()
            if self.pos < len(self.text) and self.text[self.pos] == "|":
                self.pos += 1
                alts.append(self.sequence(top))
            else:
                return alts

    def sequence(self, top: bool) -> tuple[str, ...]:
        out: list[str] = []
        while True:
            self.skip()
            if self.pos >= len(self.text):
                break
            c = self.text[self.pos]
            if c in "|)":
                break
            if top and self.at_rule_start():
                break
            atom = self.atom()
            out.extend(self.postfix(atom))
        return tuple(out)

    # -- atoms ----------------------------------------------------------------------------
    def atom(self) -> list[str]:
        t = self.text
        c = t[self.pos]
        start = self.pos
        if c == '"' or c == "'":
            self.pos += 1
            chars: list[str] = []
            while True:
                if self.pos >= len(t):
                    raise self.error("unterminated string literal", start)
                ch = t[self.pos]
                if ch == c:
                    self.pos += 1
                    break
                chars.append(self.char())
            return [self.lexeme_for_char(ch) for ch in chars]
        if c == "[":
            return [self.char_class()]
        if c == ".":
            self.pos += 1
            return [self.lexeme_for_class(_CharClass(((0, 0x10FFFF),), False))]
        if c == "(":
            self.pos += 1
            if t.startswith("=", self.pos) or t.startswith("!", self.pos):
                raise GrammarUnsupported(f"lookahead assertions '({t[self.pos]}' are not supported "
                                         f"(offset {start})")
            alts = self.alternatives(top=False)
            self.skip()
            if self.pos >= len(t) or t[self.pos] != ")":
                raise self.error("missing ')'", start)
            self.pos += 1
            if len(alts) == 1:
                return list(alts[0])
            return [self.helper(alts)]
        m = _NAME.match(t, self.pos)
        if m:
            self.pos = m.end()
            self.referenced.setdefault(m.group(0), start)
            return [m.group(0)]
        raise self.error(f"unexpected character {c!r}")

    def char(self) -> str:
        """One (possibly escaped) character inside a literal or class."""
        t = self.text
        ch = t[self.pos]
        if ch != "\\":
            self.pos += 1
            return ch
        if self.pos + 1 >= len(t):
            raise self.error("dangling backslash")
        e = t[self.pos + 1]
        for prefix, width in (("x", 2), ("u", 4), ("U", 8)):
            if e == prefix:
                digits = t[self.pos + 2:self.pos + 2 + width]
                if len(digits) != width or not all(d in "0123456789abcdefABCDEF" for d in digits):
                    raise self.error(f"bad \\{prefix} escape")
                self.pos += 2 + width
                cp = int(digits, 16)
                if cp > 0x10FFFF:
                    raise self.error("code point out of range")
                return chr(cp)
        if e in _ESCAPES:
            self.pos += 2
            return _ESCAPES[e]
        raise self.error(f"unknown escape \\{e}")

    def char_class(self) -> str:
        t = self.text
        start = self.pos
        self.pos += 1
        negated = self.pos < len(t) and t[self.pos] == "^"
        if negated:
            self.pos += 1
        ranges: list[tuple[int, int]] = []
        while True:
            if self.pos >= len(t):
                raise self.error("unterminated character class", start)
            if t[self.pos] == "]":
                self.pos += 1
                break
            lo = self.char()
            hi = lo
            if t.startswith("-", self.pos) and self.pos + 1 < len(t) and t[self.pos + 1] != "]":
                self.pos += 1
                hi = self.char()
            if ord(hi) < ord(lo):
                raise self.error(f"bad range {lo!r}-{hi!r}", start)
            ranges.append((ord(lo), ord(hi)))
        return self.lexeme_for_class(_CharClass(tuple(ranges), negated))

    def postfix(self, atom: list[str]) -> list[str]:
        t = self.text
        while self.pos < len(t) and t[self.pos] in "*+?{":
            c = t[self.pos]
            if c == "{":
                m = re.compile(r"\{\s*(\d+)\s*(?:(,)\s*(\d*)\s*)?\}").match(t, self.pos)
                if not m:
                    raise self.error("bad repetition {m,n}")
                self.pos = m.end()
                lo = int(m.group(1))
                hi = lo if m.group(2) is None else (int(m.group(3)) if m.group(3) else None)
                if hi is not None and hi < lo:
                    raise self.error(f"repetition {{{lo},{hi}}} has max < min")
                if max(lo, hi or 0) > _MAX_REPEAT:
                    raise GrammarUnsupported(f"repetition count above {_MAX_REPEAT}")
            else:
                self.pos += 1
                lo, hi = {"*": (0, None), "+": (1, None), "?": (0, 1)}[c]
            atom = self.repeat(atom, lo, hi)
        return atom

    # -- building ---------------------------------------------------------------------------
    def helper(self, alts: list[tuple[str, ...]]) -> str:
        self._helper += 1
        name = f"__gbnf_{self._helper}"
        self.rules[name] = alts
        return name

    def repeat(self, atom: list[str], lo: int, hi: int | None) -> list[str]:
        item = tuple(atom)
        out: list[str] = list(item * lo)
        if hi is None:
            star = f"__gbnf_{self._helper + 1}"
            self._helper += 1
            self.rules[star] = [(), (star, *item)]
            out.append(star)
        elif hi > lo:
            # nested optionals: (x (x (x)?)?)? — linear size in hi - lo
            tail: tuple[str, ...] = ()
            for _ in range(hi - lo):
                tail = (self.helper([(), item + tail]),)
            out.extend(tail)
        return out

    def lexeme_for_char(self, ch: str) -> str:
        key = ("c", ch)
        name = self._lexeme_by_key.get(key)
        if name is None:
            name = f"CHAR_{len(self.lexemes)}"
            self._lexeme_by_key[key] = name
            self.lexemes[name] = Lexeme(name, literal(ch), literal=ch.encode("utf-8"))
        return name

    def lexeme_for_class(self, cls: _CharClass) -> str:
        name = self._lexeme_by_key.get(cls)
        if name is None:
            name = f"CLASS_{len(self.lexemes)}"
            self._lexeme_by_key[cls] = name
            self.lexemes[name] = Lexeme(name, _class_regex(cls))
        return name


def _class_regex(cls: _CharClass) -> Node:
    """A one-code-point class as a byte AST (via the regex front end's UTF-8 expansion)."""
    from ..automata import parse_regex

    def esc(cp: int) -> str:
        return f"\\U{cp:08x}"

    body = "".join(esc(lo) if lo == hi else f"{esc(lo)}-{esc(hi)}" for lo, hi in cls.ranges)
    if not body:
        return parse_regex("(?s:.)") if cls.negated else parse_regex("[^\\x00-\\U0010ffff]")
    return parse_regex(f"[{'^' if cls.negated else ''}{body}]", re.DOTALL)


def gbnf_to_grammar(text: str, start: str = "root") -> Grammar:
    """Parse GBNF ``text`` into a :class:`Grammar` whose start rule is ``start``."""
    if not isinstance(text, str):
        raise GrammarSyntaxError(f"a GBNF grammar must be text, not {type(text).__name__}")
    p = _Parser(text)
    p.parse()
    for name, pos in p.referenced.items():
        if name not in p.rules:
            raise p.error(f"undefined rule {name!r}", pos)
    if start not in p.rules:
        raise GrammarSyntaxError(f"GBNF grammar has no {start!r} rule")
    return Grammar(rules={k: Rule(k, tuple(v)) for k, v in p.rules.items()},
                   lexemes=p.lexemes, start=start, ignore=(), max_ignore=None,
                   meta={"source": "gbnf"})


__all__ = ["gbnf_to_grammar"]
