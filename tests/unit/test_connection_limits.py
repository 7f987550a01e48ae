"""Connection admission (protocols/connection_limits.py): what is counted and how."""

from __future__ import annotations

import resource
import subprocess
import sys

from mailstack.config import from_dict
from mailstack.protocols.connection_limits import ConnectionLimits, Ticket, client_key


def limits(**raw) -> ConnectionLimits:
    return ConnectionLimits(from_dict({"limits": raw}).limits)


def test_an_ipv6_client_is_counted_by_its_64_and_a_mapped_ipv4_as_ipv4():
    assert client_key("2001:db8:1:2:aaaa::1") == client_key("2001:db8:1:2:bbbb::9")
    assert client_key("2001:db8:1:2::1") != client_key("2001:db8:1:3::1")
    assert client_key("::ffff:192.0.2.7") == client_key("192.0.2.7") == "192.0.2.7"


def test_the_per_address_limit_counts_each_protocol_and_address_apart():
    admit = limits(imap={"per_ip": 2}).admit
    assert isinstance(admit("imap", "2001:db8::1"), Ticket)
    assert isinstance(admit("imap", "2001:db8::2"), Ticket)
    assert admit("imap", "2001:db8::ffff") == "address"          # same /64
    assert isinstance(admit("imap", "2001:db8:0:1::1"), Ticket)   # the next /64
    assert isinstance(admit("pop3", "2001:db8::1"), Ticket)       # another protocol


def test_a_released_ticket_frees_its_place_once():
    counts = limits(smtp={"per_ip": 1})
    ticket = counts.admit("smtp", "192.0.2.1")
    assert counts.admit("smtp", "192.0.2.1") == "address"
    ticket.release()
    ticket.release()
    assert counts.open == 0 and not counts.by_client and not counts.by_protocol
    assert isinstance(counts.admit("smtp", "192.0.2.1"), Ticket)


def test_one_protocol_takes_at_most_its_share_of_the_total():
    counts = limits(connections=10)
    taken = [counts.admit("imap", f"192.0.2.{i}") for i in range(10)]
    assert sum(isinstance(t, Ticket) for t in taken) == 8 and taken[-1] == "protocol"
    assert isinstance(counts.admit("smtp", "192.0.2.1"), Ticket)
    assert isinstance(counts.admit("smtp", "192.0.2.2"), Ticket)
    assert counts.admit("smtp", "192.0.2.3") == "total"


def test_the_account_limit_is_per_protocol_and_given_back_with_the_ticket():
    counts = limits(imap={"per_user": 1})
    first, second = counts.admit("imap", "192.0.2.1"), counts.admit("imap", "192.0.2.2")
    assert first.add_user("ann@example.test")
    assert not second.add_user("ann@example.test")
    assert second.add_user("bob@example.test")
    assert counts.admit("pop3", "192.0.2.1").add_user("ann@example.test")
    first.release()
    third = counts.admit("imap", "192.0.2.3")
    assert third.add_user("ann@example.test")


def test_trusted_networks_have_no_per_address_limit_but_still_count_in_the_totals():
    counts = limits(connections=4, trusted_networks=["10.0.0.0/8"], imap={"per_ip": 1})
    assert all(isinstance(counts.admit("imap", "10.0.0.5"), Ticket) for _ in range(3))
    assert counts.admit("imap", "10.0.0.5") == "protocol"
    assert counts.admit("smtp", "192.0.2.1") != "address"


def test_the_total_is_lowered_to_what_the_descriptor_limit_allows():
    code = ("import resource; resource.setrlimit(resource.RLIMIT_NOFILE, (300, 300));"
            "from mailstack.protocols.connection_limits import descriptor_budget;"
            "print(descriptor_budget(5000), descriptor_budget(100))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["172", "100"]


def test_the_soft_descriptor_limit_is_raised_towards_the_total():
    code = ("import resource; h = resource.getrlimit(resource.RLIMIT_NOFILE)[1];"
            "resource.setrlimit(resource.RLIMIT_NOFILE, (256, h));"
            "from mailstack.protocols.connection_limits import descriptor_budget;"
            "print(descriptor_budget(1000), resource.getrlimit(resource.RLIMIT_NOFILE)[0])")
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    if hard == resource.RLIM_INFINITY or hard >= 1128:
        assert out.stdout.split() == ["1000", "1128"]
