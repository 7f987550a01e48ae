"""Sieve (RFC 5228): the filters and vacation replies customers write, run at final delivery.

Why a package of its own: a script is parsed and checked (``sievelib``, the maintained
Python parser, behind ``scripts.py``), stored per account (``store/sieve_scripts.py``),
edited over ManageSieve (RFC 5804, ``protocols/managesieve.py``) and run when a message is
delivered (``interpreter.py``: ours, small, tested).  ``extensions.py`` is the one list of
what the interpreter runs: ManageSieve's CAPABILITY and the checks at upload read it, so a
script is never accepted that delivery could not run.
"""
