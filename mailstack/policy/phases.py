"""What is in force at a moment: the migration phases an operator moves through by date.

Why one function: ``mailstack policy show --at DATE`` must say exactly what the servers
will do at that moment, so it asks the same gates the protocols ask (``TLSRequirement``,
``PopBeforeSMTP.sunset_passed``) with a clock fixed at that moment.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from mailstack import clock as clocks
from mailstack.policy.auth_window import PopBeforeSMTP
from mailstack.policy.mx import relays_for
from mailstack.policy.tls_required import TLSRequirement


@dataclass(frozen=True)
class Phases:
    at: datetime
    smtp_auth: bool
    pop_before_smtp: str        # "off" | "open" | "ended"
    window_seconds: int
    sunset: datetime | None
    tls_required: bool
    tls_cutover: datetime | None
    mx_relay: str

    def rows(self) -> list[dict]:
        pbs = {"off": "off", "open": f"on: {self.window_seconds} s window after a login",
               "ended": "ended: legacy clients get 530 5.7.0 with the help URL"}[self.pop_before_smtp]
        return [
            {"setting": "moment", "in force": self.at.isoformat()},
            {"setting": "smtp auth", "in force": "on" if self.smtp_auth else "off"},
            {"setting": "pop-before-smtp", "in force": pbs},
            {"setting": "pop-before-smtp sunset", "in force": _when(self.sunset)},
            {"setting": "password without tls", "in force":
                "refused on every protocol" if self.tls_required else "accepted and recorded"},
            {"setting": "tls cutover", "in force": _when(self.tls_cutover)},
            {"setting": "port 25 relays for", "in force": relays_for(self.mx_relay)},
        ]


def _when(moment: datetime | None) -> str:
    return moment.isoformat() if moment else "not set"


def in_force(config, at: datetime) -> Phases:
    clock = clocks.FixedClock(at)
    pbs = config.pop_before_smtp
    window = PopBeforeSMTP(None, clock, pbs, config.submission.help_url)
    state = "off" if not pbs.enabled else ("ended" if window.sunset_passed() else "open")
    return Phases(
        at=at, smtp_auth=config.submission.smtp_auth, pop_before_smtp=state,
        window_seconds=pbs.window, sunset=pbs.sunset,
        tls_required=not TLSRequirement(clock, config.auth.tls_cutover).allows_plaintext(),
        tls_cutover=config.auth.tls_cutover, mx_relay=config.smtp.mx_relay)
