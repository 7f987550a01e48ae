"""What the server counts (mailstack/metrics.py), how a scrape is answered
(protocols/metrics_http.py) and how a log event becomes a JSON line (logs.py)."""

from __future__ import annotations

import inspect
import json

import pytest
from prometheus_client.parser import text_string_to_metric_families
from twisted.internet import defer, task
from twisted.logger import Logger, LogPublisher
from twisted.web.test.requesthelper import DummyRequest

from mailstack import config, logs
from mailstack.metrics import NO_METRICS, Metrics, NoMetrics
from mailstack.policy import dnsbl
from mailstack.protocols import metrics_http

from tests.support.policy_doubles import FakeResolver, clock_at, fired, settings, smtp_request


def samples(metrics) -> dict:
    text = metrics.exposition().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_the_no_op_answers_every_method_the_real_one_has():
    public = {name for name, _ in inspect.getmembers(Metrics, inspect.isfunction)
              if not name.startswith("_") and name != "exposition"}
    assert public <= set(dir(NoMetrics)), public - set(dir(NoMetrics))
    for name in public:           # and the real one counts: it overrides each of them
        assert getattr(Metrics, name) is not getattr(NoMetrics, name), name


def test_events_are_counted_under_their_labels():
    m = Metrics()
    m.login("pop3", "ok")
    m.login("pop3", "bad-password")
    m.login("pop3", "bad-password")
    m.refused("mx", "dnsbl", "reject")
    m.queue(3, 120.5)
    got = samples(m)
    assert got[("mailstack_logins_total", (("protocol", "pop3"), ("result", "bad-password")))] == 2
    assert got[("mailstack_logins_total", (("protocol", "pop3"), ("result", "ok")))] == 1
    assert got[("mailstack_smtp_refused_total",
                (("check", "dnsbl"), ("listener", "mx"), ("verdict", "reject")))] == 1
    assert got[("mailstack_queue_recipients", ())] == 3
    assert got[("mailstack_queue_oldest_age_seconds", ())] == 120.5


def test_sessions_are_read_from_the_limits_at_each_scrape():
    m, open_now = Metrics(), {"imap": 2}
    m.sessions_from(lambda: open_now)
    assert samples(m)[("mailstack_sessions_open", (("protocol", "imap"),))] == 2
    open_now["imap"] = 0
    assert samples(m)[("mailstack_sessions_open", (("protocol", "imap"),))] == 0


def test_timers_observe_once_even_when_the_work_fails():
    m = Metrics()
    with pytest.raises(ValueError):
        with m.db_timer("write"):
            raise ValueError("conflict")
    with m.hash_timer("verify"):
        pass
    got = samples(m)
    assert got[("mailstack_db_transaction_seconds_count", (("kind", "write"),))] == 1
    assert got[("mailstack_password_hash_seconds_count", (("operation", "verify"),))] == 1


def test_every_dnsbl_lookup_is_counted_by_its_result():
    m = Metrics()
    lists = settings(antispam={"dnsbl": [{"zone": "bl.test"}, {"zone": "two.test"},
                                         {"zone": "three.test"}]}).antispam.dnsbl
    resolver = FakeResolver(listed={("192.0.2.7", "bl.test"): (["127.0.0.2"], "")},
                            tempfail=("two.test",))
    fired(dnsbl.Listed(resolver, lists, clock_at(), metrics=m).check(
        smtp_request(client_ip="192.0.2.7")))
    got = samples(m)
    for zone, result in (("bl.test", "listed"), ("two.test", "failed"), ("three.test", "clean")):
        assert got[("mailstack_dnsbl_lookups_total", (("result", result), ("zone", zone)))] == 1


def scrape(page):
    request = DummyRequest([b""])
    request.method = b"GET"
    assert page.render(request) is metrics_http.server.NOT_DONE_YET
    return request


def test_a_scrape_waits_for_the_queue_measurement_and_concurrent_ones_share_it():
    m, clock, measured = Metrics(), task.Clock(), []

    def measure():
        measured.append(defer.Deferred())
        return measured[-1]
    page = metrics_http.MetricsPage(m, measure, clock)
    first, second = scrape(page), scrape(page)
    assert len(measured) == 1 and not first.finished and not second.finished
    m.queue(7, 0)
    measured[0].callback(None)
    assert first.finished and second.finished
    assert b"mailstack_queue_recipients 7.0" in b"".join(first.written)
    scrape(page)
    assert len(measured) == 2          # the next scrape measures again


def test_a_measurement_that_hangs_or_fails_still_serves_the_counters():
    m, clock = Metrics(), task.Clock()
    m.login("imap", "ok")
    hanging = metrics_http.MetricsPage(m, defer.Deferred, clock)
    request = scrape(hanging)
    clock.advance(metrics_http.MEASURE_TIMEOUT)
    assert request.finished and b"mailstack_logins_total" in b"".join(request.written)
    failing = metrics_http.MetricsPage(m, lambda: defer.fail(RuntimeError("db down")), clock)
    assert scrape(failing).finished


def test_a_metrics_listener_is_loopback_by_default_and_refuses_starttls():
    listener = config.from_dict({"listeners": [{"protocol": "metrics", "port": 9154}]}).listeners[0]
    assert listener.address == "127.0.0.1" and listener.tls == "none"
    with pytest.raises(config.ConfigError, match="metrics listener"):
        config.from_dict({"listeners": [{"protocol": "metrics", "port": 9154, "tls": "starttls"}]})


def json_lines(emit) -> list[dict]:
    lines = []
    publisher = LogPublisher(lambda event: lines.append(logs.json_line(event)))
    emit(Logger(namespace="mailstack.test", observer=publisher))
    assert all(line.endswith("\n") and line.count("\n") == 1 for line in lines)
    return [json.loads(line) for line in lines]


def test_a_session_event_carries_session_and_client_ip_as_fields():
    def emit(logger):
        session = logs.SessionLog("mailstack.pop3", "0a1b2c3d4e", "192.0.2.7")
        session._log = logger
        session.info("login {user}\nnext", user="ann@example.test")
    (record,) = json_lines(emit)
    assert record["session"] == "0a1b2c3d4e" and record["client_ip"] == "192.0.2.7"
    assert record["message"] == "login ann@example.test\nnext"
    assert record["user"] == "ann@example.test" and record["level"] == "info"
    assert record["time"].endswith("+00:00")


def test_a_failure_has_its_traceback_and_only_named_values_are_written():
    def emit(logger):
        try:
            raise ValueError("boom")
        except ValueError:
            logger.failure("store failed for {user}", user="ann", password="never shown")
    (record,) = json_lines(emit)
    assert "ValueError: boom" in record["traceback"]
    assert record["level"] == "critical" and record["namespace"] == "mailstack.test"
    assert "password" not in record and not any(k.startswith("log_") for k in record)
