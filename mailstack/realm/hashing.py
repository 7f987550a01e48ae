"""Password hashing with passlib: argon2 for new hashes, legacy schemes still verified.

Why passlib (the libpass fork): it verifies every crypt(3) scheme an ISP's old
``/etc/shadow`` or Dovecot file may hold and reports when a hash should be replaced
(``verify_and_update``), so accounts migrate to argon2 as their owners log in.

Cost: argon2 is tuned to ~40 ms and one core on this class of machine (TWISTED-NOTES):
POP clients that poll every minute make hashing the login bottleneck, and the thread pool
that runs it is small so a login flood cannot starve mail I/O.

Security: hashes are never logged; bcrypt's 72-byte limit raises ValueError even on verify,
which we treat as a failed login, not a crash.
"""

from __future__ import annotations

from passlib.context import CryptContext

from mailstack.metrics import NO_METRICS
from mailstack.threads import WorkerPool

VERIFIABLE = ["argon2", "bcrypt_sha256", "bcrypt", "sha512_crypt", "sha256_crypt",
              "md5_crypt", "apr_md5_crypt", "ldap_salted_sha1", "ldap_sha1", "des_crypt"]


def make_context(default_scheme: str = "argon2") -> CryptContext:
    schemes = [default_scheme] + [s for s in VERIFIABLE if s != default_scheme]
    return CryptContext(
        schemes=schemes,
        default=default_scheme,
        deprecated=[s for s in schemes if s != default_scheme],
        argon2__memory_cost=19456, argon2__rounds=2, argon2__parallelism=1,
        bcrypt_sha256__rounds=12,
    )


class PasswordHasher:
    """Hash and verify; the ``*_async`` variants run in a pool of their own."""

    def __init__(self, context: CryptContext, *, reactor=None, threads: int = 2,
                 metrics=NO_METRICS):
        self.context = context
        self.metrics = metrics       # how long each hash and verification takes
        self.pool = WorkerPool("mailstack-hash", threads, reactor)

    def start(self) -> None:
        self.pool.start()

    def stop(self) -> None:
        self.pool.stop()

    def hash(self, password: str) -> str:
        if not password:
            raise ValueError("empty password")
        with self.metrics.hash_timer("hash"):
            return self.context.hash(password)

    def scheme_of(self, stored_hash: str) -> str | None:
        try:
            return self.context.identify(stored_hash)
        except (ValueError, TypeError):
            return None

    def is_legacy(self, stored_hash: str) -> bool:
        """True when the next successful login will replace this hash."""
        return self.scheme_of(stored_hash) != self.context.default_scheme()

    def verify(self, password: str, stored_hash: str) -> tuple[bool, str | None]:
        """(matches, replacement hash or None)."""
        try:
            with self.metrics.hash_timer("verify"):
                return self.context.verify_and_update(password, stored_hash)
        except (ValueError, TypeError):
            # Unknown or malformed hash, or a password bcrypt refuses (> 72 bytes).
            return False, None

    def verify_async(self, password: str, stored_hash: str):
        return self.pool.run(self.verify, password, stored_hash)

    def hash_async(self, password: str):
        return self.pool.run(self.hash, password)
