"""mailstack as operators run it: ``mailstack serve`` in a process of its own, from a TOML file.

Why: most end-to-end tests run the server in the test process (``server.py``), but some
need what only a separate process shows: its own memory, ``kill -9`` and a restart, a
second node on the same database, the command line itself.  What they share is here: the
configuration file (the same base each time, the test adding its own sections), free
ports, waiting for the server to listen, and a clean stop.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.support.dns_server import failing_nameserver
from tests.support.server import merge

BIN = Path(sys.executable).parent        # the mailstack and twistd of this environment


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def config_toml(db_url: str, listeners, certs_dir=None, **sections) -> str:
    """The configuration of a server process: host ``mail.example.test`` serving
    ``example.test`` on ``db_url``, with dev certificates it generates at start -- in
    ``certs_dir`` (which several processes may share), else in ``certs/`` beside the file.
    ``listeners`` are ``(protocol, port, tls)``; ``sections`` add to or override the rest,
    e.g. ``imap={"login_timeout": 3600}``."""
    tls = {"generate_dev": True}
    if certs_dir is not None:
        tls.update(certificate=f"{certs_dir}/server.pem", private_key=f"{certs_dir}/server.key",
                   ca_certificate=f"{certs_dir}/ca.pem")
    base = {"server": {"hostname": "mail.example.test"}, "database": {"url": db_url},
            "tls": tls, "domains": {"hosted": ["example.test"]},
            # No DNS leaves the machine: a loopback server that fails every lookup at once
            # (port 25 checks SPF and DMARC for every message).
            "dns": {"nameservers": [failing_nameserver()], "timeout": 1}}
    raw = merge(base, sections)
    raw["listeners"] = [{"protocol": protocol, "port": port, "tls": mode}
                        for protocol, port, mode in listeners]
    return toml_text(raw)


def write_config(path: Path, db_url: str, listeners, **options) -> Path:
    """``config_toml(db_url, listeners, **options)`` written to ``path``."""
    path.write_text(config_toml(db_url, listeners, **options))
    return path


def toml_text(table: dict) -> str:
    """``table`` (of tables, lists, strings, numbers and booleans) as a TOML document."""
    return "\n".join(_toml_table(table, "")) + "\n"


def _toml_table(table: dict, name: str) -> list[str]:
    lines = [f"{key} = {_toml_value(value)}" for key, value in table.items()
             if not isinstance(value, dict) and not _is_table_list(value)]
    for key, value in table.items():            # sub-tables after the table's own keys
        full = f"{name}.{key}" if name else key
        if isinstance(value, dict):
            lines += [f"[{full}]", *_toml_table(value, full)]
        elif _is_table_list(value):
            for item in value:
                lines += [f"[[{full}]]", *_toml_table(item, full)]
    return lines


def _is_table_list(value) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)                 # a JSON string is a TOML basic string
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML for {value!r}")


def command(config: Path, *args) -> list:
    """``mailstack --config FILE args…``, as an operator types it."""
    return [BIN / "mailstack", "--config", str(config), *args]


def serve(config: Path, **options) -> subprocess.Popen:
    """``mailstack serve`` started; its output in ``proc.stdout`` unless ``options`` say
    otherwise.  Wait for it with ``wait_for_port``, end it with ``stop``."""
    options = {"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT, "text": True, **options}
    return subprocess.Popen(command(config, "serve"), **options)


def wait_for_port(port, proc, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode}: {proc.stdout.read()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"port {port} never opened")


def stop(proc):
    """SIGTERM, as an init system stops it; its output."""
    proc.send_signal(signal.SIGTERM)
    try:
        out, _ = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out
