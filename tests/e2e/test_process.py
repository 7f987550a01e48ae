"""The process as operators start it: ``mailstack demo``, ``mailstack serve`` and twistd."""

from __future__ import annotations

import poplib
import re
import smtplib
import socket
import ssl
import subprocess

import pytest

from tests.support.process import BIN, command, config_toml, free_ports, stop, wait_for_port

pytestmark = pytest.mark.e2e


def config_text(db_url, smtp, pop3s):
    return config_toml(db_url, [("smtp", smtp, "starttls"), ("pop3", pop3s, "implicit")])


def test_demo_prints_the_password_once_and_serves_mail_to_the_demo_account(tmp_path):
    smtp_port, pop3s_port = free_ports(2)
    demo = tmp_path / "demo"
    demo.mkdir()
    (demo / "mailstack.toml").write_text(config_text("sqlite:///mailstack.db", smtp_port, pop3s_port))
    proc = subprocess.Popen([BIN / "mailstack", "demo", "--dir", str(demo)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        first = proc.stdout.readline() + proc.stdout.readline()
        password = re.search(r"shown only this once\): (\S+)", first).group(1)
        wait_for_port(smtp_port, proc)
        context = ssl.create_default_context(cafile=demo / "certs" / "ca.pem")
        with smtplib.SMTP("127.0.0.1", smtp_port) as client:
            client.starttls(context=context)
            client.sendmail("someone@remote.test", ["demo@example.test"],
                            b"Subject: hello demo\r\n\r\nIt works.\r\n")
        # Every name a client reaches us by verifies against the dev CA (issue 15, item 10).
        for name in ("mail.example.test", "autoconfig.example.test",
                     "autodiscover.example.test", "localhost"):
            with socket.create_connection(("127.0.0.1", pop3s_port), timeout=10) as raw:
                with context.wrap_socket(raw, server_hostname=name) as verified:
                    assert verified.recv(100).startswith(b"+OK")
        pop = poplib.POP3_SSL("127.0.0.1", pop3s_port, context=context)
        pop.user("demo@example.test")
        pop.pass_(password)
        assert pop.stat()[0] == 1
        assert b"Subject: hello demo" in pop.retr(1)[1]
        pop.quit()
    finally:
        output = stop(proc)
    assert password not in output.split("shown only this once")[-1]  # printed once only
    assert not list(demo.glob("certs/*.key")) or oct((demo / "certs" / "server.key").stat().st_mode)[-3:] == "600"


def test_serve_refuses_an_unmigrated_database_with_a_clear_message(tmp_path):
    (tmp_path / "m.toml").write_text(config_text(f"sqlite:///{tmp_path}/x.db", *free_ports(2)))
    done = subprocess.run(command(tmp_path / "m.toml", "serve"),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 4 and "mailstack db upgrade" in done.stderr


def test_twistd_runs_the_same_service(tmp_path):
    smtp_port, pop3s_port = free_ports(2)
    config = tmp_path / "m.toml"
    config.write_text(config_text(f"sqlite:///{tmp_path}/t.db", smtp_port, pop3s_port))
    subprocess.run(command(config, "db", "upgrade"), check=True, capture_output=True)
    proc = subprocess.Popen([BIN / "twistd", "-n", "--pidfile=", "mailstack", "--config",
                             str(config)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, cwd=tmp_path)
    try:
        wait_for_port(smtp_port, proc)
        with smtplib.SMTP("127.0.0.1", smtp_port) as client:
            code, _ = client.ehlo("client.example")
            assert code == 250 and client.has_extn("starttls")
    finally:
        output = stop(proc)
    assert "listening" in output


def _migrated_config(tmp_path, smtp, pop3s, **sections):
    config = tmp_path / "m.toml"
    config.write_text(config_toml(f"sqlite:///{tmp_path}/b.db",
                                  [("smtp", smtp, "starttls"), ("pop3", pop3s, "implicit")],
                                  **sections))
    subprocess.run(command(config, "db", "upgrade"), check=True, capture_output=True)
    return config


def _notify_socket(tmp_path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify.sock"))
    sock.settimeout(30)
    return sock


def test_a_listener_that_cannot_bind_stops_start_up_with_exit_3(tmp_path):
    """A busy port 25 must not leave a server running without its MX (issue 15, item 4)."""
    import os

    smtp_port, pop3s_port = free_ports(2)
    config = _migrated_config(tmp_path, smtp_port, pop3s_port)
    notify = _notify_socket(tmp_path)
    busy = socket.socket()
    busy.bind(("127.0.0.1", smtp_port))
    busy.listen()
    try:
        done = subprocess.run(command(config, "serve"), capture_output=True, text=True,
                              timeout=60, env={**os.environ,
                                               "NOTIFY_SOCKET": str(tmp_path / "notify.sock")})
    finally:
        busy.close()
    assert done.returncode == 3, done.stderr
    assert done.stderr.strip().startswith("mailstack: error: cannot listen")
    assert len(done.stderr.strip().splitlines()) == 1
    notify.setblocking(False)
    with pytest.raises(BlockingIOError):
        notify.recv(100)                          # never READY=1
    notify.close()


def test_ready_is_told_to_systemd_once_every_listener_is_up(tmp_path):
    import os

    smtp_port, pop3s_port = free_ports(2)
    config = _migrated_config(tmp_path, smtp_port, pop3s_port)
    notify = _notify_socket(tmp_path)
    proc = subprocess.Popen(command(config, "serve"), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "NOTIFY_SOCKET": str(tmp_path / "notify.sock")})
    try:
        assert notify.recv(100) == b"READY=1"
        for port in (smtp_port, pop3s_port):        # both already accept connections
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
    finally:
        stop(proc)
        notify.close()


def test_a_missing_certificate_is_a_configuration_error(tmp_path):
    smtp_port, pop3s_port = free_ports(2)
    config = _migrated_config(tmp_path, smtp_port, pop3s_port,
                              tls={"generate_dev": False, "certificate": "none.pem",
                                   "private_key": "none.key"})
    done = subprocess.run(command(config, "serve"), capture_output=True, text=True, timeout=60)
    assert done.returncode == 3 and "tls.certificate" in done.stderr
