"""What every ``swarm-obs`` command shares: exit codes, errors, store selection, run lookup."""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..stores.base import EventStore

EXIT_OK = 0
"""Success."""
EXIT_PROBLEMS = 1
"""Problems found (``verify``), the scan failed or was refused (``demo``, ``resume``, ``cancel``)."""
EXIT_USAGE = 2
"""Bad arguments, unknown run or thread, missing store, bad input (a folder that does not exist)."""
EXIT_CANCELLED = 130
"""A scan run by this process was cancelled (Ctrl-C or ``swarm-obs cancel``); it can be resumed."""

STORE_ENV = "SWARM_OBS_STORE"
"""Environment variable naming the event store (a URL or a path), like ``--store``."""


class CliError(Exception):
    """A failure reported as one line on stderr and an exit code, never as a traceback."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def add_store_option(parser: argparse.ArgumentParser) -> None:
    """``--store URL`` on a sub-command."""
    parser.add_argument(
        "--store",
        metavar="URL",
        default=argparse.SUPPRESS,
        help=f"event store: sqlite:///path.db, jsonl:///dir, postgresql://user@host/db, a .db path, a folder "
        f"(default: ${STORE_ENV} or .swarm/events.db)",
    )


def add_json_option(parser: argparse.ArgumentParser) -> None:
    """``--json`` on a read command."""
    parser.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output"
    )


def read_command(sub: Any, name: str, help_text: str, func: Any) -> argparse.ArgumentParser:
    """A sub-command that only reads the store (it gets ``--store`` and ``--json``); runs ``func``."""
    parser: argparse.ArgumentParser = sub.add_parser(name, help=help_text, description=help_text)
    parser.set_defaults(func=func)
    parser._swarm_read = True  # type: ignore[attr-defined]
    return parser


def store_url(args: argparse.Namespace) -> str:
    """The store the user asked for: ``--store``, else ``$SWARM_OBS_STORE``, else ``.swarm/events.db``."""
    from ..stores.url import default_store_path

    return selected_store(getattr(args, "store", None)) or str(default_store_path())


def selected_store(given: str | None) -> str | None:
    """``given`` (a ``--store`` value), else ``$SWARM_OBS_STORE``, else ``None`` (the default store).

    An empty ``--store ""`` is refused rather than read as "not given": it is what an unset variable
    makes of ``--store "$DATABASE_URL"``, and a ``cancel`` sent to the local default store instead
    of the intended one would look like it worked.
    """
    if given is not None and not given.strip():
        raise CliError("--store is empty: give a store URL or path, or leave it out for the default")
    return given or os.environ.get(STORE_ENV) or None


@contextmanager
def open_cli_store(args: argparse.Namespace, *, write: bool = False) -> Iterator[EventStore]:
    """Open the selected store, read-only unless ``write``; a missing store is a usage error."""
    from ..exceptions import StoreCorruptionError
    from ..stores.postgres_schema import redact

    given = store_url(args)
    url = redact(given)
    store = open_store_or_exit(given, {} if write or url.startswith("memory:") else {"read_only": True})
    try:
        yield store
    except StoreCorruptionError as exc:
        raise CliError(f"the event store {url} is damaged: {exc}", EXIT_PROBLEMS) from exc
    finally:
        store.close()


def open_store_or_exit(given: str, options: dict[str, Any], prefix: str = "") -> EventStore:
    """``open_store(given, **options)`` with its failures as one line: damage is exit 1, anything else
    (a bad URL, a path that cannot be opened, a missing store) exit 2; the URL's password is masked."""
    from ..exceptions import EventStoreError, StoreCorruptionError
    from ..stores.postgres_schema import redact
    from ..stores.url import open_store

    url = redact(given)
    try:
        return open_store(given, **options)
    except StoreCorruptionError as exc:
        raise CliError(f"{prefix}the event store {url} is damaged: {exc}", EXIT_PROBLEMS) from exc
    except EventStoreError as exc:
        text = str(exc)
        hint = ""
        if "readonly" in text or "read-only database" in text:
            hint = "; SQLite needs to create its -shm file beside a WAL database: make the folder writable"
        elif text.startswith("no event store at"):
            hint = " (run a scan first, e.g. `swarm-obs demo`, or pass --store)"
        raise CliError(f"{prefix}{text}{hint}") from exc
    except (ValueError, OSError) as exc:
        raise CliError(f"{prefix}cannot open event store {url}: {exc}") from exc


def refuse_store_file(store: EventStore, target: Path, command: str) -> None:
    """An output file that is one of the store's own (its log, WAL, index or control database) would be
    truncated before a single event is read: the whole log lost. Refused, exit 2, nothing written."""
    from ..control.channel import default_channel_path

    path = getattr(store, "path", None)
    if not path:
        return
    path = Path(path)
    own = {path, Path(f"{path}-wal"), Path(f"{path}-shm"), Path(f"{path}.idx")}
    control = default_channel_path(store)
    if isinstance(control, Path):
        own.add(control)
    resolved = target.resolve()
    if any(resolved == candidate.resolve() for candidate in own):
        raise CliError(f"{command}: {target} is a file of the event store itself; write to another path")


def store_folder(store: EventStore) -> Path | None:
    """The folder of an on-disk store (where the control channel and checkpoints live by default)."""
    path = getattr(store, "path", None)
    return Path(path).parent if path else None


def control_path(store: EventStore) -> Path | str:
    """Where the control channel of ``store`` is (:func:`~..control.channel.default_channel_path`): a SQLite
    file, or for PostgreSQL the store's database URL. In-memory stores have none (a :class:`CliError`)."""
    from ..control.channel import default_channel_path

    path = default_channel_path(store)
    if path is None:
        raise CliError("scan control needs an on-disk event store (sqlite or jsonl), not an in-memory one")
    return path


def checkpoints_location(store: EventStore, explicit: str | None) -> Path | str:
    """The checkpointer for a scan on ``store``: ``explicit`` (a path or ``postgresql://`` URL) if given,
    else the PostgreSQL store's own database, else ``checkpoints.db`` beside the store's file."""
    from ..checkpointers import default_checkpoint_path, is_postgres_url

    if explicit:
        return explicit if is_postgres_url(explicit) else Path(explicit)
    if getattr(store, "backend", "") == "postgres":
        from ..stores.postgres import split_url

        return split_url(str(store.dsn))[0]  # type: ignore[attr-defined]
    folder = store_folder(store)
    return folder / "checkpoints.db" if folder else default_checkpoint_path()


def run_arg(text: str) -> str:
    """``type=`` of every RUN/THREAD argument: a valid run id (or prefix) at parse time, else exit 2.

    Checking here, where the text enters, means no command ever sees ``""`` (which as a prefix
    would match every run) or a control character, with or without ``--force``.
    """
    return _checked_run_id(text, for_filename=False)


def thread_arg(text: str) -> str:
    """``type=`` of a thread id that also names files (``demo --thread/--resume``)."""
    return _checked_run_id(text, for_filename=True)


def count_arg(text: str) -> int:
    """``type=`` of a count option (``--limit``, ``-n``): a whole number, 0 or more, else exit 2."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def seconds_arg(text: str) -> float:
    """``type=`` of a duration option: finite seconds, 0 or more (``nan``/``inf`` would crash or hang a
    sleep or a deadline), else exit 2."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds, 0 or more, got {text!r}")
    return value


def _checked_run_id(text: str, *, for_filename: bool) -> str:
    from ..events import validate_run_id
    from ..exceptions import InvalidRunIdError

    try:
        return validate_run_id(text, for_filename=for_filename)
    except InvalidRunIdError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def resolve_run(store: EventStore, run_id: str) -> str:
    """The stored run named ``run_id``, or the only one starting with it; else a :class:`CliError`.

    An invalid ``run_id`` (the empty string above all, a prefix of every run) matches nothing: exit 2.
    """
    try:
        run_arg(run_id)
    except argparse.ArgumentTypeError as exc:
        raise CliError(str(exc)) from None
    if store.last_sequence(run_id) > 0:
        return run_id
    candidates = sorted(info.run_id for info in store.runs() if info.run_id.startswith(run_id))
    if len(candidates) == 1:
        return candidates[0]
    if len(candidates) > 1:
        shown = ", ".join(candidates[:5]) + (" ..." if len(candidates) > 5 else "")
        raise CliError(f"run {run_id!r} is ambiguous: {shown}")
    raise CliError(f"unknown run {run_id!r} in {_describe(store)} (list runs with `swarm-obs runs`)")


def _describe(store: Any) -> str:
    try:
        stats = store.stats()
    except Exception:
        return "the event store"
    return stats.location or f"the {stats.backend} store"
