"""LRUCache bounded by entries, by bytes, or both; the default measure counts numpy arrays."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import pytest

from app.core.cache import SMALL_VALUE_BYTES, LRUCache, sizeof


def kb(n: int) -> np.ndarray:
    """An array of ``n`` kB."""
    return np.zeros(n * 1000, np.uint8)


def test_entry_bound_works_as_before():
    cache = LRUCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # a is now the most recent
    cache.put("c", 3)
    assert "b" not in cache and cache.get("a") == 1 and cache.get("c") == 3 and len(cache) == 2
    assert cache.max_bytes is None and cache.nbytes == 0
    with pytest.raises(ValueError, match="maxsize"):
        LRUCache(0)
    with pytest.raises(ValueError, match="bounded"):
        LRUCache()


def test_eviction_by_bytes_drops_the_least_recently_used():
    cache = LRUCache(max_bytes=10_000)
    for key in "abcd":
        cache.put(key, kb(3))
    assert len(cache) == 3 and "a" not in cache and cache.nbytes == 9_000
    cache.get("b")  # b becomes the most recent: c goes next
    cache.put("e", kb(5))
    assert sorted(k for k in "abcde" if k in cache) == ["b", "e"] and cache.nbytes == 8_000


def test_a_value_larger_than_the_bound_is_returned_but_not_kept():
    cache = LRUCache(max_bytes=10_000)
    cache.put("small", kb(2))
    big = cache.get_or_compute("big", lambda: kb(11))
    assert big.nbytes == 11_000 and "big" not in cache and "small" in cache and cache.nbytes == 2_000
    cache.put("small", kb(20))  # replacing with an oversize value drops the stale one
    assert "small" not in cache and cache.nbytes == 0


def test_both_bounds_apply():
    cache = LRUCache(3, max_bytes=10_000)
    for key in "abcd":
        cache.put(key, kb(1))
    assert len(cache) == 3
    cache.put("e", kb(9))  # 9 kB + d's 1 kB fit exactly
    assert [k for k in "abcde" if k in cache] == ["d", "e"]
    cache.put("f", kb(10))
    assert [k for k in "abcdef" if k in cache] == ["f"]


def test_replacing_a_key_updates_the_byte_total():
    cache = LRUCache(max_bytes=10_000)
    cache.put("a", kb(4))
    cache.put("a", kb(6))
    assert cache.nbytes == 6_000 and len(cache) == 1
    cache.clear()
    assert cache.nbytes == 0 and len(cache) == 0


@dataclass
class Means:
    layer: str
    means: np.ndarray
    counts: np.ndarray


def test_default_sizeof_counts_arrays_in_containers_and_dataclasses():
    a = np.zeros((10, 10), np.float32)
    assert sizeof(a) == 400
    assert sizeof([a, (a.copy(), {"x": np.zeros(100, np.float64)})]) == 400 + 400 + 800
    assert sizeof([a, a]) == 400  # the same array held twice is one buffer
    assert sizeof(Means("Conv2D_1", np.zeros((10, 5), np.float32), np.zeros(10, np.int64))) == 280
    assert sizeof(b"x" * 5000) == 5000
    assert sizeof("a model-list row") == sizeof(object()) == SMALL_VALUE_BYTES
    cyclic: list = []
    cyclic.append(cyclic)
    assert sizeof(cyclic) == SMALL_VALUE_BYTES


def test_custom_sizeof():
    cache = LRUCache(max_bytes=10, sizeof=len)
    cache.put("a", "12345")
    cache.put("b", "123456")
    assert "a" not in cache and "b" in cache


def test_concurrent_puts_keep_the_byte_total_exact():
    cache = LRUCache(max_bytes=50_000)

    def worker(offset: int) -> None:
        for i in range(300):
            cache.put((offset, i % 40), kb(1 + i % 3))
            cache.get((offset, (i * 7) % 40))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    held = [cache.get((n, i)) for n in range(4) for i in range(40)]
    assert cache.nbytes == sum(v.nbytes for v in held if v is not None) <= 50_000


def test_concurrent_misses_compute_once_and_share_the_result_or_the_error():
    import threading
    import time

    cache = LRUCache(4)
    calls = []

    def slow():
        calls.append(1)
        time.sleep(0.2)
        return np.ones(3)

    results = []
    threads = [threading.Thread(target=lambda: results.append(cache.get_or_compute("k", slow))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1 and len(results) == 8 and all(result is results[0] for result in results)

    def failing():
        calls.append(1)
        time.sleep(0.1)
        raise ValueError("boom")

    errors = []

    def ask():
        try:
            cache.get_or_compute("bad", failing)
        except ValueError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(errors) == 4 and len(calls) == 2 and "bad" not in cache
    assert cache.get_or_compute("bad", lambda: 5) == 5  # a failure is not remembered
