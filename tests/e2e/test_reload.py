"""``mailstack reload`` (SIGHUP) on a running ``mailstack serve`` (issue 15, item 14).

Done when: a certificate replaced on disk and a reload, ``openssl s_client`` sees the new
one on the next connection while an IMAP session opened before keeps working; settings
that need a restart are named in the log and left alone.
"""

from __future__ import annotations

import imaplib
import shutil
import signal
import smtplib
import ssl
import subprocess
import time

import pytest

from mailstack import tls
from tests.support.process import command, free_ports, serve, stop, wait_for_port, write_config

pytestmark = pytest.mark.e2e
PASSWORD = "reload password"
NAMES = ["mail.example.test"]


def make_certs(directory):
    directory.mkdir()
    paths = directory / "server.pem", directory / "server.key", directory / "ca.pem"
    tls.ensure_dev_certificates(*paths, NAMES)
    return paths


def served_certificate(port) -> bytes:
    """The PEM certificate ``openssl s_client`` is shown on a new connection."""
    done = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}",
                           "-servername", NAMES[0]], input="", capture_output=True, text=True,
                          timeout=30)
    out = done.stdout
    start = out.index("-----BEGIN CERTIFICATE-----")
    end = out.index("-----END CERTIFICATE-----") + len("-----END CERTIFICATE-----")
    return out[start:end].encode()


def first_pem(path) -> bytes:
    text = path.read_bytes()
    return text[:text.index(b"-----END CERTIFICATE-----") + len(b"-----END CERTIFICATE-----")]


@pytest.fixture
def running(tmp_path):
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    old, new = make_certs(tmp_path / "old"), make_certs(tmp_path / "new")
    live = tmp_path / "live"
    shutil.copytree(tmp_path / "old", live)
    imaps, smtp_port = free_ports(2)
    options = dict(tls={"generate_dev": False, "certificate": str(live / "server.pem"),
                        "private_key": str(live / "server.key")})
    config = write_config(tmp_path / "mailstack.toml", f"sqlite:///{tmp_path}/r.db",
                          [("imap", imaps, "implicit"), ("smtp", smtp_port, "starttls")],
                          **options)
    subprocess.run(command(config, "db", "upgrade"), check=True, capture_output=True)
    subprocess.run(command(config, "account", "add", "ann@example.test", "--password-stdin"),
                   input=PASSWORD + "\n", text=True, check=True, capture_output=True)
    proc = serve(config)
    wait_for_port(imaps, proc)
    yield proc, config, old, new, live, imaps, smtp_port, options
    stop(proc)


def reload(config):
    done = subprocess.run(command(config, "reload"), capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr


def eventually_served(port, pem, timeout=10):
    deadline = time.monotonic() + timeout
    while served_certificate(port) != pem:
        assert time.monotonic() < deadline, "the new certificate was never served"
        time.sleep(0.2)


def test_a_renewed_certificate_is_served_to_new_connections_only(running):
    proc, config, old, new, live, imaps, _, _ = running
    assert served_certificate(imaps) == first_pem(old[0])
    session = imaplib.IMAP4_SSL("127.0.0.1", imaps,
                                ssl_context=ssl.create_default_context(cafile=old[2]))
    session.login("ann@example.test", PASSWORD)
    assert session.select("INBOX")[0] == "OK"
    for name in ("server.pem", "server.key"):               # the ACME client renews
        shutil.copy(new[0].parent / name, live / name)
    reload(config)
    eventually_served(imaps, first_pem(new[0]))
    assert session.noop()[0] == "OK"                        # the old session keeps going
    assert session.select("INBOX")[0] == "OK"
    session.logout()
    renewed = imaplib.IMAP4_SSL("127.0.0.1", imaps,
                                ssl_context=ssl.create_default_context(cafile=new[2]))
    renewed.login("ann@example.test", PASSWORD)
    renewed.logout()


def test_settings_apply_to_new_sessions_and_restart_ones_are_named(running, tmp_path):
    proc, config, old, new, live, imaps, smtp_port, options = running
    with smtplib.SMTP("127.0.0.1", smtp_port, timeout=10) as before:
        before.ehlo("client.test")
        assert before.esmtp_features["size"] == str(25 * 1024 * 1024)
    text = config.read_text()
    config.write_text(text.replace("[database]", "[smtp]\nmax_message_size = 1000000\n"
                                   "[database]\nthreads = 7"))
    reload(config)
    deadline = time.monotonic() + 10
    while True:
        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=10) as after:
            after.ehlo("client.test")
            if after.esmtp_features["size"] == "1000000":
                break
        assert time.monotonic() < deadline, "the new [smtp] limit was never applied"
        time.sleep(0.2)
    config.write_text("[smtp]\nno_such_setting = 1\n")            # a broken file: nothing changes
    refused = subprocess.run(command(config, "reload"), capture_output=True, text=True)
    assert refused.returncode == 3 and "smtp.no_such_setting" in refused.stderr
    proc.send_signal(signal.SIGHUP)                  # as systemd's ExecReload=kill -HUP does
    time.sleep(1)
    with smtplib.SMTP("127.0.0.1", smtp_port, timeout=10) as still:
        still.ehlo("client.test")
        assert still.esmtp_features["size"] == "1000000"
    log = stop(proc)
    assert "[database] changed and needs a restart" in log
    assert "reload refused, nothing changed" in log and "no_such_setting" in log
