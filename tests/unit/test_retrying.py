"""Telling an outage from a failure that counts, for the notifier's and channel-sync's intake (no
database): a connection error, or any error while the database does not answer, is waited
out without counting; anything else counts, and after the attempts the work is given up as
Failed, with its traceback; a fatal error is raised at once."""

from __future__ import annotations

import asyncio

import backorders_platform.retrying as retrying
import pytest
from sqlalchemy.exc import DBAPIError


async def _no_sleep(seconds: float) -> None:
    return None


class Work:
    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "done"


async def _answers() -> bool:
    return True


async def _silent() -> bool:
    return False


def test_outages_are_waited_out_and_failures_counted():
    lost = DBAPIError("select 1", {}, ConnectionResetError("gone"), connection_invalidated=True)
    work = Work(ConnectionRefusedError("refused"), lost, OSError("unreachable"), *[KeyError("bug")] * 2)
    seen = []
    result = asyncio.run(retrying.attempt(work, attempts=3, reachable=_answers, sleep=_no_sleep,
                                        on_error=lambda e, outage, failures, wait: seen.append((outage, failures))))
    assert result == "done" and work.calls == 6
    assert seen == [(True, 0), (True, 0), (True, 0), (False, 1), (False, 2)]


def test_work_given_as_a_lambda_is_awaited():
    work = Work(KeyError("bug"))
    result = asyncio.run(retrying.attempt(lambda: work(), attempts=3, reachable=_answers, sleep=_no_sleep))
    assert result == "done" and work.calls == 2
    again = Work(OSError("gone"))
    assert asyncio.run(retrying.until_done(lambda: again(), pause=0.0)) == "done" and again.calls == 2


def test_a_failure_that_persists_is_given_up_with_its_traceback():
    work = Work(*[ValueError("an input nothing foresaw")] * 5)
    result = asyncio.run(retrying.attempt(work, attempts=3, reachable=_answers, sleep=_no_sleep))
    assert isinstance(result, retrying.Failed) and work.calls == 3
    assert result.reason().startswith("failed 3 times: ValueError: an input nothing foresaw\nTraceback")


def test_any_error_while_the_database_does_not_answer_is_an_outage():
    work = Work(*[ValueError("odd")] * 10)
    result = asyncio.run(retrying.attempt(work, attempts=3, reachable=_silent, sleep=_no_sleep))
    assert result == "done" and work.calls == 11


def test_a_fatal_error_is_raised_at_once_and_a_handled_one_is_not_its_cause():
    class Deposed(Exception):
        pass

    with pytest.raises(Deposed):
        asyncio.run(retrying.attempt(Work(Deposed()), attempts=3, reachable=_answers, sleep=_no_sleep,
                                   fatal=(Deposed,)))
    try:
        try:
            raise OSError("handled")
        except OSError:
            raise ValueError("a bug in the handler") from None
    except ValueError as error:
        assert not retrying.looks_like_outage(error)



@pytest.mark.parametrize("trying", ["attempt", "until_done"])
def test_a_cancelled_task_stops_trying(trying):
    """tenacity catches BaseException: a task cancelled while its work runs (a worker told
    to stop during an outage) must end, not take the cancellation for a failure to retry."""
    calls = 0

    async def slow() -> None:
        nonlocal calls
        calls += 1
        await asyncio.sleep(60)

    async def scenario() -> None:
        if trying == "attempt":
            work = retrying.attempt(slow, attempts=3, reachable=_answers, sleep=_no_sleep)
        else:
            work = retrying.until_done(slow, pause=0.0)
        task = asyncio.create_task(work)
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 2)

    asyncio.run(scenario())
    assert calls == 1
