"""Overlapping test sessions: only the last one to end deletes, and against the baseline
taken before the first began."""

import os
import subprocess
import sys

from session_topics import SessionRegistry


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_session_alone_deletes_what_appeared_during_it(tmp_path):
    broker = {"old"}
    session = SessionRegistry(tmp_path)
    session.start(lambda: set(broker))
    broker |= {"mine"}
    assert session.end() == {"old"}


def test_overlapping_sessions_leave_deleting_to_the_last_one(tmp_path):
    broker = {"old"}
    first = SessionRegistry(tmp_path, pid=os.getpid())
    # The second session is another live process: this test's parent stands in for it.
    second = SessionRegistry(tmp_path, pid=os.getppid())
    first.start(lambda: set(broker))
    broker |= {"first's"}
    second.start(lambda: set(broker))
    broker |= {"second's"}
    assert first.end() is None  # the second still runs: its topics stay
    assert second.end() == {"old"}  # the baseline from before the first began


def test_a_session_that_died_without_ending_does_not_hold_up_deleting(tmp_path):
    broker = {"old"}
    crashed = SessionRegistry(tmp_path, pid=dead_pid())
    crashed.start(lambda: set(broker))
    broker |= {"crashed's"}
    session = SessionRegistry(tmp_path)
    session.start(lambda: set(broker))
    assert session.end() == {"old", "crashed's"}
