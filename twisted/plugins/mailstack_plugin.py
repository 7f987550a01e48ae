"""``twistd -n mailstack --config FILE``: the same process as ``mailstack serve``, under twistd.

No ``__init__.py`` in ``twisted/`` or ``twisted/plugins/``: Twisted discovers plugins by
scanning every ``twisted/plugins`` directory on ``sys.path``.  Ports are bound in
``privilegedStartService`` (see ``service.ListenerService``), before ``-u/-g`` drop root.
"""

from twisted.application.service import ServiceMaker

mailstack = ServiceMaker(
    "mailstack", "mailstack.twistd", "ISP mail service: SMTP, POP3 and IMAP on one reactor",
    "mailstack")
