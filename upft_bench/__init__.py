"""upft-bench: does Unsupervised Prefix Fine-Tuning match supervised self-improvement, at what cost?

    upft-bench compare                 # the whole comparison on the offline default
    upft-bench --help                  # every command
"""
from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path

__version__ = "0.1.0"


def cache_root() -> Path:
    """Where upft-bench caches what it builds (base models, converted GGUF models): $UPFT_BENCH_CACHE, else
    ~/.cache/upft-bench."""
    root = os.environ.get("UPFT_BENCH_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "upft-bench"


def tasks_dir() -> Path:
    """The folder holding upft-bench's lm-eval task YAMLs (works from a checkout, editable or wheel install)."""
    return Path(str(files("upft_bench.tasks")))


def baselines_dir() -> Path:
    """The folder holding the shipped experiment configs."""
    return Path(str(files("upft_bench.baselines")))
