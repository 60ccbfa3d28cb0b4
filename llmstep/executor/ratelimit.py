"""A model step's answer to rate limits: the model's HTTP request, not the Runnable, is repeated.

While a step's Runnable runs (:func:`retrying`), every request an OpenAI SDK client sends (the
client of ``ChatOpenAI``, ``AzureChatOpenAI``, ``OpenAIEmbeddings``, or one the step's own code
makes) that is answered 429, 503 or 529 ("rate limited", "overloaded") is sent again after a wait:
capped exponential backoff with full jitter, and never less than what the server's
``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date) asks. The step gives up after
``max_attempts`` requests for one call, or when the next wait would take its waiting past
``max_wait`` seconds; the SDK then raises its error for that last answer, and the step exits
:data:`llmstep.exitcodes.EXIT_RATE_LIMITED` (:func:`rate_limited`) so that ``retries=`` retries it.

Nothing else is retried inside the step: the SDK's own retries (by default two, for 408, 409, 429,
5xx, timeouts and refused connections) are off while llmstep's are on, so a 400, 401 or 500, a
timeout or a connection refused fails the step at once (exit 1; ``retries=`` retries the step).
Only the request is repeated, at the level the SDK's own retry works: a prompt, a tool or a
parser around the model runs once, and a streamed answer is retried only before its first byte.

The hook wraps the SDK's ``_send_request`` (where its retry loop sends each attempt) and gives
its retry loop a budget of zero, both for the time of the step's run; a step whose payload does
not use the OpenAI SDK imports nothing here.
"""

from __future__ import annotations

import contextlib
import email.utils
import logging
import math
import random
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from llmstep import contract

log = logging.getLogger(__name__)

STATUSES = frozenset({429, 503, 529})
"""Rate limited (429), unavailable (503) and overloaded (529, Anthropic's): the answers to wait out."""
BASE_DELAY = 0.5
"""The first backoff (seconds), doubled at each retry ..."""
MAX_DELAY = 30.0
"""... up to this (the cap); a wait is then uniform in [0, backoff) (full jitter)."""


@dataclass(frozen=True)
class Policy:
    """The bounds of one step's retries (:data:`llmstep.contract.RATE_LIMIT_ENV`)."""

    max_attempts: int = contract.RATE_LIMIT_ATTEMPTS
    max_wait: float = contract.RATE_LIMIT_WAIT

    @classmethod
    def of(cls, env: Mapping[str, str]) -> Policy | None:
        """The step's policy from its environment; None when it is ``off``."""
        bounds = contract.parse_rate_limit(env.get(contract.RATE_LIMIT_ENV))
        return None if bounds is None else cls(*bounds)

    def delay(self, retry: int, headers: Any, rand: Any = random.random) -> float:
        """Seconds to wait before retry number ``retry`` (1 for the first): full jitter on the capped
        backoff, and at least what the answer's headers ask (plus up to a quarter more, so that
        steps told the same moment do not all come back at it)."""
        backoff = min(MAX_DELAY, BASE_DELAY * 2 ** min(retry - 1, 60))
        asked = retry_after(headers)
        if asked is None:
            return backoff * rand()
        return asked + min(asked / 4, backoff) * rand()


def retry_after(headers: Any) -> float | None:
    """The wait (seconds) an answer's ``retry-after-ms`` or ``Retry-After`` asks for, or None."""
    for header, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(header)
        if value is None:
            continue
        try:
            seconds = float(value) / scale
        except ValueError:
            if header == "retry-after-ms":
                continue
            parsed = email.utils.parsedate_tz(value)  # an HTTP date
            if parsed is None:
                continue
            seconds = email.utils.mktime_tz(parsed) - time.time()
        if math.isfinite(seconds):
            return max(seconds, 0.0)
    return None


def _should_wait(response: Any) -> bool:
    """Whether an answer is one llmstep waits out: a rate-limit status the server did not mark as
    not to be retried (the SDK's ``x-should-retry: false``)."""
    return response.status_code in STATUSES and response.headers.get("x-should-retry") != "false"


def _replayable(request: Any) -> bool:
    try:
        request.content  # noqa: B018 - raises when the body is a stream that cannot be sent again
    except Exception:
        return False
    return True


@contextlib.contextmanager
def retrying(policy: Policy | None, sleep: Any = time.sleep) -> Iterator[None]:
    """For the time of the block, OpenAI SDK requests answered 429/503/529 are retried under
    ``policy``, and the SDK retries nothing itself; nothing changes with no policy or no SDK."""
    hooks: tuple[Any, Any, Any] | None = None
    if policy is not None and "openai" in sys.modules:  # the payload uses the SDK: it is loaded already
        import openai._base_client
        import openai._models

        hooks = (
            getattr(openai._base_client, "SyncAPIClient", None),
            getattr(openai._base_client, "AsyncAPIClient", None),
            getattr(openai._models, "FinalRequestOptions", None),
        )
        if not all(
            hasattr(c, n) for c, n in zip(hooks, ("_send_request", "_send_request", "get_max_retries"), strict=True)
        ):
            log.warning("this OpenAI SDK has no _send_request hook: its own retries apply instead of llmstep's")
            hooks = None
    if policy is None or hooks is None:
        yield
        return
    sync, async_, options = hooks
    send, send_async, budget = sync._send_request, async_._send_request, options.get_max_retries

    def waited(attempt: int, response: Any, spent: float, request: Any) -> float | None:
        """The wait before another attempt, or None to give up on this answer."""
        if not _should_wait(response) or attempt >= policy.max_attempts or not _replayable(request):
            return None
        asked, left = retry_after(response.headers) or 0.0, policy.max_wait - spent
        if asked > left:
            log.warning(
                "the model answered %d and asks for %.1fs more, past the step's max_wait (%gs): giving up",
                response.status_code,
                asked,
                policy.max_wait,
            )
            return None
        wait = min(policy.delay(attempt, response.headers), left)
        log.info(
            "the model answered %d (attempt %d of %d): retrying in %.2fs",
            response.status_code,
            attempt,
            policy.max_attempts,
            wait,
        )
        return wait

    def send_retrying(self: Any, request: Any, **kwargs: Any) -> Any:
        spent, attempt = 0.0, 1
        while True:
            response = send(self, request, **kwargs)
            wait = waited(attempt, response, spent, request)
            if wait is None:
                return response
            response.close()
            sleep(wait)
            spent, attempt = spent + wait, attempt + 1

    async def send_retrying_async(self: Any, request: Any, **kwargs: Any) -> Any:
        import asyncio

        spent, attempt = 0.0, 1
        while True:
            response = await send_async(self, request, **kwargs)
            wait = waited(attempt, response, spent, request)
            if wait is None:
                return response
            await response.aclose()
            await asyncio.sleep(wait)
            spent, attempt = spent + wait, attempt + 1

    sync._send_request, async_._send_request = send_retrying, send_retrying_async
    options.get_max_retries = lambda self, max_retries: 0
    try:
        yield
    finally:
        sync._send_request, async_._send_request, options.get_max_retries = send, send_async, budget


def rate_limited(exc: BaseException) -> BaseException | None:
    """The model's rate-limit answer (an SDK error with status 429, 503 or 529) that ``exc`` is or
    was raised from, or None: the step then exits :data:`llmstep.exitcodes.EXIT_RATE_LIMITED`."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if getattr(current, "status_code", None) in STATUSES and hasattr(current, "response"):
            return current
        current = current.__cause__ or current.__context__
    return None
