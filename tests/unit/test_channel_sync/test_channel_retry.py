"""Retries: which answers are tried again, and how long to wait (Retry-After first)."""

from __future__ import annotations

from datetime import UTC, datetime

import aiohttp
from channel_sync.channels.http import Response, retry_delay, send_with_retries
from channel_sync.config import RetrySettings

POLICY = RetrySettings(max_attempts=4, backoff_seconds=0.5, max_backoff_seconds=3, max_retry_after_seconds=120)


def test_retry_after_in_seconds_or_as_a_date_wins_over_the_backoff():
    assert retry_delay(Response(429, "", {"Retry-After": "7"}), 1, POLICY) == 7
    now = datetime(2025, 4, 30, 12, 0, 0, tzinfo=UTC)
    dated = Response(503, "", {"Retry-After": "Wed, 30 Apr 2025 12:00:30 GMT"})
    assert retry_delay(dated, 1, POLICY, now) == 30
    assert retry_delay(Response(429, "", {"Retry-After": "9999"}), 1, POLICY) == 120  # capped
    assert retry_delay(Response(429, "", {"Retry-After": "soon"}), 1, POLICY) == 0.5  # unreadable


def test_retry_after_is_found_whatever_the_case_of_its_name():
    assert retry_delay(Response(429, "", {"retry-after": "7"}), 1, POLICY) == 7
    assert retry_delay(Response(503, "", {"RETRY-AFTER": "5"}), 1, POLICY) == 5


def test_exponential_backoff_without_retry_after():
    assert [retry_delay(Response(500, ""), n, POLICY) for n in (1, 2, 3, 4)] == [0.5, 1, 2, 3]
    assert retry_delay(None, 2, POLICY) == 1  # no answer at all


class Scripted:
    """Answers in turn; an exception instance is raised instead."""

    def __init__(self, *answers) -> None:
        self.answers = list(answers)
        self.calls = 0

    async def __call__(self) -> Response:
        self.calls += 1
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


async def run(*answers):
    call, waits = Scripted(*answers), []

    async def sleep(seconds):
        waits.append(seconds)

    return await send_with_retries(call, POLICY, sleep=sleep), call.calls, waits


async def test_429_then_success_waits_what_the_server_asked():
    done, calls, waits = await run(Response(429, "slow down", {"Retry-After": "2"}), Response(200, "ok"))
    assert (done.kind, done.attempts, calls, waits) == ("accepted", 2, 2, [2.0])


async def test_5xx_and_connection_errors_are_retried_then_given_up():
    done, calls, waits = await run(
        Response(500, "boom"), aiohttp.ClientConnectionError("refused"), Response(502, "bad gateway"),
        Response(503, "still down"),
    )
    assert (done.kind, done.attempts, done.status, done.body) == ("gave_up", 4, 503, "still down")
    assert waits == [0.5, 1, 2]


async def test_other_4xx_are_answered_at_once_with_the_body():
    done, calls, waits = await run(Response(400, '{"message": "unknown sku"}'))
    assert (done.kind, done.status, done.body, calls, waits) == ("rejected", 400, '{"message": "unknown sku"}', 1, [])


async def test_no_answer_at_all_is_given_up_with_the_error():
    error = aiohttp.ClientConnectionError("connection refused")
    done, calls, _ = await run(error, error, error, error)
    assert (done.kind, done.status, calls) == ("gave_up", None, 4)
    assert "connection refused" in done.body
