"""``mailstack dns records DOMAIN``: the zone-file lines to publish for a hosted domain.

MX, SRV and autoconfig (``policy/client_settings.py``), then DKIM, SPF, DMARC, MTA-STS and
TLS-RPT (``policy/sender_records.py``): text a zone parser loads as it is.
"""

from __future__ import annotations

import sys

from mailstack import addresses, clock as clocks
from mailstack.cli.common import CommandError, load_config, open_context, run
from mailstack.cli.policy import _moment
from mailstack.policy import client_settings
from mailstack.store import directory, dkim_keys


def records(args) -> None:
    config = load_config(args)
    try:
        domain = addresses.parse_domain(args.domain)
    except addresses.AddressError:
        raise CommandError(f"{args.domain!r} is not a domain name") from None
    if not _hosted(args, config, domain):
        raise CommandError(f"{domain} is not hosted here: `mailstack domain add {domain}` "
                           "or [domains] hosted first")
    at = _moment(args.at) if args.at else clocks.now(clocks.WallClock())
    keys = _dkim_keys(args, domain)
    print(f"; mailstack: records for {domain} as of {at.isoformat(timespec='seconds')}")
    if isinstance(keys, str):
        print(f"; no DKIM records: {keys}")
        print(f"mailstack: warning: no DKIM records: {keys}", file=sys.stderr)
        keys = ()
    for line in client_settings.zone_records(config, domain, at, args.mx, keys):
        print(line)


def _dkim_keys(args, domain: str):
    """The domain's DKIM keys (without their private halves), or why they cannot be read:
    the other records need no database, so a missing one costs only the DKIM records."""
    try:
        return run(open_context(args), dkim_keys.listing, domain)
    except CommandError as e:
        return str(e)


def _hosted(args, config, domain: str) -> bool:
    """In ``[domains] hosted`` (no database needed), else added with ``domain add``."""
    if domain in config.domains.hosted:
        return True
    return run(open_context(args), directory.is_hosted, domain)


def register(groups) -> None:
    group = groups.add_parser("dns", help="DNS records to publish").add_subparsers(
        dest="verb", required=True, metavar="VERB")
    p = group.add_parser("records", help="MX, SRV (RFC 6186/8314), autoconfig, "
                                         "autodiscover, DKIM, SPF, DMARC, MTA-STS and TLS-RPT "
                                         "records for DOMAIN, as zone-file lines")
    p.add_argument("domain")
    p.add_argument("--at", help="the phase in force at this date (default: now)")
    p.add_argument("--mx", help="MX host name (default: client_setup.hostname or server.hostname)")
    p.set_defaults(func=records)
