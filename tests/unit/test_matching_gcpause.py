"""The collector is paused for the outermost matching step only, and restored as it was."""

from __future__ import annotations

import gc
import threading

import pytest

from node.matching.gcpause import gc_paused, gc_paused_call


def test_nested_and_concurrent_pauses_resume_once_at_the_end() -> None:
    assert gc.isenabled()
    inner_started, release = threading.Event(), threading.Event()

    def other() -> None:
        with gc_paused():
            inner_started.set()
            release.wait(5)

    with gc_paused():
        assert not gc.isenabled()
        thread = threading.Thread(target=other)
        thread.start()
        inner_started.wait(5)
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert not gc.isenabled()  # the other thread's step still runs
    release.set()
    thread.join(5)
    assert gc.isenabled()


def test_a_collector_disabled_before_stays_disabled() -> None:
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_the_decorator_pauses_and_passes_through_results_and_errors() -> None:
    @gc_paused_call
    def state(x: int) -> tuple[bool, int]:
        if x < 0:
            raise ValueError("negative")
        return gc.isenabled(), x

    assert state(3) == (False, 3)
    assert gc.isenabled()
    with pytest.raises(ValueError, match="negative"):
        state(-1)
    assert gc.isenabled()
