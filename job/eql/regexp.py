"""Lucene regular expressions (the ``regexp`` query and EQL's ``regex``), run without backtracking.

The pattern is parsed with Lucene's syntax and default flags -- ``.`` (newlines too), classes with
ranges and ``\\d \\w \\s``, ``| ( ) ? * + {n} {n,} {n,m}``, ``"quoted"``, ``@`` (any string), ``#``
(the empty language), ``<n-m>`` numeric intervals -- into a Thompson automaton run over sets of states,
so ``(a+)+b`` against a long run of ``a`` costs what its length costs. Intersection ``&`` and complement
``~`` are refused with a clear error. A pattern longer than :data:`MAX_REGEX_LENGTH` is refused with
Elasticsearch's own ``index.max_regex_length`` message; an automaton over :data:`MAX_STATES` states
(``a{1000}{1000}``) is refused as too complex.
"""

from __future__ import annotations

import dataclasses as dc
from collections.abc import Callable
from functools import lru_cache

from job.eql.errors import PatternError

MAX_REGEX_LENGTH = 1000
MAX_STATES = 10_000

Pred = Callable[[str], bool]


@dc.dataclass(slots=True)
class _Nfa:
    """States are integers; ``moves[s]`` are (predicate, target); ``empty[s]`` are epsilon targets."""

    moves: list[list[tuple[Pred, int]]] = dc.field(default_factory=list)
    empty: list[list[int]] = dc.field(default_factory=list)

    def state(self) -> int:
        if len(self.moves) >= MAX_STATES:
            raise PatternError(f"the regular expression is too complex (more than {MAX_STATES} states)")
        self.moves.append([])
        self.empty.append([])
        return len(self.moves) - 1


_SHORTHAND: dict[str, Pred] = {
    "d": lambda c: "0" <= c <= "9",
    "D": lambda c: not "0" <= c <= "9",
    "w": lambda c: c.isascii() and (c.isalnum() or c == "_"),
    "W": lambda c: not (c.isascii() and (c.isalnum() or c == "_")),
    "s": lambda c: c in " \t\n\r\f\v",
    "S": lambda c: c not in " \t\n\r\f\v",
}
_RESERVED = set('.?+*|{}[]()"\\#@&<>~')


class _RegexParser:
    """Recursive descent over Lucene's RegExp grammar, building NFA fragments (start, end) directly."""

    def __init__(self, pattern: str, insensitive: bool) -> None:
        self.text, self.pos, self.insensitive = pattern, 0, insensitive
        self.nfa = _Nfa()
        self.depth = 0

    def fail(self, message: str) -> PatternError:
        return PatternError(f"{message} at position {self.pos} of the regular expression")

    def peek(self, chars: str) -> bool:
        return self.pos < len(self.text) and self.text[self.pos] in chars

    def take(self) -> str:
        char = self.text[self.pos]
        self.pos += 1
        return char

    def parse(self) -> tuple[int, int]:
        fragment = self.union()
        if self.pos < len(self.text):
            raise self.fail(f"unexpected [{self.text[self.pos]}]")
        return fragment

    def union(self) -> tuple[int, int]:
        self.depth += 1
        if self.depth > 100:
            raise self.fail("the regular expression nests too deeply")
        branches = [self.concat()]
        while self.peek("|"):
            self.pos += 1
            branches.append(self.concat())
        self.depth -= 1
        if len(branches) == 1:
            return branches[0]
        start, end = self.nfa.state(), self.nfa.state()
        for first, last in branches:
            self.nfa.empty[start].append(first)
            self.nfa.empty[last].append(end)
        return start, end

    def concat(self) -> tuple[int, int]:
        if self.peek("&"):
            raise self.fail("the intersection operator [&] is not supported")
        start = end = self.nfa.state()
        while self.pos < len(self.text) and not self.peek("|)"):
            if self.peek("&"):
                raise self.fail("the intersection operator [&] is not supported")
            first, last = self.repeat()
            self.nfa.empty[end].append(first)
            end = last
        return start, end

    def repeat(self) -> tuple[int, int]:
        begin = self.pos
        fragment = self.atom()
        while self.peek("?*+{"):
            op = self.take()
            if op == "{":
                low, high = self.bounds()
                fragment = self.counted(begin, fragment, low, high)
            else:
                fragment = self.star(fragment, op)
        return fragment

    def bounds(self) -> tuple[int, int | None]:
        close = self.text.find("}", self.pos)
        body = self.text[self.pos : close] if close >= 0 else ""
        parts = body.split(",")
        upper_ok = len(parts) == 1 or (len(parts) == 2 and (parts[1] == "" or parts[1].isdigit()))
        if close < 0 or not parts[0].isdigit() or not upper_ok:
            raise self.fail("malformed repetition {n,m}")
        self.pos = close + 1
        low = int(parts[0])
        high: int | None = low if len(parts) == 1 else (int(parts[1]) if parts[1] else None)
        if high is not None and high < low:
            raise self.fail("repetition {n,m} with m below n")
        return low, high

    def star(self, fragment: tuple[int, int], op: str) -> tuple[int, int]:
        first, last = fragment
        start, end = self.nfa.state(), self.nfa.state()
        self.nfa.empty[start].append(first)
        self.nfa.empty[last].append(end)
        if op in "?*":
            self.nfa.empty[start].append(end)
        if op in "*+":
            self.nfa.empty[last].append(first)
        return start, end

    def counted(self, begin: int, fragment: tuple[int, int], low: int, high: int | None) -> tuple[int, int]:
        # each copy is the sub-pattern parsed again (fresh states); the state limit bounds the total
        source = self.text[begin : self.pos]
        atom_text = source[: source.rfind("{")]
        copies = [fragment] + [self.reparse(atom_text) for _ in range(max(low, high or low + 1) - 1)]
        start = end = self.nfa.state()
        for index in range(low):
            self.nfa.empty[end].append(copies[index][0])
            end = copies[index][1]
        if high is None:
            looped = self.star(copies[low] if low < len(copies) else self.reparse(atom_text), "*")
            self.nfa.empty[end].append(looped[0])
            return start, looped[1]
        finish = self.nfa.state()
        self.nfa.empty[end].append(finish)
        for index in range(low, high):
            self.nfa.empty[end].append(copies[index][0])
            end = copies[index][1]
            self.nfa.empty[end].append(finish)
        return start, finish

    def reparse(self, text: str) -> tuple[int, int]:
        saved = self.text, self.pos
        self.text, self.pos = text, 0
        fragment = self.atom()
        while self.peek("?*+{"):
            op = self.take()
            fragment = self.star(fragment, op) if op != "{" else self.counted(0, fragment, *self.bounds())
        self.text, self.pos = saved
        return fragment

    def edge(self, pred: Pred) -> tuple[int, int]:
        start, end = self.nfa.state(), self.nfa.state()
        self.nfa.moves[start].append((pred, end))
        return start, end

    def literal(self, char: str) -> Pred:
        if self.insensitive and char.isascii() and char.isalpha():
            lower = char.lower()
            return lambda c: c.lower() == lower if c.isascii() else False
        return char.__eq__

    def atom(self) -> tuple[int, int]:
        if self.pos >= len(self.text):
            raise self.fail("unexpected end")
        char = self.take()
        if char == "~":
            raise self.fail("the complement operator [~] is not supported")
        if char == ".":
            return self.edge(lambda c: True)
        if char == "@":
            return self.star(self.edge(lambda c: True), "*")
        if char == "#":
            state = self.nfa.state()
            return state, self.nfa.state()  # no path from start to end: the empty language
        if char == "(":
            if self.peek(")"):
                self.pos += 1
                state = self.nfa.state()
                return state, state
            fragment = self.union()
            if not self.peek(")"):
                raise self.fail("missing [)]")
            self.pos += 1
            return fragment
        if char == '"':
            close = self.text.find('"', self.pos)
            if close < 0:
                raise self.fail('missing closing ["]')
            quoted, self.pos = self.text[self.pos : close], close + 1
            start = end = self.nfa.state()
            for each in quoted:
                first, last = self.edge(self.literal(each))
                self.nfa.empty[end].append(first)
                end = last
            return start, end
        if char == "[":
            return self.edge(self.char_class())
        if char == "<":
            return self.interval()
        if char == "\\":
            return self.edge(self.escaped())
        if char in ")|?*+{":
            raise self.fail(f"unexpected [{char}]")
        return self.edge(self.literal(char))

    def escaped(self) -> Pred:
        if self.pos >= len(self.text):
            raise self.fail("a backslash at the end")
        char = self.take()
        return _SHORTHAND.get(char) or self.literal(char)

    def char_class(self) -> Pred:
        negate = self.peek("^")
        if negate:
            self.pos += 1
        preds: list[Pred] = []
        first = True
        while self.pos < len(self.text) and (first or not self.peek("]")):
            first = False
            if self.peek("\\"):
                self.pos += 1
                if self.pos < len(self.text) and self.text[self.pos] in _SHORTHAND:
                    preds.append(_SHORTHAND[self.take()])
                    continue
                low = self.take() if self.pos < len(self.text) else "\\"
            else:
                low = self.take()
            if self.peek("-") and self.pos + 1 < len(self.text) and self.text[self.pos + 1] != "]":
                self.pos += 1
                high = self.take()
                if high == "\\" and self.pos < len(self.text):
                    high = self.take()
                if high < low:
                    raise self.fail(f"invalid class range [{low}-{high}]")
                preds.append(self.range_pred(low, high))
            else:
                preds.append(self.literal(low))
        if not self.peek("]"):
            raise self.fail("missing []]")
        self.pos += 1
        if negate:
            return lambda c: not any(pred(c) for pred in preds)
        return lambda c: any(pred(c) for pred in preds)

    def range_pred(self, low: str, high: str) -> Pred:
        if self.insensitive:

            def folded(c: str) -> bool:
                if low <= c <= high:
                    return True
                return c.isascii() and (low <= c.lower() <= high or low <= c.upper() <= high)

            return folded
        return lambda c: low <= c <= high

    def interval(self) -> tuple[int, int]:
        close = self.text.find(">", self.pos)
        body = self.text[self.pos : close] if close >= 0 else ""
        low_text, _, high_text = body.partition("-")
        if close < 0 or not low_text.isdigit() or not high_text.isdigit():
            raise self.fail("malformed numeric interval <n-m>")
        self.pos = close + 1
        low, high = sorted((int(low_text), int(high_text)))
        if high - low > 1000:
            raise self.fail("numeric intervals wider than 1000 values are not supported")
        width = len(low_text) if len(low_text) == len(high_text) and low_text.startswith("0") else 0
        start, end = self.nfa.state(), self.nfa.state()
        for number in range(low, high + 1):
            text = str(number).zfill(width)
            previous = start
            for index, digit in enumerate(text):
                target = end if index == len(text) - 1 else self.nfa.state()
                self.nfa.moves[previous].append((digit.__eq__, target))
                previous = target
        return start, end


@dc.dataclass(frozen=True, slots=True)
class Regex:
    """A compiled Lucene regular expression; :meth:`matches` tests a whole value."""

    nfa: _Nfa
    start: int
    end: int
    closures: tuple[frozenset[int], ...]

    def matches(self, text: str) -> bool:
        current = self.closures[self.start]
        for char in text:
            following: set[int] = set()
            for state in current:
                for pred, target in self.nfa.moves[state]:
                    if pred(char):
                        following |= self.closures[target]
            if not following:
                return False
            current = frozenset(following)
        return self.end in current


def _closures(nfa: _Nfa) -> tuple[frozenset[int], ...]:
    result: list[frozenset[int]] = []
    for origin in range(len(nfa.moves)):
        seen = {origin}
        stack = [origin]
        while stack:
            for target in nfa.empty[stack.pop()]:
                if target not in seen:
                    seen.add(target)
                    stack.append(target)
        result.append(frozenset(seen))
    return tuple(result)


@lru_cache(maxsize=1024)
def compile_regex(pattern: str, insensitive: bool = False) -> Regex:
    """Compile a Lucene regular expression; :class:`PatternError` if it is malformed or unsupported."""
    if len(pattern) > MAX_REGEX_LENGTH:
        raise PatternError(
            f"The length of regex [{len(pattern)}] used in the Regexp Query request has exceeded the allowed "
            f"maximum of [{MAX_REGEX_LENGTH}]. This maximum can be set by changing the [index.max_regex_length] "
            "index level setting."
        )
    parser = _RegexParser(pattern, insensitive)
    start, end = parser.parse()
    return Regex(parser.nfa, start, end, _closures(parser.nfa))


def regex_exact(pattern: str) -> str | None:
    """The one string a regular expression matches when it is plain text (no special character), else None."""
    if any(char in _RESERVED for char in pattern):
        return None
    return pattern


def regex_is_total(pattern: str) -> bool:
    """The regular expression matches every string (``.*``, ``@`` and their parenthesised forms)."""
    stripped = pattern
    while stripped.startswith("(") and stripped.endswith(")"):
        stripped = stripped[1:-1]
    return stripped in (".*", "@", "(.*)", ".*.*")
