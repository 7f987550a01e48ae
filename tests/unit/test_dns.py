"""dns.py against a real DNS server on loopback: three outcomes, never an exception."""

from __future__ import annotations

import pytest
from twisted.internet import reactor

from mailstack import dns
from tests.support.dns_server import DNSServer
from tests.support.reactor import call


@pytest.fixture
def nameserver():
    server = DNSServer().start()
    yield server
    server.stop()


@pytest.fixture
def resolver(nameserver):
    return dns.Resolver([nameserver.address], timeout=0.5, reactor=reactor)


def test_ptr_and_forward_confirmation(nameserver, resolver):
    nameserver.add_ptr("127.0.0.5", "host5.example.test")
    nameserver.add_ptr("127.0.0.6", "liar.example.test", forward=False)
    nameserver.exists("liar.example.test")
    assert call(resolver.ptr, "127.0.0.5") == dns.Found(["host5.example.test"])
    assert call(resolver.forward_confirmed_ptr, "127.0.0.5") == dns.Found("host5.example.test")
    assert call(resolver.forward_confirmed_ptr, "127.0.0.6") == dns.NotFound(nxdomain=False)
    assert call(resolver.ptr, "127.0.0.7") == dns.NotFound(nxdomain=True)


def test_servfail_and_timeout_are_temporary(nameserver, resolver):
    nameserver.fail(dns.reverse_name("127.0.0.8"))
    nameserver.ignore(dns.reverse_name("127.0.0.9"))
    assert isinstance(call(resolver.ptr, "127.0.0.8"), dns.TempFail)
    assert call(resolver.ptr, "127.0.0.9") == dns.TempFail("timeout")


def test_mx_sorted_implicit_and_null(nameserver, resolver):
    nameserver.add("multi.test", "MX", 20, "b.multi.test")
    nameserver.add("multi.test", "MX", 10, "a.multi.test")
    nameserver.add("nomx.test", "A", "127.0.0.20")
    nameserver.add("null.test", "MX", 0, ".")
    assert call(resolver.mx, "multi.test") == dns.Found([(10, "a.multi.test"), (20, "b.multi.test")])
    assert call(resolver.mx, "nomx.test") == dns.Found([(0, "nomx.test")])
    assert call(resolver.mx, "null.test") == dns.Found([])
    assert call(resolver.mx, "missing.test") == dns.NotFound(nxdomain=True)


def test_dnsbl_listing_with_txt(nameserver, resolver):
    nameserver.add("2.0.0.127.bl.test", "A", "127.0.0.2")
    nameserver.add("2.0.0.127.bl.test", "TXT", "listed for spam")
    assert call(resolver.dnsbl, "127.0.0.2", "bl.test") == dns.Found((["127.0.0.2"], "listed for spam"))
    assert call(resolver.dnsbl, "127.0.0.3", "bl.test") == dns.NotFound(nxdomain=True)
    assert dns.dnsbl_name("2001:db8::1", "bl.test").startswith("1.0.0.0.")


def test_a_name_in_an_answer_holding_any_octet_is_text_not_an_exception(nameserver, resolver):
    """DNS labels may hold any octet (RFC 2181 §11); a PTR or MX name that is not ASCII
    used to raise UnicodeDecodeError out of the lookup that promises never to raise."""
    nameserver.add(dns.reverse_name("127.0.0.10"), "PTR", b"h\xe9st.example.test")
    nameserver.add("odd.test", "MX", 10, b"m\xe9x.odd.test")
    assert call(resolver.ptr, "127.0.0.10") == dns.Found(["h\ufffdst.example.test"])
    assert call(resolver.forward_confirmed_ptr, "127.0.0.10") == dns.NotFound(nxdomain=False)
    assert call(resolver.mx, "odd.test") == dns.Found([(10, "m\ufffdx.odd.test")])


def test_records_are_kept_for_their_ttl_and_a_failure_is_never_kept(nameserver, resolver):
    nameserver.add("spf.example.test", "TXT", "v=spf1 ", "-all")      # two strings, one record
    nameserver.add("mx.example.test", "MX", 10, "in.example.test")
    assert call(resolver.txt, "spf.example.test") == dns.Found([b"v=spf1 -all"])
    assert call(resolver.records, "mx.example.test", "MX") == dns.Found([(10, "in.example.test")])
    nameserver.resolver.records.clear()          # the zone changes; the answers' TTL is 60 s
    assert resolver.cached("SPF.example.test.", "TXT") == dns.Found([b"v=spf1 -all"])
    assert call(resolver.txt, "spf.example.test") == dns.Found([b"v=spf1 -all"])
    nameserver.fail("down.example.test")
    assert isinstance(call(resolver.txt, "down.example.test"), dns.TempFail)
    assert resolver.cached("down.example.test", "TXT") is None
    nameserver.resolver.servfail.clear()
    nameserver.add("down.example.test", "TXT", "back")
    assert call(resolver.txt, "down.example.test") == dns.Found([b"back"])
    assert call(resolver.txt, "nothing.example.test") == dns.NotFound(nxdomain=True)
    assert resolver.cached("nothing.example.test", "TXT") == dns.NotFound(nxdomain=True)
