"""Sieve scripts and messages for the interpreter's unit tests.

Scripts are parsed with sievelib's ``Parser`` directly (the tree delivery will get from
``sieve/scripts.py``), after ``sieve.grammar`` has registered what sievelib lacks.
"""

from __future__ import annotations

from sievelib.parser import Parser

from mailstack.sieve import grammar  # noqa: F401 (registers ereject, mailboxexists)
from mailstack.sieve.actions import Outcome
from mailstack.sieve.interpreter import Script, compile_script
from mailstack.sieve.message_view import MessageView

SENDER = "coyote@desert.example.org"
RECIPIENT = "roadrunner@acme.example.com"
HEADER = (
    "From: Wile E. Coyote <coyote@desert.example.org>\r\n"
    "To: Road Runner <roadrunner@acme.example.com>\r\n"
    "Cc: friends: elmer@fudd.example.net, bugs@bunny.example.net;\r\n"
    "Subject: I have a present for you\r\n"
    "Message-ID: <1234@desert.example.org>\r\n"
    "Date: Thu, 01 Jan 2026 10:00:00 +0000\r\n"
    "X-Caffeine: C8H10N4O2\r\n"
)
BODY = "Look, I'm sorry about the whole anvil thing.\r\n"


def parse(text: str) -> list:
    parser = Parser()
    assert parser.parse(text), parser.error
    return parser.result


def script(text: str) -> Script:
    return compile_script(parse(text))


def message(header: str = HEADER, body: str | None = BODY, *, envelope_from: str = SENDER,
            envelope_to: str = RECIPIENT) -> MessageView:
    raw = header.encode("utf-8") + (b"" if body is None else b"\r\n" + body.encode("utf-8"))
    return MessageView.from_bytes(raw, envelope_from=envelope_from, envelope_to=envelope_to)


def run(text: str, view: MessageView | None = None, **options) -> Outcome:
    compiled = script(text)
    assert compiled.error is None, compiled.error
    return compiled.run(view if view is not None else message(), **options)
