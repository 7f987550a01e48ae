"""The Received header (RFC 5321 §4.4) carries only printable text of what the client or
its DNS chose, so neither can add header lines to the stored message."""

from datetime import datetime, timezone

from mailstack.delivery.routing import TraceFacts, received_header

AT = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


def trace(helo="client.test", name="host5.example.test"):
    return TraceFacts(helo=helo, client_ip="127.0.0.5", client_name=name,
                      hostname="mx.example.test", protocol="ESMTPS", queue_id="Q1",
                      recipient="alice@example.test")


def test_received_header_names_the_hop():
    header = received_header(trace(), AT)
    assert header.startswith(b"Received: from client.test (host5.example.test [127.0.0.5])\r\n"
                             b"\tby mx.example.test (mailstack) with ESMTPS id Q1\r\n")
    assert header.endswith(b"\tfor <alice@example.test>; Wed, 01 May 2024 12:00:00 +0000\r\n")


def test_a_ptr_name_or_helo_with_crlf_adds_no_header_line():
    # DNS labels may hold any octet (RFC 2181 §11): a forward-confirmed PTR name too.
    header = received_header(trace(helo="a\r\nX-Evil: 1", name="b\r\nX-Spoofed: yes"), AT)
    lines = header.split(b"\r\n")
    assert all(line.startswith((b"Received:", b"\t")) for line in lines if line)
    assert b"X-Spoofed" in lines[0] and b"X-Evil" in lines[0]
