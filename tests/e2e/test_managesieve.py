"""ManageSieve end to end: the Debian ``sieve-connect`` client (and Net_Sieve, Roundcube's
PHP client) against the running server over STARTTLS on a real socket (RFC 5804), on
SQLite and PostgreSQL.

sieve-connect reads the password from a pipe (``--passwordfd``), never from its command
line; it verifies the server's certificate against the test CA.
"""

from __future__ import annotations

import base64
import os
import shutil
import socket
import ssl
import subprocess
from datetime import datetime, timedelta, timezone

import pytest

from mailstack.store import logins, sieve_scripts

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(shutil.which("sieve-connect") is None,
                                 reason="sieve-connect is not installed (Debian sieve-connect)")]
ANN = "ann@example.test"
PASSWORD = "sieve test password"
SIEVE_ONLY = {"listeners": [{"name": "sieve", "protocol": "sieve", "port": 0,
                             "tls": "starttls"}]}
FILTER = """require ["fileinto", "vacation"];
# everything from the school goes to School
if address :domain :is "from" "school.example" {
    fileinto "School";
    stop;
}
vacation :days 7 :subject "Away" "I am away until Monday.";
"""


@pytest.fixture
def server(make_server, certs):
    server = make_server(**SIEVE_ONLY)
    server.ann = server.add_account(ANN, PASSWORD)
    server.ca = certs.ca
    return server


def sieve_connect(server, *args, password=PASSWORD, cwd=None) -> subprocess.CompletedProcess:
    """Run sieve-connect with the password on a pipe; its output and exit status."""
    read, write = os.pipe()
    os.write(write, password.encode() + b"\n")
    os.close(write)
    try:
        return subprocess.run(
            ["sieve-connect", "--server", "127.0.0.1", "--port", str(server.port("sieve")),
             "--user", ANN, "--passwordfd", str(read), "--tlscafile", str(server.ca),
             "--authmech", "PLAIN", *args],
            pass_fds=(read,), capture_output=True, text=True, timeout=30, cwd=cwd,
            stdin=subprocess.DEVNULL)
    finally:
        os.close(read)


def test_sieve_connect_uploads_checks_activates_lists_and_downloads(server, tmp_path):
    local = tmp_path / "filter.sieve"
    local.write_text(FILTER)
    done = sieve_connect(server, "--checkscript", "--localsieve", str(local))
    assert done.returncode == 0, done.stderr
    done = sieve_connect(server, "--upload", "--localsieve", str(local),
                         "--remotesieve", "filter")
    assert done.returncode == 0, done.stderr
    done = sieve_connect(server, "--activate", "--remotesieve", "filter")
    assert done.returncode == 0, done.stderr
    done = sieve_connect(server, "--list")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ['"filter"', "ACTIVE"]
    copy = tmp_path / "copy.sieve"
    done = sieve_connect(server, "--download", "--remotesieve", "filter",
                         "--localsieve", str(copy))
    assert done.returncode == 0, done.stderr
    assert copy.read_bytes() == FILTER.encode()
    assert server.db(sieve_scripts.active_script, server.ann) == ("filter", FILTER)
    [event, *_] = server.db(logins.recent, account_id=server.ann)
    assert (event.protocol, event.tls, event.success) == ("sieve", True, True)


def test_a_syntax_error_is_reported_with_its_line(server, tmp_path):
    local = tmp_path / "broken.sieve"
    local.write_text('require "fileinto";\nif true {\n  fileinto "School"\n}\n')
    done = sieve_connect(server, "--checkscript", "--localsieve", str(local))
    assert done.returncode != 0
    assert "line 4:" in done.stderr
    done = sieve_connect(server, "--upload", "--localsieve", str(local),
                         "--remotesieve", "broken")
    assert done.returncode != 0 and "line 4:" in done.stderr
    assert server.db(sieve_scripts.list_scripts, server.ann) == []


def test_a_wrong_password_fails_and_is_recorded(server, tmp_path):
    done = sieve_connect(server, "--list", password="wrong")
    assert done.returncode != 0
    [event] = server.db(logins.recent, account_id=server.ann)
    assert (event.protocol, event.success) == ("sieve", False)


# --- Net_Sieve, the PHP client behind Roundcube's managesieve plugin ----------------------------

NET_SIEVE = r"""<?php
require_once 'Net/Sieve.php';
[$port, $ca, $script] = array_slice($argv, 1);
$password = rtrim(fgets(STDIN), "\n");
$ssl = ['ssl' => ['cafile' => $ca, 'verify_peer' => true, 'peer_name' => 'mx.example.test']];
$sieve = new Net_Sieve();
$steps = [
    'connect' => fn() => $sieve->connect('127.0.0.1', (int) $port, $ssl, true),
    'login' => fn() => $sieve->login('ann@example.test', $password, 'PLAIN'),
    'install' => fn() => $sieve->installScript('roundcube', file_get_contents($script), true),
    'list' => fn() => implode(',', $sieve->listScripts()),
    'active' => fn() => $sieve->getActive(),
    'get' => fn() => base64_encode($sieve->getScript('roundcube')),
    'logout' => fn() => $sieve->disconnect(),
];
foreach ($steps as $name => $step) {
    $result = $step();
    if (is_a($result, 'PEAR_Error')) { fwrite(STDERR, "$name: " . $result->getMessage() . "\n"); exit(1); }
    echo "$name=" . var_export($result, true) . "\n";
}
"""


@pytest.mark.skipif(not os.path.exists("/usr/share/php/Net/Sieve.php"),
                    reason="Net_Sieve is not installed (Debian php-net-sieve, with roundcube-core)")
def test_net_sieve_as_roundcube_uses_it(server, tmp_path):
    (tmp_path / "client.php").write_text(NET_SIEVE)
    (tmp_path / "filter.sieve").write_text(FILTER)
    done = subprocess.run(["php", str(tmp_path / "client.php"), str(server.port("sieve")),
                           str(server.ca), str(tmp_path / "filter.sieve")],
                          input=PASSWORD + "\n", capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr + done.stdout
    assert "list='roundcube'" in done.stdout and "active='roundcube'" in done.stdout
    got = base64.b64decode(done.stdout.split("get='")[1].split("'")[0]).decode()
    assert got.replace("\r\n", "\n").rstrip("\n") == FILTER.rstrip("\n")   # Net_Sieve: CRLF
    assert server.db(sieve_scripts.active_script, server.ann) == ("roundcube", FILTER)


# --- the same over a plain socket, for what sieve-connect cannot be made to send ----------------

class Session:
    """A line-level ManageSieve client: ``read_response`` reads up to OK/NO/BYE."""

    def __init__(self, server, context=None):
        self.sock = socket.create_connection(("127.0.0.1", server.port("sieve")), timeout=10)
        self.file = self.sock.makefile("rb")
        self.greeting = self.read_response()

    def starttls(self, context):
        assert self.command(b"STARTTLS")[-1].startswith(b"OK")
        self.sock = context.wrap_socket(self.sock, server_hostname="mx.example.test")
        self.file = self.sock.makefile("rb")
        return self.read_response()

    def command(self, data: bytes) -> list[bytes]:
        self.sock.sendall(data + b"\r\n")
        return self.read_response()

    def read_response(self) -> list[bytes]:
        out = []
        while True:
            line = self.file.readline()
            assert line, "connection closed"
            out.append(line.rstrip(b"\r\n"))
            if line.startswith((b"OK", b"NO", b"BYE")):
                return out

    def close(self):
        self.sock.close()


def plain(password=PASSWORD) -> bytes:
    return base64.b64encode(f"\0{ANN}\0{password}".encode())


def test_a_password_without_tls_is_refused_after_the_cutover(make_server, certs):
    server = make_server(**SIEVE_ONLY,
                         auth={"tls_cutover": datetime.now(timezone.utc) - timedelta(days=1)})
    server.add_account(ANN, PASSWORD)
    session = Session(server)
    assert b'"SASL" ""' in session.greeting and b'"STARTTLS"' in session.greeting
    assert session.command(b'AUTHENTICATE "PLAIN" "' + plain() + b'"') == \
        [b'NO (ENCRYPT-NEEDED) "Use STARTTLS before authenticating"']
    assert server.db(logins.recent) == []
    caps = session.starttls(ssl.create_default_context(cafile=str(certs.ca)))
    assert b'"SASL" "PLAIN"' in caps and b'"STARTTLS"' not in caps
    assert session.command(b'AUTHENTICATE "PLAIN" "' + plain() + b'"') == [b'OK "Logged in"']
    session.close()


def test_size_and_count_limits(make_server, certs):
    server = make_server(**SIEVE_ONLY, sieve={"max_script_size": 1000, "max_scripts": 2})
    server.add_account(ANN, PASSWORD)
    session = Session(server)
    session.starttls(ssl.create_default_context(cafile=str(certs.ca)))
    assert session.command(b'AUTHENTICATE "PLAIN" "' + plain() + b'"') == [b'OK "Logged in"']
    big = b"#" * 5000
    assert session.command(b'PUTSCRIPT "big" {5000+}\r\n' + big) == \
        [b'NO (QUOTA/MAXSIZE) "Script exceeds the size limit"']
    assert session.command(b'HAVESPACE "big" 1001') == \
        [b'NO (QUOTA/MAXSIZE) "Script exceeds the size limit"']
    for name in (b"a", b"b"):
        assert session.command(b'PUTSCRIPT "' + name + b'" "keep;"') == [b"OK"]
    assert session.command(b'PUTSCRIPT "c" "keep;"') == \
        [b'NO (QUOTA/MAXSCRIPTS) "Too many scripts"']
    assert session.command(b"LISTSCRIPTS") == [b'"a"', b'"b"', b"OK"]
    session.close()


def test_connection_limits_and_the_login_deadline(make_server):
    server = make_server(**SIEVE_ONLY, limits={"sieve": {"per_ip": 1}})
    first = Session(server)
    refused = socket.create_connection(("127.0.0.1", server.port("sieve")), timeout=10)
    assert refused.makefile("rb").read() == \
        b'BYE (TRYLATER) "Too many connections from your address, try again later"\r\n'
    refused.close()
    server.advance(61)               # [sieve] login_timeout (and the idle timeout before login)
    assert first.read_response()[0].startswith(b'BYE "')
    assert first.file.readline() == b""
    first.close()
