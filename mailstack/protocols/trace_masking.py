"""What a protocol trace may show of a connection: commands and replies, never a secret
or a message (``mailstack trace``, issue 15 item 16; Dovecot's rawlog, masked).

Why a reading of its own and not hooks in the sessions: a trace sees the bytes exactly as
they crossed the connection (after TLS), whatever the session made of them, and the
sessions stay free of tracing code.  Each dialect reads both directions of one protocol
and hands out one record per line; what carries a credential or message content is
replaced by a marker with its size:

- SMTP (RFC 4954 §4, RFC 5321 §4.1.1.4): the AUTH initial response and every line the
  client sends while an AUTH exchange may be reading it; DATA's content up to CRLF.CRLF.
- POP3 (RFC 1939 §7, RFC 5034): PASS, APOP's digest, AUTH's initial response and SASL
  lines; the content of every RETR/TOP reply.
- IMAP (``trace_imap``): LOGIN's password, AUTHENTICATE's lines, every literal.

The dialects lean to masking when unsure: a SASL exchange masks from its command to the
final reply that answers it (replies are counted against the lines that owe one; our
SMTP and POP3 sessions answer strictly in order), any 334 / ``+`` continuation masks the
next client line, and any 354 or ``+OK N octets`` starts content, even if the count were
wrong.  Only a client that pipelines a password or a message where the protocol forbids
it could see one through a count that is off, and only if the count is off.

Security: a record holds at most ``LINE_CAP`` characters of a line; message content and
credentials are never kept, only counted (a literal of an IMAP LOGIN up to 256 octets is
held until its command is complete, to name the user).  Memory per connection is one
capped partial line per direction plus the replies owed (bounded by ``MAX_OWED``).
"""

from __future__ import annotations

import base64
import binascii
import collections
import re

LINE_CAP = 400            # characters of a line kept in a record
MAX_OWED = 1024           # replies remembered as owed; the sessions read no further ahead
_OCTETS = re.compile(rb"\+OK [0-9]+ octets\Z")   # our RETR/TOP status (pop3_transaction)


def render(line: bytes, length: int | None = None) -> str:
    """A line for the trace: undecodable octets escaped, cut at ``LINE_CAP``."""
    length = len(line) if length is None else length
    text = line[:LINE_CAP].decode("utf-8", "backslashreplace")
    return text if length <= LINE_CAP else f"{text}... [{length} octets]"


def masked(what: str, octets: int) -> str:
    return f"[{what}: {octets} octets, masked]"


class LineCutter:
    """A byte stream cut into lines at LF, each line's first ``LINE_CAP`` octets kept."""

    TAIL = 24                 # octets kept of a line's end: where an IMAP literal is announced

    def __init__(self):
        self.head = b""
        self.length = 0
        self.tail = b""           # the last octets of the line so far
        self.last_tail = b""      # ... and of the last line cut, without its line end

    def cut(self, data: bytes, pos: int):
        """(line without its line end, its length, position after it), or None when the
        rest of ``data`` is an unfinished line (kept, capped)."""
        end = data.find(b"\n", pos)
        piece = data[pos:] if end < 0 else data[pos:end + 1]
        if len(self.head) < LINE_CAP + 2:
            self.head += piece[:LINE_CAP + 2 - len(self.head)]
        self.tail = (self.tail + piece[-self.TAIL - 2:])[-self.TAIL - 2:]
        self.length += len(piece)
        if end < 0:
            return None
        line, length, tail = self.head, self.length, self.tail
        self.head, self.length = b"", 0
        crlf = tail.endswith(b"\r\n")
        strip = 2 if crlf else 1
        self.tail, self.last_tail = b"", tail[:-strip]
        if length <= LINE_CAP + 2:
            line = line[:-strip]
        return line, length - strip, end + 1


class DotBody:
    """Content ended by a line holding one dot (SMTP DATA, POP3 RETR/TOP: RFC 5321
    §4.5.2, RFC 1939 §3), counted, never kept.  Only CRLF.CRLF ends it, as in
    ``smtp_data`` (a dot after a bare LF is content there too)."""

    END = b"\r\n.\r\n"

    def __init__(self):
        self.tail = b"\r\n"       # content starts at the beginning of a line
        self.octets = 0
        self.lines = 0

    def feed(self, data: bytes, pos: int):
        """The position just after the final dot's line end, or None (all was content)."""
        window = self.tail + data[pos:]
        found = window.find(self.END)
        if found < 0:
            self.octets += len(data) - pos
            self.lines += data.count(b"\n", pos)
            self.tail = window[-4:]
            return None
        end = pos + found + len(self.END) - len(self.tail)
        self.octets += end - pos - 3           # without the ".\r\n"
        self.lines += data.count(b"\n", pos, end) - 1
        return end


def sasl_user(mechanism: str, step: int, response: bytes) -> str | None:
    """The login name a SASL response carries: PLAIN's authcid (RFC 4616), LOGIN's
    first response.  None when it names nobody (or is not base64)."""
    try:
        decoded = base64.b64decode(response.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    if mechanism == "PLAIN":
        parts = decoded.split(b"\0")
        decoded = parts[1] if len(parts) == 3 else b""
    elif mechanism != "LOGIN" or step != 0:
        return None
    return decoded.decode("utf-8", "replace") or None


class Dialect:
    """Both directions of one connection, read into records: ``emit(direction, text)``;
    ``on_login_name(name)`` when the client names a user (a login it attempts)."""

    def __init__(self, emit, on_login_name=lambda name: None):
        self.emit, self.on_login_name = emit, on_login_name
        self._lines = {"C": LineCutter(), "S": LineCutter()}
        self._content = {"C": None, "S": None}      # a DotBody while content flows

    def client(self, data: bytes) -> None:
        self._read("C", data, self.client_line)

    def server(self, data: bytes) -> None:
        self._read("S", data, self.server_line)

    def _read(self, side: str, data: bytes, on_line) -> None:
        pos, cutter = 0, self._lines[side]
        while pos < len(data):
            body = self._content[side]
            if body is not None:
                end = body.feed(data, pos)
                if end is None:
                    return
                self._content[side] = None
                self.emit(side, masked("message content", body.octets))
                self.emit(side, ".")
                self.content_ended(side, body)
                pos = end
                continue
            cut = cutter.cut(data, pos)
            if cut is None:
                return
            line, length, pos = cut
            on_line(line, length)

    def start_content(self, side: str) -> None:
        if self._content[side] is None:
            self._content[side] = DotBody()

    def content_ended(self, side: str, body: DotBody) -> None:
        pass

    def client_line(self, line: bytes, length: int) -> None:
        raise NotImplementedError

    def server_line(self, line: bytes, length: int) -> None:
        raise NotImplementedError

    def login_name(self, name: str | None) -> None:
        if name:
            self.on_login_name(name)


def _verb(line: bytes) -> tuple[str, bytes]:
    verb, _, rest = line.partition(b" ")
    return verb.decode("ascii", "replace").upper(), rest


class SMTPDialect(Dialect):
    """SMTP and submission: AUTH exchanges and DATA content masked (RFC 4954, RFC 5321)."""

    def __init__(self, emit, on_login_name=lambda name: None):
        super().__init__(emit, on_login_name)
        self.owed = collections.deque(["greeting"], maxlen=MAX_OWED)
        self.sasl = None          # the mechanism while an AUTH exchange may read client lines
        self.sasl_step = 0
        self.content_early = False   # DATA's content ended before DATA was answered
        self.early_lines = 0

    def client_line(self, line: bytes, length: int) -> None:
        if self.sasl is not None:
            self._sasl_response(line, length)
            return
        verb, rest = _verb(line)
        kind = {"AUTH": "auth", "DATA": "data", "STARTTLS": "starttls"}.get(verb, "cmd")
        self.owed.append(kind)
        if kind == "auth":
            return self._auth(rest, length)
        self.emit("C", render(line, length))
        if kind == "data":
            self.content_early = False
            self.start_content("C")

    def _auth(self, rest: bytes, length: int) -> None:
        mechanism, _, initial = rest.strip().partition(b" ")
        self.sasl = mechanism.decode("ascii", "replace").upper()[:20]
        self.sasl_step = 0
        text = f"AUTH {self.sasl}"
        if initial:
            text += " " + masked("initial response", len(initial))
            self.login_name(sasl_user(self.sasl, 0, initial))
            self.sasl_step = 1
        self.emit("C", text)

    def _sasl_response(self, line: bytes, length: int) -> None:
        self.owed.append("sasl")
        if line.strip() == b"*":
            self.emit("C", "*")
            return
        self.emit("C", masked("SASL response", length))
        self.login_name(sasl_user(self.sasl, self.sasl_step, line[:length]))
        self.sasl_step += 1

    def content_ended(self, side: str, body: DotBody) -> None:
        if "data" in self.owed:           # ended before DATA was answered: pipelined
            self.content_early, self.early_lines = True, body.lines
        self.owed.append("dot")

    def server_line(self, line: bytes, length: int) -> None:
        self.emit("S", render(line, length))
        if len(line) < 3 or not line[:3].isdigit() or line[3:4] == b"-":
            return                       # a continued reply: only its last line answers
        code = int(line[:3])
        kind = self.owed.popleft() if self.owed else None
        if code == 334:
            self.sasl = self.sasl or "?"   # whatever was counted, the client answers next
        elif kind in ("auth", "sasl"):
            self.sasl = None
        if kind == "data":
            self._data_answered(code)
        elif code == 354:
            self.start_content("C")
        if kind == "starttls" and code == 220:
            self._after_tls()

    def _data_answered(self, code: int) -> None:
        early, self.content_early = self.content_early, False
        if code == 354:
            return
        body = self._content["C"]         # refused: what followed DATA were commands
        lines = self.early_lines if early else (0 if body is None else body.lines)
        self._content["C"] = None
        self.owed.extendleft(["cmd"] * lines)

    def _after_tls(self) -> None:
        """RFC 3207 §4.2: what the client sent before the handshake is dropped unanswered."""
        self.owed.clear()
        self.sasl = None
        self._content["C"] = None


class POP3Dialect(Dialect):
    """POP3: PASS, APOP's digest and AUTH masked, RETR/TOP content counted (RFC 1939, 5034)."""

    def __init__(self, emit, on_login_name=lambda name: None):
        super().__init__(emit, on_login_name)
        self.owed = collections.deque(["greeting"], maxlen=MAX_OWED)
        self.sasl = False

    def client_line(self, line: bytes, length: int) -> None:
        if self.sasl:
            self.owed.append("sasl")
            self.emit("C", "*" if line.strip() == b"*" else masked("SASL response", length))
            self.login_name(sasl_user("PLAIN", 0, line[:length]))
            return
        verb, rest = _verb(line)
        kind = {"RETR": "retr", "TOP": "retr", "STLS": "starttls"}.get(verb, "cmd")
        if verb == "PASS":
            self.emit("C", "PASS " + masked("password", len(rest)))
        elif verb == "APOP":
            name, _, digest = rest.partition(b" ")
            self.emit("C", f"APOP {render(name)} " + masked("digest", len(digest)))
            self.login_name(name.decode("utf-8", "replace"))
        elif verb == "AUTH" and rest.strip():
            kind = "auth"
            self._auth(rest)
        else:
            self.emit("C", render(line, length))
            if verb == "USER":
                self.login_name(rest.decode("utf-8", "replace").strip())
        self.owed.append(kind)

    def _auth(self, rest: bytes) -> None:
        mechanism, _, initial = rest.strip().partition(b" ")
        self.sasl = True
        text = "AUTH " + render(mechanism.upper()[:20])
        if initial:
            text += " " + masked("initial response", len(initial))
            self.login_name(sasl_user("PLAIN", 0, initial))
        self.emit("C", text)

    def server_line(self, line: bytes, length: int) -> None:
        self.emit("S", render(line, length))
        continuation = line == b"+" or line.startswith(b"+ ")
        if not (continuation or line.startswith((b"+OK", b"-ERR"))):
            return                       # a line of a multi-line reply
        kind = self.owed.popleft() if self.owed else None
        if continuation:
            self.sasl = True             # the client's next line answers it
        elif kind in ("auth", "sasl"):
            self.sasl = False
        if line.startswith(b"+OK") and (kind == "retr" or _OCTETS.match(line)):
            self.start_content("S")
        if kind == "starttls" and line.startswith(b"+OK"):
            self.owed.clear()            # RFC 2595 §4: pipelined lines are dropped
            self.sasl = False
