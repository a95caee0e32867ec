"""A LangGraph scan SIGKILLed mid-scan resumes in a new process, and its checkpoint and event log agree.

The child (``_crash_scan_child.py``) runs a real swarm scan (planner, a 3-wide ``Send`` fan-out of
probes, an aggregating join, a report) on a SQLite checkpointer and a SQLite event store. The test
SIGKILLs it at a seeded random moment (right after the k-th event, plus up to 20 ms; the kill moments
are spread over the whole scan), runs ``invoke(None, config)`` in a fresh child to completion, and
checks:

* the scan completed: the last event is ``scan_complete``, ``rebuild_run_state`` says completed, and
  the final checkpoint holds every probe's finding exactly once;
* the log is gapless across both processes: one ``run_id``, seq 1..n, one block of events per
  invocation, the first invocation ``scan_started``, every later one ``scan_resumed`` naming the one
  before it, and no terminal event for the killed invocation (unless it completed before the kill);
* with ``SwarmObserver(durable_node_exit=True)``, the checkpoint and the log agree about which nodes
  finished: every task that ``get_state_history`` records as finished (it has output writes, no error)
  has a ``node_exit`` with outcome ok for its task id, node and checkpoint in the log; and every
  ``node_exit`` ok in the log is such a task, or belongs to the killed invocation and was legitimately
  run again after the resume. Two cases are legitimate: the ``node_exit`` was stored but the kill came
  before LangGraph saved the node's writes (the task is re-run with the same, deterministic task id,
  so it is logged twice, once per invocation), or the kill came before the checkpoint its superstep
  started from was saved (the superstep is re-run from a new checkpoint, under new task ids, and the
  node has a ``node_exit`` ok for a checkpointed task in the final invocation).

With the default (``durable_node_exit=False``) only the weaker guarantee is checked: completion and a
gapless log; the log may miss the last events of nodes the checkpoint already has.

5 kills with ``durable_node_exit`` and 2 without by default; 30 and 10 with ``SWARM_OBS_SLOW=1``.
``SWARM_OBS_CRASH_SEED`` replays a seed.
"""

from __future__ import annotations

import itertools
import operator
import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Send

from swarm_observability import (
    EventType,
    InMemoryEventStore,
    RunStatus,
    SQLiteEventStore,
    StreamEvent,
    SwarmObserver,
    get_checkpointer,
    rebuild_run_state,
)
from tests._crash_scan_child import GRAPH_NAME, TARGETS, build_scan, scan_config, scan_input

SLOW = os.environ.get("SWARM_OBS_SLOW") == "1"
KILLS = {"durable": 30 if SLOW else 5, "default": 10 if SLOW else 2}
CHILD = Path(__file__).with_name("_crash_scan_child.py")
ROOT = Path(__file__).resolve().parents[1]
FIRST_KILL_EVENT = 3
"""The earliest kill: after the planner's first inner event (the input checkpoint is saved by then)."""
LAST_KILL_EVENT = 41
"""The latest kill: inside ``report`` (the scan has 44 events; report then sleeps 100 ms)."""
MAX_EXTRA_DELAY_S = 0.02
_T = EventType
_TERMINAL = {_T.SCAN_COMPLETE.value, _T.SCAN_ERROR.value, _T.SCAN_CANCELLED.value, _T.SCAN_PAUSED.value}


class Child:
    """One scan process: its stdout lines arrive on a queue, read by a thread so nothing blocks."""

    def __init__(self, mode: str, directory: Path, thread_id: str, durability: str) -> None:
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        }
        self.proc = subprocess.Popen(
            [sys.executable, str(CHILD), mode, str(directory), thread_id, durability],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        self.errors: list[bytes] = []
        threading.Thread(target=self._read, daemon=True).start()
        self._errors_reader = threading.Thread(target=self._read_errors, daemon=True)
        self._errors_reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        with self.proc.stdout:
            for line in self.proc.stdout:
                self.lines.put(line.decode().rstrip("\n"))
        self.lines.put(None)

    def _read_errors(self) -> None:
        assert self.proc.stderr is not None
        with self.proc.stderr:
            self.errors.extend(self.proc.stderr)

    def until(self, predicate: Any, what: str) -> str | None:
        """Read lines until one matches ``predicate`` (returned) or the child's output ends (``None``)."""
        while True:
            try:
                line = self.lines.get(timeout=60)
            except queue.Empty:
                raise AssertionError(f"the scan child printed no {what} for 60 s") from None
            if line is None:
                return None
            self.seen.append(line)
            if predicate(line):
                return line

    def finish(self) -> int:
        """Wait for the exit (SIGKILL'd or not); returns the return code."""
        try:
            return self.proc.wait(timeout=60)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()

    def stderr(self) -> str:
        """The end of what the child wrote to stderr (for assertion messages)."""
        self._errors_reader.join(5)
        return b"".join(self.errors).decode(errors="replace")[-3000:]


def _kill_after(child: Child, event_number: int, extra_delay: float) -> str:
    """SIGKILL ``child`` ``extra_delay`` s after it reports event ``event_number``; describe where it died."""
    target = f"event {event_number} "
    line = child.until(lambda text: text.startswith(target), f"event {event_number}")
    assert line is not None, f"the scan child ended before event {event_number}: {child.stderr()}"
    time.sleep(extra_delay)
    child.proc.kill()
    while child.until(lambda text: False, "end of output") is not None:
        pass
    returncode = child.finish()
    last = child.seen[-1] if child.seen else "nothing"
    if returncode == -signal.SIGKILL:
        return f"killed after {line!r}, last reported {last!r}"
    assert returncode == 0, f"scan child failed ({returncode}): {child.stderr()}"
    return f"completed before the kill ({last!r})"


def _resume(directory: Path, thread_id: str, durability: str) -> None:
    child = Child("resume", directory, thread_id, durability)
    done = child.until(lambda text: text.startswith("complete "), "completion")
    returncode = child.finish()
    assert done is not None and returncode == 0, f"resume failed ({returncode}): {child.stderr()}"


def _finished_tasks(history: Sequence[Any]) -> tuple[dict[str, tuple[str, str]], set[str]]:
    """Node tasks the checkpoint records as finished ({task id: (node, checkpoint id)}), all checkpoint ids.

    ``__start__`` (the input) is LangGraph's own task, not a node the observer wraps.
    """
    finished: dict[str, tuple[str, str]] = {}
    checkpoint_ids: set[str] = set()
    for snapshot in history:
        checkpoint_id = snapshot.config["configurable"]["checkpoint_id"]
        checkpoint_ids.add(checkpoint_id)
        for task in snapshot.tasks:
            if task.name != START and task.result is not None and task.error is None:
                finished[task.id] = (task.name, checkpoint_id)
    return finished, checkpoint_ids


def _problems(
    events: Sequence[StreamEvent], history: Sequence[Any], values: dict[str, Any], strict: bool
) -> list[str]:
    """Every violated property of a resumed scan's log, checkpoint history and final state."""
    problems: list[str] = []
    if not events:
        return ["the event log is empty"]
    gapless = [e.seq for e in events] == list(range(1, len(events) + 1))
    if not gapless:
        problems.append(f"seqs are not 1..{len(events)}: {[e.seq for e in events]}")
    if len({e.run_id for e in events}) != 1:
        problems.append(f"more than one run_id: {sorted({e.run_id for e in events})}")
    blocks: list[str | None] = []
    for event in events:
        if not blocks or blocks[-1] != event.invocation_id:
            blocks.append(event.invocation_id)
    if len(blocks) != len(set(blocks)) or None in blocks:
        problems.append(f"invocations are not contiguous blocks: {blocks}")
    if len(blocks) < 2:
        problems.append(f"{len(blocks)} invocation(s), expected the killed one and its resume")
    firsts = [e for i, e in enumerate(events) if i == 0 or e.invocation_id != events[i - 1].invocation_id]
    if firsts[0].type_name != _T.SCAN_STARTED.value:
        problems.append(f"the log starts with {firsts[0].type_name}, not scan_started")
    for before, start in itertools.pairwise(firsts):
        if start.type_name != _T.SCAN_RESUMED.value:
            problems.append(f"invocation {start.invocation_id} starts with {start.type_name}")
        elif start.data.get("previous_invocation_id") != before.invocation_id:
            problems.append(
                f"scan_resumed names {start.data.get('previous_invocation_id')}, not {before.invocation_id}"
            )
    terminals: dict[str | None, list[str]] = defaultdict(list)
    for event in events:
        if event.type_name in _TERMINAL:
            terminals[event.invocation_id].append(event.type_name)
    if (
        terminals.get(blocks[-1]) != [_T.SCAN_COMPLETE.value]
        or events[-1].type_name != _T.SCAN_COMPLETE.value
    ):
        problems.append(
            f"the last invocation ended with {terminals.get(blocks[-1])}, last event {events[-1].type_name}"
        )
    for invocation in blocks[:-1]:
        if terminals.get(invocation, [_T.SCAN_COMPLETE.value]) != [_T.SCAN_COMPLETE.value]:
            problems.append(f"invocation {invocation} ended with {terminals[invocation]}")
    status = rebuild_run_state(events, events[0].run_id).status if gapless else None
    if gapless and status is not RunStatus.COMPLETED:
        problems.append(f"rebuilt status is {status}")
    if sorted(f["target"] for f in values.get("findings", [])) != sorted(TARGETS) or "report" not in values:
        problems.append(f"final checkpoint values are wrong: {values}")
    if strict:
        problems.extend(_disagreements(events, history, blocks[-1]))
    return problems


def _disagreements(events: Sequence[StreamEvent], history: Sequence[Any], final: str | None) -> list[str]:
    """Where the checkpoint history and the log disagree about which node tasks finished."""
    problems: list[str] = []
    finished, checkpoint_ids = _finished_tasks(history)
    exits: dict[str | None, list[StreamEvent]] = defaultdict(list)
    for event in events:
        if event.type_name == _T.NODE_EXIT.value and event.data.get("outcome") == "ok":
            exits[event.task_id].append(event)
    if not finished:
        problems.append("the checkpoint history records no finished task")
    for task_id, (node, checkpoint_id) in finished.items():
        logged = exits.get(task_id, [])
        if not logged:
            problems.append(f"checkpointed task {node} {task_id} has no node_exit ok in the log")
        for event in logged:
            if (event.node, event.checkpoint_id) != (node, checkpoint_id):
                problems.append(
                    f"task {task_id}: the log has {event.node}@{event.checkpoint_id}, "
                    f"the checkpoint {node}@{checkpoint_id}"
                )
    rerun_in_final = {
        finished[e.task_id][0] for e in events if e.invocation_id == final and e.task_id in finished
    }
    for task_id, logged in exits.items():
        if len({e.invocation_id for e in logged}) != len(logged):
            problems.append(f"task {task_id} ({logged[0].node}) exited ok twice in one invocation")
        if task_id in finished:
            continue
        for event in logged:
            if event.invocation_id == final:
                problems.append(
                    f"the final invocation logged {event.node} {task_id}, which no checkpoint has"
                )
            elif event.checkpoint_id in checkpoint_ids:
                problems.append(
                    f"{event.node} {task_id} ran from saved checkpoint {event.checkpoint_id} but is not "
                    "recorded as finished there"
                )
            elif event.node not in rerun_in_final:
                problems.append(f"{event.node} {task_id} ran from a lost checkpoint and was never re-run")
    return problems


def _verify(directory: Path, thread_id: str, strict: bool) -> list[str]:
    store = SQLiteEventStore(directory / "events.db", read_only=True)
    try:
        events = store.load(thread_id)
    finally:
        store.close()
    with get_checkpointer(path=directory / "checkpoints.db") as saver:
        graph = build_scan().compile(checkpointer=saver, name=GRAPH_NAME)
        config = scan_config(thread_id)
        history = list(graph.get_state_history(config))
        values = dict(graph.get_state(config).values)
    return _problems(events, history, values, strict)


def _kill_moments(rng: random.Random, kills: int) -> list[tuple[int, float]]:
    """One kill per equal slice of the scan's events, so the kills cover planner, fan-out, join and report."""
    span = (LAST_KILL_EVENT - FIRST_KILL_EVENT + 1) / kills
    moments = []
    for i in range(kills):
        low = FIRST_KILL_EVENT + int(i * span)
        high = max(low, FIRST_KILL_EVENT + int((i + 1) * span) - 1)
        moments.append((rng.randint(low, high), rng.uniform(0.0, MAX_EXTRA_DELAY_S)))
    return moments


@pytest.mark.timeout(120)
@pytest.mark.parametrize("durability", ["durable", "default"])
def test_scan_killed_mid_scan_resumes_in_a_new_process(durability: str, tmp_path: Path) -> None:
    """Killed mid-scan and resumed in a new process: completes, gapless log, checkpoint and log agree."""
    seed = int(os.environ.get("SWARM_OBS_CRASH_SEED") or random.randrange(2**32))
    rng = random.Random(seed)
    mid_scan = 0
    for number, (event_number, delay) in enumerate(_kill_moments(rng, KILLS[durability])):
        directory = tmp_path / f"kill-{number}"
        directory.mkdir()
        thread_id = f"scan-{number}"
        where = _kill_after(Child("start", directory, thread_id, durability), event_number, delay)
        mid_scan += where.startswith("killed")
        _resume(directory, thread_id, durability)
        problems = _verify(directory, thread_id, strict=durability == "durable")
        assert not problems, f"seed={seed} kill {number} {where}: " + "; ".join(problems[:6])
    assert mid_scan > 0, f"seed={seed}: every scan completed before its kill, the test proved nothing"


def _scan_in_process(directory: Path, thread_id: str) -> None:
    """Two invocations in this process, as a kill would leave them: the first stopped after the probes."""
    store = SQLiteEventStore(directory / "events.db")
    observer = SwarmObserver(store=store, heartbeat_interval=None, durable_node_exit=True)
    with get_checkpointer(path=directory / "checkpoints.db") as saver:
        builder = build_scan()
        graph = observer.instrument(
            builder.compile(checkpointer=saver, name=GRAPH_NAME, interrupt_before=["aggregate"])
        )
        graph.invoke(scan_input(), scan_config(thread_id))
        graph.invoke(None, scan_config(thread_id))
    observer.close()
    store.close()


@pytest.mark.timeout(60)
def test_verifier_detects_a_missing_node_exit_and_a_broken_log(tmp_path: Path) -> None:
    """The verifier is not blind: a lost node_exit, a gap and an unresumed log are each reported."""
    _scan_in_process(tmp_path, "t")
    with get_checkpointer(path=tmp_path / "checkpoints.db") as saver:
        graph = build_scan().compile(checkpointer=saver, name=GRAPH_NAME)
        history = list(graph.get_state_history(scan_config("t")))
        values = dict(graph.get_state(scan_config("t")).values)
    store = SQLiteEventStore(tmp_path / "events.db", read_only=True)
    events = store.load("t")
    store.close()
    # the interrupt_before pause is a terminal event of the first invocation; a kill leaves none
    events = [e for e in events if e.type_name != _T.SCAN_PAUSED.value]
    events = [e.model_copy(update={"seq": i}) for i, e in enumerate(events, 1)]
    assert _problems(events, history, values, strict=True) == []

    probe_exit = next(e for e in events if e.type_name == _T.NODE_EXIT.value and e.node == "probe")
    lost = [
        e.model_copy(update={"data": {**e.data, "outcome": "error"}}) if e is probe_exit else e
        for e in events
    ]
    assert _problems(lost, history, values, strict=True) == [
        f"checkpointed task probe {probe_exit.task_id} has no node_exit ok in the log"
    ]
    gap = [e.model_copy(update={"seq": e.seq + 1}) if e.seq > 5 else e for e in events]  # type: ignore[operator]
    assert any(p.startswith("seqs are not") for p in _problems(gap, history, values, strict=False))
    first = [e for e in events if e.invocation_id == events[0].invocation_id]
    assert "1 invocation(s), expected the killed one and its resume" in _problems(
        first, history, values, strict=False
    )


# -- durable_node_exit in process ----------------------------------------------------------------------


class _SlowStore:
    """A store whose commits take a while, as on a slow disk; reads go straight to the in-memory store."""

    backend = "slow"

    def __init__(self) -> None:
        self.inner = InMemoryEventStore()

    def append_batch(self, events: Sequence[StreamEvent]) -> None:
        time.sleep(0.03)
        self.inner.append_batch(events)

    def append(self, event: StreamEvent) -> None:
        self.append_batch([event])

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class _WatchingSaver(InMemorySaver):
    """Records, whenever LangGraph saves a task's writes, whether the log already has its node_exit."""

    def __init__(self, store: _SlowStore, run_id: str) -> None:
        super().__init__()
        self.store, self.run_id = store, run_id
        self.seen: dict[str, bool] = {}

    def put_writes(
        self, config: Any, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        exits = {e.task_id for e in self.store.inner.load(self.run_id) if e.type_name == _T.NODE_EXIT.value}
        self.seen[task_id] = task_id in exits
        super().put_writes(config, writes, task_id, task_path)

    async def aput_writes(
        self, config: Any, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        self.put_writes(config, writes, task_id, task_path)


class _SmallState(TypedDict, total=False):
    items: Annotated[list[int], operator.add]


def _small_graph(node_mode: str, saver: InMemorySaver) -> Any:
    """start -> 2x Send work (sync or async) -> end, on ``saver``."""

    def fan_out(state: _SmallState) -> list[Send]:
        return [Send("work", {"items": [i]}) for i in range(2)]

    if node_mode == "async":

        async def work(state: _SmallState) -> _SmallState:
            return {"items": state["items"]}

    else:

        def work(state: _SmallState) -> _SmallState:  # type: ignore[misc]
            return {"items": state["items"]}

    builder = StateGraph(_SmallState)
    builder.add_node("start", lambda state: {"items": [-1]})
    builder.add_node("work", work)
    builder.add_node("end", lambda state: {})
    builder.add_edge(START, "start")
    builder.add_conditional_edges("start", fan_out, ["work"])
    builder.add_edge("work", "end")
    builder.add_edge("end", END)
    return builder.compile(checkpointer=saver)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("api", ["invoke", "ainvoke"])
async def test_durable_node_exit_is_stored_before_langgraph_saves_the_writes(api: str) -> None:
    """With durable_node_exit every node's node_exit is in the store when LangGraph checkpoints its writes."""
    store = _SlowStore()
    saver = _WatchingSaver(store, "t")
    observer = SwarmObserver(store=store, heartbeat_interval=None, durable_node_exit=True)  # type: ignore[arg-type]
    graph = observer.instrument(_small_graph("async" if api == "ainvoke" else "sync", saver))
    if api == "invoke":
        result = graph.invoke({"items": []}, {"configurable": {"thread_id": "t"}})
    else:
        result = await graph.ainvoke({"items": []}, {"configurable": {"thread_id": "t"}})
    observer.close()
    assert sorted(result["items"]) == [-1, 0, 1]
    node_tasks = {e.task_id for e in store.inner.load("t") if e.type_name == _T.NODE_ENTER.value}
    assert len(node_tasks) == 4 and node_tasks <= saver.seen.keys()  # the rest is LangGraph's input task
    assert all(saver.seen[task_id] for task_id in node_tasks), saver.seen
