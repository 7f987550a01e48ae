"""``mailstack explain`` on the bounce of a DMARC p=reject refusal the running MX made (the
loopback DNS and the independent DKIM signer of ``test_message_authentication.py``)."""

from __future__ import annotations

import json

import pytest

from tests.e2e.test_message_authentication import (  # noqa: F401  (fixtures)
    STRANGER, keys, message, mx, nameserver, send, sign,
)
from tests.support.bounce_styles import STYLES, Bounce
from tests.support.cli import Cli
from tests.support.server import HOSTNAME

pytestmark = pytest.mark.e2e


def test_explain_a_dmarc_reject(mx, keys, tmp_path):
    tampered = sign(message(), keys["rsa"]).replace(b"the figures", b"the new bank account")
    code, text = send(mx, STRANGER, tampered)
    assert code == 550
    bounce = Bounce(f"{code} {text}", "alice@example.test", "ceo@bank.test", mx.now(),
                    mx=HOSTNAME, mx_ip="127.0.0.1", client_ip=STRANGER)
    path = tmp_path / "dmarc.eml"
    path.write_text(STYLES["forwarded"](bounce))
    done = Cli(tmp_path / "cli.toml")("explain", str(path), "--format", "json")   # a process
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert found["verdict"] == "dmarc" and found["matched_ref"] in text
    assert "bank.test" in found["why"] and "DKIM" in found["advice"]["sender"]
