"""Control of running scans: cancel, pause, resume and drain, in-process and across processes.

* :class:`CancellationManager` (one per scan, from :func:`get_manager`) is what safe points consult.
* :class:`ControlChannel` carries requests from other processes; :class:`ControlWatcher` applies them.
"""

from .cancellation import CancellationManager, SafePointCallback, get_manager, managers, remove_manager
from .channel import ControlAction, ControlChannel, ControlRequest, ControlWatcher, parse_action

__all__ = [
    "CancellationManager",
    "ControlAction",
    "ControlChannel",
    "ControlRequest",
    "ControlWatcher",
    "SafePointCallback",
    "get_manager",
    "managers",
    "parse_action",
    "remove_manager",
]
