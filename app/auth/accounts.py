"""The users file (``AUTH_USERS_FILE``): one user a line, ``name:hash:role``, read, checked and written atomically.

The hash is one of werkzeug's ``generate_password_hash`` (``scrypt:32768:8:1$salt$hex`` or
``pbkdf2:sha256:600000$salt$hex``); plain-text passwords are refused. Blank lines and lines starting with ``#``
are kept as they are. No error message ever quotes a line: a line may hold a hash, or a password typed by mistake.

Plain stdlib: :mod:`app.config` validates the file at start with it, :mod:`app.auth.users` (the command line) edits the
file with it, and :mod:`app.auth.gate` reloads it when it changes.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

VIEWER = "viewer"
EDITOR = "editor"
ROLES = (VIEWER, EDITOR)
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
NAME_RULE = "a user name is 1-64 letters, digits, '.', '_', '@' or '-', starting with a letter or a digit"
# werkzeug's formats: "scrypt:n:r:p$salt$hex" and "pbkdf2:hash:iterations$salt$hex" (salt: letters and digits)
PASSWORD_HASH = re.compile(r"(?:scrypt(?::[0-9]{1,9}){0,3}|pbkdf2:[a-z0-9_]{1,20}(?::[0-9]{1,9})?)\$[A-Za-z0-9]{1,64}"
                           r"\$[0-9a-f]{16,256}")
# a users file is a few lines per person; a larger one is a mistake (a wrong path), not a user list
MAX_FILE_BYTES = 1_000_000


class AccountsError(ValueError):
    """The users file cannot be used; the message names the line, never its content."""


@dataclass(frozen=True)
class Account:
    """One line of the users file.

    Attributes:
        name: the login name (1-64 letters, digits, ``.``, ``_``, ``@``, ``-``; starts with a letter or digit).
        role: ``viewer`` or ``editor``.
        password_hash: werkzeug's hash of the password (left out of ``repr``, so it never lands in a log).
    """

    name: str
    role: str
    password_hash: str = field(repr=False)

    def line(self) -> str:
        """The account as a line of the users file."""
        return f"{self.name}:{self.password_hash}:{self.role}"


def check_name(name: str) -> str:
    """``name`` if it is a valid login name, else :class:`AccountsError`."""
    if not NAME.fullmatch(name):
        raise AccountsError(NAME_RULE)
    return name


def check_role(role: str) -> str:
    """``role`` if it is one of :data:`ROLES`, else :class:`AccountsError` (which does not quote it)."""
    if role not in ROLES:
        raise AccountsError(f"the role must be one of {', '.join(ROLES)}")
    return role


def parse_line(line: str) -> Account | None:
    """The account of one line, or None for a blank or ``#`` comment line.

    The name is everything before the first ``:`` and the role everything after the last one: werkzeug's hashes
    hold colons themselves.

    Raises:
        AccountsError: not ``name:hash:role``, an invalid name or role, or a password that is not a werkzeug hash.
    """
    text = line.strip()
    if not text or text.startswith("#"):
        return None
    name, sep, rest = text.partition(":")
    password_hash, sep2, role = rest.rpartition(":")
    if not sep or not sep2:
        raise AccountsError("expected name:hash:role")
    check_name(name)
    check_role(role)
    if not PASSWORD_HASH.fullmatch(password_hash):
        raise AccountsError(f"the password of {name!r} is not a werkzeug password hash (plain text is refused); "
                            "set it with `python -m app.auth.users add`")
    return Account(name, role, password_hash)


def parse_accounts(text: str) -> list[Account]:
    """Every account of a users file's text, in file order.

    Raises:
        AccountsError: a bad line (named by its number) or a name that appears twice.
    """
    accounts: dict[str, Account] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        try:
            account = parse_line(line)
        except AccountsError as exc:
            raise AccountsError(f"line {number}: {exc}") from None
        if account is None:
            continue
        if account.name in accounts:
            raise AccountsError(f"line {number}: user {account.name!r} appears twice")
        accounts[account.name] = account
    return list(accounts.values())


def read_text(path: Path) -> str:
    """The users file's text (UTF-8), bounded in size.

    Raises:
        AccountsError: missing, unreadable, too large or not UTF-8.
    """
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise AccountsError(f"{path} does not exist; create it with `python -m app.auth.users add NAME`") from None
    except OSError as exc:
        raise AccountsError(f"cannot read {path}: {exc.strerror or type(exc).__name__}") from None
    if len(data) > MAX_FILE_BYTES:
        raise AccountsError(f"{path} is larger than {MAX_FILE_BYTES:,} bytes: not a users file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise AccountsError(f"{path} is not UTF-8 text") from None


def read_accounts(path: Path) -> list[Account]:
    """The accounts of the users file at ``path`` (see :func:`parse_accounts` and :func:`read_text`)."""
    return parse_accounts(read_text(path))


def write_text(path: Path, text: str) -> None:
    """Replace the users file atomically: a temporary file in the same folder, mode 0600, flushed, then renamed.

    A reader (a web worker reloading it) sees the old file or the new one, never half of one; the hashes are never
    readable by other users of the machine, not even for a moment.
    """
    path = Path(path)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(descriptor, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
