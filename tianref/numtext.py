"""Numbers as the command line writes them: one spelling for each value.

Every integer and float an option takes (click's option types in tianref/cli/common.py, the list parser
config.parse_list, sweep's --seeds, --eta-schedule, --tail-rank, the thread variables) is read here.
Python's int() and float() also read other scripts' digits ('\u0663' is 3, '\uff17' is 7) and '_'
separators ('1_0' is 10); those are refused, as group names refuse them (tianref/groups.py), so a value
has one spelling in a command, a log and a config.json. Surrounding ASCII blanks are ignored ('5, 10').

A float keeps its usual forms (2e-4, .5, -0, inf, nan: the options' own checks then refuse the
non-finite ones with their messages); a literal with a nonzero digit that rounds to 0 (1e-400) is
refused, since a decay of 0 is the control run, not a small decay.
"""
from __future__ import annotations

import re

_BLANKS = " \t\n\r\f\v"
_INT = re.compile(r"[+-]?[0-9]+")
_FLOAT = re.compile(r"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|inf|infinity|nan)",
                    re.IGNORECASE)


def _hint(text: str) -> str:
    if not text.isascii():
        return ": write it in ASCII digits 0-9"
    if "_" in text:
        return ": write it without '_' separators"
    return ""


def parse_int(text: str) -> int:
    """``text`` as an integer written in ASCII digits with an optional sign; ValueError (its message
    names the text and, for other scripts' digits or '_', what to write) otherwise."""
    t = str(text).strip(_BLANKS)
    if _INT.fullmatch(t) is None:
        raise ValueError(f"{text!r} is not an integer{_hint(t)}")
    return int(t)


def parse_float(text: str) -> float:
    """``text`` as a float written in ASCII (decimal point, exponent, inf, nan); ValueError otherwise,
    and for a literal with a nonzero digit that rounds to 0."""
    t = str(text).strip(_BLANKS)
    if _FLOAT.fullmatch(t) is None:
        raise ValueError(f"{text!r} is not a number{_hint(t)}")
    v = float(t)
    if v == 0.0 and re.search(r"[1-9]", re.split(r"[eE]", t)[0]):
        raise ValueError(f"{text!r} rounds to 0 in float64; write 0 for zero")
    return v


def parse_number(text: str, kind=int):
    """parse_int or parse_float by ``kind`` (int or float)."""
    return parse_int(text) if kind is int else parse_float(text)
