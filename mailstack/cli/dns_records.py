"""``mailstack dns records DOMAIN``: the zone-file lines to publish for a hosted domain."""

from __future__ import annotations

from mailstack import addresses, clock as clocks
from mailstack.cli.common import CommandError, load_config, open_context, run
from mailstack.cli.policy import _moment
from mailstack.policy import client_settings
from mailstack.store import directory


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
    print(f"; mailstack: records for {domain} as of {at.isoformat(timespec='seconds')}")
    for line in client_settings.zone_records(config, domain, at, args.mx):
        print(line)


def _hosted(args, config, domain: str) -> bool:
    """In ``[domains] hosted`` (no database needed), else added with ``domain add``."""
    if domain in config.domains.hosted:
        return True
    return run(open_context(args), directory.is_hosted, domain)


def register(groups) -> None:
    group = groups.add_parser("dns", help="DNS records to publish").add_subparsers(
        dest="verb", required=True, metavar="VERB")
    p = group.add_parser("records", help="MX, SRV (RFC 6186/8314), autoconfig and "
                                         "autodiscover records for DOMAIN, as zone-file lines")
    p.add_argument("domain")
    p.add_argument("--at", help="the phase in force at this date (default: now)")
    p.add_argument("--mx", help="MX host name (default: client_setup.hostname or server.hostname)")
    p.set_defaults(func=records)
