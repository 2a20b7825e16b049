"""Settings read once from the environment and validated, so a bad value fails at start with a clear message."""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from app.auth.accounts import Account, AccountsError, check_name, read_accounts
from app.core.activations import DEFAULT_PASSES_BYTES
from app.core.datasets import DataSources
from app.core.model_cost import DEFAULT_MODEL_LIMITS, GFLOP, ModelLimits
from app.core.model_files import DEFAULT_TEST_SET_MAX_BYTES
from app.core.statistics import DEFAULT_STATISTICS_BYTES, IN_REQUEST_FLOPS

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Callback requests of the pages are a few kB, a training configuration less; only model uploads ask for more.
DEFAULT_MAX_REQUEST_BYTES = 1_000_000
DEFAULT_MAX_UPLOAD_BYTES = 200_000_000
# A drawn digit is a few kB of strokes; a phone photo of one a few MB.
DEFAULT_MAX_IMAGE_BYTES = 10_000_000
MB = 10**6
# Names a browser uses for this machine itself: the hosts an instance answers to unless ALLOWED_HOSTS says more.
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
# Addresses that mean "every interface" when listened on: not a name a browser sends.
WILDCARD_ADDRESSES = ("0.0.0.0", "::", "")


class SettingsError(ValueError):
    """A setting in the environment has a value the application cannot use."""


def _int_setting(env: dict[str, str], key: str, default: int, low: int, high: int) -> int:
    raw = env.get(key, "")
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise SettingsError(f"{key} must be an integer, got {raw!r}") from exc
    if not low <= value <= high:
        raise SettingsError(f"{key} must be between {low} and {high}, got {value}")
    return value


def _bool_setting(env: dict[str, str], key: str) -> bool:
    raw = env.get(key, "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise SettingsError(f"{key} must be 1 or 0 (true/false, yes/no, on/off), got {raw[:20]!r}")


def _quick_start_users(env: dict[str, str]) -> dict[str, str]:
    """``AUTH_USERS``: name -> plain password (every one an editor). Errors never quote a pair: it holds a password."""
    users: dict[str, str] = {}
    for pair in filter(None, (p.strip() for p in env.get("AUTH_USERS", "").split(","))):
        user, sep, password = pair.partition(":")
        if not sep or not user or not password:
            raise SettingsError("AUTH_USERS must look like 'alice:secret,bob:other'")
        try:
            check_name(user)
        except AccountsError as exc:
            raise SettingsError(f"AUTH_USERS: {exc}") from None
        if user in users:
            raise SettingsError(f"AUTH_USERS: user {user!r} appears twice")
        users[user] = password
    return users


def _file_accounts(path: Path | None, quick_start: dict[str, str]) -> tuple[Account, ...]:
    """The accounts of ``AUTH_USERS_FILE``, checked (format, roles, hashes, no name also in ``AUTH_USERS``)."""
    if path is None:
        return ()
    try:
        accounts = tuple(read_accounts(path))
    except AccountsError as exc:
        raise SettingsError(f"AUTH_USERS_FILE: {exc}") from None
    both = sorted({account.name for account in accounts} & set(quick_start))
    if both:
        raise SettingsError(f"user {both[0]!r} is in both AUTH_USERS and AUTH_USERS_FILE; keep one")
    return accounts


def _allowed_hosts(env: dict[str, str], host: str) -> tuple[str, ...]:
    """``ALLOWED_HOSTS``: host names and addresses, comma separated (``.example.org`` for a domain and its
    subdomains, ``*`` for any); unset, the loopback names and ``HOST`` when it names one interface."""
    raw = env.get("ALLOWED_HOSTS", "").strip()
    if not raw:
        own = () if host in WILDCARD_ADDRESSES else (host.lower().strip("[]"),)
        return tuple(dict.fromkeys(LOOPBACK_HOSTS + own))
    hosts = []
    for entry in filter(None, (part.strip().lower() for part in raw.split(","))):
        name = entry.strip("[]")
        if name != "*" and not re.fullmatch(r"\.?[a-z0-9.-]+|[0-9a-f:.]+", name):
            raise SettingsError(f"ALLOWED_HOSTS: {entry[:80]!r} is not a host name, an address, .domain or *")
        hosts.append(name)
    return tuple(hosts)


def is_loopback(host: str) -> bool:
    """Whether a server listening on ``host`` can be reached from this machine only: ``localhost`` or a loopback
    address (127.0.0.0/8, ``::1``, brackets allowed). Any other name or address, the wildcards ``0.0.0.0`` and
    ``::`` included, may face a network."""
    name = host.strip().lower().strip("[]")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:  # a host name: it may resolve to any interface
        return False


def _megabytes_setting(env: dict[str, str], key: str, default_bytes: int, low: int = 1) -> int:
    """A size given in MB (decimal) in the environment, as bytes."""
    return MB * _int_setting(env, key, default_bytes // MB, low, 10_000_000)


@dataclass(frozen=True)
class Settings:
    """Everything the application reads from its environment.

    Attributes:
        model_store: folder with one sub-folder per model (``MODEL_STORE``).
        host, port: where the development server listens (``HOST``, ``PORT``).
        state_dir: folder for shared state every worker sees: job store, caches (``STATE_DIR``).
        redis_url: when set, jobs run on Celery with this Redis broker (``REDIS_URL``).
        activation_cache_bytes: forward passes kept per opened model, in bytes (``ACTIVATION_CACHE_MB``).
        statistics_cache_bytes: class means and top units kept per process, in bytes (``STATISTICS_CACHE_MB``).
        in_request_flops: the most FLOPs a pass over a test set may cost inside a request (the whole model's per
            image times the images); a costlier one runs as a background job (``IN_REQUEST_GFLOPS``).
        test_set_max_bytes: the largest test set a model may bring, as loaded (``TEST_SET_MAX_MB``).
        data_dir: the only folder training datasets may be read from by path (``DATA_DIR``).
        training_memory_bytes: the memory ceiling of a training process; 0 sizes it for the machine
            (``TRAINING_MEMORY_MB``).
        auth_users: ``user:password`` pairs, comma separated, every one an editor: quick starts (``AUTH_USERS``).
        auth_users_file: the users file, ``name:hash:role`` a line (``AUTH_USERS_FILE``, see :mod:`app.auth.accounts`);
            with it or ``auth_users`` set every route but ``/healthz`` needs a login, without either none does.
        accounts: the users of ``auth_users_file`` as read at start (the server reloads the file when it changes).
        read_only: the whole instance is view-only: every write is refused, for everyone (``READ_ONLY``).
        allow_anonymous_writes: lets anyone write on an instance served beyond this machine without a login
            (``ALLOW_ANONYMOUS_WRITES``); see :attr:`anonymous_writes_refused`.
        fashion_mnist_dir: Debian's Fashion-MNIST IDX folder (``FASHION_MNIST_DIR``).
        keras_home: Keras' cache folder, where full MNIST's ``datasets/mnist.npz`` is looked for (``KERAS_HOME``).
        max_request_bytes: the largest request body accepted; larger ones get 413 unread (``MAX_REQUEST_BYTES``).
        max_upload_bytes: the largest model upload (its request, each file, an archive unpacked), 413 beyond it
            (``MAX_UPLOAD_BYTES``).
        max_image_bytes: the largest drawn or uploaded image request (``POST /api/models/<name>/inputs``), 413
            beyond it (``MAX_IMAGE_BYTES``).
        allowed_hosts: the host names (``Host`` header) the instance answers to; other hosts get 400
            (``ALLOWED_HOSTS``, see :mod:`app.auth.request_checks`).
        login_failures_per_client, login_failures_per_account: failed logins a worker process takes from one
            client address, and for one user name, within ``login_lockout_seconds``; past either, a login that is
            not already known good is answered 429 without a password check (``LOGIN_FAILURES_PER_CLIENT``,
            ``LOGIN_FAILURES_PER_ACCOUNT``, ``LOGIN_LOCKOUT_SECONDS``).
        password_check_percent: the share of one core, in percent, that a worker process spends on password
            checks at most (on average, in bursts of a second); beyond it a new login is answered 429
            (``PASSWORD_CHECK_PERCENT``).
        proxy_hops: how many reverse proxies stand in front and add ``X-Forwarded-For``; the client address of
            the login limits is read from there (``PROXY_HOPS``, 0: the connection's own address).
        user_images_kept: how many drawn and uploaded images are kept at most in ``state_dir``, the oldest evicted
            down to a 20th below it when it is passed (``USER_IMAGES_KEPT``).
        model_activation_bytes: the most activations one image's pass through every layer of a model may make; a
            model beyond it is refused at upload and listed as broken when dropped in (``MODEL_ACTIVATION_MB``).
        model_flops: the most forward FLOPs one image through a model may cost, likewise (``MODEL_GFLOPS``).
        gradient_memory_bytes: the activations of one batch of a gradient method (attribution); larger requests
            run in batches (``GRADIENT_MEMORY_MB``).
        gradient_flops: the most FLOPs one gradient request (SmoothGrad's copies, integrated gradients' steps) may
            cost; a request beyond it is refused with its cost (``GRADIENT_GFLOPS``).
        Defaults and the models they were measured on: :class:`app.core.model_cost.ModelLimits`.
    """

    model_store: Path
    host: str
    port: int
    state_dir: Path
    redis_url: str
    activation_cache_bytes: int
    auth_users: dict[str, str] = field(repr=False)  # plain passwords: never in a log
    fashion_mnist_dir: Path = DataSources.fashion_mnist_dir
    keras_home: Path = DataSources.keras_home
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    max_image_bytes: int = DEFAULT_MAX_IMAGE_BYTES
    user_images_kept: int = 1000
    statistics_cache_bytes: int = DEFAULT_STATISTICS_BYTES
    in_request_flops: int = IN_REQUEST_FLOPS
    test_set_max_bytes: int = DEFAULT_TEST_SET_MAX_BYTES
    data_dir: Path = PROJECT_ROOT / "data"
    training_memory_bytes: int = 0
    auth_users_file: Path | None = None
    accounts: tuple[Account, ...] = ()
    read_only: bool = False
    allow_anonymous_writes: bool = False
    allowed_hosts: tuple[str, ...] = LOOPBACK_HOSTS
    login_failures_per_client: int = 10
    login_failures_per_account: int = 10
    login_lockout_seconds: int = 300
    password_check_percent: int = 25
    proxy_hops: int = 0
    model_activation_bytes: int = DEFAULT_MODEL_LIMITS.max_activation_bytes
    model_flops: int = DEFAULT_MODEL_LIMITS.max_flops
    gradient_memory_bytes: int = DEFAULT_MODEL_LIMITS.gradient_memory_bytes
    gradient_flops: int = DEFAULT_MODEL_LIMITS.gradient_flops

    @property
    def model_limits(self) -> ModelLimits:
        """What a model's file and one image through it may cost (the file's parts bounded by the upload limit)."""
        return ModelLimits(max_file_bytes=self.max_upload_bytes, max_activation_bytes=self.model_activation_bytes,
                           max_flops=self.model_flops, gradient_memory_bytes=self.gradient_memory_bytes,
                           gradient_flops=self.gradient_flops)

    @property
    def login_required(self) -> bool:
        """Whether every route but ``/healthz`` needs credentials (``AUTH_USERS`` or ``AUTH_USERS_FILE`` is set)."""
        return bool(self.auth_users) or self.auth_users_file is not None

    @property
    def anonymous_writes_refused(self) -> bool:
        """Whether writes are off because anyone on the network could make them: ``HOST`` is not a loopback address,
        no login is configured, and ``ALLOW_ANONYMOUS_WRITES`` does not opt in. Decided from what the operator bound,
        never from a request's ``Host`` header, which the client chooses."""
        return not (self.login_required or is_loopback(self.host) or self.allow_anonymous_writes)

    @property
    def user_images_dir(self) -> Path:
        """Where drawn and uploaded images are kept (every worker and training process reads them)."""
        return self.state_dir / "user_images"

    @property
    def data_sources(self) -> DataSources:
        """Where the named training datasets are read from."""
        return DataSources(fashion_mnist_dir=self.fashion_mnist_dir, keras_home=self.keras_home, data_dir=self.data_dir)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        """Read and validate the settings from ``env`` (default: ``os.environ``)."""
        env = dict(os.environ if env is None else env)
        users = _quick_start_users(env)
        users_file = Path(env["AUTH_USERS_FILE"]).resolve() if env.get("AUTH_USERS_FILE") else None
        return cls(
            model_store=Path(env.get("MODEL_STORE") or PROJECT_ROOT / "model_store").resolve(),
            host=env.get("HOST") or "127.0.0.1",
            port=_int_setting(env, "PORT", 8050, 1, 65535),
            state_dir=Path(env.get("STATE_DIR") or PROJECT_ROOT / "var").resolve(),
            redis_url=env.get("REDIS_URL", ""),
            activation_cache_bytes=_megabytes_setting(env, "ACTIVATION_CACHE_MB", DEFAULT_PASSES_BYTES),
            auth_users=users,
            fashion_mnist_dir=Path(env.get("FASHION_MNIST_DIR") or DataSources.fashion_mnist_dir),
            keras_home=Path(env.get("KERAS_HOME") or DataSources.keras_home),
            max_request_bytes=_int_setting(env, "MAX_REQUEST_BYTES", DEFAULT_MAX_REQUEST_BYTES, 10_000, 1_000_000_000),
            max_upload_bytes=_int_setting(env, "MAX_UPLOAD_BYTES", DEFAULT_MAX_UPLOAD_BYTES, 10_000, 10_000_000_000),
            max_image_bytes=_int_setting(env, "MAX_IMAGE_BYTES", DEFAULT_MAX_IMAGE_BYTES, 10_000, 1_000_000_000),
            user_images_kept=_int_setting(env, "USER_IMAGES_KEPT", 1000, 1, 1_000_000),
            statistics_cache_bytes=_megabytes_setting(env, "STATISTICS_CACHE_MB", DEFAULT_STATISTICS_BYTES),
            in_request_flops=GFLOP * _int_setting(env, "IN_REQUEST_GFLOPS", IN_REQUEST_FLOPS // GFLOP, 0,
                                                  1_000_000),
            test_set_max_bytes=_megabytes_setting(env, "TEST_SET_MAX_MB", DEFAULT_TEST_SET_MAX_BYTES),
            data_dir=Path(env.get("DATA_DIR") or PROJECT_ROOT / "data").resolve(),
            training_memory_bytes=_megabytes_setting(env, "TRAINING_MEMORY_MB", 0, low=0),
            auth_users_file=users_file,
            accounts=_file_accounts(users_file, users),
            read_only=_bool_setting(env, "READ_ONLY"),
            allow_anonymous_writes=_bool_setting(env, "ALLOW_ANONYMOUS_WRITES"),
            allowed_hosts=_allowed_hosts(env, env.get("HOST") or "127.0.0.1"),
            login_failures_per_client=_int_setting(env, "LOGIN_FAILURES_PER_CLIENT", 10, 1, 1_000_000),
            login_failures_per_account=_int_setting(env, "LOGIN_FAILURES_PER_ACCOUNT", 10, 1, 1_000_000),
            login_lockout_seconds=_int_setting(env, "LOGIN_LOCKOUT_SECONDS", 300, 1, 86_400),
            password_check_percent=_int_setting(env, "PASSWORD_CHECK_PERCENT", 25, 1, 100),
            proxy_hops=_int_setting(env, "PROXY_HOPS", 0, 0, 10),
            model_activation_bytes=_megabytes_setting(env, "MODEL_ACTIVATION_MB",
                                                      DEFAULT_MODEL_LIMITS.max_activation_bytes),
            model_flops=GFLOP * _int_setting(env, "MODEL_GFLOPS", DEFAULT_MODEL_LIMITS.max_flops // GFLOP, 1,
                                             1_000_000),
            gradient_memory_bytes=_megabytes_setting(env, "GRADIENT_MEMORY_MB",
                                                     DEFAULT_MODEL_LIMITS.gradient_memory_bytes),
            gradient_flops=GFLOP * _int_setting(env, "GRADIENT_GFLOPS", DEFAULT_MODEL_LIMITS.gradient_flops // GFLOP,
                                                1, 1_000_000_000),
        )
