"""Store failures as our own types, so protocol code never imports SQLAlchemy.

``StoreUnavailable`` is always temporary: the protocols answer it with 451 4.3.0,
``-ERR [SYS/TEMP]`` or ``NO [UNAVAILABLE]``, never a permanent error (ARCHITECTURE C7).
"""


class StoreError(Exception):
    """Base for every error the store raises on purpose."""


class StoreUnavailable(StoreError):
    """The database could not be reached or did not complete the unit of work."""


class NotFound(StoreError):
    """The named thing does not exist."""


class Conflict(StoreError):
    """The thing already exists, or a constraint forbids the change."""


class OverQuota(StoreError):
    """The change would take the account past its storage quota (IMAP ``NO [OVERQUOTA]``)."""
