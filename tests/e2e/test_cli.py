"""The admin CLI, run as operators run it: a subprocess with a config file (end to end).

The tables of cases run the same ``main`` in the test process (``cli_in_process``,
``tests/support/cli.py``); what only a process shows -- exit codes of a bad configuration
or database, a password read from a pipe -- runs as a subprocess.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.support.cli import Cli


def test_operator_sets_up_a_domain_accounts_and_aliases(cli, cli_in_process):
    assert cli("domain", "add", "Example.TEST").returncode == 0
    done = cli("account", "add", "Ann@example.test", "--password-stdin",
               stdin="pw-ann-secret\n")
    assert done.returncode == 0, done.stderr
    assert "pw-ann-secret" not in done.stdout + done.stderr
    assert cli("alias", "add", "sales@example.test", "ann@example.test").returncode == 0
    accounts = json.loads(cli("account", "list", "--format", "json").stdout)
    assert [a["address"] for a in accounts] == ["ann@example.test"]
    cli = cli_in_process                    # the rest is the commands' logic, not the process
    aliases = json.loads(cli("alias", "list", "--format", "json").stdout)
    assert aliases == [{"alias": "sales@example.test", "target": "ann@example.test"}]
    shown = json.loads(cli("account", "show", "ann@example.test", "--format", "json").stdout)
    assert shown["hash_scheme"] == "argon2" and "$argon2" not in json.dumps(shown)
    assert cli("account", "disable", "ann@example.test").returncode == 0
    shown = json.loads(cli("account", "show", "ann@example.test", "--format", "json").stdout)
    assert shown["enabled"] is False
    assert cli("account", "delete", "ann@example.test", "--yes").returncode == 0
    assert json.loads(cli("account", "list", "--format", "json").stdout) == []


BAD_INPUT = [
    (("account", "add", "ann@nowhere.test", "--password-stdin"), "password\n", "not hosted"),
    (("account", "add", "ann@example.test", "--password-stdin"), "password\n", "already exists"),
    (("account", "add", "not an address", "--password-stdin"), "password\n", "not a valid address"),
    (("account", "add", "new@example.test", "--password-stdin"), "\n", "empty password"),
    (("account", "add", "new@example.test"), "", "--password-stdin"),
    (("domain", "add", "example.test"), None, "already exists"),
    (("domain", "add", "bad_domain!"), None, "not a valid domain"),
    (("alias", "add", "a@example.test", "x@example.test"), None, "not an account here"),
    (("alias", "add", "a@example.test", "x@[192.0.2.1]"), None, "not a valid address"),
    (("account", "delete", "ann@example.test"), None, "--yes"),
    (("account", "passwd", "ghost@example.test", "--password-stdin"), "password\n", "no account"),
    (("account", "add", "new@example.test", "--password-stdin"), "x\n", "min_password_length"),
    (("account", "passwd", "ann@example.test", "--password-stdin"), "1234567\n",
     "shorter than 8"),
    (("account", "quota", "ann@example.test", "--", "-5M"), None, "not a size"),
    (("account", "quota", "ann@example.test", "-1"), None, "not a size"),
    (("dns", "records", "nowhere.test"), None, "not hosted here"),
]


def test_bad_input_is_one_line_and_a_nonzero_exit_and_changes_nothing(cli_in_process):
    cli = cli_in_process
    cli("domain", "add", "example.test")
    cli("account", "add", "ann@example.test", "--password-stdin", stdin="password\n")
    before = cli("account", "list", "--format", "json").stdout
    for args, stdin, message in BAD_INPUT:
        done = cli(*args, stdin=stdin)
        assert done.returncode != 0, args
        assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1, args
        assert "Traceback" not in done.stderr
    assert cli("account", "list", "--format", "json").stdout == before
    assert json.loads(cli("domain", "list", "--format", "json").stdout) == [
        {"domain": "example.test", "accounts": 1}]


def test_hosted_domains_apply_before_the_first_start(db_url, tmp_path):
    """[domains] hosted reaches the store from any command, not only at ``serve``."""
    config = tmp_path / "hosted.toml"
    config.write_text(f'[database]\nurl = "{db_url}"\n[domains]\nhosted = ["example.test"]\n')
    done = subprocess.run([sys.executable, "-m", "mailstack", "--config", str(config), "account",
                           "add", "ann@example.test", "--password-stdin"], input="long enough\n",
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_what_an_operator_reads_back(cli_in_process):
    cli = cli_in_process
    cli("domain", "add", "example.test")
    cli("account", "add", "ann@example.test", "--password-stdin", stdin="password\n")
    cli("alias", "add", "sales@example.test", "ann@example.test")
    assert cli("account", "quota", "ann@example.test", "500M").returncode == 0
    shown = json.loads(cli("account", "show", "ann@example.test", "--format", "json").stdout)
    assert (shown["quota"], shown["sender_rule"], shown["aliases"]) == (
        500 * 1024 ** 2, "own", ["sales@example.test"])
    cli("account", "sender-rule", "ann@example.test", "any")
    cli("account", "quota", "ann@example.test", "none")
    table = cli("account", "show", "ann@example.test").stdout
    assert "quota:        unlimited" in table and "sender_rule:  any" in table
    assert "aliases:      sales@example.test" in table
    empty = cli("queue", "list")
    assert (empty.returncode, empty.stdout.strip()) == (0, "the queue is empty")
    assert json.loads(cli("queue", "list", "--format", "json").stdout) == []
    none = cli("rejections", "--ip", "192.0.2.1", "--format", "json")
    assert (none.returncode, json.loads(none.stdout)) == (0, [])
    assert cli("rejections", "--ip", "192.0.2.1").returncode == 1
    assert cli("dns", "records", "example.test").returncode == 0
    wl_help = cli("whitelist", "--help").stdout
    assert "list" in wl_help and "remove" in wl_help and "every whitelist entry" in wl_help
    version = cli("--version")
    assert version.returncode == 0 and version.stdout.startswith("mailstack ")


def _mailstack(*args, env=None):
    return subprocess.run([sys.executable, "-m", "mailstack", *args], capture_output=True,
                          text=True, timeout=60, env=env)


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
def test_an_in_memory_database_is_one_line_and_exit_3(tmp_path, url):
    config = tmp_path / "memory.toml"
    config.write_text(f'[database]\nurl = "{url}"\n')
    done = _mailstack("--config", str(config), "domain", "list")
    assert done.returncode == 3 and len(done.stderr.strip().splitlines()) == 1
    assert "database.url" in done.stderr and "in-memory" in done.stderr


def test_a_missing_config_names_both_ways_to_give_one(tmp_path):
    import os

    env = {k: v for k, v in os.environ.items() if k != "MAILSTACK_CONFIG"}
    done = _mailstack("--config", str(tmp_path / "absent.toml"), "domain", "list", env=env)
    assert done.returncode == 3
    assert "--config" in done.stderr and "$MAILSTACK_CONFIG" in done.stderr


def test_an_unreachable_database_names_where_and_why(tmp_path):
    config = tmp_path / "down.toml"
    config.write_text('[database]\nurl = "postgresql+psycopg://mail:s3cret@127.0.0.1:1/mail"\n')
    done = _mailstack("--config", str(config), "domain", "list")
    assert done.returncode == 4 and len(done.stderr.strip().splitlines()) == 1
    assert "127.0.0.1:1" in done.stderr and "s3cret" not in done.stderr
    assert "refused" in done.stderr.lower()


def test_password_is_never_accepted_on_the_command_line(cli):
    done = cli("account", "add", "ann@example.test", "--password", "secret")
    assert done.returncode == 2


def test_unknown_setting_stops_with_the_key_named(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text('[smtp]\nmax_size = 5\n')
    done = subprocess.run([sys.executable, "-m", "mailstack", "--config", str(config),
                           "domain", "list"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 3 and "smtp.max_size: unknown setting" in done.stderr
    config.write_text('[database]\ntreads = 5\n')
    done = _mailstack("--config", str(config), "domain", "list")
    assert "database.treads: unknown setting; did you mean 'threads'?" in done.stderr


def test_commands_refuse_an_unmigrated_database(tmp_path):
    config = tmp_path / "m.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{tmp_path}/new.db"\n')
    done = subprocess.run([sys.executable, "-m", "mailstack", "--config", str(config),
                           "domain", "list"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 4 and "mailstack db upgrade" in done.stderr


def test_policy_show_tells_what_is_in_force_at_each_phase(tmp_path):
    config = tmp_path / "phases.toml"
    config.write_text('[auth]\ntls_cutover = 2027-06-01T00:00:00Z\n'
                      '[pop_before_smtp]\nenabled = true\nwindow = 600\nsunset = 2027-03-01\n')

    cli = Cli(config, in_process=True)

    def show(at):
        shown = cli.ok("policy", "show", "--at", at, "--format", "json")
        return {row["setting"]: row["in force"] for row in json.loads(shown)}

    before = show("2027-01-15")
    assert before["pop-before-smtp"].startswith("on: 600 s")
    assert before["password without tls"] == "accepted and recorded"
    between = show("2027-03-01T00:00:00Z")
    assert between["pop-before-smtp"].startswith("ended")
    assert between["password without tls"] == "accepted and recorded"
    after = show("2027-06-01T02:00:00+02:00")   # the cutover instant, in another zone
    assert after["password without tls"] == "refused on every protocol"
    bad = Cli(config)("policy", "show", "--at", "next tuesday")
    assert bad.returncode == 2 and "--at" in bad.stderr
