"""``python -m app.auth.users``: add, remove and list the users of the users file (``AUTH_USERS_FILE``).

Examples::

    python -m app.auth.users add alice --role editor     # asks for the password twice, never takes it as an argument
    python -m app.auth.users add bob --role viewer --file /etc/explorer/users
    python -m app.auth.users add bob --role editor --replace   # a new password and/or role for bob
    python -m app.auth.users remove bob
    python -m app.auth.users list                        # names and roles, never hashes

The file holds ``name:hash:role`` lines (werkzeug's ``generate_password_hash``; see :mod:`app.auth.accounts`); it is
rewritten atomically (a temporary file, then a rename) with mode 0600, other lines and comments kept as they are. A
running server picks the change up at its next request. Exit status: 0 done, 1 refused (a user that exists or does
not, passwords that differ or are too short), 2 no file given or a file that is not a valid users file.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path

from werkzeug.security import generate_password_hash

from app.auth.accounts import (
    ROLES,
    VIEWER,
    Account,
    AccountsError,
    check_name,
    parse_accounts,
    parse_line,
    read_text,
    write_text,
)

MIN_PASSWORD_CHARS = 8


class Refused(Exception):
    """The change cannot be made (exit status 1)."""


def build_parser() -> argparse.ArgumentParser:
    """The command line: ``add NAME [--role R] [--replace]``, ``remove NAME``, ``list``, each with ``--file``."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--file", type=Path, default=argparse.SUPPRESS,
                        help="the users file (default: $AUTH_USERS_FILE)")
    parser = argparse.ArgumentParser(prog="python -m app.auth.users", description=__doc__.split("\n\n")[0],
                                     parents=[common])
    commands = parser.add_subparsers(dest="command", required=True)
    add = commands.add_parser("add", parents=[common], help="add a user (the password is asked for twice)")
    add.add_argument("name")
    add.add_argument("--role", choices=ROLES, default=VIEWER, help="viewer (default) or editor")
    add.add_argument("--replace", action="store_true", help="replace the password and role of an existing user")
    remove = commands.add_parser("remove", parents=[common], help="remove a user")
    remove.add_argument("name")
    commands.add_parser("list", parents=[common], help="list names and roles")
    return parser


def read_lines(path: Path) -> list[str]:
    """The users file's lines, checked as a whole first (a missing file is an empty one).

    Raises:
        AccountsError: the file is not a valid users file (the line is named, never shown).
    """
    if not path.exists():
        return []
    text = read_text(path)
    parse_accounts(text)
    return text.splitlines()


def ask_password(name: str, prompt=getpass.getpass) -> str:
    """The new password of ``name``, typed twice without echo.

    Raises:
        Refused: the two differ, or the password is shorter than :data:`MIN_PASSWORD_CHARS`.
    """
    password = prompt(f"Password for {name}: ")
    if len(password) < MIN_PASSWORD_CHARS:
        raise Refused(f"the password must have at least {MIN_PASSWORD_CHARS} characters")
    if prompt(f"Password for {name} again: ") != password:
        raise Refused("the passwords differ")
    return password


def add_user(lines: list[str], name: str, role: str, password: str, replace: bool = False) -> list[str]:
    """``lines`` with user ``name`` added (or, with ``replace``, its line replaced in place).

    Raises:
        Refused: ``name`` exists and not ``replace``.
    """
    line = Account(name, role, generate_password_hash(password)).line()
    found = [number for number, text in enumerate(lines) if (account := parse_line(text)) and account.name == name]
    if found and not replace:
        raise Refused(f"user {name!r} exists; use --replace to change their password or role")
    if not found:
        return [*lines, line]
    return [line if number == found[0] else text for number, text in enumerate(lines)]


def remove_user(lines: list[str], name: str) -> list[str]:
    """``lines`` without user ``name``'s line.

    Raises:
        Refused: no such user.
    """
    kept = [text for text in lines if not ((account := parse_line(text)) and account.name == name)]
    if len(kept) == len(lines):
        raise Refused(f"no user {name!r}")
    return kept


def main(argv: list[str] | None = None, prompt=getpass.getpass) -> int:
    """Run the command; returns the exit status."""
    args = build_parser().parse_args(argv)
    path = getattr(args, "file", None) or (Path(os.environ["AUTH_USERS_FILE"]) if os.environ.get("AUTH_USERS_FILE")
                                           else None)
    if path is None:
        print("no users file: give --file or set AUTH_USERS_FILE", file=sys.stderr)
        return 2
    try:
        lines = read_lines(path)
        if args.command == "list":
            for account in parse_accounts("\n".join(lines)):
                print(f"{account.name}\t{account.role}")
            return 0
        if args.command == "add":
            try:
                check_name(args.name)
            except AccountsError as exc:
                raise Refused(str(exc)) from None
            password = ask_password(args.name, prompt)
            write_text(path, "\n".join(add_user(lines, args.name, args.role, password, args.replace)) + "\n")
            print(f"saved {args.name} ({args.role}) in {path}")
        else:
            write_text(path, "\n".join(remove_user(lines, args.name)) + "\n")
            print(f"removed {args.name} from {path}")
    except AccountsError as exc:
        print(f"{path}: {exc}", file=sys.stderr)
        return 2
    except Refused as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
