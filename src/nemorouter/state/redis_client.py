"""The gateway's Redis clients: every one bounded in time, so an outage fails fast.

redis-py's defaults retry a failed command 10 times with backoff (about 4 s) and wait up to
5 s for a connection or a reply: a request behind a dead Redis would wait that long for its
503. Here a command waits at most TIMEOUT_S, and only a lost connection is retried, once, at
once (a pooled connection that died with a restarted server reconnects); a timeout is not
(the server may have run the script: a retry could count a request twice). Blocking pub/sub
reads are not bounded by the socket timeout (redis-py reads them without one), so key
events keep listening through quiet hours.
"""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

TIMEOUT_S = 2.0
RETRIES = 1


def redis_client(url: str) -> Redis:
    return Redis.from_url(
        url,
        socket_timeout=TIMEOUT_S,
        socket_connect_timeout=TIMEOUT_S,
        retry=Retry(ExponentialBackoff(cap=0.05, base=0.01), RETRIES, (RedisConnectionError,)),
    )
