"""Loading a model's parts by path: the one place a tokenizer is loaded for the pipeline's phases.

    from upft_bench.models import load_tokenizer
    tokenizer = load_tokenizer("results/default/methods/sft/train/model")   # a folder, a Hub id or a .gguf file

A model's shape for FLOPs is read by `upft_bench.compute.model_shape`; GGUF files are converted once by
`upft_bench.gguf.resolve_model`.
"""
from __future__ import annotations

from typing import Callable

from upft_bench.console import say
from upft_bench.errors import InputError
from upft_bench.gguf import resolve_model

__all__ = ["load_tokenizer"]


def load_tokenizer(path: str, announce: Callable[[str], None] = say):
    """The tokenizer of the model at `path` (a folder, a Hub id, or a .gguf file, converted once); a path it
    cannot load from is an InputError that says what to do offline."""
    from transformers import AutoTokenizer  # heavy: keeps the commands that load no model fast

    resolved = resolve_model(path, announce=announce)
    try:
        return AutoTokenizer.from_pretrained(resolved)
    except OSError as err:
        raise InputError(
            f"cannot load the base model's tokenizer from {path!r}: {err}\n"
            "Without Hub access, point model.path at a local checkpoint (--set model.path=/path/to/model), "
            "or run the offline default (`upft-bench compare` with no config).") from err
