"""Calls that may reach the Hugging Face Hub, under one wall-clock limit, so an unanswering network is one line.

    from upft_bench.hub import HubTimeout, within_timeout
    config = within_timeout(lambda: AutoConfig.from_pretrained("Qwen/Qwen2.5-Math-7B-Instruct"), "model.path Qwen/...")

The Hub client retries and waits per request; behind a network that accepts connections and never answers, a
resolution can hang for many minutes with no output. `within_timeout` runs the call in a daemon thread and gives
up after `$UPFT_BENCH_HUB_TIMEOUT` seconds (default 60), raising HubTimeout that says what to do. The thread is
left behind (a blocked socket read cannot be interrupted); being a daemon, it never delays the process's exit.
"""
from __future__ import annotations

import math
import os
import threading
from typing import Callable, TypeVar

from upft_bench.errors import InputError

__all__ = ["HubTimeout", "TIMEOUT_ENV", "hub_timeout", "within_timeout"]

TIMEOUT_ENV = "UPFT_BENCH_HUB_TIMEOUT"
DEFAULT_TIMEOUT = 60.0
T = TypeVar("T")


class HubTimeout(InputError):
    """The Hub did not answer within the limit; the message names what was being resolved."""


def hub_timeout() -> float:
    """Seconds a Hub resolution may take: $UPFT_BENCH_HUB_TIMEOUT, else 60."""
    raw = os.environ.get(TIMEOUT_ENV, "")
    try:
        value = float(raw) if raw.strip() else DEFAULT_TIMEOUT
    except ValueError:
        raise InputError(f"${TIMEOUT_ENV}={raw!r}: expected seconds, e.g. 60") from None
    if not math.isfinite(value) or value <= 0:
        raise InputError(f"${TIMEOUT_ENV}={raw!r}: expected a positive number of seconds")
    return value


def within_timeout(call: Callable[[], T], what: str, seconds: float | None = None) -> T:
    """`call()`'s result, or its exception; HubTimeout if it has not returned after `seconds` (default
    `hub_timeout()`). Offline (HF_HUB_OFFLINE=1) the call runs directly: nothing can hang."""
    if os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0"):
        return call()
    limit = hub_timeout() if seconds is None else seconds
    box: dict = {}

    def run():
        try:
            box["value"] = call()
        except BaseException as err:  # handed to the caller's thread, whatever it is
            box["error"] = err

    worker = threading.Thread(target=run, name="upft-bench-hub", daemon=True)
    worker.start()
    worker.join(limit)
    if worker.is_alive():
        raise HubTimeout(f"{what}: the Hugging Face Hub did not answer within {limit:g} s; check the network "
                         f"(or set HF_HUB_OFFLINE=1 to use the local cache, or ${TIMEOUT_ENV} to wait longer)")
    if "error" in box:
        raise box["error"]
    return box["value"]
