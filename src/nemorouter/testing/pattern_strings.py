"""Strings that match a regular expression, sampled from its parse tree (for the simulated
providers' schema-valid answers: JSON Schema `pattern`). Anchors and lookarounds emit
nothing; the caller checks each sample with `re.search`."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

try:  # the regex parser moved in 3.11; it lets us build strings that match `pattern`
    import re._parser as _sre
except ImportError:  # pragma: no cover
    import sre_parse as _sre  # type: ignore[no-redef]


def parse_pattern(pattern: str) -> Any:
    """The pattern's parse tree (raises re.error for a bad pattern)."""
    return _sre.parse(pattern)


def sample_pattern(parsed: Any, rng: random.Random, spread: int) -> str:
    """One string built from the tree; repeats go at most `spread` past their minimum."""
    return "".join(_emit(parsed, rng, spread, {}))


class UnsupportedPattern(Exception):
    """A regex construct the sampler cannot produce text for."""


_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 -_."
_CATEGORY_TESTS: dict[str, Callable[[str], bool]] = {
    "DIGIT": str.isdigit,
    "WORD": lambda c: c.isalnum() or c == "_",
    "SPACE": str.isspace,
}


def _in_category(ch: str, cat: Any) -> bool:
    name = str(cat).removeprefix("CATEGORY_")  # e.g. DIGIT, NOT_WORD
    test = _CATEGORY_TESTS.get(name.removeprefix("NOT_"))
    if test is None:
        raise UnsupportedPattern(name)
    return test(ch) != name.startswith("NOT_")


def _in_set(ch: str, items: list[tuple[Any, Any]]) -> bool:
    for op, av in items:
        if op is _sre.LITERAL and ord(ch) == av:
            return True
        if op is _sre.RANGE and av[0] <= ord(ch) <= av[1]:
            return True
        if op is _sre.CATEGORY and _in_category(ch, av):
            return True
    return False


def _pick_char(items: list[tuple[Any, Any]], rng: random.Random) -> str:
    if items and items[0][0] is _sre.NEGATE:
        options = [c for c in _ALPHABET if not _in_set(c, items[1:])]
    else:
        options = [c for c in _ALPHABET if _in_set(c, items)]
        if not options:  # e.g. only non-ASCII ranges/literals
            op, av = rng.choice(items)
            options = [chr(av)] if op is _sre.LITERAL else [chr(av[0])] if op is _sre.RANGE else []
    if not options:
        raise UnsupportedPattern("empty character class")
    return rng.choice(options)


def _emit(items: Any, rng: random.Random, spread: int, groups: dict[int, str]) -> list[str]:
    out: list[str] = []
    for op, av in items:
        if op is _sre.LITERAL:
            out.append(chr(av))
        elif op is _sre.NOT_LITERAL:
            out.append(rng.choice([c for c in _ALPHABET if ord(c) != av]))
        elif op is _sre.ANY:
            out.append(rng.choice(_ALPHABET[:26]))
        elif op is _sre.IN:
            out.append(_pick_char(av, rng))
        elif op is _sre.CATEGORY:
            out.append(_pick_char([(op, av)], rng))
        elif op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT, getattr(_sre, "POSSESSIVE_REPEAT", None)):
            lo, hi, sub = av
            for _ in range(rng.randint(lo, min(hi, lo + spread))):
                out += _emit(sub, rng, spread, groups)
        elif op is _sre.SUBPATTERN:
            gid, sub = av[0], av[-1]
            text = _emit(sub, rng, spread, groups)
            if gid:
                groups[gid] = "".join(text)
            out += text
        elif op is _sre.BRANCH:
            out += _emit(rng.choice(av[1]), rng, spread, groups)
        elif op is _sre.GROUPREF:
            out.append(groups.get(av, ""))
        elif op in (_sre.AT, _sre.ASSERT, _sre.ASSERT_NOT):
            continue  # anchors/lookarounds emit nothing; the final re.search check decides
        else:
            raise UnsupportedPattern(str(op))
    return out
