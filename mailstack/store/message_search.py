"""IMAP SEARCH as one SQL query over a folder's messages.

Why: the database should filter, so that what crosses into Python -- rows, header text,
bodies -- grows with the matches, not with the mailbox (Twisted's fallback and our first
evaluator loaded every body of the folder, twisted #5849).  The criteria tree below is
the store's search vocabulary; ``protocols/imap_search.py`` parses IMAP syntax into it.

How: every node compiles to two SQL predicates, ``sure`` (true only for real matches) and
``maybe`` (true for every real match).  Flags, sizes, dates, UIDs and text keys are exact
(sure == maybe).  A header key can only be prefiltered with LIKE over the lower-cased
``search_headers``, so its rows are re-checked in Python, and only the rows where ``sure``
and ``maybe`` disagree are; that is also what keeps NOT and OR over such keys correct.
Text keys are exact on SQLite (``CAST(body AS TEXT) LIKE``); PostgreSQL scans
``encode(body, 'escape')`` with ILIKE, where a needle starting with an octal digit or a
backslash could match inside an escape, so those rows are re-checked against the bytes.

Standards: RFC 3501 §6.4.4 (SEARCH), RFC 2047 (decoded headers via ``search_headers``).
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, fields
from datetime import date, datetime, time, timedelta, timezone

from sqlalchemy import and_, case, false, not_, or_, select, true, literal
from sqlalchemy.engine import Connection

from mailstack.store.schema import messages
from mailstack.store.sql_text import body_part, grouped, pg_escape, scannable

CHUNK = 200     # bodies fetched per query when text rows need a re-check


# --- the criteria tree ----------------------------------------------------------------------

@dataclass(frozen=True)
class All:
    pass


@dataclass(frozen=True)
class Nothing:
    pass


@dataclass(frozen=True)
class And:
    parts: tuple


@dataclass(frozen=True)
class Or:
    left: object
    right: object


@dataclass(frozen=True)
class Not:
    part: object


@dataclass(frozen=True)
class Flag:
    name: str               # a system flag, e.g. "\\Seen"
    present: bool = True


@dataclass(frozen=True)
class Keyword:
    name: str               # a client's keyword, e.g. "$Label1"
    present: bool = True


@dataclass(frozen=True)
class Uids:
    ranges: tuple           # ((low, high), ...); None stands for "*"


@dataclass(frozen=True)
class Seqs:
    ranges: tuple           # sequence numbers, resolved through the session's snapshot


@dataclass(frozen=True)
class Size:
    op: str                 # "larger" | "smaller"
    n: int


@dataclass(frozen=True)
class Date:
    field: str              # "internal" | "sent"
    op: str                 # "before" | "on" | "since"
    day: date               # a UTC calendar day


@dataclass(frozen=True)
class Header:
    name: str               # as the client wrote them; matched case-insensitively
    needle: str


@dataclass(frozen=True)
class Text:
    where: str              # "body" (after the header block) | "text" (the whole message)
    needle: str


def _children(node) -> tuple:
    return tuple(getattr(node, f.name) for f in fields(node)
                 if isinstance(getattr(node, f.name), (And, Or, Not, *_LEAVES))) \
        if not isinstance(node, And) else node.parts


# --- SQL for each key ----------------------------------------------------------------------

def _like_escape(text: str) -> str:
    return text.replace("!", "!!").replace("%", "!%").replace("_", "!_")


def header_text(value: str) -> str:
    """A needle or name as ``search_headers`` spells it: lower-cased, blanks collapsed."""
    return " ".join(value.split(" ")).lower() if False else _collapse(value).lower()


def _collapse(value: str) -> str:
    return " ".join(part for part in value.replace("\t", " ").replace("\r", " ")
                    .replace("\n", " ").split(" ") if part) if value.strip() else value and " "


def _flag(node):
    haystack = literal(" ") + messages.c.flags + literal(" ")
    hit = haystack.ilike(f"% {_like_escape(node.name)} %", escape="!")
    return hit if node.present else not_(hit)


def _size(node):
    return messages.c.size > node.n if node.op == "larger" else messages.c.size < node.n


def _date(node):
    start = datetime.combine(node.day, time(), timezone.utc)
    end = start + timedelta(days=1)
    column = messages.c.internal_date if node.field == "internal" else messages.c.sent_at
    test = {"before": column < start, "since": column >= start,
            "on": and_(column >= start, column < end)}[node.op]
    return test if node.field == "internal" else and_(column.isnot(None), test)


def _headers():
    return literal("\n") + messages.c.search_headers


def _header_presence(name: str):
    return _headers().like(f"%\n{_like_escape(header_text(name).strip())}: %", escape="!")


def _header_maybe(node):
    name, needle = header_text(node.name).strip(), header_text(node.needle)
    return _headers().like(f"%\n{_like_escape(name)}: %{_like_escape(needle)}%", escape="!")


def _balanced(join, exprs: list):
    """Join many predicates as a balanced tree: SQLite refuses expressions 1,000 deep."""
    if len(exprs) <= 8:
        return join(*exprs) if exprs else (true() if join is and_ else false())
    middle = len(exprs) // 2
    return join(grouped(_balanced(join, exprs[:middle])),
                grouped(_balanced(join, exprs[middle:])))


def _merged(ranges) -> list[tuple[int, int]]:
    merged: list[list[int]] = []
    for low, high in sorted(ranges):
        if merged and low <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], high)
        else:
            merged.append([low, high])
    return [(low, high) for low, high in merged]


def _uid_in(ranges):
    single = [low for low, high in ranges if low == high]
    tests = [messages.c.uid.between(low, high) for low, high in ranges if low != high]
    if single:
        tests.append(messages.c.uid.in_(single))
    return _balanced(or_, tests)


# --- compiling a tree -----------------------------------------------------------------------

class _Compiler:
    """Turns a criteria tree into (sure, maybe) predicates for one dialect and snapshot."""

    def __init__(self, dialect: str, uids: list[int]):
        self.dialect, self.uids = dialect, uids
        self._exact: dict = {}

    def exact(self, node) -> bool:
        if node not in self._exact:
            if isinstance(node, Header):
                found = header_text(node.needle) == ""
            elif isinstance(node, Text):
                found = self.dialect != "postgresql" or not _escape_ambiguous(node.needle)
            else:
                found = all(self.exact(child) for child in _children(node))
            self._exact[node] = found
        return self._exact[node]

    def bounds(self, node):
        if self.exact(node):
            sql = self.sql(node)
            return sql, sql
        if isinstance(node, (Header, Text)):
            return false(), self.leaf(node)
        if isinstance(node, Not):
            sure, maybe = self.bounds(node.part)
            return not_(maybe), not_(sure)
        join = and_ if isinstance(node, And) else or_
        pairs = [self.bounds(child) for child in _children(node)]
        return (_balanced(join, [grouped(s) for s, _ in pairs]),
                _balanced(join, [grouped(m) for _, m in pairs]))

    def sql(self, node):
        """The exact predicate of an exact node."""
        if isinstance(node, Not):
            return not_(grouped(self.sql(node.part)))
        if isinstance(node, (And, Or)):
            join = and_ if isinstance(node, And) else or_
            return _balanced(join, [grouped(self.sql(c)) for c in _children(node)])
        return self.leaf(node)

    def leaf(self, node):
        """A leaf's predicate: exact, or for a header/ambiguous text key its ``maybe``."""
        if isinstance(node, (Flag, Keyword)):
            return _flag(node)
        if isinstance(node, (Uids, Seqs)):
            ranges = self.uid_ranges(node)
            return _uid_in(ranges) if ranges else false()
        if isinstance(node, Header):
            return _header_presence(node.name) if self.exact(node) else _header_maybe(node)
        if isinstance(node, Text):
            return self.text(node)
        simple = {All: lambda n: true(), Nothing: lambda n: false(), Size: _size, Date: _date}
        return simple[type(node)](node)

    def uid_ranges(self, node) -> list[tuple[int, int]]:
        count, uids = len(self.uids), self.uids
        last = uids[-1] if isinstance(node, Uids) else count
        ranges = []
        for low, high in node.ranges:
            low, high = sorted((last if low is None else low, last if high is None else high))
            if isinstance(node, Seqs):
                if low > count:
                    continue
                low, high = uids[low - 1], uids[min(high, count) - 1]
            ranges.append((low, high))
        return _merged(ranges)

    def text(self, node):
        if node.needle == "":
            return true()
        column = messages.c.body if node.where == "text" else body_part(messages.c.body)
        if self.dialect == "postgresql":
            pattern = f"%{_like_escape(pg_escape(node.needle.encode()))}%"
            return scannable(column).ilike(pattern, escape="!")
        return scannable(column).like(f"%{_like_escape(node.needle)}%", escape="!")


def _escape_ambiguous(needle: str) -> bool:
    """Could the escaped needle match inside an escape (``\\303``, ``\\\\``)?  Then re-check."""
    return pg_escape(needle.encode())[:1] in tuple("01234567\\")


_LEAVES = (All, Nothing, Flag, Keyword, Uids, Seqs, Size, Date, Header, Text)


# --- running it ------------------------------------------------------------------------------

def search(conn: Connection, folder_id: int, criteria, uids: list[int]) -> list[int]:
    """The UIDs of ``uids`` (the session's snapshot, ascending) that match, ascending."""
    if not uids:
        return []
    compiler = _Compiler(conn.dialect.name, uids)
    sure, maybe = compiler.bounds(criteria)
    where = and_(messages.c.folder_id == folder_id,
                 messages.c.uid.between(uids[0], uids[-1]), grouped(maybe))
    if compiler.exact(criteria):
        found = conn.execute(select(messages.c.uid).where(where).order_by(messages.c.uid))
        return _in_snapshot(found.scalars(), uids)
    return _in_snapshot(_rechecked(conn, compiler, criteria, sure, where), uids)


def _in_snapshot(found, uids: list[int]) -> list[int]:
    result = []
    for uid in found:
        at = bisect_left(uids, uid)
        if at < len(uids) and uids[at] == uid:
            result.append(uid)
    return result


def _units(compiler: _Compiler, node, out: dict) -> dict:
    """The nodes whose SQL value a re-check reads: maximal exact subtrees and inexact leaves."""
    if compiler.exact(node) or isinstance(node, (Header, Text)):
        out.setdefault(node, len(out))
    else:
        for child in _children(node):
            _units(compiler, child, out)
    return out


def _rechecked(conn, compiler: _Compiler, criteria, sure, where) -> list[int]:
    units = _units(compiler, criteria, {})
    headers = case((sure, None), else_=messages.c.search_headers)
    columns = [compiler.bounds(node)[1].label(f"u{i}") for node, i in units.items()]
    rows = conn.execute(select(messages.c.uid, messages.c.id, sure.label("certain"),
                               headers.label("headers"), *columns)
                        .where(where).order_by(messages.c.uid)).all()
    texts = [n for n in units if isinstance(n, Text) and not compiler.exact(n)]
    found = []
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start:start + CHUNK]
        bodies = _bodies(conn, [r for r in chunk if not r.certain and
                                any(r[4 + units[n]] for n in texts)])
        for row in chunk:
            facts = _Facts(compiler, units, row, bodies.get(row.id))
            if row.certain or facts.decide(criteria):
                found.append(row.uid)
    return found


def _bodies(conn, rows) -> dict[int, bytes]:
    if not rows:
        return {}
    found = conn.execute(select(messages.c.id, messages.c.body)
                         .where(messages.c.id.in_([r.id for r in rows])))
    return {r.id: bytes(r.body) for r in found}


class _Facts:
    """One candidate row, decided in Python exactly as SEARCH defines it."""

    def __init__(self, compiler, units, row, body):
        self.compiler, self.units, self.row, self.body = compiler, units, row, body

    def decide(self, node) -> bool:
        if node in self.units:
            value = bool(self.row[4 + self.units[node]])
            if self.compiler.exact(node) or not value:
                return value
            return self._header(node) if isinstance(node, Header) else self._text(node)
        if isinstance(node, Not):
            return not self.decide(node.part)
        parts = (self.decide(child) for child in _children(node))
        return all(parts) if isinstance(node, And) else any(parts)

    def _header(self, node) -> bool:
        name, needle = header_text(node.name).strip(), header_text(node.needle)
        for line in (self.row.headers or "").split("\n"):
            key, sep, value = line.partition(": ")
            if sep and key == name and needle in value:
                return True
        return False

    def _text(self, node) -> bool:
        body = self.body or b""
        if node.where == "body":
            head, sep, rest = body.partition(b"\r\n\r\n")
            body = rest if sep else b""
        return node.needle.encode().lower() in body.lower()
