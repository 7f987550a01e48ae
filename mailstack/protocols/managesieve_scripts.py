"""ManageSieve's script commands: PUTSCRIPT, CHECKSCRIPT, GETSCRIPT, LISTSCRIPTS, SETACTIVE,
DELETESCRIPT, RENAMESCRIPT, HAVESPACE (RFC 5804 §2.3, §2.6-§2.12).

Why a module of its own: the session (``managesieve``) frames, dispatches and logs in;
these are the commands of the authenticated state, each a check of its arguments, one
unit of work in the store (``store/sieve_scripts.py``) and the reply, sent only once the
work has committed.  A script is checked by ``sieve/scripts.py`` in the database thread,
before the writer lock, never on the reactor.

Standards: RFC 5804 §1.3 (NONEXISTENT, ALREADYEXISTS, ACTIVE, QUOTA/MAXSIZE,
QUOTA/MAXSCRIPTS, TRYLATER), §1.6 (script names), §2.6 (errors with their line).
Security: names are checked against RFC 5804 §1.6 before they reach the store; every
limit of ``[sieve]`` is applied by the store in the same transaction as the write.
"""

from __future__ import annotations

from mailstack import clock as clocks, replies
from mailstack.protocols.managesieve_grammar import Number, string
from mailstack.sieve import scripts
from mailstack.store import sieve_scripts as store
from mailstack.store.errors import Conflict, NotFound

class Refused(Exception):
    """A command answered ``NO`` with ``reply``."""

    def __init__(self, reply: replies.CodedReply):
        super().__init__(reply.text)
        self.reply = reply


def script_name(value, empty_ok: bool = False) -> str:
    if not isinstance(value, str) or isinstance(value, Number):
        raise Refused(replies.SIEVE_SYNTAX)
    if not (scripts.valid_name(value) or (empty_ok and not value)):
        raise Refused(replies.SIEVE_BAD_NAME)
    return value


def _text(value) -> str:
    if not isinstance(value, str):
        raise Refused(replies.SIEVE_SYNTAX)
    return value


def _check_only(conn, text: str) -> None:
    scripts.check(text)


class ScriptCommands:
    """Mixin of the session: ``self.db``, ``self.clock``, ``self.account``, ``self.settings``."""

    def _limits(self) -> store.Limits:
        return store.Limits(self.settings.max_script_size, self.settings.max_scripts)

    async def _store(self, fn, *args):
        """One unit of work on the account's scripts, its store errors as replies."""
        try:
            return await self.db.run(fn, self.account.id, *args)
        except NotFound:
            raise Refused(replies.SIEVE_NONEXISTENT) from None
        except Conflict:
            raise Refused(replies.SIEVE_ALREADY_EXISTS) from None
        except store.ScriptActive:
            raise Refused(replies.SIEVE_ACTIVE) from None
        except store.ScriptTooLarge:
            raise Refused(replies.SIEVE_TOO_BIG) from None
        except store.TooManyScripts:
            raise Refused(replies.SIEVE_TOO_MANY) from None

    async def cmd_HAVESPACE(self, name, size):
        if not isinstance(size, Number):
            raise Refused(replies.SIEVE_SYNTAX)
        await self._store(store.have_space, script_name(name), int(size), self._limits())
        self.ok()

    async def cmd_PUTSCRIPT(self, name, content):
        name, content = script_name(name), _text(content)
        if len(content.encode("utf-8")) > self.settings.max_script_size:
            raise Refused(replies.SIEVE_TOO_BIG)
        try:
            await self.db.run_prepared(lambda: scripts.check(content), self._put,
                                       name, content, clocks.now(self.clock))
        except scripts.ScriptError as e:
            self.log.info("PUTSCRIPT refused: {why}", why=str(e))
            raise Refused(replies.CodedReply(None, str(e))) from None
        except NotFound:
            raise Refused(replies.SIEVE_NONEXISTENT) from None
        except store.ScriptTooLarge:
            raise Refused(replies.SIEVE_TOO_BIG) from None
        except store.TooManyScripts:
            raise Refused(replies.SIEVE_TOO_MANY) from None
        self.log.info("PUTSCRIPT {size} octets", size=len(content))
        self.ok()

    def _put(self, conn, _checked, name, content, at):
        store.put_script(conn, self.account.id, name, content, at, self._limits())

    async def cmd_CHECKSCRIPT(self, content):
        content = _text(content)
        if len(content.encode("utf-8")) > self.settings.max_script_size:
            raise Refused(replies.SIEVE_TOO_BIG)
        try:
            await self.db.read(_check_only, content)
        except scripts.ScriptError as e:
            raise Refused(replies.CodedReply(None, str(e))) from None
        self.ok()

    async def cmd_GETSCRIPT(self, name):
        content = await self._store(store.get_script, script_name(name))
        data = content.encode("utf-8")
        self.write(b"{%d}\r\n" % len(data) + data + b"\r\n")
        self.ok()

    async def cmd_LISTSCRIPTS(self):
        listed = await self._store(store.list_scripts)
        self.write(b"".join(string(s.name) + (b" ACTIVE" if s.active else b"") + b"\r\n"
                            for s in listed))
        self.ok()

    async def cmd_SETACTIVE(self, name):
        await self._store(store.set_active, script_name(name, empty_ok=True),
                          clocks.now(self.clock))
        self.ok()

    async def cmd_DELETESCRIPT(self, name):
        await self._store(store.delete_script, script_name(name))
        self.ok()

    async def cmd_RENAMESCRIPT(self, old, new):
        await self._store(store.rename_script, script_name(old), script_name(new),
                          clocks.now(self.clock))
        self.ok()
