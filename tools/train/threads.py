"""How many CPU threads torch should use for this run.

torch starts one thread per core it can see. On a machine shared with other jobs that oversubscribes the
cores, and a training step can get an order of magnitude slower than with one thread (issue 18: ~60 s
against 4.5 s). So tunewise asks which cores are free now: the cores this process may run on
(``os.sched_getaffinity``) minus the load average, shared among the processes of this run. The user's
setting (``TrainConfig.threads``, or the ``TUNEWISE_THREADS`` environment variable) wins.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any

ENV = "TUNEWISE_THREADS"


@dataclass(frozen=True)
class ThreadChoice:
    threads: int
    source: str  # "config", "env" or "free_cores"
    cores: int  # cores this process may use
    load_1m: float | None  # the 1-minute load average when chosen
    processes: int = 1  # processes of this run on this machine

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def choose_threads(requested: int | None = None, *, processes: int = 1, cores: int | None = None,
                   load_1m: float | None = None) -> ThreadChoice:
    """The thread count per process: ``requested``, else ``$TUNEWISE_THREADS``, else the free cores shared out."""
    cores = usable_cores() if cores is None else cores
    if load_1m is None:
        try:
            load_1m = os.getloadavg()[0]
        except OSError:
            load_1m = None
    if requested:
        return ThreadChoice(max(1, int(requested)), "config", cores, load_1m, processes)
    env = os.environ.get(ENV, "").strip()
    if env.isdigit() and int(env) > 0:
        return ThreadChoice(int(env), "env", cores, load_1m, processes)
    free = cores - round(load_1m or 0.0)
    per_process = max(1, min(cores, free) // max(1, processes))
    return ThreadChoice(per_process, "free_cores", cores, load_1m, processes)


def apply(choice: ThreadChoice) -> None:
    """Set torch's intra-op thread count (imports torch)."""
    import torch

    torch.set_num_threads(choice.threads)
