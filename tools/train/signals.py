"""Ctrl-C and SIGTERM during training: finish the current step, checkpoint, and stop.

The handler only sets a flag; the trainer's callback reads it at the end of each optimizer step. Under
several processes (DDP) every rank must stop after the same step, or the ones still training would wait
forever in the next all-reduce: ``agreed`` makes the stop decision collective.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any


class StopFlag:
    """Set by SIGINT/SIGTERM. A second Ctrl-C falls through to the default handler (KeyboardInterrupt)."""

    def __init__(self) -> None:
        self.set = False

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

        def handler(signum: int, frame: Any) -> None:
            from tools import processes

            processes.note_stop(signum)  # the exit code says which signal stopped the run (130 / 143)
            if self.set:
                signal.signal(signal.SIGINT, signal.default_int_handler)
                raise KeyboardInterrupt
            self.set = True

        for s in old:
            signal.signal(s, handler)
        try:
            yield
        finally:
            for s, h in old.items():
                signal.signal(s, h)


def agreed(stop: bool) -> bool:
    """True on every rank when any rank wants to stop (one tiny all-reduce under DDP; ``stop`` otherwise)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return stop
    import torch

    device = "cuda" if dist.get_backend() == "nccl" else "cpu"
    flag = torch.tensor([1 if stop else 0], dtype=torch.int32, device=device)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return bool(flag.item())
