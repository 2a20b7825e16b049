"""Limits on password guessing, per worker process: failed logins per client address and per user name in a time
window, and a ceiling on the CPU time password checks take.

A password check costs ~0.2 s of a core (scrypt): measured on 2 cores, 16 guessing clients (8.7 guesses/s) took
a logged-in viewer's median latency from 4 ms to 1,974 ms, and guessing was unbounded. Credentials that a worker
has already found good never reach these limits (the login remembers them, :class:`app.auth.UserTable`): a
logged-in viewer does not wait for a guesser, and an account under attack stays usable from the browsers that
were logged in. A name is counted whether or not it exists, so a refusal tells nothing of which names do.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from app.core.cache import LRUCache

# Distinct client addresses and names tracked per process: an attacker cycling through many of them evicts the
# oldest, which then start again from zero (each still cost a password check, within the ration of CPU time).
TRACKED_KEYS = 20_000
# Seconds of password checking a worker may spend back to back before its share of a core applies: a browser
# opening a page sends several requests at once, each a check until one of them is remembered (five scrypt checks).
CHECK_BURST_SECONDS = 1.0


class LoginLimits:
    """Counts failed logins and rations the CPU time spent on password checks.

    The ration is in CPU seconds, not checks, so it follows the hash method: a scrypt check (~0.2 s) takes what
    five cheap ones would, a check of a fast test hash next to nothing.

    Args:
        per_client: failed logins from one client address within ``window`` seconds before its further new
            logins are refused until the oldest failure leaves the window.
        per_account: the same for one user name, from any address.
        window: seconds a failure counts for.
        check_share: the share of one core that password checks may take on average (0.25: a quarter).
        clock: seconds, monotonic (tests pass their own).

    Thread-safe: one lock guards the counters and the ration.
    """

    def __init__(self, per_client: int, per_account: int, window: float, check_share: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.per_client = per_client
        self.per_account = per_account
        self.window = window
        self.check_share = check_share
        self._clock = clock
        self._failures = LRUCache(TRACKED_KEYS)
        self._budget = CHECK_BURST_SECONDS
        self._refilled = clock()
        self._lock = threading.Lock()

    def refusal(self, client: str, name: str) -> float | None:
        """Seconds to wait before a new login from ``client`` as ``name`` is worth a password check, or None if it
        may be checked now (report its CPU time with :meth:`spent`)."""
        with self._lock:
            now = self._clock()
            wait = max(self._locked_for(("client", client), self.per_client, now),
                       self._locked_for(("name", name), self.per_account, now))
            if wait > 0:
                return wait
            self._budget = min(CHECK_BURST_SECONDS, self._budget + (now - self._refilled) * self.check_share)
            self._refilled = now
            if self._budget < 1e-9:  # spent (sums of float seconds are not exact)
                return max(0.0, -self._budget) / self.check_share + 0.001
            return None

    def spent(self, seconds: float) -> None:
        """Take the CPU time of a password check from the ration (it may go below zero: later checks then wait)."""
        with self._lock:
            self._budget -= seconds

    def failed(self, client: str, name: str) -> None:
        """Count a failed login from ``client`` as ``name``."""
        with self._lock:
            now = self._clock()
            for key, limit in ((("client", client), self.per_client), (("name", name), self.per_account)):
                times = self._failures.get(key)
                if times is None or times.maxlen != limit:
                    times = deque(times or (), maxlen=limit)
                    self._failures.put(key, times)
                times.append(now)

    def _locked_for(self, key: tuple[str, str], limit: int, now: float) -> float:
        times = self._failures.get(key)
        if times is None or len(times) < limit:
            return 0.0
        return max(0.0, times[0] + self.window - now)
