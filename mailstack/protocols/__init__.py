"""One module per front end.  Each listener's module (``smtp``, ``submission``, ``pop3``,
``imap``, ``http``) has a factory that ``service.py`` builds with exactly what its sessions
use, and a ``register_avatars`` that tells the shared realm what a login of that protocol
yields (``smtp`` and ``submission`` still take one adapter object until their policy is
rewritten: see ``service._SMTPAdapter``).  The other modules here are the pieces those
sessions are made of (two of which ``service.py`` builds once for all of them:
``connection_limits`` and the POP3 maildrop locks of ``pop3_lease``)."""
