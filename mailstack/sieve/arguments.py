"""A command's arguments as values: sievelib keeps them as the script wrote them.

Why: sievelib's tree holds each string with its quotes and escapes (``"a\\"b"``), each
multi-line string with its ``text:`` line and dot-stuffing, each number with its
quantifier (``100K``) and each tag as written (``:IS``).  The interpreter reads them once,
when a script is compiled, through these functions, so running a script never touches
sievelib's representation.

Standards: RFC 5228 §2.4.1 (numbers and quantifiers), §2.4.2 (quoted and multi-line
strings, dot-stuffing), §2.4.2.1 (string lists), §2.6.2 (tags, case-insensitive).
"""

from __future__ import annotations

import re

from sievelib import tools

_QUANTIFIERS = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
_LINE_BREAK = re.compile(r"\r?\n")


class ScriptError(Exception):
    """A script that cannot run as written, or a limit it reached: the message says why,
    in words for the account's owner (ManageSieve, the delivery log)."""


def string(value) -> str:
    """A quoted or multi-line string's content (RFC 5228 §2.4.2)."""
    if not isinstance(value, str):
        raise ScriptError(f"a string was expected, not {value!r}")
    if value.startswith("text:"):
        return _multi_line(value)
    if len(value) > 1 and value[0] == value[-1] == '"' and "\\" not in value:
        return value[1:-1]                        # nothing escaped: the common case
    return tools.unquote(value)


def _multi_line(value: str) -> str:
    """``text:`` [comment] CRLF lines "." : the lines, dot-unstuffed, CRLF-terminated."""
    lines = _LINE_BREAK.split(value)[1:]          # the first is "text:" and its comment
    if lines and lines[-1] == ".":
        lines.pop()
    return "".join((line[1:] if line.startswith("..") else line) + "\r\n" for line in lines)


def strings(value) -> tuple[str, ...]:
    """A string list (RFC 5228 §2.4.2.1): a list, or a single string standing for one."""
    if isinstance(value, list):
        return tuple(string(item) for item in value)
    return (string(value),)


def number(value) -> int:
    """A number with its optional K/M/G quantifier (RFC 5228 §2.4.1)."""
    text = str(value).strip()
    scale = _QUANTIFIERS.get(text[-1:].lower(), 1)
    digits = text[:-1] if scale != 1 else text
    if not digits.isdigit():
        raise ScriptError(f"a number was expected, not {text!r}")
    return int(digits) * scale


def tag(command, name: str, default: str | None = None) -> str | None:
    """The tag given for argument ``name`` (``:is``), lower-cased; ``default`` if none."""
    value = command.arguments.get(name)
    return value.lower() if isinstance(value, str) else default


def tag_value(command, name: str):
    """The value that follows a tag (``:days 3`` -> "3"), as sievelib read it."""
    return command.extra_arguments.get(name)
