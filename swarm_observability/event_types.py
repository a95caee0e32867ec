"""The vocabulary of events: their types, the outcomes of scopes, and which run ids can be stored.

The lowest layer of the event modules (no pydantic here); :mod:`swarm_observability.events` re-exports
every public name.
"""

from __future__ import annotations

import hashlib
import logging
import re
from enum import StrEnum

from ._storable import storable_text
from .exceptions import InvalidRunIdError

_MAX_RUN_ID_LENGTH = 256
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")
_KNOWN_RUN_IDS_LIMIT = 4096
_WARNED_IDS: set[str] = set()

logger = logging.getLogger("swarm_observability")

KNOWN_RUN_IDS: set[str] = set()
"""Run ids already found storable, so the hot path checks each once; grown by :func:`remember_run_id` only."""


class EventType(StrEnum):
    """The event types this release emits. Unknown types read from storage stay plain strings.

    Data contracts of the agent-domain events (recorded from LangChain callbacks, see
    :mod:`swarm_observability.instrumentation.callbacks`). ``agent`` and ``node`` name the enclosing agent
    and node; each model call and tool run is a scope (``scope_id``) nested under the scope that made it.

    * ``llm_start``: ``model`` (request model, from ``ls_model_name`` or the invocation params; absent
      when the model reports none), ``provider`` (``ls_provider``, e.g. ``openai``),
      ``input_messages`` only with content capture.
    * ``llm_end``: ``outcome`` ``ok``, ``duration_ms``, ``model``/``provider`` again, ``response_model``
      when reported, ``input_tokens``/``output_tokens``/``total_tokens`` from ``usage_metadata`` (and
      ``cache_read_tokens``/``reasoning_tokens`` when its details carry them), ``usage_missing: true``
      when the call reported no usage (never a silent 0), ``finish_reasons`` (list),
      ``streamed: true`` and ``time_to_first_token_ms`` for streamed calls, ``cost_usd`` with a
      price table (``None`` for a model the table does not know), ``output_messages`` only with
      content capture.
    * ``llm_error``: ``outcome`` ``error``, ``duration_ms``, ``model``/``provider``, ``error_type``,
      ``error_message`` (the message is also the event's ``message``).
    * ``tool_start``: ``tool``, ``tool_call_id`` (when LangGraph passes one), ``tool_type``
      (``function``), ``handoff_to`` for handoff tools, ``arguments`` only with content capture.
    * ``tool_end``: ``tool``, ``tool_call_id``, ``duration_ms``, ``outcome`` (``ok``, or ``interrupted``
      for a tool that called ``interrupt()``), ``result`` only with content capture.
    * ``tool_error``: as ``tool_end`` with ``outcome`` ``error``, ``error_type``, ``error_message``; also
      for a tool that returned ``ToolMessage(status="error")`` (``error_type`` ``ToolMessageError``).
    * ``handoff`` (a point event on the scope of the agent control leaves): ``from_agent``,
      ``to_agent``, ``tool`` when a tool did it, ``via`` (``tool``, ``command`` or ``graph`` for a return
      inferred from the graph's edges, as a supervisor's worker handing back).

    A ``checkpoint`` event names a resume point (:func:`swarm_observability.checkpoint` in a node,
    :meth:`SwarmObserver.create_checkpoint` outside): ``message`` and ``data.label`` are the label,
    ``checkpoint_id`` the LangGraph checkpoint a fork from that label continues from.
    """

    SCAN_STARTED = "scan_started"
    SCAN_PAUSED = "scan_paused"
    SCAN_RESUMED = "scan_resumed"
    SCAN_CANCELLED = "scan_cancelled"
    SCAN_COMPLETE = "scan_complete"
    SCAN_ERROR = "scan_error"
    NODE_ENTER = "node_enter"
    NODE_PROGRESS = "node_progress"
    NODE_EXIT = "node_exit"
    PLAN_START = "plan_start"
    PLAN_COMPLETE = "plan_complete"
    PROBE_START = "probe_start"
    PROBE_RESULT = "probe_result"
    PROBE_COMPLETE = "probe_complete"
    AGENT_START = "agent_start"
    AGENT_COMPLETE = "agent_complete"
    LOG = "log"
    HEARTBEAT = "heartbeat"
    LLM_START = "llm_start"
    LLM_END = "llm_end"
    LLM_ERROR = "llm_error"
    TOOL_START = "tool_start"
    TOOL_END = "tool_end"
    TOOL_ERROR = "tool_error"
    HANDOFF = "handoff"
    CHECKPOINT = "checkpoint"


TERMINAL_SCAN_TYPES = frozenset(
    {EventType.SCAN_COMPLETE, EventType.SCAN_ERROR, EventType.SCAN_CANCELLED, EventType.SCAN_PAUSED}
)
"""Event types that end one scan invocation (exactly one per invocation)."""


class Outcome(StrEnum):
    """How a scope (node, probe, agent, plan, scan invocation) ended; stored in ``data["outcome"]``."""

    OK = "ok"
    ERROR = "error"
    INTERRUPTED = "interrupted"
    CANCELLED = "cancelled"
    PAUSED = "paused"


def validate_run_id(run_id: object, *, for_filename: bool = False) -> str:
    """Return ``run_id`` if it can be stored, else raise :class:`InvalidRunIdError`.

    Every run id must be a non-empty string of at most 256 characters without control characters
    or lone surrogates (a run id is a key: it is refused, never rewritten).
    With ``for_filename=True`` it must also be safe as one path component: no ``/``, ``\\``, no
    leading dot and no ``..``, so a run id can never escape the folder it is written into.
    """
    if run_id.__class__ is str and run_id in KNOWN_RUN_IDS and not for_filename:
        return run_id
    if not isinstance(run_id, str):
        raise InvalidRunIdError(run_id, f"must be a string, not {type(run_id).__name__}")
    if not run_id:
        raise InvalidRunIdError(run_id, "must not be empty")
    if len(run_id) > _MAX_RUN_ID_LENGTH:
        raise InvalidRunIdError(run_id, f"longer than {_MAX_RUN_ID_LENGTH} characters")
    if _CONTROL_CHARS.search(run_id):
        raise InvalidRunIdError(run_id, "contains control characters")
    if not storable_text(run_id):
        raise InvalidRunIdError(run_id, "is not valid Unicode (lone surrogates)")
    if for_filename and ("/" in run_id or "\\" in run_id or run_id.startswith(".") or ".." in run_id):
        raise InvalidRunIdError(run_id, "not usable as a file name (path separators or dots)")
    return run_id


def safe_run_id(value: str) -> str:
    """``value`` if the event log can store it as a run id, else a stable id derived from it.

    LangGraph accepts any thread id; the log refuses ids over 256 characters or with control
    characters. Such an id is mapped to ``thread-<sha256 prefix>`` (the same every time, so a resumed
    thread continues the same run), the original stays in the events' ``thread_id``, and a warning is
    logged once per id.
    """
    try:
        return validate_run_id(value)
    except InvalidRunIdError as exc:
        digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:32]
        mapped = f"thread-{digest}"
        if mapped not in _WARNED_IDS and len(_WARNED_IDS) < 10_000:
            _WARNED_IDS.add(mapped)
            logger.warning(
                "swarm_observability: id %.40r... cannot be a run id (%s); its events use run id %s",
                value,
                exc.reason,
                mapped,
            )
        return mapped


def remember_run_id(run_id: str) -> bool:
    """Whether ``run_id`` (a ``str``) is storable, as :func:`validate_run_id` checks; if so, it is
    added to :data:`KNOWN_RUN_IDS` (cleared when full, so the set stays bounded)."""
    if (
        not 0 < len(run_id) <= _MAX_RUN_ID_LENGTH
        or _CONTROL_CHARS.search(run_id)
        or not storable_text(run_id)
    ):
        return False
    if len(KNOWN_RUN_IDS) >= _KNOWN_RUN_IDS_LIMIT:
        KNOWN_RUN_IDS.clear()
    KNOWN_RUN_IDS.add(run_id)
    return True
