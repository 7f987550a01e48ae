"""``mailstack sieve`` (issue 19, item 4) on every database backend: the support desk's view of
a customer's filters, ``put`` checked as ManageSieve's PUTSCRIPT.  The cases run through
``cli.main.main`` in this process; one round runs as subprocesses (``tests/support/cli.py``).
"""

from __future__ import annotations

import json

import pytest

from mailstack.store import directory, sieve_scripts
from tests.support.cli import Cli

ANN = "ann@example.test"
FILTER = 'require "fileinto";\nif header :contains "subject" "school" { fileinto "School"; }\n'


@pytest.fixture
def account(cli, db) -> int:
    assert cli("domain", "add", "example.test").returncode == 0
    assert cli("account", "add", ANN, "--password-stdin", stdin="correct horse\n").returncode == 0
    return db.run_sync(directory.get_account, ANN).id


def ok(done) -> str:
    assert done.returncode == 0, done.stderr
    return done.stdout


def one_line_error(done, text: str) -> None:
    assert done.returncode == 1, (done.returncode, done.stdout, done.stderr)
    assert text in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "Traceback" not in done.stderr


def test_put_list_show_activate_deactivate_delete(cli_in_process, account, db, tmp_path):
    cli = cli_in_process
    path = tmp_path / "school.sieve"
    path.write_text(FILTER)
    assert "stored 'school'" in ok(cli("sieve", "put", ANN, "school", str(path)))
    ok(cli("sieve", "put", ANN, "vacation", "-", "--activate",
           stdin='require "vacation";\nvacation "away";\n'))
    rows = json.loads(ok(cli("sieve", "list", ANN, "--format", "json")))
    assert [(r["name"], r["active"], r["size"]) for r in rows] == [
        ("school", False, len(FILTER)), ("vacation", True, 37)]
    assert ok(cli("sieve", "show", ANN, "school")) == FILTER
    ok(cli("sieve", "activate", ANN, "school"))
    assert db.read_sync(sieve_scripts.active_script, account) == ("school", FILTER)
    one_line_error(cli("sieve", "delete", ANN, "school"), "is active: deactivate it first")
    ok(cli("sieve", "deactivate", ANN))
    assert db.read_sync(sieve_scripts.active_script, account) is None
    ok(cli("sieve", "delete", ANN, "school"))
    assert [s.name for s in db.read_sync(sieve_scripts.list_scripts, account)] == ["vacation"]


def test_put_refuses_what_putscript_refuses(cli_in_process, account, db, tmp_path):
    cli = cli_in_process
    one_line_error(cli("sieve", "put", ANN, "bad", "-", stdin='keep;\nif true {\n  keep\n}\n'),
                   "-: line 4: ")
    one_line_error(cli("sieve", "put", ANN, "copy", "-", stdin='require "date";\n'),
                   'line 1: unsupported extension "date"')
    one_line_error(cli("sieve", "put", ANN, "big", "-", stdin="#" * 70000 + "\n"),
                   "over [sieve] max_script_size (65536 octets)")
    one_line_error(cli("sieve", "put", ANN, "a\tb", "-", stdin="keep;\n"),
                   "not a valid script name")
    one_line_error(cli("sieve", "show", ANN, "nope"), "ann@example.test has no script 'nope'")
    one_line_error(cli("sieve", "list", "bob@example.test"), "no account bob@example.test")
    assert db.read_sync(sieve_scripts.list_scripts, account) == []


def test_max_scripts_from_the_configuration(cli_in_process, account, tmp_path):
    config = tmp_path / "limits.toml"
    config.write_text(cli_in_process.config.read_text() + "[sieve]\nmax_scripts = 1\n")
    cli = Cli(config, in_process=True)
    ok(cli("sieve", "put", ANN, "one", "-", stdin="keep;\n"))
    ok(cli("sieve", "put", ANN, "one", "-", stdin="discard;\n"))       # a replacement
    one_line_error(cli("sieve", "put", ANN, "two", "-", stdin="keep;\n"),
                   "has [sieve] max_scripts (1) scripts already")


def test_the_sieve_group_runs_as_an_operator_types_it(cli, account):
    ok(cli("sieve", "put", ANN, "main", "-", "--activate", stdin=FILTER))
    assert ok(cli("sieve", "list", ANN)).split("\n")[1].split()[:3] == ["main", "True",
                                                                       str(len(FILTER))]
