"""The Sender Rewriting Scheme (mailstack/srs.py), held to Perl's Mail::SRS.

Mail::SRS (Debian's libmail-srs-perl, by the scheme's author) is the reference that
postsrsd and pysrs follow: an address it makes must reverse here and ours there, with the
same secret, for SRS0 and SRS1.  It reads the wall clock, so those tests use today.
"""

from __future__ import annotations

import subprocess
from datetime import datetime, timedelta, timezone

import pytest

from mailstack import addresses, clock as clocks
from mailstack.srs import SRS, SRSError, unwrap

SECRET = "a-long-random-test-secret"
NOW = datetime(2026, 12, 3, 12, 0, tzinfo=timezone.utc)
ours = SRS("fwd.example.test", [SECRET])

MAIL_SRS = r"""
use strict;
use Mail::SRS;
my ($verb, $secret, $address, $alias) = @ARGV;
my $srs = Mail::SRS->new(Secret => $secret, MaxAge => 21, HashLength => 4, HashMin => 4);
print $verb eq 'forward' ? $srs->forward($address, $alias) : $srs->reverse($address);
"""


def mail_srs(*args) -> str:
    done = subprocess.run(["perl", "-e", MAIL_SRS, *args], capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_srs0_round_trip_and_its_form():
    address = ours.forward("carol@far.test", NOW)
    local, _, domain = address.rpartition("@")
    tag, hash_, stamp, host, user = local.split("=")
    assert (tag, host, user, domain) == ("SRS0", "far.test", "carol", "fwd.example.test")
    assert len(hash_) == 4 and len(stamp) == 2
    assert ours.reverse(address, NOW) == "carol@far.test"
    assert ours.reverse(address.lower(), NOW + timedelta(days=21)) == "carol@far.test"


def test_the_null_sender_and_our_own_domain_are_not_rewritten():
    assert ours.forward("", NOW) == ""
    assert ours.forward("bounces@fwd.example.test", NOW) == "bounces@fwd.example.test"


def test_forged_expired_future_and_foreign_addresses_are_refused():
    address = ours.forward("carol@far.test", NOW)
    tag, hash_, rest = address.split("=", 2)
    for bad in (f"{tag}={'AAAA' if hash_ != 'AAAA' else 'BBBB'}={rest}",
                address.replace("=carol@", "=mallory@"),
                address.replace("@fwd.example.test", "@elsewhere.test"),
                "SRS0=abcd@fwd.example.test", "carol@fwd.example.test"):
        with pytest.raises(SRSError):
            ours.reverse(bad, NOW)
    with pytest.raises(SRSError, match="expired"):
        ours.reverse(address, NOW + timedelta(days=22))
    with pytest.raises(SRSError, match="expired"):
        ours.reverse(address, NOW - timedelta(days=1))
    other = SRS("fwd.example.test", ["another-secret-of-16+"])
    with pytest.raises(SRSError, match="hash"):
        other.reverse(address, NOW)


def test_an_old_secret_still_verifies_after_a_rotation():
    address = ours.forward("carol@far.test", NOW)
    rotated = SRS("fwd.example.test", ["the-new-secret-of-ours", SECRET])
    assert rotated.reverse(address, NOW) == "carol@far.test"
    assert rotated.forward("carol@far.test", NOW) != address


def test_another_forwarders_srs0_becomes_srs1_and_reverses_to_it():
    theirs = SRS("first.test", ["their-secret-is-long"]).forward("carol@far.test", NOW)
    address = ours.forward(theirs, NOW)
    assert address.startswith("SRS1=") and "=first.test==" in address
    assert ours.reverse(address, NOW) == theirs
    assert unwrap(address) == theirs and unwrap(theirs) == "carol@far.test"
    again = SRS("third.test", ["third-secret-is-long"]).forward(address, NOW)   # SRS1 stays SRS1
    assert again.startswith("SRS1=") and "=first.test==" in again


def test_a_long_srs_local_part_is_an_address_at_rcpt():
    address = ours.forward("a.very.long.local.part.of.someone@" + "sub." * 8 + "far.test", NOW)
    assert len(address.rpartition("@")[0]) > 64
    assert addresses.normalise(address) == address.lower()
    with pytest.raises(addresses.AddressError):
        addresses.normalise("x" * 65 + "@far.test")


def test_the_secret_is_never_in_the_repr():
    assert SECRET not in repr(ours)


def test_mail_srs_reverses_ours_and_we_reverse_mail_srs():
    today = clocks.now(clocks.WallClock())
    address = ours.forward("carol@far.test", today)
    assert mail_srs("reverse", SECRET, address) == "carol@far.test"
    theirs = mail_srs("forward", SECRET, "carol@far.test", "alias@fwd.example.test")
    assert theirs.startswith("SRS0=") and theirs.endswith("@fwd.example.test")
    assert ours.reverse(theirs, today) == "carol@far.test"
    assert ours.reverse(theirs.lower(), today) == "carol@far.test"      # case smashed


def test_mail_srs_and_we_agree_on_srs1():
    today = clocks.now(clocks.WallClock())
    first = SRS("first.test", ["their-secret-is-long"]).forward("carol@far.test", today)
    address = ours.forward(first, today)
    assert mail_srs("reverse", SECRET, address) == first
    theirs = mail_srs("forward", SECRET, first, "alias@fwd.example.test")
    assert theirs == address


def test_config_show_never_prints_the_srs_secrets():
    from mailstack import config
    from mailstack.cli.config_cmd import settings
    shown = settings(config.from_dict({"forwarding": {"srs_secrets": [SECRET, SECRET + "2"]}}))
    assert shown["forwarding.srs_secrets"] == "(2 set, not shown)"
    assert SECRET not in repr(shown)
    assert settings(config.from_dict({}))["forwarding.srs_secrets"] == ()
