"""A small thread-safe LRU cache bounded by entries, by bytes, or both: every cache in the app is bounded.

Counting entries alone was not enough: with a legitimate 512-filter model, 512 cached forward passes of 800 images
took a process from 0.83 to 4.68 GB. A byte bound keeps the same cache small for wide layers and roomy for narrow
ones.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

import numpy as np

V = TypeVar("V")

# A byte bound for one cache of arrays (e.g. an ActivationEngine's forward passes), sized for two web workers on a
# small machine: the model store keeps 4 opened models per worker, so 4 x 64 MB = 256 MB per worker, 512 MB for
# two. It keeps ~13 forward passes of the 512-filter model (4.8 MB each: 3.85 GB over 800 images) and
# ~400 of the blog's (154 kB each: 38,646 floats over all layers).
DEFAULT_MAX_BYTES = 64 * 10**6

# What an entry without arrays is counted as: a model-list row, a verdict, a compiled function. Their real size
# hardly matters next to arrays; a non-zero constant keeps a byte-bounded cache of them finite.
SMALL_VALUE_BYTES = 256


def sizeof(value: Any) -> int:
    """Bytes a cached value holds, as the default measure of :class:`LRUCache`.

    The ``nbytes`` of every numpy array reached through lists, tuples, dicts and dataclass fields (each array
    counted once, views at their own size: an upper bound), plus the length of bytes objects; anything else counts
    :data:`SMALL_VALUE_BYTES`.

    Args:
        value: the value to measure.

    Returns:
        Its size in bytes (at least :data:`SMALL_VALUE_BYTES` for a value without arrays).
    """
    total, seen, stack = 0, set(), [value]
    while stack:  # iterative: a deep or cyclic structure must not make measuring fail
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, np.ndarray):
            total += item.nbytes
        elif isinstance(item, (bytes, bytearray, memoryview)):
            total += len(item) if not isinstance(item, memoryview) else item.nbytes
        elif isinstance(item, (list, tuple, set, frozenset)):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif dataclasses.is_dataclass(item) and not isinstance(item, type):
            stack.extend(getattr(item, f.name) for f in dataclasses.fields(item))
    return max(total, SMALL_VALUE_BYTES)


class _Flight:
    """A computation in progress: its waiters, and its result or exception once done."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: Any = None
        self.error: BaseException | None = None


class LRUCache(Generic[V]):
    """Keeps values under an entry bound and/or a byte bound, dropping the least recently used first.

    Args:
        maxsize: most entries kept (None: no entry bound). ``LRUCache(n)`` bounds by entries only, as it always did.
        max_bytes: most bytes kept, as measured by ``sizeof`` (None: no byte bound). A single value larger than
            this is returned by :meth:`get_or_compute` but not kept, so it cannot evict everything else.
        sizeof: measures a value in bytes (default: :func:`sizeof`, the numpy arrays it holds).

    Locking: one lock guards the entries, their sizes, the byte total and the computations in flight, and is held
    only for dictionary work. ``sizeof`` runs before the lock is taken (walking a large value must not block
    readers). ``get_or_compute`` computes each missing key once: the first thread computes without holding the
    lock, threads asking for the same key meanwhile wait for its result (measured under load: 16 clients asking
    for one layer's top images made each gunicorn thread compute the same whole-test-set pass, 2.8 s instead of
    0.4 s), and readers of other keys are never blocked.

    Raises:
        ValueError: a bound below 1, or neither bound given.
    """

    def __init__(
        self, maxsize: int | None = None, max_bytes: int | None = None, sizeof: Callable[[Any], int] = sizeof
    ) -> None:
        if maxsize is None and max_bytes is None:
            raise ValueError("give maxsize, max_bytes or both: every cache is bounded")
        if maxsize is not None and maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        if max_bytes is not None and max_bytes < 1:
            raise ValueError("max_bytes must be at least 1")
        self.maxsize = maxsize
        self.max_bytes = max_bytes
        self._sizeof = sizeof
        self._items: OrderedDict[Hashable, V] = OrderedDict()
        self._sizes: dict[Hashable, int] = {}
        self._bytes = 0
        self._in_flight: dict[Hashable, _Flight] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> V | None:
        """Return the value for ``key`` (marking it recently used), or None."""
        with self._lock:
            if key not in self._items:
                return None
            self._items.move_to_end(key)
            return self._items[key]

    def put(self, key: Hashable, value: V) -> None:
        """Store ``value`` under ``key``, evicting the oldest entries beyond the bounds.

        A value larger than ``max_bytes`` is not stored, and any older value under ``key`` is dropped (it is stale).
        """
        size = self._sizeof(value) if self.max_bytes is not None else 0
        with self._lock:
            self._discard(key)
            if self.max_bytes is not None and size > self.max_bytes:
                return
            self._items[key] = value
            self._sizes[key] = size
            self._bytes += size
            while (self.maxsize is not None and len(self._items) > self.maxsize) or (
                self.max_bytes is not None and self._bytes > self.max_bytes
            ):
                oldest, _ = self._items.popitem(last=False)
                self._bytes -= self._sizes.pop(oldest)

    def _discard(self, key: Hashable) -> None:
        """Remove ``key`` if present; the caller holds the lock."""
        if key in self._items:
            del self._items[key]
            self._bytes -= self._sizes.pop(key)

    def get_or_compute(self, key: Hashable, compute: Callable[[], V]) -> V:
        """Return the cached value for ``key``, computing and storing it on a miss (once, however many threads
        ask at the same time; an exception reaches every thread that waited for it)."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            flight = self._in_flight.get(key)
            leader = flight is None
            if leader:
                flight = self._in_flight[key] = _Flight()
        if not leader:
            flight.done.wait()
            if flight.error is not None:
                raise flight.error
            return flight.value
        try:
            flight.value = compute()
            self.put(key, flight.value)
            return flight.value
        except BaseException as exc:
            flight.error = exc
            raise
        finally:
            with self._lock:
                del self._in_flight[key]
            flight.done.set()

    @property
    def nbytes(self) -> int:
        """Bytes held, as measured by ``sizeof`` (0 for a cache without a byte bound, which does not measure)."""
        with self._lock:
            return self._bytes

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._items

    def clear(self) -> None:
        """Drop every entry."""
        with self._lock:
            self._items.clear()
            self._sizes.clear()
            self._bytes = 0
