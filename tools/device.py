"""What this machine can train on: CUDA GPUs and their memory, or the CPU and its bf16 support."""

from __future__ import annotations

import os
import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class DeviceInfo:
    kind: str  # "cuda" or "cpu"
    name: str
    gpus: int = 0
    gpu_memory_gb: float | None = None  # per GPU (the smallest one)
    bf16: bool = False
    cpu_count: int = field(default_factory=lambda: os.cpu_count() or 1)
    ram_gb: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_has_bf16() -> bool:
    """True when the CPU computes bf16 natively (AVX512-BF16 or AMX), which makes bf16 training worthwhile.

    ``TUNEWISE_CPU_BF16=0`` treats the CPU as one without (fp32 training), e.g. to measure what a machine
    without bf16 would see; ``=1`` forces bf16 on."""
    import os

    forced = os.environ.get("TUNEWISE_CPU_BF16", "").strip()
    if forced in ("0", "1"):
        return forced == "1"
    return bool(cpu_flags() & {"avx512_bf16", "amx_bf16"})


def detect() -> DeviceInfo:
    """Detect the local accelerator. Imports torch (call it off the start-up path)."""
    import psutil
    import torch

    ram = round(psutil.virtual_memory().total / 2**30, 1)
    if torch.cuda.is_available():
        n = torch.cuda.device_count()
        mems = [torch.cuda.get_device_properties(i).total_memory / 2**30 for i in range(n)]
        return DeviceInfo("cuda", torch.cuda.get_device_name(0), gpus=n, gpu_memory_gb=round(min(mems), 1),
                          bf16=torch.cuda.is_bf16_supported(), ram_gb=ram)
    return DeviceInfo("cpu", platform.processor() or platform.machine(), bf16=cpu_has_bf16(), ram_gb=ram)
