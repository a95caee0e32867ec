"""``open_store``: URL and path forms, options, the ``SWARM_OBS_STORE`` default, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from swarm_observability.stores import (
    InMemoryEventStore,
    JSONLEventStore,
    SQLiteEventStore,
    default_store_path,
    open_store,
)

from .conftest import ev


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SWARM_OBS_STORE", raising=False)


@pytest.mark.parametrize(
    ("url", "kind", "where"),
    [
        ("memory://", InMemoryEventStore, None),
        ("MEMORY://", InMemoryEventStore, None),
        ("sqlite:///events.db", SQLiteEventStore, "events.db"),
        ("sqlite:///sub/dir/e.sqlite", SQLiteEventStore, "sub/dir/e.sqlite"),
        ("sqlite:///:memory:", SQLiteEventStore, None),
        ("sqlite:///with%20space.db", SQLiteEventStore, "with space.db"),
        ("jsonl:///runs", JSONLEventStore, "runs/events.jsonl"),
        ("jsonl:///log.jsonl", JSONLEventStore, "log.jsonl"),
        ("events.db", SQLiteEventStore, "events.db"),
        ("x/events.sqlite3", SQLiteEventStore, "x/events.sqlite3"),
        ("trace.jsonl", JSONLEventStore, "trace.jsonl"),
        ("store-folder", JSONLEventStore, "store-folder/events.jsonl"),
    ],
)
def test_url_forms(tmp_path: Path, url: str, kind: type, where: str | None) -> None:
    """Each accepted URL or path opens the right backend at the right (cwd-relative) place."""
    store = open_store(url)
    try:
        assert type(store) is kind
        if where is not None:
            assert store.path == tmp_path / where  # type: ignore[attr-defined]
        store.append(ev("r", 1))
        assert store.last_sequence("r") == 1
    finally:
        store.close()


def test_absolute_urls_use_a_fourth_slash(tmp_path: Path) -> None:
    """sqlite:////abs/path and jsonl:////abs/dir are absolute paths."""
    with open_store(f"sqlite:///{tmp_path}/abs.db") as store:
        assert store.path == tmp_path / "abs.db"  # type: ignore[attr-defined]
    with open_store(f"jsonl:///{tmp_path}/absdir") as store:
        assert store.path == tmp_path / "absdir" / "events.jsonl"  # type: ignore[attr-defined]


def test_path_objects_and_existing_folders(tmp_path: Path) -> None:
    """A Path works like its string, and an existing folder whose name has a dot is a JSONL folder."""
    (tmp_path / "v1.2").mkdir()
    with open_store(tmp_path / "p.db") as store:
        assert isinstance(store, SQLiteEventStore)
    with open_store(tmp_path / "v1.2") as store:
        assert store.path == tmp_path / "v1.2" / "events.jsonl"  # type: ignore[attr-defined]


def test_options_from_query_and_keywords(tmp_path: Path) -> None:
    """Query parameters set backend options, keywords override them, read_only parses as a boolean."""
    with open_store("sqlite:///o.db?durability=normal&busy_timeout=1.5") as store:
        assert (store.durability, store.read_only) == ("normal", False)  # type: ignore[attr-defined]
    with open_store("sqlite:///o.db?durability=normal", durability="full") as store:
        assert store.durability == "full"  # type: ignore[attr-defined]
    with open_store("sqlite:///o.db?read_only=true") as store:
        assert store.read_only  # type: ignore[attr-defined]
    with open_store("jsonl:///j?fsync=batch") as store:
        assert store.fsync == "batch"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis://db/events", "scheme 'redis'"),
        ("sqlite://", "needs a path"),
        ("sqlite:///", "needs a path"),
        ("sqlite://relative.db", "needs a path"),
        ("jsonl://", "needs a path"),
        ("memory://somewhere", "takes no path"),
        ("events.txt", "cannot tell the event store backend"),
        ("", "not an event store URL"),
        ("   ", "not an event store URL"),
        ("sqlite:///e.db?durability", "durability"),
        ("sqlite:///e.db?colour=blue", "unknown option 'colour'"),
        ("sqlite:///e.db?read_only=maybe", "read_only='maybe'"),
        ("sqlite:///e.db?busy_timeout=soon", "busy_timeout='soon'"),
        ("jsonl:///j?durability=full", "unknown option 'durability'"),
        ("sqlite:///e.db?durability=sometimes", "'full' or 'normal'"),
    ],
)
def test_bad_urls_raise_value_error_naming_them(tmp_path: Path, url: str, message: str) -> None:
    """A URL that cannot work raises ValueError that says what is wrong, and creates nothing."""
    with pytest.raises(ValueError, match=message.replace("?", r"\?")) as info:
        open_store(url)
    if url.strip() and "'full' or 'normal'" not in message:
        assert url in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_keyword_option_unknown_to_backend(tmp_path: Path) -> None:
    """A keyword option the backend does not take is a ValueError, also for memory://."""
    with pytest.raises(ValueError, match="fsync"):
        open_store("sqlite:///e.db", fsync="batch")
    with pytest.raises(ValueError, match="read_only"):
        open_store("memory://", read_only=True)


def test_default_store_path_is_under_cwd(tmp_path: Path) -> None:
    """default_store_path() is ./.swarm/events.db and open_store() opens it when nothing else is set."""
    assert default_store_path() == tmp_path / ".swarm" / "events.db"
    with open_store() as store:
        assert isinstance(store, SQLiteEventStore)
        assert store.path == tmp_path / ".swarm" / "events.db"


def test_env_var_overrides_the_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SWARM_OBS_STORE names the store open_store() opens without a URL; an explicit URL still wins."""
    monkeypatch.setenv("SWARM_OBS_STORE", "jsonl:///from-env")
    with open_store() as store:
        assert store.path == tmp_path / "from-env" / "events.jsonl"  # type: ignore[attr-defined]
    with open_store("memory://") as store:
        assert isinstance(store, InMemoryEventStore)
