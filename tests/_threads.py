"""Run a test's worker in several threads at once, and fail the test on what any of them raised."""

from __future__ import annotations

import threading
from collections.abc import Callable


def run_in_threads(work: Callable[[int], object], count: int) -> None:
    """Run ``work(n)`` for every ``n < count``, each in its own thread; return when all have ended.

    An exception in a plain thread is only printed, so a test would pass over it: the first one a
    worker raised is raised here, in the test's thread.
    """
    errors: list[BaseException] = []

    def guarded(n: int) -> None:
        try:
            work(n)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
