#!/usr/bin/env python3
"""The shared load generator, sending DKIM-signed mail: ``compare.sh``'s signed scenario.

Why: ``../shared/bench/loadgen.py`` sends unsigned mail, so it measures port 25's SPF and
DMARC checks but not DKIM (issue 17 measures signed mail).  This runs that same load
generator -- the same client, the same 16 messages of the asked size, the same figures --
with each message signed once, before the run, by an independent signer (Perl's
Mail::DKIM, ``tests/support/dkim_signers.py``, RSA-2048) with the key that
``benchmarks/setup.sh`` generated and published in the benchmarks' loopback DNS server.
Postfix+Dovecot get the very same signed messages (they do not verify them).

Usage: PYTHONPATH=. .venv/bin/python benchmarks/signed_load.py KEY.pem SELECTOR DOMAIN \
           LOADGEN.py smtp [loadgen arguments ...]
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from tests.support.dkim_signers import Key, sign


def main(key_path: str, selector: str, domain: str, loadgen_path: str, *argv: str) -> None:
    spec = importlib.util.spec_from_file_location("loadgen", loadgen_path)
    loadgen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loadgen)
    key = Key(domain, selector, Path(key_path), "rsa-sha256", "")
    unsigned = loadgen.make_message
    signed: dict = {}

    def make_message(size, i):
        if (size, i) not in signed:
            signed[(size, i)] = sign(unsigned(size, i), key)
        return signed[(size, i)]
    loadgen.make_message = make_message
    sys.argv = [loadgen_path, *argv]
    loadgen.main()


if __name__ == "__main__":
    main(*sys.argv[1:])
