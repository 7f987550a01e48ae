"""Time is injected (ARCHITECTURE C5): nothing in ``mailstack/`` reads the time itself.

Windows, sunsets, cutovers, block expiries, throttles and retries all take a ``clock``
and convert through ``mailstack/clock.py``, so tests can move time and every part agrees
on "now".  This test reads the syntax tree of every module (not its text, so aliases such
as ``from datetime import datetime as dt`` and references passed without a call, such as
``default=datetime.utcnow``, are caught) and fails on any way of reading the time outside
``clock.py``.  A few durations measured for log lines are allowed by name, each with its
reason, below.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[2] / "mailstack"

# Reading any of these is reading the time.
NOW = {
    "time.time", "time.time_ns", "time.monotonic", "time.monotonic_ns",
    "time.perf_counter", "time.perf_counter_ns",
    "datetime.datetime.now", "datetime.datetime.utcnow", "datetime.datetime.today",
    "datetime.date.today",
}
# These read the time when called without the moment to format.
NOW_WITHOUT_ARGUMENTS = {"time.localtime", "time.gmtime", "time.ctime", "time.asctime",
                         "email.utils.formatdate", "email.utils.localtime"}

# (module path under mailstack/, what it reads) -> why that is not business time.
ALLOWED = {
    ("protocols/imap.py", "time.monotonic"):
        "the elapsed milliseconds of a command in its debug log line: a duration on a clock "
        "that never jumps, never compared with business time",
    ("metrics.py", "time.perf_counter"):
        "the duration of a database transaction or a password hash for the latency "
        "histograms: measured in the worker thread, never compared with business time",
    ("logs.py", "time.time"):
        "the time stamp of a log event, the wall clock as on every Twisted log event "
        "(``Logger.emit`` reads it the same way); a log line is no business decision",
    ("store/watch.py", "time.monotonic"):
        "how long the LISTEN connection was down, for the log line when it is back: measured "
        "in the listener's own thread, a duration, never business time",
}


def _aliases(tree: ast.Module) -> dict[str, str]:
    """Local name -> what it stands for, from every import in the module."""
    names = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.asname:
                    names[a.asname] = a.name
                else:
                    top = a.name.split(".")[0]
                    names[top] = top
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for a in node.names:
                names[a.asname or a.name] = f"{node.module}.{a.name}"
    return names


def _qualified(node: ast.AST, aliases: dict[str, str]) -> str | None:
    """``dt.now`` -> ``datetime.datetime.now`` when ``dt`` is ``datetime.datetime``."""
    attributes = []
    while isinstance(node, ast.Attribute):
        attributes.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name) or node.id not in aliases:
        return None
    return ".".join([aliases[node.id], *reversed(attributes)])


def readings(path: Path) -> list[tuple[int, str]]:
    """(line, what) for every place ``path`` reads the time."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    aliases = _aliases(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found += [(node.lineno, f"{node.module}.{a.name}") for a in node.names
                      if f"{node.module}.{a.name}" in NOW]
        elif isinstance(node, (ast.Attribute, ast.Name)):
            name = _qualified(node, aliases)
            if name in NOW:
                found.append((node.lineno, name))
        if isinstance(node, ast.Call) and not node.args and not node.keywords:
            name = _qualified(node.func, aliases)
            if name in NOW_WITHOUT_ARGUMENTS:
                found.append((node.lineno, name + "()"))
    return found


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if p != PACKAGE / "clock.py")


@pytest.mark.parametrize("path", MODULES, ids=[str(p.relative_to(PACKAGE)) for p in MODULES])
def test_no_module_reads_the_time_outside_clock_py(path):
    relative = str(path.relative_to(PACKAGE))
    wrong = [f"line {line}: {name}" for line, name in readings(path)
             if (relative, name) not in ALLOWED]
    assert not wrong, (f"mailstack/{relative} reads the time itself ({', '.join(wrong)}): "
                       "take a clock and use mailstack/clock.py (ARCHITECTURE C5)")


def test_every_allowed_reading_is_still_there():
    for relative, name in ALLOWED:
        assert name in {n for _, n in readings(PACKAGE / relative)}, \
            f"mailstack/{relative} no longer reads {name}: remove it from ALLOWED"


@pytest.mark.parametrize("source, expected", [
    ("import time\nx = time.time()", "time.time"),
    ("from time import monotonic as m\nx = m()", "time.monotonic"),
    ("import datetime\nx = datetime.datetime.now(datetime.timezone.utc)", "datetime.datetime.now"),
    ("from datetime import datetime\nx = datetime.utcnow()", "datetime.datetime.utcnow"),
    ("from datetime import date\nx = date.today()", "datetime.date.today"),
    ("from datetime import datetime as dt\nColumn(default=dt.now)", "datetime.datetime.now"),
    ("import email.utils\nx = email.utils.formatdate()", "email.utils.formatdate()"),
])
def test_the_reader_catches_every_spelling(tmp_path, source, expected):
    module = tmp_path / "m.py"
    module.write_text(source)
    assert expected in {name for _, name in readings(module)}


def test_the_reader_leaves_given_moments_alone(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("import email.utils, time\nfrom datetime import datetime\n"
                      "a = email.utils.formatdate(0)\nb = time.gmtime(0)\n"
                      "c = datetime.fromtimestamp(0)\n")
    assert readings(module) == []
