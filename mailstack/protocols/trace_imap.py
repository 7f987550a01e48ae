"""What a protocol trace shows of an IMAP connection (``trace_masking`` for the why).

Masked: LOGIN's password however it is written (atom, quoted string or literal, RFC 3501
§6.2.3), AUTHENTICATE's initial response and every line the client sends until the
command's tagged reply (RFC 3501 §6.2.2), and the content of every literal in either
direction: an APPEND's message, a FETCH's body or header section (RFC 3501 §4.3, §6.3.11,
§7.4.2).  A literal is shown as its marker and its size.  A command is recorded once it
is complete, its literals in place.

Literal markers are read with the framing's own expression (``imap_framing``), so the
trace counts off exactly the octets the server takes as a literal.  A synchronising
literal that the server refuses (a tagged reply instead of ``+``) is never sent; the trace
stops waiting for it at that reply.

Security: what is held is the command so far, each literal replaced by its marker (a
LOGIN's first literal of up to 256 octets is held until the command ends, to read the
user it names), never more than ``MAX_HELD`` octets.
"""

from __future__ import annotations

from mailstack.protocols.imap_framing import _MARKER as LITERAL_MARKER
from mailstack.protocols.trace_masking import (
    LINE_CAP, Dialect, LineCutter, masked, render, sasl_user,
)

MAX_HELD = 2048
KEEP_LITERAL = 256        # a LOGIN user sent as a literal


class IMAPSide:
    """One direction's command (or response) in progress: its text and literals."""

    def __init__(self):
        self.cutter = LineCutter()
        self.parts: list = []     # bytes of lines, or (size, content or None) for literals
        self.held = 0
        self.literal = 0          # octets of the current literal still to come
        self.content = b""        # the current literal's octets, when kept
        self.keep = False

    def reset(self) -> None:
        self.__init__()


class IMAPDialect(Dialect):
    """IMAP: LOGIN/AUTHENTICATE masked, literals counted, never recorded."""

    def __init__(self, emit, on_login_name=lambda name: None):
        super().__init__(emit, on_login_name)
        self.sides = {"C": IMAPSide(), "S": IMAPSide()}
        self.sasl_tag = None      # the AUTHENTICATE whose exchange reads client lines
        self.waiting_tag = None   # a command waiting for "+" before its literal
        self.tls_tag = None

    def client(self, data: bytes) -> None:
        self._read_imap("C", data)

    def server(self, data: bytes) -> None:
        self._read_imap("S", data)

    def _read_imap(self, name: str, data: bytes) -> None:
        side, pos = self.sides[name], 0
        while pos < len(data):
            if side.literal:
                pos = self._take_literal(side, data, pos)
                continue
            cut = side.cutter.cut(data, pos)
            if cut is None:
                return
            line, length, pos = cut
            if name == "C" and self.sasl_tag is not None and not side.parts:
                self.emit("C", "*" if line.strip() == b"*" else masked("SASL response", length))
                self.login_name(sasl_user("PLAIN", 0, line))
                continue
            self._line(name, side, line, length)

    def _take_literal(self, side: IMAPSide, data: bytes, pos: int) -> int:
        taken = min(side.literal, len(data) - pos)
        if side.keep:
            side.content += data[pos:pos + taken]
        side.literal -= taken
        if side.literal == 0 and side.keep:
            side.parts[-1] = (len(side.content), side.content)
            side.content, side.keep = b"", False
        return pos + taken

    def _line(self, name: str, side: IMAPSide, line: bytes, length: int) -> None:
        """A line of a command (or response): complete, or followed by a literal."""
        found = LITERAL_MARKER.search(side.cutter.last_tail)
        if side.held + len(line) + 16 <= MAX_HELD:
            side.parts.append(line if length <= LINE_CAP else line + b"...")
            side.held += len(line) + 16
        if found is None:
            parts = side.parts
            side.parts, side.held = [], 0
            (self._command if name == "C" else self._response)(parts, length)
            return
        size = int(found.group(1))
        side.literal = size
        side.keep = name == "C" and 0 < size <= KEEP_LITERAL and len(side.parts) == 1 \
            and _verb(side.parts) == b"LOGIN"
        if side.keep or side.held + 16 <= MAX_HELD:
            side.parts.append((size, None))
            side.held += 16
        if name == "C" and not found.group(2):
            self.waiting_tag = _tag(side.parts)

    # --- client -------------------------------------------------------------------------
    def _command(self, parts: list, length: int) -> None:
        self.waiting_tag = None
        tag, verb = _tag(parts), _verb(parts)
        if verb == b"LOGIN":
            return self._login(parts, tag)
        if verb == b"AUTHENTICATE":
            return self._authenticate(parts, tag)
        if verb == b"STARTTLS":
            self.tls_tag = tag
        self.emit("C", _shown(parts))

    def _login(self, parts: list, tag: bytes) -> None:
        user, shown = _login_user(parts)
        self.emit("C", f"{render(tag or b'')} LOGIN {shown} [password masked]")
        self.login_name(user)

    def _authenticate(self, parts: list, tag: bytes) -> None:
        words = (parts[0] if parts and isinstance(parts[0], bytes) else b"").split(b" ")
        mechanism = words[2].upper()[:20] if len(words) > 2 else b""
        text = f"{render(tag or b'')} AUTHENTICATE {render(mechanism)}"
        if len(words) > 3:
            text += " " + masked("initial response", len(words[3]))
            self.login_name(sasl_user(mechanism.decode("ascii", "replace"), 0, words[3]))
        self.sasl_tag = tag
        self.emit("C", text)

    # --- server -------------------------------------------------------------------------
    def _response(self, parts: list, length: int) -> None:
        self.emit("S", _shown(parts) if len(parts) > 1 else render(parts[0] if parts else b"",
                                                                     length))
        tag = _tag(parts)
        if tag is None or tag in (b"*", b"+"):
            return
        if tag == self.sasl_tag:
            self.sasl_tag = None
        if tag == self.waiting_tag:      # answered instead of "+": no literal comes
            client = self.sides["C"]
            client.reset()
            self.waiting_tag = None
        if tag == self.tls_tag:          # RFC 3501 §6.2.1: what came before is dropped
            self.sides["C"].reset()
            self.tls_tag = self.sasl_tag = None


def _tag(parts: list) -> bytes | None:
    first = parts[0] if parts and isinstance(parts[0], bytes) else b""
    return first.split(b" ", 1)[0] or None


def _verb(parts: list) -> bytes:
    first = parts[0] if parts and isinstance(parts[0], bytes) else b""
    words = first.split(b" ", 3)
    return words[1].upper() if len(words) > 1 else b""


def _shown(parts: list) -> str:
    """The command or response with each literal as its marker and size."""
    text = []
    for part in parts:
        if isinstance(part, tuple):
            text.append(" " + masked("literal", part[0]) + " ")
        else:
            text.append(render(part))
    return "".join(text).strip()


def _login_user(parts: list) -> tuple[str | None, str]:
    """The user a LOGIN names and how to show it; the password is never looked at."""
    first = parts[0]
    rest = first.split(b" ", 2)[2] if first.count(b" ") >= 2 else b""
    if rest.startswith(b"{") and len(parts) > 1 and isinstance(parts[1], tuple):
        content = parts[1][1]
        if content is None:
            return None, "{...}"
        return content.decode("utf-8", "replace"), render(content)
    if rest.startswith(b'"'):
        user, escaped = bytearray(), False
        for byte in rest[1:]:
            if escaped or byte not in b'\\"':
                user.append(byte)
                escaped = False
            elif byte == ord("\\"):
                escaped = True
            else:
                break
        name = bytes(user).decode("utf-8", "replace")
        return name, render(b'"' + bytes(user) + b'"')
    user = rest.split(b" ", 1)[0]
    return user.decode("utf-8", "replace"), render(user)
