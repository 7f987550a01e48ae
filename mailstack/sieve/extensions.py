"""The Sieve extensions mailstack runs: the one list ManageSieve advertises and the checks
at upload accept.

RFC 5804 §1.7: SIEVE capability lists the extensions the server supports; a script that
``require``\\ s anything else is refused by PUTSCRIPT/CHECKSCRIPT, so what a customer
stores is always something the interpreter (``interpreter.py``) can run.

- ``fileinto`` (RFC 5228 §4.1), ``envelope`` (§5.4), ``reject``/``ereject`` (RFC 5429),
  ``body`` (RFC 5173), ``vacation`` (RFC 5230), ``imap4flags`` (RFC 5232), ``mailbox``
  (RFC 5490: ``fileinto :create``, ``mailboxexists``), ``copy`` (RFC 3894: ``:copy`` on
  fileinto and redirect), and the comparators every Sieve implementation has (RFC 5228
  §2.7.3).

tests/unit/test_sieve_extensions.py keeps this list and the interpreter in step: every
extension here has a script that exercises it, and every command or tagged argument the
interpreter handles beyond the base language belongs to one of them.
"""

SUPPORTED = ("fileinto", "reject", "ereject", "envelope", "body", "vacation", "imap4flags",
             "mailbox", "copy", "comparator-i;ascii-casemap", "comparator-i;octet")
