"""Control of running scans: cancel, pause, resume and drain, in-process and across processes.

* :class:`CancellationManager` (one per scan, from :func:`get_manager`) is what safe points consult.
* :class:`ControlChannel` (SQLite) or :class:`PostgresControlChannel` (LISTEN/NOTIFY, across hosts) carries
  requests from other processes; :class:`ControlWatcher` applies them. :func:`open_channel` picks one.

Layers, each importing only those below it: ``postgres`` -> ``registry`` -> ``cancellation`` -> ``channel`` ->
``actions``.
"""

from .actions import ControlAction, parse_action
from .cancellation import CancellationManager, SafePointCallback
from .channel import ControlChannel, ControlRequest, ControlWatcher
from .postgres import PostgresControlChannel, open_channel
from .registry import ManagerLeases, get_manager, managers, remove_manager

__all__ = [
    "CancellationManager",
    "ControlAction",
    "ControlChannel",
    "ControlRequest",
    "ControlWatcher",
    "ManagerLeases",
    "PostgresControlChannel",
    "SafePointCallback",
    "get_manager",
    "managers",
    "open_channel",
    "parse_action",
    "remove_manager",
]
