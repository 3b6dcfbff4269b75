"""Celery beat that sends the periodic work from one process only, however many run.

Every beat process (`celery -A mlplatform beat`) competes for one lease in Redis; the
holder sends the schedule and renews the lease on each tick, the others stand by and
take over within a lease of the holder's death (a SIGKILL cannot release it). So a
second beat started by mistake, or one kept as a hot spare, never doubles a periodic
task. The schedule lives in memory, not in a shelve file: two beats on one host would
otherwise share and corrupt `celerybeat-schedule`, and each periodic task is
idempotent, so a fresh leader's schedule starting anew costs nothing.

Without Redis (the embedded default) beat runs inside the one platform process and
there is nobody to compete with: the scheduler then behaves as Celery's own."""

import logging
import os
import socket
import uuid

from celery.beat import Scheduler
from django.conf import settings

logger = logging.getLogger(__name__)

LEASE_KEY = "mlp:beat:leader"


def lease_seconds() -> float:
    return float(os.environ.get("MLP_BEAT_LEASE_SECONDS", "10"))


class LeaderScheduler(Scheduler):
    def __init__(self, *args, **kwargs) -> None:
        self.lease = lease_seconds()
        self.token = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.leading: bool | None = None  # undecided: the first decision is logged
        self._redis = None
        if settings.REDIS_URL:
            import redis

            self._redis = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5)
        super().__init__(*args, **kwargs)

    def tick(self, *args, **kwargs) -> float:
        if not self._lead():
            # Standing by: look again well within a lease.
            return self.lease / 4
        # Renew well before the lease runs out, even when nothing is due for an hour.
        return min(super().tick(*args, **kwargs), self.lease / 3)

    def _lead(self) -> bool:
        if self._redis is None:
            return True
        try:
            leading = self._hold_lease()
        except Exception as error:  # Redis unreachable: the broker is too; send nothing
            logger.warning("beat: cannot reach Redis for the leader lease: %s", error)
            leading = False
        if leading != self.leading:
            logger.warning("beat %s: %s", self.token, "now sends the schedule" if leading else "stands by")
            if leading:
                # Entries become due from the moment this process leads, not from when
                # it started standing by.
                for entry in self.schedule.values():
                    entry.last_run_at = self.app.now()
            self.leading = leading
        return leading

    def _hold_lease(self) -> bool:
        ms = int(self.lease * 1000)
        if self.leading:
            renewed = self._redis.eval(RENEW, 1, LEASE_KEY, self.token, ms)
            if renewed:
                return True
        return bool(self._redis.set(LEASE_KEY, self.token, nx=True, px=ms))

    def close(self) -> None:
        # A graceful stop hands the lease over at once instead of after it expires.
        if self._redis is not None and self.leading:
            try:
                self._redis.eval(RELEASE, 1, LEASE_KEY, self.token)
            except Exception as error:  # it expires by itself within a lease
                logger.warning("beat: could not release the leader lease: %s", error)
        super().close()


# Compare-and-set on the token: a beat never renews or releases a lease another holds.
RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""
