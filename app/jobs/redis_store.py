"""The scale-out job-store engine: the same records in Redis, for Celery workers on other machines."""

from __future__ import annotations

import functools
import json
from dataclasses import asdict
from typing import Any

import redis

from app.jobs.records import FINAL, JOB_FIELDS, Job, JobStoreUnavailable
from app.jobs.store import JobStore

# HSET only where the job's hash exists, in one step: an update of an unknown (or deleted) job must not create a
# partial record, which get() could not read (SQLite's UPDATE of no row changes nothing either).
UPDATE_EXISTING = ("if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('HSET', KEYS[1], unpack(ARGV)) end "
                   "return 0")


def _reported(method):
    """A Redis that cannot answer (stopped, unreachable, out of memory) is a JobStoreUnavailable with its reason."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except redis.RedisError as exc:
            raise JobStoreUnavailable(f"the job store (Redis) cannot be used: {exc}") from exc

    return wrapper


class RedisJobStore(JobStore):
    """Jobs in Redis, for the Celery engine: web workers and training workers may sit on different machines.

    Keys (under ``prefix``): ``jobs`` (sorted set of ids by creation time), ``active`` (the active job's id),
    ``job:<id>`` (hash of JSON-encoded fields), ``job:<id>:epochs`` (hash epoch -> metrics JSON),
    ``job:<id>:probes`` (hash epoch -> encoded probe).

    Args:
        url: the Redis URL (``redis://host:port/db``).
        prefix: key prefix, so several instances can share one Redis.
    """

    def __init__(self, url: str, prefix: str = "cae", stale_after: float = 30.0, queue_timeout: float = 120.0) -> None:
        super().__init__(stale_after, queue_timeout)
        self.url = url if prefix == "cae" else f"{url}#{prefix}"
        self.prefix = prefix
        self.redis = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)

    def _key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    @_reported
    def _insert_if_idle(self, job: Job) -> Job | None:
        active_key = self._key("active")
        with self.redis.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(active_key)  # the transaction fails if another start claims "active" meanwhile
                    current_id = pipe.get(active_key)
                    if current_id is not None:
                        current = self._load(current_id.decode())
                        if current is not None and current.active:
                            pipe.unwatch()
                            return current
                    pipe.multi()
                    pipe.set(active_key, job.id)
                    pipe.hset(self._key("job", job.id), mapping=self._encode(asdict(job)))
                    pipe.zadd(self._key("jobs"), {job.id: job.created})
                    pipe.execute()
                    return None
                except redis.WatchError:
                    continue

    @staticmethod
    def _encode(values: dict[str, Any]) -> dict[str, str]:
        return {name: json.dumps(value) for name, value in values.items()}

    @_reported
    def _load(self, job_id: str) -> Job | None:
        raw = self.redis.hgetall(self._key("job", job_id))
        if not raw:
            return None
        values = {key.decode(): json.loads(value) for key, value in raw.items()}
        return Job(**{name: values[name] for name in JOB_FIELDS if name in values})

    @_reported
    def _ids(self, limit: int) -> list[str]:
        return [raw.decode() for raw in self.redis.zrevrange(self._key("jobs"), 0, limit - 1)]

    @_reported
    def update(self, job_id: str, **values: Any) -> None:
        unknown = set(values) - set(JOB_FIELDS)
        if unknown:
            raise ValueError(f"unknown job fields: {sorted(unknown)}")
        fields = [part for pair in self._encode(values).items() for part in pair]
        if fields:
            self.redis.eval(UPDATE_EXISTING, 1, self._key("job", job_id), *fields)

    @_reported
    def _update_if(self, job_id: str, statuses: tuple[str, ...], values: dict[str, Any]) -> bool:
        key = self._key("job", job_id)
        active_key = self._key("active")
        ends = values.get("status") in FINAL
        with self.redis.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key, active_key)
                    status = pipe.hget(key, "status")
                    if status is None or json.loads(status) not in statuses:
                        pipe.unwatch()
                        return False
                    release = ends and pipe.get(active_key) == job_id.encode()
                    pipe.multi()
                    pipe.hset(key, mapping=self._encode(values))
                    if release:
                        pipe.delete(active_key)
                    pipe.execute()
                    return True
                except redis.WatchError:
                    continue

    @_reported
    def add_epoch(self, job_id: str, metrics: dict[str, float]) -> None:
        self.redis.hset(self._key("job", job_id, "epochs"), str(int(metrics["epoch"])), json.dumps(metrics))

    @_reported
    def epochs(self, job_id: str) -> list[dict[str, float]]:
        raw = self.redis.hgetall(self._key("job", job_id, "epochs"))
        return [json.loads(raw[key]) for key in sorted(raw, key=int)]

    @_reported
    def _put_probe(self, job_id: str, epoch: int, data: bytes) -> None:
        self.redis.hset(self._key("job", job_id, "probes"), str(epoch), data)

    @_reported
    def _get_probe(self, job_id: str, epoch: int) -> bytes | None:
        return self.redis.hget(self._key("job", job_id, "probes"), str(epoch))

    @_reported
    def probe_epochs(self, job_id: str) -> list[int]:
        return sorted(int(key) for key in self.redis.hkeys(self._key("job", job_id, "probes")))
