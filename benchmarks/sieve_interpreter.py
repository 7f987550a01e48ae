"""What a 20-rule Sieve script costs per message: the interpreter alone, no delivery.

Why: issue 19 wants port 25 with a 20-rule script on every account within 15% of the
figure without Sieve (docs/benchmarks.md); at ~300 messages/s a message costs ~3 ms, so
the script must cost well under 0.3 ms.  This measures one typical 4 KB message as
delivery sees it (its header as it is stored: Return-Path, Received, Authentication-
Results and the load generator's fields) against a script of the kind Roundcube writes:
header and address tests with fileinto, none matching, so every rule is evaluated.

Three figures, microseconds per message (best of 5 rounds of N runs):
- ``view``: building the ``MessageView`` (nothing is parsed until a test asks);
- ``run``: running the compiled script on a fresh view (fields split, decoded, addresses
  parsed, all 20 rules evaluated) -- what delivery pays per recipient;
- ``compile``: compiling the script from sievelib's tree, paid once per script version
  (``ScriptCache``).

Usage: python benchmarks/sieve_interpreter.py [N]   (run from the repository root)
"""

from __future__ import annotations

import sys
import timeit

from sievelib.parser import Parser

from mailstack.sieve import grammar  # noqa: F401
from mailstack.sieve.interpreter import compile_script
from mailstack.sieve.message_view import MessageView

SCRIPT = 'require ["fileinto", "imap4flags"];\n' + "\n".join([
    *(f'if header :contains "subject" ["{word}", "{word} weekly"] {{ fileinto "{word}"; }}'
      for word in ("invoice", "newsletter", "school", "football", "holiday", "bank",
                   "delivery", "meeting")),
    *(f'if address :is "from" "{who}@{where}" {{ fileinto "People/{who}"; }}'
      for who, where in (("mum", "family.example"), ("boss", "work.example"),
                         ("teacher", "school.example"))),
    *(f'if address :domain :is "from" "{domain}" {{ fileinto "Shops"; stop; }}'
      for domain in ("shop.example", "store.example", "market.example")),
    *(f'if header :contains "list-id" "{name}" {{ fileinto "Lists/{name}"; }}'
      for name in ("python", "debian", "ietf")),
    'if anyof (address :domain :is ["to", "cc"] "old.example", '
    'header :matches "subject" "*[SPAM]*") { addflag "\\\\Seen"; fileinto "Junk"; }',
    'if header :is "x-spam-flag" "YES" { fileinto "Junk"; }',
    'if exists "x-mailing-list" { fileinto "Lists"; }',
])

HEADER = (
    "Return-Path: <sender@remote.test>\r\n"
    "Received: from client.remote.test (client.remote.test [127.0.0.2])\r\n"
    "\tby mx.example.test (mailstack) with ESMTPS id 3f2a9c0d1e\r\n"
    "\tfor <user1@example.test>; Thu, 01 Jan 2026 00:00:01 +0000\r\n"
    "Authentication-Results: mx.example.test; spf=pass smtp.mailfrom=remote.test;\r\n"
    "\tdkim=none; dmarc=pass header.from=remote.test\r\n"
    "From: loadgen <sender@remote.test>\r\nTo: user1@example.test\r\n"
    "Subject: loadgen message 42\r\nMessage-ID: <42.123456789@loadgen.test>\r\n"
    "Date: Thu, 01 Jan 2026 00:00:00 +0000\r\nMIME-Version: 1.0\r\n"
    "Content-Type: text/plain; charset=us-ascii\r\n"
).encode()
LINE = b"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcd\r\n"
BODY = (LINE * 60)[:4096 - len(HEADER) - 2]


def view() -> MessageView:
    return MessageView(HEADER, size=len(HEADER) + 2 + len(BODY),
                       envelope_from="sender@remote.test", envelope_to="user1@example.test",
                       body=lambda limit: BODY[:limit])


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    parser = Parser()
    assert parser.parse(SCRIPT), parser.error
    script = compile_script(parser.result)
    assert script.error is None, script.error
    outcome = script.run(view())
    assert outcome.error is None and len(outcome.actions) == 1, outcome
    rules = SCRIPT.count("\nif ")
    timings = {
        "view": timeit.repeat(view, number=runs, repeat=5),
        "run": timeit.repeat(lambda: script.run(view()), number=runs, repeat=5),
        "compile": timeit.repeat(lambda: compile_script(parser.result), number=runs // 20,
                                 repeat=5),
    }
    print(f"{rules} rules, {len(HEADER) + 2 + len(BODY)}-octet message, {runs} runs")
    for name, rounds in timings.items():
        count = runs // 20 if name == "compile" else runs
        print(f"{name:8} {min(rounds) / count * 1e6:8.1f} µs per message")


if __name__ == "__main__":
    main()
