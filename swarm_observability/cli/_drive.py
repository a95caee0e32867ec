"""Run one invocation of an instrumented graph from the command line (``demo``, ``resume --graph``).

What the driver adds around ``astream``:

* the live view, fed from the swarm's own event stream (``stream_mode="custom"``, subgraphs on);
* control: the scan's :class:`CancellationManager` watches the store's control channel, so
  ``swarm-obs cancel|pause|resume|drain RUN`` from another terminal is honoured at the next safe
  point; Ctrl-C requests a cancel the same way (a second Ctrl-C cancels the asyncio task at once);
  every invocation gets a fresh LangGraph ``RunControl`` so ``drain`` can stop it at a superstep;
* ``pause_after=N``: pause once N probes have completed, wait, resume (a visible pause/resume);
* the outcome, read back from the event log (the log decides, not LangGraph's ``next``).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langgraph.errors import GraphDrained

from ..control import get_manager, open_channel, remove_manager
from ..exceptions import ScanCancelled
from ..state import RunState, rebuild_run_state
from ._live import LiveView

if TYPE_CHECKING:
    from langchain_core.runnables import RunnableConfig

_CANCEL_REASON = "interrupted (Ctrl-C)"


@dataclass
class DriveResult:
    """How an invocation ended, according to the event log."""

    state: RunState
    """The run state rebuilt from the store after the invocation."""
    error: BaseException | None = None
    """The exception the invocation raised, if any (already recorded as ``scan_error``)."""


async def drive(
    observer: Any,
    graph: Any,
    graph_input: Any,
    config: RunnableConfig,
    *,
    run_id: str,
    view: LiveView,
    control_path: Path | str | None,
    pause_after: int | None = None,
    pause_seconds: float = 1.5,
) -> DriveResult:
    """Run ``graph`` once with live output and control; return the outcome from the log."""
    remove_manager(run_id)
    manager = get_manager(run_id)
    channel = open_channel(control_path) if control_path is not None else None
    watcher = None
    if channel is not None:
        manager.sync_from(channel)
        watcher = manager.watch(channel)
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    presses = 0

    def on_sigint() -> None:
        nonlocal presses
        presses += 1
        if presses == 1:
            view.print_line("cancelling at the next safe point ... (Ctrl-C again to stop at once)", "yellow")
            manager.cancel(_CANCEL_REASON)
        elif task is not None:
            manager.cancel(_CANCEL_REASON, hard=True)
            task.cancel()

    installed = _install_sigint(loop, on_sigint)
    probes_done = 0
    error: BaseException | None = None
    try:
        async for event in observer.events(graph, graph_input, config, control=manager.run_control()):
            view.update(event)
            if event.type_name == "probe_complete" and pause_after is not None:
                probes_done += 1
                if probes_done == pause_after:
                    view.print_line(f"pausing after {pause_after} probe(s) for {pause_seconds:g} s", "cyan")
                    manager.pause()
                    loop.call_later(pause_seconds, _resume, manager, view, pause_seconds)
    except (ScanCancelled, GraphDrained, asyncio.CancelledError) as exc:
        error = exc
    except Exception as exc:
        error = exc
    finally:
        if installed:
            loop.remove_signal_handler(signal.SIGINT)
        if watcher is not None:
            watcher.stop()
        if channel is not None:
            channel.close()
        manager.resume()
        remove_manager(run_id)
        with contextlib.suppress(Exception):
            await observer.emitter.aflush()
    if isinstance(error, asyncio.CancelledError) and presses < 2:
        raise error
    return DriveResult(rebuild_run_state(observer.emitter.store, run_id), error)


def _resume(manager: Any, view: LiveView, seconds: float) -> None:
    view.print_line(f"resuming after {seconds:g} s", "cyan")
    manager.resume()


def _install_sigint(loop: asyncio.AbstractEventLoop, handler: Any) -> bool:
    if threading.current_thread() is not threading.main_thread():
        return False
    try:
        loop.add_signal_handler(signal.SIGINT, handler)
    except (NotImplementedError, RuntimeError, ValueError):
        return False
    return True
