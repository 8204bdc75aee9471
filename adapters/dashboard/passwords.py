"""Dashboard users and their password hashes (PBKDF2-HMAC-SHA256 from hashlib: no new dependency).

A user entry is ``name:role:hash``; the hash is ``pbkdf2_sha256$<iterations>$<salt>$<digest>`` (salt and
digest in unpadded URL-safe base64), the layout Django uses, so an administrator recognises it. Make one
with ``python -m adapters.dashboard.passwords NAME ROLE`` (the password is asked twice, never echoed).
Roles, each with the rights of the ones before it: viewer (reads), operator (acknowledges, resolves, retries,
pauses, reprocesses, sees raw message content), admin.
"""
from __future__ import annotations

import base64
import functools
import getpass
import hashlib
import hmac
import re
import secrets
import sys
from dataclasses import dataclass, field

ROLES = ("viewer", "operator", "admin")
ALGORITHM = "pbkdf2_sha256"
DEFAULT_ITERATIONS = 600_000  # OWASP's figure for PBKDF2-HMAC-SHA256
MIN_ITERATIONS = 1_000
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,99}$")


@dataclass(frozen=True)
class User:
    name: str
    role: str
    password_hash: str = field(repr=False)

    def may(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)


def hash_password(password: str, iterations: int = DEFAULT_ITERATIONS, salt: bytes | None = None) -> str:
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return f"{ALGORITHM}${iterations}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, encoded: str) -> bool:
    """True when ``password`` matches; False for any malformed hash (never raises on input)."""
    try:
        algorithm, iterations, salt, digest = encoded.split("$")
        rounds = int(iterations)
        expected = _unb64(digest)
        salt_bytes = _unb64(salt)
    except ValueError:
        return False
    if algorithm != ALGORITHM or rounds < MIN_ITERATIONS:
        return False
    found = hashlib.pbkdf2_hmac("sha256", password.encode(), salt_bytes, rounds)
    return hmac.compare_digest(found, expected)


@functools.cache
def _decoy() -> str:
    """Checked against when the name is unknown, so a wrong name costs as long as a wrong password."""
    return hash_password(secrets.token_hex(8))


def check_credentials(users: dict[str, User], name: str, password: str) -> User | None:
    user = users.get(name)
    matched = verify_password(password, user.password_hash if user else _decoy())
    return user if user is not None and matched else None


def parse_users(text: str, source: str) -> dict[str, User]:
    """Entries separated by newlines or commas; blank lines and ``#`` comments skipped. Errors name the
    entry by its position in ``source``, never quote it (it holds a hash)."""
    users: dict[str, User] = {}
    entries = [line.split("#", 1)[0].strip() for chunk in text.splitlines() for line in chunk.split(",")]
    for number, entry in enumerate(entries, start=1):
        if not entry:
            continue
        name, _, rest = entry.partition(":")
        role, _, encoded = rest.partition(":")
        if not _NAME.match(name) or role not in ROLES or not encoded.startswith(f"{ALGORITHM}$"):
            raise ValueError(f"{source} entry {number} is not name:role:pbkdf2_sha256$... "
                             f"(roles: {', '.join(ROLES)})")
        if encoded.count("$") != 3:
            raise ValueError(f"{source} entry {number}: the hash is not pbkdf2_sha256$iterations$salt$digest")
        if name in users:
            raise ValueError(f"{source} names the user {name!r} twice")
        users[name] = User(name, role, encoded)
    return users


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError) as error:
        raise ValueError("not base64") from error


def main(argv: list[str] | None = None) -> int:
    """Print one user entry for VITALS_DASHBOARD_USERS (or its file)."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[1] not in ROLES or not _NAME.match(args[0]):
        print(f"usage: python -m adapters.dashboard.passwords NAME ROLE   (ROLE: {', '.join(ROLES)})",
              file=sys.stderr)
        return 2
    password = getpass.getpass("Password: ")
    if len(password) < 12 or password != getpass.getpass("Again: "):
        print("the passwords differ or are shorter than 12 characters", file=sys.stderr)
        return 1
    print(f"{args[0]}:{args[1]}:{hash_password(password)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
