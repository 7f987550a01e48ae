"""The client checks of port 25 (connect and client tables): trusted networks, the
whitelist, local blocks, the firewall, DNSBLs and reverse DNS, each on its own."""

from __future__ import annotations

from datetime import timedelta

import pytest

from mailstack import replies
from mailstack.policy import blocklist, dnsbl, rdns, whitelist
from mailstack.policy.client_facts import ClientFacts
from mailstack.policy.client_state import ClientState
from mailstack.policy.decision import Verdict

from tests.support.policy_doubles import (
    START, FakeResolver, FakeStore, clock_at, fired, settings, smtp_request,
)

IP = "192.0.2.7"


def with_dns(resolver, ip=IP, **facts):
    return smtp_request("connect", client_ip=ip, client=ClientState(ClientFacts(resolver, ip)),
                        **facts)


@pytest.mark.parametrize("ip, verdict", [
    ("127.0.0.1", Verdict.PERMIT), ("10.1.2.3", Verdict.PERMIT), ("192.0.2.7", Verdict.DUNNO),
    ("::1", Verdict.PERMIT), ("2001:db8::1", Verdict.DUNNO),
])
def test_trusted_networks_skip_the_client_checks(ip, verdict):
    listed = whitelist.Whitelisted(FakeStore(), ("127.0.0.1/32", "::1/128", "10.0.0.0/8"))
    assert whitelist.TrustedNetwork(listed).check(smtp_request(client_ip=ip)).verdict is verdict
    assert fired(listed.check(smtp_request(client_ip=ip))).verdict is verdict


@pytest.mark.parametrize("entry, ip, confirmed, verdict", [
    ("192.0.2.7", "192.0.2.7", None, Verdict.PERMIT),
    ("192.0.2.0/24", "192.0.2.99", None, Verdict.PERMIT),
    ("192.0.2.0/24", "198.51.100.1", None, Verdict.DUNNO),
    (".partner.test", IP, "mx1.partner.test", Verdict.PERMIT),
    (".partner.test", IP, "mx1.notpartner.test", Verdict.DUNNO),
    (".partner.test", IP, None, Verdict.DUNNO),          # a PTR alone proves nothing
])
def test_whitelist_entries(entry, ip, confirmed, verdict):
    store = FakeStore()
    store.allow(entry)
    resolver = FakeResolver(ptr={ip: confirmed or "mx1.partner.test"},
                            confirmed={ip: confirmed} if confirmed else {})
    assert fired(whitelist.Whitelisted(store).check(with_dns(resolver, ip))).verdict is verdict


def test_host_entries_ask_dns_only_when_there_is_one():
    store, resolver = FakeStore(), FakeResolver()
    store.allow("192.0.2.0/24")
    fired(whitelist.Whitelisted(store).check(with_dns(resolver, "198.51.100.1")))
    assert resolver.asked == []


def test_a_local_block_rejects_until_it_expires():
    store, clock = FakeStore(), clock_at()
    store.block(IP, START, reason="spam trap hit: t@example.test", duration=timedelta(hours=1))
    check = blocklist.LocallyBlocked(store, clock)
    decision = fired(check.check(smtp_request(client_ip=IP)))
    assert decision.verdict is Verdict.REJECT and decision.reply.code == 554
    assert "blocked by local policy; spam trap hit" in decision.reply.text
    assert fired(check.check(smtp_request(client_ip="192.0.2.8"))).verdict is Verdict.DUNNO
    clock.advance(3600)
    assert fired(check.check(smtp_request(client_ip=IP))).verdict is Verdict.DUNNO


@pytest.mark.parametrize("action, whitelisted, down, verdict", [
    ("firewall", False, False, Verdict.REJECT),
    ("firewall", True, False, Verdict.DUNNO),     # the whitelist vouches for it
    ("reject", False, False, Verdict.DUNNO),      # refused at RCPT, not dropped
    ("firewall", False, True, Verdict.DUNNO),     # fail open: the client checks defer later
])
def test_the_firewall_drops_before_the_banner(action, whitelisted, down, verdict):
    store = FakeStore()
    store.block("192.0.2.0/24", START, action=action)
    if whitelisted:
        store.allow(IP)
    store.down = down
    check = blocklist.Firewalled(store, clock_at(), whitelist.Whitelisted(store))
    assert fired(check.check(smtp_request(client_ip=IP))).verdict is verdict


def test_repeat_offenders_are_blocked_longer_up_to_the_cap():
    store = FakeStore()
    blocker = blocklist.Blocker(settings(antispam={"block_duration": 3600, "repeat_factor": 3,
                                                   "max_block_duration": 5 * 3600}).antispam)
    hours = []
    for n in range(3):
        at = START + timedelta(hours=n)
        block = fired(store.run(blocker.add, IP, action="reject", source="trap", reason="r",
                                evidence="e", added_by="t", at=at))
        hours.append((block.expires_at - at) / timedelta(hours=1))
    assert hours == [1, 3, 5]


def zone(name="bl.test", **extra):
    return {"zone": name, **extra}


def listed_by(zones, tempfail="skip"):
    return dnsbl.Listed(FakeResolver(listed=zones[0], tempfail=zones[1]),
                        settings(antispam={"dnsbl": [zone("bl.test"), zone("two.test")],
                                           "dnsbl_tempfail": tempfail}).antispam.dnsbl,
                        clock_at(), tempfail=tempfail)


@pytest.mark.parametrize("answers, failing, tempfail, verdict, code", [
    ({}, (), "skip", Verdict.DUNNO, None),
    ({(IP, "bl.test"): (["127.0.0.2"], "listed for spam")}, (), "skip", Verdict.REJECT, 554),
    ({(IP, "bl.test"): (["127.255.255.254"], "")}, (), "skip", Verdict.DUNNO, None),  # list error
    ({}, ("two.test",), "skip", Verdict.DUNNO, None),
    ({}, ("two.test",), "defer", Verdict.DEFER, 450),     # never a 5xx on a failed lookup
])
def test_dnsbl_answers(answers, failing, tempfail, verdict, code):
    decision = fired(listed_by((answers, failing), tempfail).check(smtp_request(client_ip=IP)))
    assert decision.verdict is verdict
    assert (decision.reply.code if decision.reply else None) == code


def test_a_listing_names_every_zone_and_its_reason():
    answers = {(IP, "bl.test"): (["127.0.0.2"], "listed for spam"),
               (IP, "two.test"): (["127.0.0.4"], "")}
    decision = fired(listed_by((answers, ())).check(smtp_request(client_ip=IP)))
    assert decision.reason == "listed by bl.test, two.test"
    assert "bl.test; listed for spam; also blocked using two.test" in decision.reply.text


def test_a_list_that_lists_127_0_0_1_is_switched_off_and_retested_hourly():
    resolver = FakeResolver(listed={("127.0.0.1", "bl.test"): (["127.0.0.2"], ""),
                                    (IP, "bl.test"): (["127.0.0.2"], "")})
    clock = clock_at()
    check = dnsbl.Listed(resolver, settings(antispam={"dnsbl": [zone()]}).antispam.dnsbl, clock)
    assert fired(check.check(smtp_request(client_ip=IP))).verdict is Verdict.DUNNO
    del resolver.listed[("127.0.0.1", "bl.test")]
    clock.advance(dnsbl.RETEST_SECONDS - 1)
    assert fired(check.check(smtp_request(client_ip=IP))).verdict is Verdict.DUNNO
    clock.advance(1)
    assert fired(check.check(smtp_request(client_ip=IP))).verdict is Verdict.REJECT


def test_list_error_answers_never_count_whatever_the_codes():
    wide = settings(antispam={"dnsbl": [zone(codes=["127.0.0.2-127.255.255.255"])]})
    one = dnsbl.DNSBL(wide.antispam.dnsbl[0])
    assert one.counts("127.255.254.1") and not one.counts("127.255.255.254")


def test_listed_codes_and_templates():
    config = settings(antispam={"dnsbl": [zone(codes=["127.0.0.4-127.0.0.5"],
                                                reason="see {lookup_url}",
                                                lookup_url="https://l.test/{zone}/{ip}")]})
    one = dnsbl.DNSBL(config.antispam.dnsbl[0])
    assert [one.counts(c) for c in ("127.0.0.3", "127.0.0.4", "127.0.0.5")] == [False, True, True]
    assert one.reason(IP, "") == f"see https://l.test/bl.test/{IP}"
    assert fired(dnsbl.Listed(FakeResolver(), (), clock_at()).check(smtp_request())) .verdict \
        is Verdict.DUNNO


@pytest.mark.parametrize("ptr, confirmed, failing, fcrdns, verdict, reply", [
    ("host.test", None, False, False, Verdict.DUNNO, None),
    (None, None, False, False, Verdict.REJECT, replies.NO_PTR),
    (None, None, True, False, Verdict.DEFER, replies.NO_PTR_TEMPORARY),
    ("host.test", None, False, True, Verdict.REJECT, replies.NO_PTR),
    ("host.test", "host.test", False, True, Verdict.DUNNO, None),
])
def test_reverse_dns(ptr, confirmed, failing, fcrdns, verdict, reply):
    resolver = FakeResolver(ptr={IP: ptr} if ptr else {}, confirmed={IP: confirmed} if confirmed
                            else {}, tempfail=("ptr",) if failing else ())
    decision = fired(rdns.HasReverseDNS(fcrdns).check(with_dns(resolver)))
    assert decision.verdict is verdict
    assert decision.reply == (reply.format(ip=IP) if reply else None)


def test_dns_facts_are_asked_once_per_session():
    resolver = FakeResolver(ptr={IP: "host.test"}, confirmed={IP: "host.test"})
    state = ClientState(ClientFacts(resolver, IP))
    for _ in range(3):
        fired(state.ptr())
        fired(state.forward_confirmed())
    assert resolver.asked == [("ptr", IP), ("fcrdns", IP)]
    assert (state.ptr_name, state.verified_name) == ("host.test", "host.test")
    assert (ClientState().ptr_name, ClientState().verified_name, ClientState().checked) == (
        None, None, False)
