"""Control of running scans: cancel, pause, resume and drain, in-process and across processes.

* :class:`CancellationManager` (one per scan, from :func:`get_manager`) is what safe points consult.
* :class:`ControlChannel` (SQLite) or :class:`PostgresControlChannel` (LISTEN/NOTIFY, across hosts) carries
  requests from other processes; :class:`ControlWatcher` applies them. :func:`open_channel` picks one.
"""

from .cancellation import CancellationManager, SafePointCallback, get_manager, managers, remove_manager
from .channel import ControlAction, ControlChannel, ControlRequest, ControlWatcher, parse_action
from .postgres import PostgresControlChannel, open_channel

__all__ = [
    "CancellationManager",
    "ControlAction",
    "ControlChannel",
    "ControlRequest",
    "ControlWatcher",
    "PostgresControlChannel",
    "SafePointCallback",
    "get_manager",
    "managers",
    "open_channel",
    "parse_action",
    "remove_manager",
]
