"""What the admin commands print: text clients wrote reaches the desk's terminal with its
control characters made visible (cli/common.py ``emit``, ``printable``)."""

from __future__ import annotations

import json
from types import SimpleNamespace

from mailstack.cli import common

HOSTILE = "mail.example\x1b[2J\x1b]0;owned\x07 ok"


def test_a_table_shows_control_characters_instead_of_sending_them(capsys):
    common.emit(SimpleNamespace(format="table"), [{"helo": HOSTILE, "n": 1}], ["helo", "n"])
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out
    assert "mail.example\\x1b[2J\\x1b]0;owned\\x07 ok" in out


def test_json_keeps_the_value_and_escapes_it_itself(capsys):
    common.emit(SimpleNamespace(format="json"), [{"helo": HOSTILE}], ["helo"])
    out = capsys.readouterr().out
    assert "\x1b" not in out and json.loads(out) == [{"helo": HOSTILE}]


def test_newlines_and_tabs_are_left_alone():
    assert common.printable("a\tb\nc") == "a\tb\nc"
