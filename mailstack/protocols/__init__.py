"""One module per front end.  Each listener's module (``smtp``, ``submission``, ``pop3``,
``imap``, ``http``) exposes ``build_factory(parts, listener)`` and
``register_avatars(parts)``, which ``service.py`` calls; the other modules here are the
pieces those sessions are made of (two of which ``service.py`` builds once for all of
them: ``connection_limits`` and the POP3 maildrop locks of ``pop3_lease``)."""
