"""The ``mailstack`` command line, run by a test against one configuration file.

Two ways, one result type (``subprocess.CompletedProcess``):

- ``Cli(config)``: a subprocess, ``python -m mailstack --config FILE …``, as an operator
  types it -- the exit status, standard input and output of a real process.
- ``Cli(config, in_process=True)``: the same ``mailstack.cli.main.main`` (the same parser,
  commands and error handling) called in this process with its standard streams swapped.
  About 30 times cheaper than starting Python and importing SQLAlchemy again (0.6 s per
  command on this machine), for the tables of cases that test what a command decides, not
  how its process behaves.  Not for the commands that run a reactor of their own (``serve``,
  ``why``, ``dnsbl test``): the test process's reactor is another's.

Each command still runs once or more as a subprocess in the file that tests it, so what
only a process shows (the entry point, exit codes, reading a password from a pipe) stays
tested.
"""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path


def database_config(path: Path, db_url: str) -> Path:
    """A configuration file naming only the database, as the admin commands need."""
    path.write_text(f'[database]\nurl = "{db_url}"\n')
    return path


@dataclass
class Cli:
    config: Path
    in_process: bool = False
    timeout: float = 60

    def __call__(self, *args, stdin=None, text=True) -> subprocess.CompletedProcess:
        argv = ["--config", str(self.config), *args]
        if not self.in_process:
            return subprocess.run([sys.executable, "-m", "mailstack", *argv], input=stdin,
                                  capture_output=True, text=text, timeout=self.timeout)
        return _in_process(argv, stdin, text)

    def ok(self, *args, stdin=None) -> str:
        """The command's output; it must succeed."""
        done = self(*args, stdin=stdin)
        assert done.returncode == 0, done.stderr
        return done.stdout


def _in_process(argv, stdin, text) -> subprocess.CompletedProcess:
    from mailstack.cli import main

    if isinstance(stdin, bytes):
        stdin = stdin.decode()
    out, err = _stream(), _stream()
    with contextlib.ExitStack() as stack:
        stack.enter_context(_swapped("stdin", io.StringIO(stdin or "")))
        stack.enter_context(_swapped("stdout", out))
        stack.enter_context(_swapped("stderr", err))
        try:
            code = main.main(argv)
        except SystemExit as e:             # argparse: usage errors and --help
            code = e.code if isinstance(e.code, int) else 1
    stdout, stderr = (_value(s, text) for s in (out, err))
    return subprocess.CompletedProcess(["mailstack", *argv], code, stdout, stderr)


def _stream() -> io.TextIOWrapper:
    """A text stream with a ``buffer``, as ``sys.stdout`` has (``mailbox fetch`` writes
    bytes there)."""
    return io.TextIOWrapper(io.BytesIO(), encoding="utf-8", write_through=True)


@contextlib.contextmanager
def _swapped(name: str, stream):
    saved = getattr(sys, name)
    setattr(sys, name, stream)
    try:
        yield
    finally:
        setattr(sys, name, saved)


def _value(stream: io.TextIOWrapper, text: bool):
    stream.flush()
    raw = stream.buffer.getvalue()
    return raw.decode("utf-8", "replace") if text else raw
