"""``mailstack op25b export [--at DATE] [--format nft|plain]``: edge-router rules for OP25B."""

from __future__ import annotations

from mailstack import clock as clocks
from mailstack.cli.common import CommandError, load_config
from mailstack.cli.policy import _moment
from mailstack.policy.op25b import Phases


def export(args) -> None:
    config = load_config(args)
    settings = config.migration
    if not settings.customer_networks:
        raise CommandError("no customer networks are configured ([migration] customer_networks)")
    at = _moment(args.at) if args.at else clocks.now(clocks.WallClock())
    phase = Phases(settings).phase(at)
    nets = sorted(settings.customer_networks)
    if args.format == "plain":
        print(f"phase {phase}")
        print("\n".join(nets))
        return
    v4 = [n for n in nets if ":" not in n]
    mx = [h for h in settings.mx_hosts if ":" not in h]
    print(f"# mailstack OP25B for {at.isoformat(timespec='seconds')}: phase {phase}")
    print(f"add set inet filter mailstack_customers {{ type ipv4_addr; flags interval; "
          f"elements = {{ {', '.join(v4)} }} }}")
    elements = f" elements = {{ {', '.join(mx)} }}" if mx else ""
    print(f"add set inet filter mailstack_mx {{ type ipv4_addr;{elements} }}")
    if phase == "all":
        print("add rule inet filter forward ip saddr @mailstack_customers ip daddr != "
              "@mailstack_mx tcp dport 25 drop")
    else:
        print(f"# phase {phase}: no router rule yet; "
              + ("the MX refuses mail to the listed domains" if phase == "domains"
                 else "customers may still use port 25"))


def register(groups) -> None:
    group = groups.add_parser("op25b", help="outbound port 25 blocking").add_subparsers(
        dest="verb", required=True, metavar="VERB")
    p = group.add_parser("export", help="the edge-router rules for the phase in force")
    p.add_argument("--at", help="the phase at this date (default: now)")
    p.add_argument("--format", choices=["nft", "plain"], default="nft")
    p.set_defaults(func=export)
