"""``mailstack spam status``: does rspamd answer, what has it learned, what waits to learn.

Why one command: when customers say "the filter does not learn", the desk needs the three
places a learn passes through side by side -- rspamd's normal worker (``/ping``: up, and
its version from the ``Server`` field), its controller (``/stat``: messages learned since
its start, and the bayes statfiles' ``BAYES_SPAM``/``BAYES_HAM`` learn counts, which rspamd
refreshes from redis every half minute or so) and our learn queue (``store/spam_learning.py``:
learned, pending, refused, too large, failed, and the last errors with their time).

Blocking ``urllib`` with a short timeout: this is the CLI process, not the reactor.
Exit code 1 when rspamd's worker or controller does not answer (for a monitoring check).
Security: the controller password is sent only in the ``Password`` request header and
never printed; only numbers and rspamd's version are taken from its answers.
"""

from __future__ import annotations

import json
import re
import urllib.request

from mailstack.cli.common import CommandError, open_context, run
from mailstack.store import spam_learning as queue

TIMEOUT = 5.0
MAX_ANSWER = 256 * 1024


def _get(url: str, password: str = "") -> tuple[bytes, dict]:
    request = urllib.request.Request(url, headers={"Password": password} if password else {})
    with urllib.request.urlopen(request, timeout=TIMEOUT) as answer:
        return answer.read(MAX_ANSWER), dict(answer.headers)


def worker_facts(url: str) -> dict:
    try:
        body, headers = _get(url.rstrip("/") + "/ping")
    except OSError as e:
        return {"answers": False, "error": _reason(e)}
    version = re.sub(r"^rspamd/", "", headers.get("Server", ""))
    return {"answers": body.strip() == b"pong", "version": version[:40]}


def controller_facts(url: str, password: str) -> dict:
    try:
        body, _ = _get(url.rstrip("/") + "/stat", password)
        stat = json.loads(body)
    except (OSError, ValueError) as e:
        return {"answers": False, "error": _reason(e)}
    statfiles = {str(f.get("symbol")): _int(f.get("revision"))
                 for f in stat.get("statfiles", []) if isinstance(f, dict)}
    return {"answers": True, "version": str(stat.get("version", ""))[:40],
            "learned": _int(stat.get("learned")), "statfiles": statfiles}


def queue_facts(ctx) -> dict:
    counts, problems = run(ctx, queue.summary)

    def count(status, direction=None):
        return sum(n for (s, d), n in counts.items()
                   if s == status and direction in (None, d))
    return {"learned_spam": count(queue.LEARNED, queue.SPAM),
            "learned_ham": count(queue.LEARNED, queue.HAM),
            "pending": count(queue.PENDING) + count(queue.LEARNING),
            "refused": count(queue.REFUSED), "too_large": count(queue.TOO_LARGE),
            "failed": count(queue.FAILED),
            "last_errors": [{"at": p.at.isoformat(timespec="seconds"), "learn": p.direction,
                             "status": p.status, "attempts": p.attempts, "error": p.error}
                            for p in problems]}


def status(args):
    ctx = open_context(args)
    settings = ctx.config.spam
    facts = {"enabled": settings.enabled, "learning": settings.learning,
             "rspamd": {"url": settings.url, **worker_facts(settings.url)},
             "controller": {"url": settings.controller_url,
                            **controller_facts(settings.controller_url,
                                               settings.controller_password)},
             "queue": queue_facts(ctx)}
    if args.format == "json":
        print(json.dumps(facts, indent=2))
    else:
        print("\n".join(_lines(facts)))
    down = [name for name in ("rspamd", "controller") if not facts[name]["answers"]]
    if down:
        raise CommandError(f"{' and '.join(down)} not answering")


def _lines(facts: dict) -> list[str]:
    worker, control, waiting = facts["rspamd"], facts["controller"], facts["queue"]
    lines = [f"scanning: {'on' if facts['enabled'] else 'off'}; "
             f"learning: {'on' if facts['enabled'] and facts['learning'] else 'off'}"]
    lines.append(f"rspamd {worker['url']}: " + (
        f"answers, version {worker['version'] or 'unknown'}" if worker["answers"]
        else f"NOT ANSWERING ({worker.get('error', 'no pong')})"))
    if control["answers"]:
        files = ", ".join(f"{symbol} learned {n}" for symbol, n in control["statfiles"].items())
        lines.append(f"controller {control['url']}: answers; learned {control['learned']} "
                     f"since its start; {files or 'no statfiles (no redis?)'}")
    else:
        lines.append(f"controller {control['url']}: NOT ANSWERING ({control['error']})")
    lines.append(f"learn queue: learned spam {waiting['learned_spam']}, ham "
                 f"{waiting['learned_ham']}; pending {waiting['pending']}; refused "
                 f"{waiting['refused']}; too large {waiting['too_large']}; "
                 f"failed {waiting['failed']}")
    for p in waiting["last_errors"]:
        lines.append(f"  {p['at']} {p['learn']} {p['status']} after {p['attempts']} "
                     f"attempt(s): {p['error']}")
    return lines


def _reason(error: Exception) -> str:
    reason = getattr(error, "reason", None) or getattr(error, "code", None) or error
    return re.sub(r"[^\x20-\x7e]", "", str(reason))[:120]


def _int(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def register(groups) -> None:
    group = groups.add_parser("spam", help="rspamd: scanning and learning").add_subparsers(
        dest="verb", required=True, metavar="VERB")
    p = group.add_parser("status", help="whether rspamd answers, what it learned, what waits")
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.set_defaults(func=status)
