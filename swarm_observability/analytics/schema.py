"""The tables of the analytics database and the SQL that derives them from ``events``.

Every derived table is a pure function of the ``events`` table, and each row is a function of the
events sharing one key (a run, an invocation, a scope, an event). So an incremental update that
recomputes the rows of exactly the keys a new batch touches gives the same table as a rebuild from
scratch: the property the test suite checks after random batch sizes and a SIGKILL.

Tables (timestamps are UTC ``TIMESTAMP``; durations in milliseconds)::

    events        every stored field of every event (``ts`` = ``timestamp``, ``data`` as JSON), plus
                  ``outcome`` and ``duration_ms`` lifted out of ``data`` for convenience
    runs          one row per run: status (from its latest scan lifecycle event), graph, event and
                  invocation counts, first/last time, errors
    invocations   one row per scan invocation: how it started (started/resumed, from which
                  checkpoint), how it ended, duration, event count
    scopes        one row per node / probe / agent / plan / model / tool execution: kind, name,
                  parent, start, end, duration, outcome, error, model, tokens and cost where present
    errors        one row per event whose outcome is ``error`` (scan, node, probe, agent, model,
                  tool, or a custom event type)
    projection_state   the last projected seq of every run (what the tailer resumes from)
    projection_meta    schema version of these tables
"""

from __future__ import annotations

SCHEMA_VERSION = "2"
"""Bump when a table changes shape or meaning: an older database is then refused (rebuild it)."""

EVENT_COLUMNS: dict[str, str] = {
    "type": "VARCHAR",
    "run_id": "VARCHAR",
    "id": "VARCHAR",
    "seq": "BIGINT",
    "timestamp": "VARCHAR",
    "version": "INTEGER",
    "thread_id": "VARCHAR",
    "node": "VARCHAR",
    "agent": "VARCHAR",
    "probe": "VARCHAR",
    "message": "VARCHAR",
    "data": "JSON",
    "progress": "DOUBLE",
    "step": "BIGINT",
    "task_id": "VARCHAR",
    "namespace": "VARCHAR[]",
    "checkpoint_id": "VARCHAR",
    "invocation_id": "VARCHAR",
    "scope_id": "VARCHAR",
    "parent_scope_id": "VARCHAR",
    "trace_id": "VARCHAR",
    "span_id": "VARCHAR",
    "sanitized": "JSON",
    "prev_hash": "VARCHAR",
    "time_unix_nano": "BIGINT",
}
"""Fields of a serialized ``StreamEvent`` and their DuckDB types, as ``read_json`` reads them."""

SCOPE_TYPES: tuple[tuple[str, str, str], ...] = (
    ("node_enter", "node", "open"),
    ("node_exit", "node", "close"),
    ("probe_start", "probe", "open"),
    ("probe_complete", "probe", "close"),
    ("agent_start", "agent", "open"),
    ("agent_complete", "agent", "close"),
    ("plan_start", "plan", "open"),
    ("plan_complete", "plan", "close"),
    ("llm_start", "model", "open"),
    ("llm_end", "model", "close"),
    ("llm_error", "model", "close"),
    ("tool_start", "tool", "open"),
    ("tool_end", "tool", "close"),
    ("tool_error", "tool", "close"),
)
"""(event type, scope kind, open/close): which events open and close a row of ``scopes``."""

LIFECYCLE = "('scan_started', 'scan_resumed', 'scan_paused', 'scan_complete', 'scan_error', 'scan_cancelled')"
_STATUS = """CASE {col}
        WHEN 'scan_started' THEN 'running' WHEN 'scan_resumed' THEN 'running'
        WHEN 'scan_paused' THEN 'paused' WHEN 'scan_complete' THEN 'completed'
        WHEN 'scan_error' THEN 'failed' WHEN 'scan_cancelled' THEN 'cancelled'
        ELSE 'pending' END"""

DDL = """
CREATE TABLE IF NOT EXISTS projection_meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL);
CREATE TABLE IF NOT EXISTS projection_state (run_id VARCHAR PRIMARY KEY, last_seq BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS scope_types (
    type VARCHAR PRIMARY KEY, kind VARCHAR NOT NULL, role VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    run_id VARCHAR NOT NULL, seq BIGINT NOT NULL, id VARCHAR NOT NULL, type VARCHAR NOT NULL,
    ts TIMESTAMP NOT NULL, version INTEGER, thread_id VARCHAR, node VARCHAR, agent VARCHAR,
    probe VARCHAR, message VARCHAR, data JSON, progress DOUBLE, step BIGINT, task_id VARCHAR,
    namespace VARCHAR[], checkpoint_id VARCHAR, invocation_id VARCHAR, scope_id VARCHAR,
    parent_scope_id VARCHAR, trace_id VARCHAR, span_id VARCHAR, sanitized JSON, prev_hash VARCHAR,
    time_unix_nano BIGINT, outcome VARCHAR, duration_ms DOUBLE
);
CREATE TABLE IF NOT EXISTS runs (
    run_id VARCHAR NOT NULL, thread_id VARCHAR, graph VARCHAR, status VARCHAR NOT NULL,
    events BIGINT NOT NULL, last_seq BIGINT NOT NULL, invocations BIGINT NOT NULL,
    started_at TIMESTAMP NOT NULL, last_at TIMESTAMP NOT NULL, errors BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS invocations (
    run_id VARCHAR NOT NULL, invocation_id VARCHAR NOT NULL, thread_id VARCHAR, graph VARCHAR,
    start_type VARCHAR, previous_invocation_id VARCHAR, from_checkpoint_id VARCHAR,
    status VARCHAR NOT NULL, end_type VARCHAR, first_seq BIGINT NOT NULL, last_seq BIGINT NOT NULL,
    events BIGINT NOT NULL, started_at TIMESTAMP NOT NULL, ended_at TIMESTAMP, duration_ms DOUBLE,
    error_type VARCHAR, error_message VARCHAR
);
CREATE TABLE IF NOT EXISTS scopes (
    run_id VARCHAR NOT NULL, scope_id VARCHAR NOT NULL, kind VARCHAR NOT NULL, name VARCHAR,
    node VARCHAR, agent VARCHAR, parent_scope_id VARCHAR, invocation_id VARCHAR, thread_id VARCHAR,
    step BIGINT, task_id VARCHAR, start_seq BIGINT NOT NULL, end_seq BIGINT,
    started_at TIMESTAMP NOT NULL, ended_at TIMESTAMP, duration_ms DOUBLE, outcome VARCHAR,
    error_type VARCHAR, error_message VARCHAR, model VARCHAR,
    input_tokens BIGINT, output_tokens BIGINT, total_tokens BIGINT, cost_usd DOUBLE
);
CREATE TABLE IF NOT EXISTS errors (
    run_id VARCHAR NOT NULL, seq BIGINT NOT NULL, ts TIMESTAMP NOT NULL, type VARCHAR NOT NULL,
    kind VARCHAR NOT NULL, name VARCHAR, node VARCHAR, invocation_id VARCHAR, scope_id VARCHAR,
    error_type VARCHAR, error_message VARCHAR
);
"""

DERIVED_TABLES = ("runs", "invocations", "scopes", "errors")
"""The tables computed from ``events`` (``events`` and ``projection_state`` are written directly)."""


def ingest_select(source: str) -> str:
    """SELECT turning the rows of ``source`` (``read_json`` output) into ``events`` rows."""
    return f"""
SELECT run_id, seq, id, type, CAST("timestamp" AS TIMESTAMP) AS ts, version, thread_id, node, agent,
    probe, message, data, progress, step, task_id, namespace, checkpoint_id, invocation_id, scope_id,
    parent_scope_id, trace_id, span_id, sanitized, prev_hash, time_unix_nano,
    data->>'outcome' AS outcome, TRY_CAST(data->>'duration_ms' AS DOUBLE) AS duration_ms
FROM {source}"""


def runs_select(events: str) -> str:
    """Rows of ``runs`` for every run in ``events`` (all of a run's events must be in it)."""
    return f"""
SELECT run_id, thread_id, graph, {_STATUS.format(col="last_lifecycle")} AS status, events, last_seq,
    invocations, started_at, last_at, errors
FROM (
    SELECT run_id,
        arg_min(thread_id, seq) FILTER (WHERE thread_id IS NOT NULL) AS thread_id,
        arg_min(data->>'graph', seq) FILTER (WHERE type IN ('scan_started', 'scan_resumed')) AS graph,
        arg_max(type, seq) FILTER (WHERE type IN {LIFECYCLE}) AS last_lifecycle,
        count(*) AS events, max(seq) AS last_seq,
        count(DISTINCT invocation_id) AS invocations,
        min(ts) AS started_at, max(ts) AS last_at,
        count(*) FILTER (WHERE outcome = 'error') AS errors
    FROM {events} GROUP BY run_id
)"""


def invocations_select(events: str) -> str:
    """Rows of ``invocations`` for every invocation in ``events``."""
    return f"""
SELECT run_id, invocation_id, thread_id, graph, start_type, previous_invocation_id, from_checkpoint_id,
    {_STATUS.format(col="last_lifecycle")} AS status,
    CASE WHEN last_lifecycle IN ('scan_started', 'scan_resumed') THEN NULL ELSE last_lifecycle END
        AS end_type,
    first_seq, last_seq, events, started_at,
    CASE WHEN last_lifecycle IN ('scan_started', 'scan_resumed') THEN NULL ELSE last_ts END AS ended_at,
    CASE WHEN last_lifecycle IN ('scan_started', 'scan_resumed') THEN NULL ELSE last_duration END
        AS duration_ms,
    CASE WHEN last_lifecycle = 'scan_error' THEN last_data->>'error_type' END AS error_type,
    CASE WHEN last_lifecycle = 'scan_error' THEN last_data->>'error_message' END AS error_message
FROM (
    SELECT run_id, invocation_id,
        arg_min(thread_id, seq) FILTER (WHERE thread_id IS NOT NULL) AS thread_id,
        arg_min(type, seq) FILTER (WHERE type IN ('scan_started', 'scan_resumed')) AS start_type,
        arg_min(data, seq) FILTER (WHERE type IN ('scan_started', 'scan_resumed')) AS start_data,
        start_data->>'graph' AS graph,
        start_data->>'previous_invocation_id' AS previous_invocation_id,
        start_data->>'from_checkpoint_id' AS from_checkpoint_id,
        arg_max(type, seq) FILTER (WHERE type IN {LIFECYCLE}) AS last_lifecycle,
        arg_max(ts, seq) FILTER (WHERE type IN {LIFECYCLE}) AS last_ts,
        arg_max(duration_ms, seq) FILTER (WHERE type IN {LIFECYCLE}) AS last_duration,
        arg_max(data, seq) FILTER (WHERE type IN {LIFECYCLE}) AS last_data,
        min(seq) AS first_seq, max(seq) AS last_seq, count(*) AS events, min(ts) AS started_at
    FROM {events} WHERE invocation_id IS NOT NULL GROUP BY run_id, invocation_id
)"""


def scopes_select(events: str) -> str:
    """Rows of ``scopes`` for every scope in ``events`` (a table name: it is read three times): its
    first opening event paired with its first closing one (a scope without an opening event gets no
    row).

    The pair is found by a grouping on small columns (the first open and close seq of each scope) and
    fetched by joins on ``(run_id, seq)``: carrying whole events through the grouping (``arg_min`` of
    a struct) cost twice the CPU. Each picked event's ``data`` is parsed once for every field read
    from it.
    """
    return f"""
WITH k AS (
    SELECT e.run_id, e.scope_id, min(e.seq) FILTER (WHERE t.role = 'open') AS o_seq,
        min(e.seq) FILTER (WHERE t.role = 'close') AS c_seq
    FROM {events} e JOIN scope_types t ON t.type = e.type
    WHERE e.scope_id IS NOT NULL
    GROUP BY e.run_id, e.scope_id
    HAVING o_seq IS NOT NULL
), x AS (
    SELECT k.run_id, k.scope_id, t.kind, o.node, o.probe, o.agent, o.message, o.parent_scope_id,
        o.invocation_id, o.thread_id, o.step, o.task_id, o.seq AS o_seq, o.ts AS o_ts,
        c.seq AS c_seq, c.ts AS c_ts, c.duration_ms AS c_duration, c.outcome AS c_outcome,
        json_extract_string(o.data, ['$.model', '$.tool', '$.name']) AS od,
        json_extract_string(c.data, ['$.model', '$.tool', '$.error_type', '$.error_message',
            '$.input_tokens', '$.output_tokens', '$.total_tokens', '$.cost_usd']) AS cd
    FROM k JOIN {events} o ON o.run_id = k.run_id AND o.seq = k.o_seq
    JOIN scope_types t ON t.type = o.type
    LEFT JOIN {events} c ON c.run_id = k.run_id AND c.seq = k.c_seq
)
SELECT run_id, scope_id, kind,
    CASE kind
        WHEN 'node' THEN node WHEN 'probe' THEN probe WHEN 'agent' THEN agent
        WHEN 'plan' THEN coalesce(node, 'plan')
        WHEN 'model' THEN coalesce(od[1], cd[1], message)
        ELSE coalesce(od[2], od[3], cd[2], message)
    END AS name,
    node, agent, parent_scope_id, invocation_id, thread_id, step, task_id,
    o_seq AS start_seq, c_seq AS end_seq, o_ts AS started_at, c_ts AS ended_at,
    CASE WHEN c_seq IS NOT NULL
        THEN coalesce(c_duration, CAST(epoch_ms(c_ts) - epoch_ms(o_ts) AS DOUBLE)) END AS duration_ms,
    CASE WHEN c_seq IS NOT NULL THEN coalesce(c_outcome, 'ok') END AS outcome,
    cd[3] AS error_type, cd[4] AS error_message,
    CASE WHEN kind = 'model' THEN coalesce(od[1], cd[1]) END AS model,
    TRY_CAST(cd[5] AS BIGINT) AS input_tokens, TRY_CAST(cd[6] AS BIGINT) AS output_tokens,
    coalesce(TRY_CAST(cd[7] AS BIGINT), TRY_CAST(cd[5] AS BIGINT) + TRY_CAST(cd[6] AS BIGINT))
        AS total_tokens,
    TRY_CAST(cd[8] AS DOUBLE) AS cost_usd
FROM x"""


def errors_select(events: str) -> str:
    """Rows of ``errors`` for the events in ``events`` whose outcome is ``error``."""
    return f"""
SELECT e.run_id, e.seq, e.ts, e.type,
    coalesce(k.kind, CASE WHEN e.type LIKE 'scan\\_%' ESCAPE '\\' THEN 'scan' ELSE 'event' END) AS kind,
    CASE coalesce(k.kind, '')
        WHEN 'node' THEN e.node WHEN 'probe' THEN e.probe WHEN 'agent' THEN e.agent
        WHEN 'plan' THEN coalesce(e.node, 'plan')
        WHEN 'model' THEN e.data->>'model' WHEN 'tool' THEN coalesce(e.data->>'tool', e.data->>'name')
        ELSE e.type
    END AS name,
    e.node, e.invocation_id, e.scope_id, e.data->>'error_type' AS error_type,
    coalesce(e.data->>'error_message', e.message) AS error_message
FROM {events} e LEFT JOIN scope_types k ON k.type = e.type AND k.role = 'close'
WHERE e.outcome = 'error'"""
