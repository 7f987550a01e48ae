"""The POP-before-SMTP migration matrix as a table: SMTP AUTH flag × before/after the sunset
and the TLS cutover × inside/outside the 10-minute window × same/other client IP × ports
25/587/465, decided without a socket.

What decides, and what is tested here:
- MAIL FROM of a client that did not AUTH: the ``policy.auth_window.PopBeforeSMTP`` check
  of the port's MAIL stage, taken from its stage table (``policy/submission.py``: required;
  ``policy/mx.py``: none with the default ``mx_relay = "never"``, optional and only for
  customer networks with ``"customers"``), reading real login events from a real (SQLite)
  store through ``logins.last_success_from``: the window is a query, so the query is part
  of the unit.
- Whether AUTH is offered: ``smtp_auth.Authenticator.offered`` with the one TLS gate
  (``policy.tls_required.TLSRequirement``), enabled as each port's policy enables it.
Time comes from a ``task.Clock``.  ``tests/e2e/test_pop_before_smtp.py`` keeps a few of these
cases end to end (real poplib and smtplib against a running server).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
from twisted.internet import defer, task

from mailstack import clock as clocks, config as configs, replies
from mailstack.policy import auth_window, mx, submission
from mailstack.policy.decision import DUNNO, Verdict
from mailstack.policy.request import SMTPRequest
from mailstack.policy.tls_required import TLSRequirement
from mailstack.protocols import smtp_auth
from mailstack.store import directory, logins
from mailstack.store.db import make_engine
from tests.support import databases

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=timezone.utc)
DAY = 86400
HELP = "https://help.example.test/smtp-auth"
CUSTOMER, NEIGHBOUR = "127.0.0.31", "127.0.0.32"
PHASES = {"before": 0, "after-sunset": 31 * DAY, "after-cutover": 61 * DAY}


class SyncStore:
    """The store's ``read`` (``Database.read``) without its thread pool: the same query on
    the same schema, answered at once, so a check's Deferred has fired when it returns."""

    def __init__(self, engine):
        self.engine = engine

    def read(self, fn, *args, **kwargs):
        with self.engine.begin() as conn:
            return defer.succeed(fn(conn, *args, **kwargs))


@pytest.fixture
def world(tmp_path):
    with databases.fresh_database("sqlite", tmp_path) as url:
        engine = make_engine(url)
        with engine.begin() as conn:
            directory.add_domain(conn, "example.test", T0)
            ann = directory.add_account(conn, "ann@example.test", "h", T0)
        clock = task.Clock()
        clock.advance(clocks.to_seconds(T0))
        config = configs.from_dict({
            "pop_before_smtp": {"enabled": True, "window": 600, "sunset": T0 + timedelta(days=30)},
            "auth": {"tls_cutover": T0 + timedelta(days=60)},
            "submission": {"help_url": HELP}})
        yield SimpleNamespace(store=SyncStore(engine), clock=clock, config=config, ann=ann)
        engine.dispose()


def pop_login(world, ip, *, tls, success=True):
    event = logins.LoginEvent(at=clocks.now(world.clock), username="ann@example.test",
                              protocol="pop3", client_ip=ip, tls=tls, mechanism="USER",
                              success=success, account_id=world.ann if success else None)
    with world.store.engine.begin() as conn:
        logins.record(conn, event)


def port_tables(world, port_name):
    config = world.config
    if port_name == "smtp":
        return mx.tables(world.store, world.clock, None, antispam=config.antispam,
                         migration=config.migration, pop_before_smtp=config.pop_before_smtp,
                         help_url=HELP, recipients_per_hour=500, mx_relay=config.smtp.mx_relay)
    return submission.tables(world.store, world.clock, migration=config.migration,
                             pop_before_smtp=config.pop_before_smtp, help_url=HELP,
                             recipients_per_hour=500)


def window_check(world, port_name):
    """The window check of the port's MAIL stage, from its stage table; None if it has none."""
    found = [c for c in port_tables(world, port_name).mail.checks
             if isinstance(c, auth_window.PopBeforeSMTP)]
    return found[0] if found else None


def auth_offered(world, smtp_auth_flag, port_name, tls) -> bool:
    gate = TLSRequirement(world.clock, world.config.auth.tls_cutover)
    enabled = (mx.offers_auth(world.config.smtp.mx_relay, smtp_auth_flag) if port_name == "smtp"
               else smtp_auth_flag)
    return smtp_auth.Authenticator(None, gate, enabled).offered(SimpleNamespace(tls=tls))


def mail_from(world, port_name, ip, tls):
    request = SMTPRequest(stage="mail", session="s1", client_ip=ip, port=port_name, tls=tls,
                          helo="legacy-pc", sender="ann@example.test")
    check = window_check(world, port_name)
    return DUNNO if check is None else check.check(request).result


def expected(port_name, phase, window, ip_case):
    """(verdict, reply) at MAIL FROM for a client that did not AUTH (None: no opinion)."""
    if port_name == "smtp":
        return Verdict.DUNNO, None                       # the MX takes mail for us from anyone
    live = window == "inside" and ip_case == "same"
    if live and phase == "before":
        return Verdict.PERMIT, None
    if live:
        return Verdict.REJECT, replies.POP_BEFORE_SMTP_ENDED.format(url=HELP)
    return Verdict.REJECT, replies.AUTH_REQUIRED


@pytest.mark.parametrize("smtp_auth_flag", [True, False], ids=["auth-on", "auth-off"])
@pytest.mark.parametrize("phase", list(PHASES))
@pytest.mark.parametrize("window", ["inside", "outside"])
@pytest.mark.parametrize("ip_case", ["same", "other"])
@pytest.mark.parametrize("port_name", ["smtp", "submission", "submissions"])
def test_matrix(world, smtp_auth_flag, phase, window, ip_case, port_name):
    world.clock.advance(PHASES[phase])
    pop_login(world, CUSTOMER, tls=phase == "after-cutover")
    if window == "outside":
        world.clock.advance(601)
    ip = CUSTOMER if ip_case == "same" else NEIGHBOUR
    tls = port_name == "submissions"                     # 465 is TLS from the first byte
    decision = mail_from(world, port_name, ip, tls)
    verdict, reply = expected(port_name, phase, window, ip_case)
    assert (decision.verdict, decision.reply) == (verdict, reply), decision
    if verdict is Verdict.PERMIT:                        # the window vouches for its account
        assert decision.subject.account.address == "ann@example.test"
        assert (decision.subject.protocol, decision.subject.tls) == ("pop3", False)
    if reply is not None and reply.code == 530 and "ended" in reply.text:
        assert HELP in reply.text
    offers = auth_offered(world, smtp_auth_flag, port_name, tls)
    if port_name == "smtp":
        assert not offers
    else:
        assert offers == (smtp_auth_flag and (tls or phase != "after-cutover"))


def test_the_window_closes_after_exactly_its_length(world):
    pop_login(world, CUSTOMER, tls=False)
    world.clock.advance(600)
    assert mail_from(world, "submission", CUSTOMER, False).verdict is Verdict.PERMIT
    world.clock.advance(1)
    assert mail_from(world, "submission", CUSTOMER, False).reply == replies.AUTH_REQUIRED


def test_the_sunset_takes_effect_at_its_moment(world):
    world.clock.advance(30 * DAY - 1)
    pop_login(world, CUSTOMER, tls=False)
    assert mail_from(world, "submission", CUSTOMER, False).verdict is Verdict.PERMIT
    world.clock.advance(1)
    assert mail_from(world, "submission", CUSTOMER, False).reply.code == 530


def test_a_failed_login_opens_no_window(world):
    pop_login(world, CUSTOMER, tls=False, success=False)
    assert mail_from(world, "submission", CUSTOMER, False).reply == replies.AUTH_REQUIRED


def test_the_newest_login_in_the_window_is_the_one_that_vouches(world):
    pop_login(world, CUSTOMER, tls=False)
    world.clock.advance(60)
    pop_login(world, CUSTOMER, tls=True)
    assert mail_from(world, "submission", CUSTOMER, False).subject.tls is True


def test_an_imap_login_opens_no_window_unless_configured(world):
    event = logins.LoginEvent(at=clocks.now(world.clock), username="ann@example.test",
                              protocol="imap", client_ip=CUSTOMER, tls=True, mechanism="LOGIN",
                              success=True, account_id=world.ann)
    with world.store.engine.begin() as conn:
        logins.record(conn, event)
    assert mail_from(world, "submission", CUSTOMER, False).reply == replies.AUTH_REQUIRED


def test_with_the_feature_off_every_unauthenticated_sender_is_refused(world):
    world.config = configs.from_dict({"pop_before_smtp": {"enabled": False}})
    pop_login(world, CUSTOMER, tls=False)
    assert mail_from(world, "submission", CUSTOMER, False).reply == replies.AUTH_REQUIRED
    assert mail_from(world, "smtp", CUSTOMER, False).verdict is Verdict.DUNNO


def test_port_25_lets_a_customer_network_window_vouch_but_never_refuses(world):
    world.config = configs.from_dict({
        "pop_before_smtp": {"enabled": True, "window": 600}, "smtp": {"mx_relay": "customers"},
        "migration": {"customer_networks": ["127.0.0.0/24"]}})
    pop_login(world, CUSTOMER, tls=False)
    assert mail_from(world, "smtp", CUSTOMER, False).verdict is Verdict.PERMIT
    assert mail_from(world, "smtp", NEIGHBOUR, False).verdict is Verdict.DUNNO   # no window
    assert mail_from(world, "smtp", "192.0.2.7", False).verdict is Verdict.DUNNO  # not ours


def test_an_authenticated_sender_needs_no_window(world):
    request = SMTPRequest(stage="mail", session="s1", client_ip=NEIGHBOUR, port="submission",
                          sender="ann@example.test", authenticated_as=object())
    decision = window_check(world, "submission").check(request).result
    assert decision.verdict is Verdict.DUNNO
