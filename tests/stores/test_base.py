"""Shared store helpers: the garbage-collector pause used by bulk loads."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest

from swarm_observability.exceptions import DuplicateEventError, SequenceConflictError
from swarm_observability.stores.base import batch_events, check_batch, gc_paused, query_filter

from .conftest import ev, run_events


@pytest.fixture(autouse=True)
def _restore_gc() -> Iterator[None]:
    was = gc.isenabled()
    yield
    if was:
        gc.enable()
    else:
        gc.disable()


@pytest.mark.parametrize("enabled", [True, False])
def test_gc_pause_restores_the_previous_state_even_on_error(enabled: bool) -> None:
    """The collector is off inside, and back to exactly its previous state after, also after an exception."""
    if enabled:
        gc.enable()
    else:
        gc.disable()
    with pytest.raises(RuntimeError), gc_paused():
        assert not gc.isenabled()
        raise RuntimeError("boom")
    assert gc.isenabled() is enabled


@pytest.mark.timeout(30)
def test_overlapping_pauses_reenable_only_when_the_last_ends() -> None:
    """Two threads pausing at once: the collector stays off until both are done, then is on again."""
    gc.enable()
    inside, release = threading.Event(), threading.Event()

    def other() -> None:
        with gc_paused():
            inside.set()
            release.wait(10)

    thread = threading.Thread(target=other)
    thread.start()
    inside.wait(10)
    with gc_paused():
        pass
    assert not gc.isenabled()
    release.set()
    thread.join(10)
    assert gc.isenabled()


def test_batch_events_refuses_a_non_event_naming_its_type() -> None:
    """batch_events returns the batch as a tuple and names the type of the first non-event."""
    events = run_events("a", 2)
    assert batch_events(iter(events)) == tuple(events)
    with pytest.raises(TypeError, match="got dict"):
        batch_events([events[0], {"type": "log"}])


@pytest.mark.parametrize("interleaved", [False, True])
def test_check_batch_names_the_first_offending_event(interleaved: bool) -> None:
    """check_batch returns each run's new last seq, reads a run's last seq once, and raises for the
    first bad event (a gap, a repeated id), one run or several."""
    looked: list[str] = []

    def lookup(run: str) -> int:
        looked.append(run)
        return {"a": 4}.get(run, 0)

    good = run_events("a", 3, first_seq=5)
    if interleaved:
        good.insert(1, ev("b", 1))
    expected = {"a": 7, "b": 1} if interleaved else {"a": 7}
    assert check_batch(good, lookup_last=lookup) == expected
    assert sorted(looked) == sorted(expected)
    gap = [*good, ev("a", 9)]
    with pytest.raises(SequenceConflictError) as info:
        check_batch(gap, lookup_last=lookup)
    assert (info.value.run_id, info.value.expected, info.value.actual) == ("a", 8, 9)
    repeated = [*good, ev("a", 8, id=good[0].id)]
    with pytest.raises(DuplicateEventError) as dup:
        check_batch(repeated, lookup_last=lookup)
    assert dup.value.event_id == good[0].id
    assert check_batch(good, {"a": 4}) == expected  # a run missing from the dict, no lookup: 0


def test_query_filter_normalizes_arguments() -> None:
    """query_filter clamps a negative limit to 0, keeps an empty type set, and filters by type and since."""
    early, late = ev("a", 1, at=0), ev("a", 2, "node_enter", at=10)
    assert query_filter([], None, -5).newest_first([early, late]) == []
    assert query_filter(None, None, None).newest_first([early, late]) == [late, early]
    assert query_filter("log", None, 1).newest_first([early, late]) == [early]
    assert query_filter(None, late.timestamp, None).newest_first([early, late]) == [late]
