"""Retry decisions and backoff: pure functions of the policy, the attempt and the failure."""

from __future__ import annotations

import asyncio
import random

import aiohttp

from ._protocol import Request
from .policies import RetryPolicy

__all__ = ["backoff_delay", "is_retryable_exception", "may_retry", "was_sent"]

#: Client errors that another try cannot cure: a malformed URL, a certificate refused.
_PERMANENT = (aiohttp.InvalidURL, aiohttp.ClientConnectorCertificateError)


def backoff_delay(policy: RetryPolicy, attempt: int, rng: random.Random) -> float:
    """Full jitter: uniform in ``[0, min(max_backoff, backoff * 2**(attempt-1))]``."""
    return rng.uniform(0.0, policy.backoff_ceiling(attempt))


def was_sent(exc: BaseException) -> bool:
    """False only when the failure proves the request never reached the server: connect
    failed, or the proxy answered instead of passing it on."""
    return not isinstance(exc, aiohttp.ClientConnectorError | aiohttp.ClientHttpProxyError)


def is_retryable_exception(exc: BaseException) -> bool:
    """Connection errors, broken or truncated bodies and timeouts are worth another try;
    an invalid URL, a refused certificate or a proxy's refusal (a 4xx: its credentials,
    a destination it forbids) is not."""
    if isinstance(exc, _PERMANENT):
        return False
    if isinstance(exc, aiohttp.ClientHttpProxyError) and 400 <= exc.status < 500 \
            and exc.status not in (408, 429):
        return False
    return isinstance(exc, aiohttp.ClientError | asyncio.TimeoutError | ConnectionError)


def may_retry(policy: RetryPolicy, request: Request, *, sent: bool) -> bool:
    """Whether the method allows another attempt: idempotent, unsent, or ``retry_post``."""
    return request.idempotent or not sent or policy.retry_post
