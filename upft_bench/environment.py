"""What shapes the numbers besides the config: the machine and the library versions, recorded with every run.

    from upft_bench.environment import describe
    describe()   # {"cpu": "AMD EPYC", "cpu_capability": "AVX512", "cpu_features": ["avx512_bf16", ...], ...}

bf16 kernels differ between CPUs (AVX-512 with or without native bf16, AMX), and the base model built here
differs with them and with the library versions, so metrics.json records these beside the results; another
machine should reproduce the verdicts, not the digits.
"""
from __future__ import annotations

import importlib.metadata
import platform
import sys
from pathlib import Path

__all__ = ["cpu_model", "describe", "summary"]

# CPU flags (/proc/cpuinfo) that decide which bf16 / matrix kernels torch can use.
_FEATURES = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_tile", "amx_int8")
_LIBRARIES = ("torch", "transformers", "accelerate", "lm_eval", "datasets", "numpy", "scipy")


def _cpuinfo() -> list[str]:
    try:
        return Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return []


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo), else what the platform module says."""
    for line in _cpuinfo():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _cpu_features() -> list[str]:
    flags = next((line.split(":", 1)[1].split() for line in _cpuinfo() if line.startswith("flags")), [])
    return [f for f in _FEATURES if f in flags]


def describe() -> dict:
    """The machine and the versions: CPU model, torch's CPU kernel level and the CPU's bf16/AVX-512/AMX flags,
    the GPU if torch sees one, Python and the libraries that shape a result."""
    # heavy (torch): loaded on use
    import torch

    versions = {}
    for name in _LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name.replace("_", "-") if name == "lm_eval" else name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "cpu": cpu_model(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu_features": _cpu_features(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "platform": f"{sys.platform} {platform.machine()}",
        "versions": versions,
    }


def summary(env: dict | None) -> str:
    """One line for a report: `AMD EPYC (torch CPU kernels AVX512; avx512_bf16), torch 2.13.0, ...`."""
    if not env:
        return "environment not recorded"
    features = ", ".join(env.get("cpu_features") or []) or "no bf16/AMX flags"
    chip = env.get("gpu") or f"{env.get('cpu')} (torch CPU kernels {env.get('cpu_capability')}; {features})"
    versions = ", ".join(f"{k.replace('_', '-')} {v}" for k, v in (env.get("versions") or {}).items()
                         if v and k in ("torch", "transformers", "accelerate", "lm_eval"))
    return f"{chip}, {versions}"
