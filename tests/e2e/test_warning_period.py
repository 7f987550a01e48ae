"""In the last days before the sunset and the cutover the old ways still work, but each
account gets one notice a day in its INBOX."""

from __future__ import annotations

import smtplib
from datetime import datetime, timedelta, timezone

import pytest

from mailstack.store import mailboxes
from tests.e2e.test_pop_before_smtp import POP3From

pytestmark = pytest.mark.e2e
PW = "warning-pw"
DAY = 86400


def notices(server, account_id):
    bodies = server.db(lambda c: list(mailboxes.get_bodies(c, [m.id for m in mailboxes.list_messages(
        c, mailboxes.require_folder(c, account_id, "INBOX").id)]).values()))
    return [b for b in bodies if b"Action needed" in b]


def legacy_day(server, ip):
    pop = POP3From("127.0.0.1", server.port("pop3"), ip)        # password in the clear
    pop.user("ann@example.test")
    pop.pass_(PW)
    pop.quit()
    with smtplib.SMTP("127.0.0.1", server.port("submission"), source_address=(ip, 0)) as c:
        assert c.sendmail("ann@example.test", ["ann@example.test"], b"Subject: x\r\n\r\ny\r\n") == {}


def test_one_notice_a_day_for_each_old_way_during_the_warning_period(make_server):
    now = datetime.now(timezone.utc)
    server = make_server(
        listeners=[{"name": "submission", "protocol": "submission", "port": 0, "tls": "starttls"},
                   {"name": "pop3", "protocol": "pop3", "port": 0, "tls": "starttls"}],
        pop_before_smtp={"enabled": True, "sunset": now + timedelta(days=20)},
        auth={"tls_cutover": now + timedelta(days=40)},
        migration={"sunset_warning_days": 14, "cutover_warning_days": 14})
    ann = server.add_account("ann@example.test", PW)
    legacy_day(server, "127.0.0.61")
    assert notices(server, ann) == []                              # not yet in either period
    server.advance(7 * DAY)                                        # 13 days before the sunset
    legacy_day(server, "127.0.0.61")
    legacy_day(server, "127.0.0.61")
    (sunset,) = notices(server, ann)
    assert b"POP before SMTP" in sunset and b"127.0.0.61" in sunset
    server.advance(20 * DAY)                   # sunset passed; 13 days before the cutover
    pop = POP3From("127.0.0.1", server.port("pop3"), "127.0.0.61")
    pop.user("ann@example.test")
    pop.pass_(PW)
    pop.quit()
    cutover = [n for n in notices(server, ann) if b"encryption" in n]
    assert len(cutover) == 1 and b"pop3" in cutover[0]
    server.advance(DAY)
    pop = POP3From("127.0.0.1", server.port("pop3"), "127.0.0.61")
    pop.user("ann@example.test")
    pop.pass_(PW)
    pop.quit()
    assert len([n for n in notices(server, ann) if b"encryption" in n]) == 2
