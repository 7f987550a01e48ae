"""Stored messages understood once: the MIME tree, with byte offsets, and the envelope.

Why a package of its own: a message is analysed when it is stored, and every later FETCH
of a body section is then a slice of the stored bytes -- no parsing on the read path.
Before that, a message being received is kept in a spool (spool.py), on disk once it is
large, and the store reads it from there.  A leaf: it imports only the standard library,
so store, delivery and protocols can all use it.

Standards: RFC 5322, RFC 2045, RFC 2046, RFC 2231, RFC 3501 §6.4.5 and §7.4.2.
"""
