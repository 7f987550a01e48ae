"""Port 25 relays only as ``[smtp] mx_relay`` says (issue 14): a customer network's live
POP-before-SMTP window opens relay on the MX only with ``mx_relay = "customers"``.
Real poplib opens the window from the customer's address; real smtplib asks port 25."""

from __future__ import annotations

import smtplib

import pytest

from tests.e2e.test_pop_before_smtp import POP3From

pytestmark = pytest.mark.e2e
PASSWORD = "legacy customer pw"
LISTENERS = [
    {"name": "smtp", "protocol": "smtp", "port": 0, "tls": "starttls"},
    {"name": "pop3", "protocol": "pop3", "port": 0, "tls": "starttls"},
]
CUSTOMER, OUTSIDER = "127.0.0.70", "127.0.0.5"     # inside / outside 127.0.0.64/26


def start(make_server, **smtp):
    server = make_server(listeners=LISTENERS, smtp=smtp,
                         pop_before_smtp={"enabled": True, "window": 600},
                         migration={"customer_networks": ["127.0.0.64/26"]})
    server.add_account("ann@example.test", PASSWORD)
    return server


def remote_rcpt_after_pop_login(server, ip):
    pop = POP3From("127.0.0.1", server.port("pop3"), ip)
    pop.stls(context=server.context)
    pop.user("ann@example.test")
    pop.pass_(PASSWORD)
    pop.quit()
    with smtplib.SMTP("127.0.0.1", server.port("smtp"), source_address=(ip, 0), timeout=10) as c:
        c.ehlo("legacy-pc")
        assert c.mail("ann@example.test")[0] == 250
        return c.rcpt("x@remote.test")


def test_by_default_a_pop_login_opens_no_relay_on_port_25(make_server):
    server = start(make_server)
    code, text = remote_rcpt_after_pop_login(server, CUSTOMER)
    assert code == 554 and text.startswith(b"5.7.1 <x@remote.test>: Relay access denied"), text


def test_mx_relay_customers_relays_for_a_customer_network_window(make_server):
    server = start(make_server, mx_relay="customers")
    assert remote_rcpt_after_pop_login(server, CUSTOMER)[0] == 250
    assert remote_rcpt_after_pop_login(server, OUTSIDER)[0] == 554   # not a customer network
