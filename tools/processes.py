"""Child processes tunewise starts live and die with it: one place for how a child learns its parent is gone."""

from __future__ import annotations

import time


def die_with_parent(parent_pid: int) -> None:
    """Pool initializer: the forked pass-1 worker dies with the process that started it, even on kill -9.

    On Linux the kernel delivers SIGKILL when the parent dies (PR_SET_PDEATHSIG); elsewhere, and to close the
    race where the parent died before the call, a watchdog thread checks the parent pid twice a second."""
    import os
    import signal
    import threading

    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent_pid:
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, daemon=True, name="tunewise-parent-watch").start()
