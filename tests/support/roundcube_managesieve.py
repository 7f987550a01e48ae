"""Roundcube's managesieve plugin (Debian ``roundcube-plugins``) for the Roundcube tests:
its settings, and the browser's side of Settings > Filters and Settings > Out of Office.

Why: the plugin is how most customers edit Sieve: it speaks ManageSieve (RFC 5804) through
PEAR Net_Sieve and writes the script itself from its forms, so what mailstack stores and
runs at delivery is what *it* generates.  The pages are driven as managesieve.js drives
them (plugins/managesieve/managesieve.js, lib/Roundcube/rcube_sieve_engine.php and
rcube_sieve_vacation.php): the framed new-filter form is posted to ``./`` like a form
submit, a second action row comes from ``_act=actionadd`` (the + button), the Out of
Office form is posted serialised as an AJAX call; every request carries the request token.
Security: loopback only; the connection to ManageSieve is verified against the test CA.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from pathlib import Path

from tests.support.roundcube import Form, Page, Webmail, forms, tls_options

PLUGIN = Path("/usr/share/roundcube/plugins/managesieve/managesieve.php")


def missing() -> str | None:
    """Why the plugin cannot run here, or None when it can (with roundcube.missing())."""
    return None if PLUGIN.exists() else "the managesieve plugin is missing " \
        "(apt-get install roundcube-plugins)"


def managesieve_settings(host: str, *, ca: Path, peer_name: str, vacation: int = 1,
                         debug: bool = True) -> dict:
    """The plugin pointed at our listener: ``tls://host:port`` is STARTTLS
    (rcube_sieve_engine::connect), verified against the test CA like IMAP and SMTP.  The
    raw editor is off: customers edit through the forms.  ``vacation`` 1 adds Out of Office
    beside Filters (config.inc.php.dist).  ``managesieve_debug`` logs the whole
    conversation to ``logs/sieve.log``."""
    return {
        "plugins": ["managesieve"],
        "managesieve_host": host,
        "managesieve_conn_options": tls_options(ca, peer_name),
        "managesieve_auth_type": None,          # Net_Sieve picks from SASL after STARTTLS
        "managesieve_script_name": "roundcube",
        "managesieve_default": None,            # Debian's default names a Dovecot file
        "managesieve_mbox_encoding": "UTF-8",   # RFC 5228 §2.7.2: mailbox names are UTF-8
        "managesieve_vacation": vacation,
        "managesieve_raw_editor": False,
        "managesieve_debug": debug,
    }


class SieveWebmail(Webmail):
    """A logged-in browser that also visits the plugin's pages."""

    def filters(self) -> Page:
        """Settings > Filters: the plugin logs in to ManageSieve, lists the scripts and
        creates and activates ``managesieve_script_name`` when the account has none."""
        return self.get(self.url(_task="settings", _action="plugin.managesieve"))

    def create_filter(self, fields: dict, more_actions: list[dict] = ()) -> Page:
        """Create, fill the framed form, add a row per ``more_actions`` with the + button,
        Save.  ``fields`` are named as in the form (``_action_type[0]``); ``more_actions``
        without the row's index (``{"_action_type": "stop"}``)."""
        page = self.get(self.url(_task="settings", _action="plugin.managesieve-action",
                                 _framed=1, _nav="hide"))
        form = one_form(page, "filterform")
        form.fill(fields)
        for action in more_actions:
            form.fields += self._action_row(action)
        return self.post(urllib.parse.urljoin(page.url, form.attrs.get("action") or "./"),
                         form.fields)

    def _action_row(self, values: dict) -> list:
        """managesieve_actionadd: the server renders the row, the browser inserts it."""
        answer = self.remote("plugin.managesieve-action", {"_act": "actionadd", "_aid": 0},
                             task="settings")
        found = re.search(r"this\.managesieve_actionfill\((.*)\);\n", answer.get("exec", ""))
        assert found, answer
        content, row_id, _ = json.loads("[" + found.group(1) + "]")
        (row,) = forms("<form>" + content + "</form>")
        row.fill({f"{name}[{row_id}]": value for name, value in values.items()})
        return row.fields

    def vacation_form(self) -> Form:
        """Settings > Out of Office: the form as the plugin fills it from the stored script."""
        page = self.get(self.url(_task="settings", _action="plugin.managesieve-vacation"))
        return one_form(page, "vacationform")

    def set_vacation(self, fields: dict) -> dict:
        """Fill the Out of Office form; Save posts it serialised (managesieve_save)."""
        form = self.vacation_form()
        form.fill(fields)
        return self.remote("plugin.managesieve-vacation", form.fields, task="settings")


def one_form(page: Page, name: str) -> Form:
    """The page's one form with this id or name."""
    found = [f for f in forms(page.text) if name in (f.attrs.get("id"), f.attrs.get("name"))]
    assert len(found) == 1, (page.status, page.url, page.text[-3000:])
    return found[0]
