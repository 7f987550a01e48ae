"""IMAP SEARCH as one SQL query over a folder's messages.

Why: the database should filter, so that what crosses into Python -- rows, header text,
bodies -- grows with the matches, not with the mailbox (Twisted's fallback and our first
evaluator loaded every body of the folder, twisted #5849).  The criteria tree is
``store/search_criteria.py``.

How: every node compiles to two predicates, ``sure`` (true only for real matches) and
``maybe`` (true for every real match).  Flags, sizes, dates, UIDs and text keys are exact
(sure == maybe) and the query is ``WHERE folder AND maybe``.  A header key can only be
prefiltered with LIKE over the lower-cased ``search_headers``, so the rows where sure and
maybe disagree -- and only those -- are decided in Python; that also keeps NOT and OR over
such keys exact.  BODY and TEXT read ``message_text``, the decoded text parts, never the
stored bytes: both sides are folded (``search_facts.fold``), so matching is a plain LIKE,
case-insensitive beyond ASCII, on both dialects.

Indexes: in the database, too, the common keys should cost what they find.  UNSEEN, FLAGGED
and DELETED repeat the predicate of their partial index (``schema.flag_sql``); SINCE/BEFORE/ON
and LARGER/SMALLER have (folder_id, date, uid) and (folder_id, size, uid).  Substring keys (headers,
BODY, TEXT) have no index that SQL LIKE could use and read the folder's side-table rows.

Standards: RFC 3501 §6.4.4 (SEARCH), RFC 2047 (decoded headers via ``search_headers``).
"""

from __future__ import annotations

from bisect import bisect_left
from datetime import datetime, time, timedelta, timezone

from sqlalchemy import Boolean, and_, case, false, func, literal
from sqlalchemy import not_, null, or_, select, text, true
from sqlalchemy.engine import Connection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal

from mailstack.store.schema import SYSTEM_FLAGS, flag_sql, message_headers, message_text, messages
from mailstack.store.search_criteria import (
    All, And, Date, Flag, Header, Modseq, Not, Seqs, Size, Text, Uids, _children)
from mailstack.store.search_facts import fold

# Headers and text live beside the messages (schema.message_headers, message_text): joined
# by primary key, so a search never reads a stored message.
_ROWS = (messages.outerjoin(message_headers, message_headers.c.message_id == messages.c.id)
         .outerjoin(message_text, message_text.c.message_id == messages.c.id))


# --- dialect-specific SQL ----------------------------------------------------------------------

class grouped(ColumnElement):
    """Parentheses SQLAlchemy keeps: it flattens nested AND/OR, SQLite allows depth 1,000."""

    inherit_cache = True
    type = Boolean()
    _is_implicitly_boolean = True
    _traverse_internals = [("inner", InternalTraversal.dp_clauseelement)]

    def __init__(self, inner):
        self.inner = inner


@compiles(grouped)
def _grouped(element, compiler, **kw):
    return "(%s)" % compiler.process(element.inner, **kw)


def flag_is(flag: str, present: bool) -> grouped:
    """``schema.flag_sql`` over ``messages``, for every query that should use its index.
    Grouped, as a bare column would be compared ``= 1`` on SQLite and miss the index."""
    return grouped(text(flag_sql(flag, present, "messages.flags")))


# --- SQL for each key --------------------------------------------------------------------------

def _like(text: str) -> str:
    """``text`` taken literally in a LIKE with ESCAPE '!' (PostgreSQL's default is ``\\``)."""
    return text.replace("!", "!!").replace("%", "!%").replace("_", "!_")


def _flag(node, dialect: str):
    """System flags: ``schema.flag_sql``, the predicate of the partial indexes.  Keywords:
    whole-word, ASCII case-insensitive (SQLite's LIKE already is; no lower() per row)."""
    if node.name in SYSTEM_FLAGS:
        return flag_is(node.name, node.present)
    spaced = literal(" ") + messages.c.flags + literal(" ")
    match = spaced.collate("C").ilike if dialect == "postgresql" else spaced.like
    hit = match(f"% {_like(node.name)} %", escape="!")
    return hit if node.present else not_(hit)


def _date(node):
    start = datetime.combine(node.day, time(), timezone.utc)
    column = messages.c.internal_date if node.field == "internal" else message_headers.c.sent_at
    test = {"before": column < start, "since": column >= start,
            "on": and_(column >= start, column < start + timedelta(days=1))}[node.op]
    return test if node.field == "internal" else and_(column.isnot(None), test)


def _header(node, exact: bool):
    lines = literal("\n") + func.coalesce(message_headers.c.search_headers, "")
    name = _like(fold(node.name).strip())
    needle = "" if exact else _like(fold(node.needle)) + "%"
    return lines.like(f"%\n{name}: %{needle}", escape="!")


def _text(node):
    if node.needle == "":
        return true()
    pattern = f"%{_like(fold(node.needle))}%"
    body = func.coalesce(message_text.c.body_text, "").like(pattern, escape="!")
    if node.where == "body":
        return body
    return or_(body, func.coalesce(message_headers.c.search_headers, "").like(pattern, escape="!"))


def _balanced(join, exprs: list):
    """Many predicates joined as a balanced tree, never 1,000 deep."""
    if len(exprs) <= 8:
        return join(*exprs) if exprs else (true() if join is and_ else false())
    middle = len(exprs) // 2
    return join(grouped(_balanced(join, exprs[:middle])),
                grouped(_balanced(join, exprs[middle:])))


def _uid_ranges(node, uids: list[int]) -> list[tuple[int, int]]:
    """UID ranges of a UID or sequence set: ``*`` is the snapshot's last; merged, sorted."""
    count = len(uids)
    last = count if isinstance(node, Seqs) else uids[-1]
    ranges = []
    for low, high in node.ranges:
        low, high = sorted((last if low is None else low, last if high is None else high))
        if isinstance(node, Seqs):
            if low > count:
                continue
            low, high = uids[low - 1], uids[min(high, count) - 1]
        ranges.append((low, high))
    merged: list[tuple[int, int]] = []
    for low, high in sorted(ranges):
        if merged and low <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(high, merged[-1][1]))
        else:
            merged.append((low, high))
    return merged


def _uid_in(ranges):
    tests = [messages.c.uid.between(low, high) for low, high in ranges if low != high]
    single = [low for low, high in ranges if low == high]
    return _balanced(or_, tests + ([messages.c.uid.in_(single)] if single else []))


# --- compiling a tree --------------------------------------------------------------------------

class _Compiler:
    """A criteria tree as (sure, maybe) predicates, for one dialect and snapshot."""

    def __init__(self, dialect: str, uids: list[int]):
        self.dialect, self.uids, self._exact = dialect, uids, {}

    def exact(self, node) -> bool:
        if node not in self._exact:
            if isinstance(node, Header):
                self._exact[node] = fold(node.needle) == ""
            else:
                self._exact[node] = all(self.exact(child) for child in _children(node))
        return self._exact[node]

    def bounds(self, node):
        if not _children(node):
            leaf = self.leaf(node)
            return (leaf, leaf) if self.exact(node) else (false(), leaf)
        if isinstance(node, Not):
            sure, maybe = self.bounds(node.part)
            return not_(grouped(maybe)), not_(grouped(sure))
        join = and_ if isinstance(node, And) else or_
        pairs = [self.bounds(child) for child in _children(node)]
        if self.exact(node):
            return (_balanced(join, [grouped(s) for s, _ in pairs]),) * 2
        return (_balanced(join, [grouped(s) for s, _ in pairs]),
                _balanced(join, [grouped(m) for _, m in pairs]))

    def leaf(self, node):
        """A leaf's exact predicate, or for an inexact header/text key its ``maybe``."""
        if isinstance(node, Flag):
            return _flag(node, self.dialect)
        if isinstance(node, Uids):
            ranges = _uid_ranges(node, self.uids)
            return _uid_in(ranges) if ranges else false()
        if isinstance(node, Header):
            return _header(node, self.exact(node))
        if isinstance(node, Text):
            return _text(node)
        if isinstance(node, Modseq):
            return messages.c.modseq >= node.n
        if isinstance(node, Size):
            return messages.c.size > node.n if node.op == "larger" else messages.c.size < node.n
        return _date(node) if isinstance(node, Date) else (
            true() if isinstance(node, All) else false())


# --- running it ----------------------------------------------------------------------------------

def search(conn: Connection, folder_id: int, criteria, uids: list[int]) -> list[int]:
    """The UIDs among ``uids`` (the session's snapshot, ascending) that match, ascending."""
    if not uids:
        return []
    compiler = _Compiler(conn.dialect.name, uids)
    sure, maybe = compiler.bounds(criteria)
    # No UID range and no ORDER BY: either would steer the planner to the folder's UID
    # index (a scan of the folder) instead of an index on the key; the snapshot filter and
    # a sort of the matches do their work.
    where = and_(messages.c.folder_id == folder_id, grouped(maybe))
    if compiler.exact(criteria):
        found = conn.execute(select(messages.c.uid).select_from(_ROWS).where(where))
        return _in_snapshot(sorted(found.scalars()), uids)
    return _in_snapshot(sorted(_rechecked(conn, compiler, criteria, sure, where)), uids)


def _in_snapshot(found, uids: list[int]) -> list[int]:
    """Rows the session has not seen yet (or saw expunged) are not its answer."""
    result = []
    for uid in found:
        at = bisect_left(uids, uid)
        if at < len(uids) and uids[at] == uid:
            result.append(uid)
    return result


def _units(compiler: _Compiler, node, out: dict) -> dict:
    """What a re-check reads from SQL: maximal exact subtrees, and inexact leaves' maybe."""
    if compiler.exact(node) or not _children(node):
        out.setdefault(node, len(out))
    for child in () if node in out else _children(node):
        _units(compiler, child, out)
    return out


def _rechecked(conn, compiler: _Compiler, criteria, sure, where) -> list[int]:
    units = _units(compiler, criteria, {})
    inexact = [n for n in units if not compiler.exact(n)]
    headers = (case((sure, null()), else_=message_headers.c.search_headers)
               if any(isinstance(n, Header) for n in inexact) else null())
    columns = [compiler.bounds(node)[1].label(f"u{i}") for node, i in units.items()]
    rows = conn.execute(select(messages.c.uid, sure.label("certain"),
                               headers.label("headers"), *columns)
                        .select_from(_ROWS).where(where)).all()
    return [r.uid for r in rows if r.certain or _Row(compiler, units, r).decide(criteria)]


class _Row:
    """One candidate row, decided in Python exactly as SEARCH defines the inexact keys."""

    def __init__(self, compiler, units, row):
        self.compiler, self.units, self.row = compiler, units, row

    def decide(self, node) -> bool:
        if node in self.units:
            value = bool(self.row[3 + self.units[node]])
            if self.compiler.exact(node) or not value:
                return value
            return self._header(node)
        if isinstance(node, Not):
            return not self.decide(node.part)
        parts = (self.decide(child) for child in _children(node))
        return all(parts) if isinstance(node, And) else any(parts)

    def _header(self, node) -> bool:
        name, needle = fold(node.name).strip(), fold(node.needle)
        for line in (self.row.headers or "").split("\n"):
            key, sep, value = line.partition(": ")
            if sep and key == name and needle in value:
                return True
        return False
