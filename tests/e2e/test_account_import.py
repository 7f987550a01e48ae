"""Old accounts come along with their hashes, log in with their old passwords, and come out
rehashed with argon2."""

from __future__ import annotations

import poplib
import ssl

import pytest
from passlib.hash import apr_md5_crypt, bcrypt, des_crypt, md5_crypt, sha256_crypt, sha512_crypt

from mailstack.store import directory

pytestmark = pytest.mark.e2e
OLD = {"des": (des_crypt, "des-pw7"), "md5": (md5_crypt, "md5-pw"), "s256": (sha256_crypt, "s256-pw"),
       "s512": (sha512_crypt, "s512-pw"), "bf": (bcrypt, "bf-pw"), "apr": (apr_md5_crypt, "apr-pw")}


def test_dovecot_passwd_file_imports_and_old_passwords_work_then_get_rehashed(cli, make_server, certs):
    lines = ["# exported from the old server",
             f"des@old.test:{{CRYPT}}{des_crypt.hash('des-pw7')}:1000:1000::/home/des::",
             f"md5@old.test:{{MD5-CRYPT}}{md5_crypt.hash('md5-pw')}:1000:1000::/home/md5::",
             f"s256@old.test:{{SHA256-CRYPT}}{sha256_crypt.hash('s256-pw')}::::::",
             f"s512@old.test:{{SHA512-CRYPT}}{sha512_crypt.hash('s512-pw')}",
             f"bf@old.test:{{BLF-CRYPT}}{bcrypt.hash('bf-pw')}",
             "plain@old.test:{PLAIN}plain-pw",
             "broken line without a colon",
             "weird@old.test:{RSA-MAGIC}xyz"]
    done = cli("account", "import", "-", "--format", "dovecot", stdin="\n".join(lines) + "\n")
    assert done.returncode == 0, done.stderr
    assert "imported 6," in done.stdout and "bad lines 2" in done.stdout
    assert "line 8:" in done.stderr and "line 9:" in done.stderr
    assert "5 legacy hash(es)" in done.stdout
    again = cli("account", "import", "-", "--format", "dovecot", stdin="\n".join(lines[:6]) + "\n")
    assert "imported 0, unchanged 5" in again.stdout            # idempotent (PLAIN rehashed)
    server = make_server(listeners=[{"name": "pop3s", "protocol": "pop3", "port": 0, "tls": "implicit"}],
                         domains={"hosted": ["old.test"]})
    context = ssl.create_default_context(cafile=str(certs.ca))
    for user, password in [("des", "des-pw7"), ("md5", "md5-pw"), ("s256", "s256-pw"),
                           ("s512", "s512-pw"), ("bf", "bf-pw"), ("plain", "plain-pw")]:
        client = poplib.POP3_SSL("127.0.0.1", server.port("pop3s"), context=context, timeout=10)
        client.user(f"{user}@old.test")
        client.pass_(password)
        client.quit()
        account = server.db(directory.get_account, f"{user}@old.test")
        assert account.password_hash.startswith("$argon2id$"), user


def test_htpasswd_and_csv_with_aliases_and_strict_mode(cli):
    ht = f"ann:{apr_md5_crypt.hash('ann-pw')}\nbob:{bcrypt.hash('bob-pw')}\n"
    done = cli("account", "import", "-", "--format", "htpasswd", "--domain", "ht.test", stdin=ht)
    assert done.returncode == 0 and "imported 2," in done.stdout, done.stderr
    csv_text = ("address,password_hash,aliases\n"
                f"carol@csv.test,{sha512_crypt.hash('c-pw')},sales@csv.test info@csv.test\n"
                "dave@csv.test,,\n")
    strict = cli("account", "import", "-", "--format", "csv", "--aliases", "--strict", stdin=csv_text)
    assert strict.returncode == 1 and "nothing imported" in strict.stderr
    assert "carol" not in cli("account", "list").stdout
    done = cli("account", "import", "-", "--format", "csv", "--aliases", stdin=csv_text)
    assert "imported 1," in done.stdout and "aliases created 2" in done.stdout
    assert "sales@csv.test" in cli("alias", "list").stdout
