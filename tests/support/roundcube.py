"""A private Roundcube (Debian's ``roundcube-core``) for one test, and a browser-like client for it.

Why: webmail is a client nobody here wrote, and the one our customers meet first.  Roundcube
exercises IMAP the way a web page does (a fresh login per request, BODYSTRUCTURE then body
sections, GETQUOTAROOT, MOVE, APPEND to Sent) and submission with SMTP AUTH.  Driving it over
HTTP, through its own login form and request token, tests what a customer's browser would see.

How it runs without touching /etc: Debian's ``program/include/iniset.php`` reads the config
directory from ``$ROUNDCUBE_CONFIG_DIR``.  Each instance gets a temp directory holding its own
``config.inc.php`` (beside links to Debian's ``defaults.inc.php`` and ``mimetypes.php``), a
SQLite database made from Roundcube's own ``SQL/sqlite.initial.sql``, its logs and temp
files; ``php -S 127.0.0.1:0`` serves Debian's docroot ``/var/lib/roundcube/public_html``.
No global file is read for configuration or written.

The client is the standard library (urllib with a cookie jar, html.parser): it GETs the login
page, posts the form with its ``_token``, and then calls Roundcube's own URLs as its
JavaScript does (``_remote=1`` requests carry the token in ``X-Roundcube-Request``).

``start(..., extra=...)`` adds settings, e.g. the managesieve plugin's
(tests/support/roundcube_managesieve.py).
Security: loopback only; the des_key is random per instance.
"""

from __future__ import annotations

import html
import json
import os
import re
import secrets
import shutil
import sqlite3
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from html.parser import HTMLParser
from http.cookiejar import CookieJar
from pathlib import Path

DOCROOT = Path("/var/lib/roundcube/public_html")
DEBIAN_CONFIG = Path("/etc/roundcube")
SCHEMA = Path("/usr/share/roundcube/SQL/sqlite.initial.sql")
START_TIMEOUT = 15        # seconds for php -S to announce its port
HTTP_TIMEOUT = 30         # seconds for one page (Roundcube logs in to IMAP on every request)


def missing() -> str | None:
    """Why Roundcube cannot run here, or None when it can."""
    if shutil.which("php") is None:
        return "php is not installed (apt-get install php-cli)"
    for path in (DOCROOT / "index.php", DEBIAN_CONFIG / "defaults.inc.php", SCHEMA):
        if not path.exists():
            return f"{path} is missing (apt-get install roundcube-core roundcube-sqlite3)"
    probe = subprocess.run(["php", "-r", "echo extension_loaded('pdo_sqlite') ? 1 : 0;"],
                           capture_output=True, text=True)
    if probe.stdout.strip() != "1":
        return "PHP has no pdo_sqlite (apt-get install php-sqlite3)"
    return None


def php_literal(value) -> str:
    """A Python value as a PHP literal (strings single-quoted, lists and dicts as arrays)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(php_literal(v) for v in value) + "]"
    if isinstance(value, dict):
        return "[" + ", ".join(f"{php_literal(k)} => {php_literal(v)}" for k, v in value.items()) + "]"
    raise TypeError(f"no PHP literal for {value!r}")


def tls_options(ca: Path, peer_name: str) -> dict:
    """Stream options for PHP's ssl:// and tls://: verify our server against the test CA."""
    return {"ssl": {"verify_peer": True, "verify_peer_name": True, "allow_self_signed": False,
                    "cafile": str(ca), "peer_name": peer_name}}


def settings(directory: Path, *, imap_host: str, smtp_host: str, ca: Path, peer_name: str,
             debug: bool = True) -> dict:
    """The config.inc.php an ISP would write, pointed at a test server and a temp directory."""
    return {
        "db_dsnw": f"sqlite:///{directory / 'roundcube.db'}?mode=0600",
        "imap_host": imap_host,
        "imap_conn_options": tls_options(ca, peer_name),
        "smtp_host": smtp_host,
        "smtp_conn_options": tls_options(ca, peer_name),
        "smtp_user": "%u",
        "smtp_pass": "%p",
        "log_dir": str(directory / "logs"),
        "temp_dir": str(directory / "temp"),
        "imap_debug": debug,
        "smtp_debug": debug,
        "des_key": secrets.token_urlsafe(18)[:24],
        "product_name": "mailstack test webmail",
        "skin": "elastic",
        "plugins": [],
        # The special folders mailstack creates for every account (SPECIAL-USE names them too).
        "drafts_mbox": "Drafts", "sent_mbox": "Sent", "junk_mbox": "Junk", "trash_mbox": "Trash",
        "quota_zero_as_unlimited": True,
        "enable_spellcheck": False,
    }


def write_config(directory: Path, values: dict) -> Path:
    config_dir = directory / "config"
    config_dir.mkdir(parents=True, exist_ok=True)
    for name in ("defaults.inc.php", "mimetypes.php"):
        link = config_dir / name
        if not link.exists() and (DEBIAN_CONFIG / name).exists():
            link.symlink_to(DEBIAN_CONFIG / name)
    lines = ["<?php", "$config = [];"]
    lines += [f"$config[{php_literal(k)}] = {php_literal(v)};" for k, v in values.items()]
    (config_dir / "config.inc.php").write_text("\n".join(lines) + "\n")
    return config_dir


def create_database(path: Path) -> None:
    """Roundcube's own schema (it would do the same on first use of an empty file)."""
    with sqlite3.connect(path) as conn:
        conn.executescript(SCHEMA.read_text())
    path.chmod(0o600)


@dataclass
class Roundcube:
    url: str
    directory: Path
    process: subprocess.Popen

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log(self, name: str) -> str:
        """One of Roundcube's logs (``imap``, ``smtp``, ``errors``, ``userlogins``), or ''."""
        path = self.directory / "logs" / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def client(self) -> "Webmail":
        return Webmail(self.url)


def start(directory: Path, *, imap_host: str, smtp_host: str, ca: Path,
          peer_name: str, debug: bool = True, extra: dict | None = None) -> Roundcube:
    """Configure, initialise and serve a Roundcube; returns once it answers HTTP.
    ``extra`` adds or overrides settings (e.g. ``managesieve_settings(...)``)."""
    for sub in ("logs", "temp"):
        (directory / sub).mkdir(parents=True, exist_ok=True)
    values = settings(directory, imap_host=imap_host, smtp_host=smtp_host, ca=ca,
                      peer_name=peer_name, debug=debug)
    values.update(extra or {})
    config_dir = write_config(directory, values)
    create_database(directory / "roundcube.db")
    server_log = directory / "logs" / "php-server.log"
    env = dict(os.environ, ROUNDCUBE_CONFIG_DIR=str(config_dir))
    env.pop("RCUBE_CONFIG_PATH", None)
    with open(server_log, "wb") as out:
        process = subprocess.Popen(
            ["php", "-d", "display_errors=0", "-d", "log_errors=1", "-S", "127.0.0.1:0", "-t", str(DOCROOT)],
            cwd=str(DOCROOT), env=env, stdout=out, stderr=subprocess.STDOUT)
    roundcube = Roundcube(_announced_url(server_log, process), directory, process)
    try:
        _wait_for_login_page(roundcube.url)
    except Exception:
        roundcube.stop()
        raise
    return roundcube


def _announced_url(server_log: Path, process: subprocess.Popen) -> str:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        found = re.search(r"\((http://127\.0\.0\.1:\d+)\) started", server_log.read_text())
        if found:
            return found.group(1) + "/"
        if process.poll() is not None:
            raise RuntimeError(f"php -S exited: {server_log.read_text()}")
        time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"php -S did not start: {server_log.read_text()}")


def _wait_for_login_page(url: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if b'name="_token"' in response.read():
                    return
        except (urllib.error.URLError, ConnectionError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"Roundcube at {url} shows no login form")
        time.sleep(0.1)


# ---- the browser ---------------------------------------------------------------------------

@dataclass
class Form:
    attrs: dict
    fields: list = field(default_factory=list)      # [(name, value)] as a browser would post

    def values(self) -> dict:
        return dict(self.fields)

    def fill(self, values: dict) -> None:
        """Set fields as a user would: a list value replaces every ``name[]`` input of a
        list field; any other value replaces the field (or adds it, e.g. a checked box)."""
        for name, value in values.items():
            if isinstance(value, (list, tuple)):
                kept = [f for f in self.fields if f[0] != name + "[]"]
                self.fields = kept + [(name + "[]", v) for v in value]
            elif any(f[0] == name for f in self.fields):
                self.fields = [(n, value if n == name else v) for n, v in self.fields]
            else:
                self.fields.append((name, value))


class _Forms(HTMLParser):
    """Every form on a page with the values a browser would submit unchanged.

    As a browser, disabled fields are not submitted.  A ``<textarea data-type="list">``
    is what Roundcube's scripts (``smart_field_init`` in managesieve.js and the elastic
    skin) replace by one text input ``name[]`` per line, disabling the textarea itself.
    """

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []
        self._textarea = None
        self._select = None

    def handle_starttag(self, tag, attrs):
        a = {k: (v or "") for k, v in attrs}
        if tag == "form":
            self.forms.append(Form(a))
        elif not self.forms:
            return
        elif "disabled" in a:
            return
        elif tag == "input" and a.get("name") and a.get("type", "text") not in ("submit", "button", "file"):
            if a.get("type") not in ("checkbox", "radio") or "checked" in a:
                self.forms[-1].fields.append((a["name"], a.get("value", "")))
        elif tag == "textarea" and a.get("name"):
            self._textarea = [a["name"], "", a.get("data-type") == "list"]
        elif tag == "select" and a.get("name"):
            self._select = [a["name"], None, None]       # name, first, selected
        elif tag == "option" and self._select is not None:
            value = a.get("value", "")
            if self._select[1] is None:
                self._select[1] = value
            if "selected" in a:
                self._select[2] = value

    def handle_data(self, data):
        if self._textarea is not None:
            self._textarea[1] += data

    def handle_endtag(self, tag):
        if tag == "textarea" and self._textarea is not None:
            name, text, as_list = self._textarea
            if as_list:
                self.forms[-1].fields += [(name + "[]", line) for line in text.split("\n")]
            else:
                self.forms[-1].fields.append((name, text))
            self._textarea = None
        elif tag == "select" and self._select is not None:
            name, first, selected = self._select
            self.forms[-1].fields.append((name, selected if selected is not None else first or ""))
            self._select = None


def forms(page: str) -> list[Form]:
    parser = _Forms()
    parser.feed(page)
    return parser.forms


@dataclass
class Page:
    status: int
    url: str
    text: str

    def env(self) -> dict:
        """What the page hands Roundcube's JavaScript in ``rcmail.set_env({...})``."""
        merged = {}
        for found in re.finditer(r"rcmail\.set_env\((\{.*?\})\);\n", self.text):
            merged.update(json.loads(found.group(1)))
        return merged


class Webmail:
    """One browser session: cookies, the request token, Roundcube's URLs."""

    def __init__(self, base_url: str):
        self.base = base_url
        self.cookies = CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))
        self.token = None

    def url(self, **params) -> str:
        return self.base + "?" + urllib.parse.urlencode(params)

    def get(self, url: str, headers=None) -> Page:
        return self._open(urllib.request.Request(url, headers=headers or {}))

    def post(self, url: str, data: dict | list, headers=None) -> Page:
        body = urllib.parse.urlencode(data).encode()
        return self._open(urllib.request.Request(url, data=body, headers=headers or {}))

    def _open(self, request) -> Page:
        try:
            with self.opener.open(request, timeout=HTTP_TIMEOUT) as response:
                return Page(response.status, response.url, response.read().decode("utf-8", "replace"))
        except urllib.error.HTTPError as error:
            return Page(error.code, error.url, error.read().decode("utf-8", "replace"))

    # -- what a user does

    def login(self, user: str, password: str) -> Page:
        """GET the login page, POST its form with the request token; follow the redirect."""
        page = self.get(self.base)
        (form,) = [f for f in forms(page.text) if f.values().get("_task") == "login"]
        data = dict(form.values(), _user=user, _pass=password, _timezone="UTC")
        assert data.get("_token"), "the login form carries no request token"
        page = self.post(self.url(_task="login"), data)
        self.token = page.env().get("request_token")
        return page

    def remote(self, action: str, post: dict | list | None = None, task: str = "mail",
               **params) -> dict:
        """An AJAX call as app.js makes it: ``_remote=1``, the token in X-Roundcube-Request."""
        headers = {"X-Roundcube-Request": self.token, "X-Requested-With": "XMLHttpRequest"}
        if post is None:
            page = self.get(self.url(_task=task, _action=action, _remote=1, **params), headers)
        else:
            url = self.url(_task=task, _action=action, **params)
            post = list(post.items()) if isinstance(post, dict) else list(post)
            page = self.post(url, post + [("_remote", 1)], headers)
        assert page.status == 200, (page.status, page.text[:500])
        return json.loads(page.text)

    def list(self, mbox: str = "INBOX") -> "MessageList":
        return MessageList(self.remote("list", _mbox=mbox, _page=1, _refresh=1))

    def show(self, uid: int, mbox: str = "INBOX") -> Page:
        return self.get(self.url(_task="mail", _action="show", _uid=uid, _mbox=mbox))

    def move(self, uid: int, target: str, mbox: str = "INBOX") -> dict:
        return self.remote("move", {"_uid": uid, "_mbox": mbox, "_target_mbox": target})

    def send(self, to: str, subject: str, body: str) -> Page:
        """Open the compose page (it redirects to its compose id) and submit its form."""
        page = self.get(self.url(_task="mail", _action="compose"))
        env = page.env()
        compose_id = env["compose_id"]
        (form,) = [f for f in forms(page.text) if f.values().get("_id") == compose_id]
        data = dict(form.values(), _to=to, _subject=subject, _message=body, _is_html="0",
                    _draft="", _token=self.token)
        action = html.unescape(form.attrs.get("action") or self.url(_task="mail"))
        url = urllib.parse.urljoin(self.base, action)
        url += ("&" if "?" in url else "?") + urllib.parse.urlencode({"_unlock": "loading1", "_framed": 1})
        return self.post(url, data)


class MessageList:
    """The JSON answer to ``_action=list``: its rows and the commands it runs."""

    ROW = re.compile(r"this\.add_message_row\((\d+),(\{.*?\}),(\{.*?\}),(?:true|false)\);")
    QUOTA = re.compile(r"this\.set_quota\((\{.*?\})\);")

    def __init__(self, response: dict):
        self.response = response
        self.exec = response.get("exec", "")

    def rows(self) -> dict[int, dict]:
        """uid -> the columns (subject, fromto, date, size...) as Roundcube shows them."""
        return {int(m.group(1)): json.loads(m.group(2)) for m in self.ROW.finditer(self.exec)}

    def subjects(self) -> dict[str, int]:
        return {html.unescape(cols.get("subject", "")): uid for uid, cols in self.rows().items()}

    def quota(self) -> dict | None:
        found = self.QUOTA.search(self.exec)
        return json.loads(found.group(1)) if found else None
