"""How many CPU threads torch should use for this run.

torch starts one thread per core it can see. On a machine shared with other jobs that oversubscribes the
cores, and a training step can get an order of magnitude slower than with one thread (issue 18: ~60 s
against 4.5 s). So tunewise asks which cores are free now: the cores this process may run on
(``os.sched_getaffinity``) minus the cores other work keeps busy (``tools.estimate_time.load_now``: sampled
from /proc/stat without tunewise's own CPU time, so the run that just ended does not count as other work, as
it would in the 1-minute load average), shared among the processes of this run. The user's setting
(``TrainConfig.threads``, or the ``TUNEWISE_THREADS`` environment variable) wins.

Measured for generation too (``benchmarks/results/threads_rule.json``): on the 2-core machine with one other
busy process, 1 thread took 11.1 s and 2 threads 21.9 s; idle, 2 threads were 1.7x faster; the rule picked the
faster at each level. Prompt evaluation applies it as training does.
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
    load_1m: float | None  # cores' worth of other work when chosen (``tools.estimate_time.load_now``)
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
    if requested:
        return ThreadChoice(max(1, int(requested)), "config", cores, load_1m, processes)
    if load_1m is None:
        from tools.estimate_time import load_now

        load_1m = load_now()[0]
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
