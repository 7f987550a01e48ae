"""What sievelib's grammar lacks of the extensions we run: ``ereject`` and ``mailboxexists``.

Why: ``extensions.SUPPORTED`` lists ``ereject`` (RFC 5429 §2.1) and ``mailbox`` (RFC 5490
§3: ``fileinto :create`` and the ``mailboxexists`` test), and sievelib 1.6 knows
``fileinto :create`` but has no command class for either of the other two, so it would
refuse a script that uses them.  sievelib's documented way to add commands is
``commands.add_commands``; importing this module registers them, once, for every parser
in the process (the interpreter imports it, and so must whatever parses scripts).

Standards: RFC 5429 §2.1 (ereject), RFC 5490 §3.1 (mailboxexists).
"""

from __future__ import annotations

from sievelib import commands


class ErejectCommand(commands.ActionCommand):
    """``ereject <reason: string>`` (RFC 5429 §2.1): refuse, at the protocol level if can."""

    extension = "ereject"
    args_definition = [{"name": "text", "type": ["string"], "required": True}]


class MailboxexistsCommand(commands.TestCommand):
    """``mailboxexists <mailbox-names: string-list>`` (RFC 5490 §3.1)."""

    extension = "mailbox"
    args_definition = [
        {"name": "mailbox-names", "type": ["string", "stringlist"], "required": True},
    ]


commands.add_commands([ErejectCommand, MailboxexistsCommand])
