"""Login and roles, owned by this app: one ``before_request`` that runs first and decides from the headers alone.

- With ``AUTH_USERS`` or ``AUTH_USERS_FILE`` set, every route but ``GET /healthz`` needs valid HTTP Basic
  credentials: pages, ``/api/*``, ``/_dash-layout``, ``/_dash-dependencies``, ``/_dash-update-component``,
  assets and component suites. Anything else is a 401 with ``WWW-Authenticate``, answered before the request's body
  is read. No body can talk its way past it: unlike dash-auth's ``public_routes``, no input value is ever looked at
  (dash-auth let a callback through when an input named ``pathname`` carried a public route, and Dash matches
  inputs by position, so any callback could be reached that way).
- A malformed ``Authorization`` header (another scheme, bad base64, no colon, not UTF-8, lowercase ``basic``)
  is a 401, never a 500: :func:`basic_credentials` returns None for anything it cannot read.
- Roles: ``viewer`` explores; ``editor`` may also write (train, stop, change the probe, and whatever else changes
  state). A write is any request with a method other than GET/HEAD/OPTIONS, except Dash callbacks, which are all
  POSTs: a callback is a write when one of its outputs is in ``write_outputs``. Only for users who may not write is
  a callback's body read, after they authenticated and bounded by ``MAX_CONTENT_LENGTH`` (413 beyond it): its
  ``output`` field is the key Dash looks the callback up by, so the callback that would run is the callback that
  is judged. Writes by viewers, and by everyone when ``READ_ONLY`` is set, get 403. A few POSTs are view-level
  actions, not writes (:data:`VIEW_LEVEL_POSTS`: drawing or uploading your own digit to look at).
- Without a login, writes are everyone's, which is fine on a loopback ``HOST`` only: served on any other address
  (``HOST=0.0.0.0``, a container) they get 403 too, unless ``ALLOW_ANONYMOUS_WRITES=1`` opts in
  (:attr:`~app.config.Settings.anonymous_writes_refused`). Judged like a viewer's writes, from the settings the
  operator chose, never from the request's ``Host`` header.
- Passwords are checked with werkzeug's ``check_password_hash`` (its comparison is ``hmac.compare_digest``); names
  are compared with ``hmac.compare_digest`` too, and an unknown name is checked against a dummy hash of the same
  method, so the time taken does not tell which names exist. A hash check costs ~0.2 s of CPU (scrypt): each
  outcome is remembered in a bounded cache under a keyed digest of the credentials (never the credentials), so a
  page polling twice a second costs one check, not two a second.
- Guessing is limited (:mod:`app.auth.login_limits`): credentials not remembered yet get a password check only while
  their client address and user name are under their failed-login limits and the process's share of CPU time
  for password checks allows it; otherwise a 429 with ``Retry-After``, at no hash's cost. Remembered credentials
  skip the limits.
- The users file is reloaded when it changes (``python -m app.auth.users`` edits it); a reload that fails is logged and
  locks everyone of the file out until it is fixed. Nothing here logs a password, a hash or a header.
"""

from __future__ import annotations

import base64
import hmac
import logging
import math
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path

from flask import Flask, Response, g, has_request_context, jsonify, request
from werkzeug.security import check_password_hash, generate_password_hash

from app.auth.accounts import EDITOR, Account, AccountsError, read_accounts
from app.auth.login_limits import LoginLimits
from app.config import Settings
from app.core.cache import LRUCache

logger = logging.getLogger(__name__)

PUBLIC_ENDPOINTS = frozenset({"api.healthz"})  # GET/HEAD only: a load balancer's health check needs no login
# POSTs that are view-level actions: drawing or uploading a digit to look at stores it in a bounded cache of
# user images (STATE_DIR), never in the model store; viewers and read-only instances may do it (a login is still
# needed where one is configured).
VIEW_LEVEL_POSTS = frozenset({"api.add_input"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# The longest Authorization header read: 64-character names, long passwords and base64 fit well within it.
MAX_AUTHORIZATION_CHARS = 4096
# Credentials whose check outcome is remembered per process (a few per user and browser: plenty).
VERIFIED_CACHE_ENTRIES = 1024


@dataclass(frozen=True)
class User:
    """Who a request comes from."""

    name: str
    role: str

    @property
    def editor(self) -> bool:
        """May write (train, stop, change models), unless the instance is read-only."""
        return self.role == EDITOR


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    """``(name, password)`` of an ``Authorization: Basic <base64 of name:password>`` header, or None.

    None for anything else, never an exception: no header, an over-long one, another scheme (the scheme must be
    written ``Basic``), missing or invalid base64, a decoded value that is not UTF-8 or has no colon, an empty name.
    """
    if not header or len(header) > MAX_AUTHORIZATION_CHARS:
        return None
    scheme, _, token = header.partition(" ")
    if scheme != "Basic" or not token:
        return None
    try:
        name, colon, password = base64.b64decode(token, validate=True).decode("utf-8").partition(":")
    except ValueError:  # binascii.Error, UnicodeDecodeError and non-ASCII str input are all ValueErrors
        return None
    return (name, password) if colon and name else None


def _file_signature(path: Path) -> tuple[int, int, int] | None:
    try:
        status = os.stat(path)
    except OSError:
        return None
    return status.st_mtime_ns, status.st_size, status.st_ino


def _hash_method(accounts: Iterable[Account]) -> str:
    """The hash method of the first account (``scrypt:32768:8:1``) if werkzeug can use it, else its default."""
    method = next((account.password_hash.split("$", 1)[0] for account in accounts), "scrypt")
    try:
        generate_password_hash("", method)
    except (ValueError, TypeError):
        return "scrypt"
    return method


class UserTable:
    """Who may log in: the users file's accounts (reloaded when the file changes) plus ``AUTH_USERS`` (editors).

    Args:
        accounts: the users file's accounts as read at start.
        quick_start: ``AUTH_USERS``: name -> plain password; hashed here, once, so every check costs the same.
        path: the users file to watch (None: none).

    Locking: one lock guards reloading; a check works on the accounts and cache it found when it began, so a check
    that ran against a file being replaced never lands in the new file's cache.
    """

    def __init__(self, accounts: Iterable[Account], quick_start: dict[str, str], path: Path | None = None) -> None:
        accounts = list(accounts)
        method = _hash_method(accounts)
        self._path = path
        self._signature = _file_signature(path) if path else None
        self._quick = [Account(name, EDITOR, generate_password_hash(password, method))
                       for name, password in quick_start.items()]
        self._dummy = generate_password_hash(secrets.token_hex(16), method)
        self._accounts = accounts + self._quick
        self._verified: LRUCache = LRUCache(VERIFIED_CACHE_ENTRIES)
        self._key = secrets.token_bytes(32)
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> UserTable:
        """The table of ``settings``' users file and ``AUTH_USERS``."""
        return cls(settings.accounts, settings.auth_users, settings.auth_users_file)

    def names(self) -> list[str]:
        """Every user's name (after any reload)."""
        self._reload_if_changed()
        return [account.name for account in self._accounts]

    def check(self, name: str, password: str) -> User | None:
        """The user ``name`` if ``password`` is theirs, else None."""
        known = self.remembered(name, password)
        return (known or None) if known is not None else self.verify(name, password)

    def remembered(self, name: str, password: str) -> User | bool | None:
        """The outcome of an earlier check of these credentials, without a password check: the user, False (they
        were wrong), or None (not checked yet, or forgotten)."""
        self._reload_if_changed()
        return self._verified.get(self._digest(name, password))

    def verify(self, name: str, password: str) -> User | None:
        """Check the password (one hash check) and remember the outcome; the user, or None."""
        self._reload_if_changed()
        accounts, verified = self._accounts, self._verified
        user = self._verify(accounts, name, password)
        verified.put(self._digest(name, password), user or False)
        return user

    def _digest(self, name: str, password: str) -> bytes:
        return hmac.new(self._key, f"{len(name)}:{name}:{password}".encode(), sha256).digest()

    def _verify(self, accounts: list[Account], name: str, password: str) -> User | None:
        match = None
        for account in accounts:  # every name compared in constant time: no early exit tells which one matched
            if hmac.compare_digest(account.name.encode(), name.encode()):
                match = account
        try:
            valid = check_password_hash(match.password_hash if match else self._dummy, password)
        except (ValueError, TypeError) as exc:  # a hash werkzeug cannot use: log whose, never the hash
            logger.error("the password hash of user %r cannot be checked (%s)", match and match.name,
                         type(exc).__name__)
            valid = False
        return User(match.name, match.role) if valid and match else None

    def _reload_if_changed(self) -> None:
        if self._path is None or _file_signature(self._path) == self._signature:
            return
        with self._lock:
            signature = _file_signature(self._path)
            if signature == self._signature:
                return
            try:
                accounts = read_accounts(self._path)
                clash = {account.name for account in accounts} & {account.name for account in self._quick}
                if clash:
                    raise AccountsError(f"user {sorted(clash)[0]!r} is also in AUTH_USERS")
                logger.info("AUTH_USERS_FILE changed: %d users", len(accounts))
            except AccountsError as exc:
                logger.error("AUTH_USERS_FILE could not be reloaded, nobody of it can log in until it is fixed: %s",
                             exc)
                accounts = []
            self._accounts = accounts + self._quick
            self._verified = LRUCache(VERIFIED_CACHE_ENTRIES)
            self._signature = signature


# What a visitor of an instance open to its network without a login reads where the write controls would be, and
# what a refused API write answers: the operator reads it too, so it names the two ways to turn writes on.
ANONYMOUS_WRITES_OFF = (
    "Writes are off: this instance is open to its network without a login, so nobody can start or stop training "
    "or upload or delete models here. You can still explore models and watch training runs. To turn writes on, "
    "the operator adds users (AUTH_USERS_FILE) or sets ALLOW_ANONYMOUS_WRITES=1."
)


def refusal(user: User | None, settings: Settings) -> str | None:
    """Why ``user`` may not write on this instance, or None if they may: without a login anyone may, unless the
    instance is served beyond this machine (:attr:`~app.config.Settings.anonymous_writes_refused`)."""
    if settings.read_only:
        return "This instance is read-only: you can explore and watch training runs, not start or stop them."
    if settings.anonymous_writes_refused:
        return ANONYMOUS_WRITES_OFF
    if user is not None and not user.editor:
        return (f"Signed in as {user.name} ({user.role}): you can explore and watch training runs; starting and "
                "stopping them needs an editor.")
    return None


def callback_output_ids(output: str) -> set[str]:
    """The component ids of a Dash callback's output key (``"a.children"``, ``"..a.children...b.data.."``, with
    ``@hash`` after a property for ``allow_duplicate`` and ``\\.`` for a dot inside an id)."""
    parts = output[2:-2].split("...") if output.startswith("..") else [output]
    return {part.rsplit(".", 1)[0].replace("\\.", ".") for part in parts}


def client_address(proxy_hops: int) -> str:
    """The address a request comes from: the connection's, or behind ``proxy_hops`` reverse proxies the one the
    farthest of them saw (``X-Forwarded-For``, read from the right: entries further left are the client's say)."""
    if proxy_hops:
        hops = [hop.strip() for value in request.headers.getlist("X-Forwarded-For") for hop in value.split(",")]
        if len(hops) >= proxy_hops:
            return hops[-proxy_hops][:64]
    return request.remote_addr or ""


def error_answer(status: int, message: str) -> Response:
    """A JSON answer ``{"error": message}`` with ``status``: how the request checks and the login refuse."""
    response = jsonify(error=message)
    response.status_code = status
    return response


class Gate:
    """The login and role check of every request (see the module docstring).

    Args:
        settings: returns the settings of the app's context; the user table is rebuilt
            when it returns a new object (tests change the environment and install a new context).
        callback_endpoint: the endpoint of Dash's callback route (``/_dash-update-component``).
        write_outputs: component ids whose callbacks write: a callback with one of them among its outputs needs
            a user who may write.
        realm: the realm of the Basic challenge.
    """

    def __init__(self, settings: Callable[[], Settings], callback_endpoint: str, write_outputs: Iterable[str],
                 realm: str) -> None:
        self._settings = settings
        self.callback_endpoint = callback_endpoint
        self.write_outputs = frozenset(write_outputs)
        self.realm = realm.replace('"', "'")
        self._table: UserTable | None = None
        self._table_for: Settings | None = None
        self._limits: LoginLimits | None = None
        self._limits_for: Settings | None = None
        self._lock = threading.Lock()

    def users(self) -> UserTable | None:
        """The user table of the current settings; None when no login is configured."""
        settings = self._settings()
        if self._table_for is not settings:
            with self._lock:
                if self._table_for is not settings:
                    self._table = UserTable.from_settings(settings) if settings.login_required else None
                    self._table_for = settings
        return self._table

    def limits(self) -> LoginLimits:
        """The login limits of the current settings (counters start afresh when the settings change)."""
        settings = self._settings()
        if self._limits_for is not settings:
            with self._lock:
                if self._limits_for is not settings:
                    self._limits = LoginLimits(settings.login_failures_per_client, settings.login_failures_per_account,
                                               settings.login_lockout_seconds, settings.password_check_percent / 100)
                    self._limits_for = settings
        return self._limits

    def check_credentials(self, header: str | None, client: str = "") -> User | float | None:
        """The user an ``Authorization`` header proves; None if it proves nobody; or, for credentials not known
        yet while ``client`` or the name is over its login limits, the seconds to wait. Never raises."""
        credentials = basic_credentials(header)
        if credentials is None:
            return None
        try:
            table = self.users()
            if table is None:
                return None
            known = table.remembered(*credentials)
            if known is not None:
                return known or None
            limits = self.limits()
            wait = limits.refusal(client, credentials[0])
            if wait is not None:
                return wait
            started = time.thread_time()
            user = table.verify(*credentials)
            limits.spent(time.thread_time() - started)
            if user is None:
                limits.failed(client, credentials[0])
            return user
        except Exception as exc:  # a bug here must refuse the login, not answer 500 with a traceback of secrets
            logger.error("credential check failed (%s)", type(exc).__name__)
            return None

    def before_request(self) -> Response | None:
        """Let the request through (None) or answer 401 / 403 / 400 instead of the route."""
        if request.endpoint in PUBLIC_ENDPOINTS and request.method in ("GET", "HEAD"):
            return None
        settings = self._settings()
        user = None
        if settings.login_required:
            header = request.headers.get("Authorization")
            user = self.check_credentials(header, client_address(settings.proxy_hops))
            if isinstance(user, float):
                logger.info("login refused for a while: too many failed logins or password checks (from %s)",
                            request.remote_addr)
                response = error_answer(429, "too many failed logins: try again later")
                response.headers["Retry-After"] = str(math.ceil(user))
                return response
            if user is None:
                if header:
                    logger.info("login failed from %s", request.remote_addr)
                response = error_answer(401, "login required: this instance needs a user name and password")
                response.headers["WWW-Authenticate"] = f'Basic realm="{self.realm}", charset="UTF-8"'
                return response
        g.auth_user = user
        g.auth_refusal = refusal(user, settings)
        if g.auth_refusal is None or request.method in SAFE_METHODS:
            return None
        if request.method == "POST" and request.endpoint in VIEW_LEVEL_POSTS:
            return None
        if request.endpoint != self.callback_endpoint:
            return error_answer(403, g.auth_refusal)
        # The user is known and may not write: judge the callback by the key Dash will dispatch on. get_json caches
        # what it parsed, so Dash dispatches on this very object; the size limit applies (413).
        body = request.get_json(silent=True)
        output = body.get("output") if isinstance(body, dict) else None
        if not isinstance(output, str):
            return error_answer(400, "malformed callback request: expected a JSON object with an 'output'")
        if callback_output_ids(output) & self.write_outputs:
            return error_answer(403, g.auth_refusal)
        return None


def install(server: Flask, settings: Callable[[], Settings], callback_endpoint: str, write_outputs: Iterable[str],
            realm: str) -> Gate:
    """Put a :class:`Gate` in front of every route of ``server`` (before Dash's own request hooks) and build its user
    table now, so that hashing ``AUTH_USERS`` happens at start."""
    gate = Gate(settings, callback_endpoint, write_outputs, realm)
    gate.users()
    if settings().anonymous_writes_refused:
        # the operator's first clue when the Train page offers no Start button on a freshly exposed instance
        logger.warning("HOST=%s without a login: writes (training, model upload and deletion) are off; set "
                       "AUTH_USERS_FILE for a login or ALLOW_ANONYMOUS_WRITES=1 to allow them to anyone",
                       settings().host)
    server.before_request_funcs.setdefault(None, []).insert(0, gate.before_request)
    server.extensions["auth"] = gate
    return gate


def current_user() -> User | None:
    """The logged-in user of this request; None without a login (none configured) or outside a request."""
    return g.get("auth_user") if has_request_context() else None


def current_user_name() -> str | None:
    """The logged-in user's name, for records such as who started a job."""
    user = current_user()
    return user.name if user else None


def write_refusal() -> str | None:
    """Why the current request's user may not write (a note for pages that hide their write controls), or None."""
    return g.get("auth_refusal") if has_request_context() else None
