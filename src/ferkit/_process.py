"""Process lifetimes shared by the engines that start workers (``ferkit batch``'s pool, ``ferkit serve``'s
worker processes): a worker never outlives the process that started it."""
from __future__ import annotations

import os

__all__ = ["die_with_parent"]


def die_with_parent(parent: int) -> None:
    """End this process (SIGKILL) within a second when the process ``parent`` dies: a worker must not
    outlive a driver or server killed with ``kill -9``. Linux: ``prctl(PR_SET_PDEATHSIG)``, sent
    by the kernel when the thread that started this process ends (ferkit starts its workers from
    the main thread); elsewhere a daemon thread that polls the parent's pid."""
    import ctypes
    import signal
    import threading
    import time

    try:
        armed = ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0) == 0  # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # no prctl: not Linux
        armed = False
    if not armed:
        def watch() -> None:
            while os.getppid() == parent:
                time.sleep(0.5)
            os._exit(1)

        threading.Thread(target=watch, name="ferkit-parent-watch", daemon=True).start()
    if os.getppid() != parent:  # it died before the signal was asked for
        os._exit(1)
