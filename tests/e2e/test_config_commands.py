"""``mailstack config show|check`` as an operator runs them (issue 15, item 13)."""

from __future__ import annotations

import datetime
import json
import socket
import subprocess
import sys

import pytest

from mailstack import tls
from tests.support.dns_server import DNSServer

pytestmark = pytest.mark.e2e


def mailstack(config, *args):
    return subprocess.run([sys.executable, "-m", "mailstack", "--config", str(config), *args],
                          capture_output=True, text=True, timeout=60)


@pytest.fixture
def dns_server():
    ns = DNSServer().start()
    ns.add("mail.example.test", "A", "192.0.2.25")
    yield ns
    ns.stop()


def write(tmp_path, db_url, nameserver, port, cert="server.pem", key="server.key"):
    config = tmp_path / "mailstack.toml"
    config.write_text(
        f'[server]\nhostname = "mail.example.test"\n[database]\nurl = "{db_url}"\n'
        f'[dns]\nnameservers = ["{nameserver}"]\ntimeout = 1\n'
        f'[tls]\ngenerate_dev = false\ncertificate = "{cert}"\nprivate_key = "{key}"\n'
        f'[smtp]\nmax_message_size = 10000000\n'
        f'[[listeners]]\nprotocol = "imap"\nport = {port}\ntls = "implicit"\n')
    return config


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_show_gives_every_setting_and_changed_only_the_file_s(tmp_path, db_url, dns_server):
    config = write(tmp_path, db_url, dns_server.address, free_port())
    every = json.loads(mailstack(config, "config", "show", "--format", "json").stdout)
    assert every["smtp.max_message_size"] == 10000000
    assert every["imap.login_timeout"] == 60                # a default, resolved
    assert every["auth.throttle.window"] == 900.0
    changed = mailstack(config, "config", "show", "--changed").stdout.splitlines()
    assert "smtp.max_message_size = 10000000" in changed
    assert not any(line.startswith("imap.login_timeout") for line in changed)


def test_check_passes_a_sound_setup_and_names_each_problem(tmp_path, db_url, dns_server):
    tls.ensure_dev_certificates(tmp_path / "server.pem", tmp_path / "server.key",
                                tmp_path / "ca.pem", ["mail.example.test"])
    port = free_port()
    config = write(tmp_path, db_url, dns_server.address, port)
    sound = mailstack(config, "config", "check")
    assert sound.returncode == 0, sound.stdout + sound.stderr
    assert "ok: tls.certificate: valid until" in sound.stdout
    assert "ok: database: reachable, schema current" in sound.stdout
    assert "ok: dns: mail.example.test is 192.0.2.25" in sound.stdout
    assert f"ok: listeners: imap 127.0.0.1:{port} is free" in sound.stdout

    other = tmp_path / "other"
    tls.ensure_dev_certificates(other / "s.pem", other / "s.key", other / "ca.pem", ["x.test"])
    expired = tmp_path / "old"
    tls.ensure_dev_certificates(expired / "s.pem", expired / "s.key", expired / "ca.pem",
                                ["mail.example.test"],
                                now=datetime.datetime.now(datetime.timezone.utc)
                                - datetime.timedelta(days=900))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", port))
        busy.listen()
        for cert, key, expected in (("server.pem", "other/s.key", "does not match"),
                                    ("old/s.pem", "old/s.key", "expired on"),
                                    ("other/s.pem", "other/s.key", "does not name")):
            found = mailstack(write(tmp_path, db_url, "127.0.0.1:1", port, cert, key),
                              "config", "check")
            assert expected in found.stdout, found.stdout
            assert "error: dns: no answer from 127.0.0.1:1" in found.stdout
            assert f"warning: listeners: imap 127.0.0.1:{port} is in use" in found.stdout
            assert found.returncode == 1 and "error(s)" in found.stderr


def test_show_never_prints_the_rspamd_controller_password(tmp_path, db_url, dns_server):
    config = write(tmp_path, db_url, dns_server.address, free_port())
    config.write_text(config.read_text() + '[spam]\ncontroller_password = "s3cret-learn"\n')
    for args in (("--format", "json"), ("--changed",)):
        done = mailstack(config, "config", "show", *args)
        assert done.returncode == 0, done.stderr
        assert "s3cret-learn" not in done.stdout
    every = json.loads(mailstack(config, "config", "show", "--format", "json").stdout)
    assert every["spam.controller_password"] == "(set, not shown)"
    assert every["spam.controller_url"] == "http://127.0.0.1:11334"
