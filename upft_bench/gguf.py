"""GGUF models (llama.cpp's single-file format) as plain transformers checkpoints, converted once and cached.

    from upft_bench.gguf import resolve_model
    path = resolve_model("models/SmolLM2-135M-Instruct.Q4_1.gguf")        # a .gguf file
    path = resolve_model("models/", gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf")  # a folder and a file name
    # -> ~/.cache/upft-bench/gguf/SmolLM2-135M-Instruct.Q4_1-<hash>: save_pretrained folder, tokenizer included

transformers reads a GGUF file (`from_pretrained(folder, gguf_file=name)`, with the `gguf` package installed)
and dequantizes it to fp32, but the model it returns refuses `save_pretrained`, and every later phase of a
comparison (sampling, each method's training, lm-eval's `hf` backend) would pay the ~40 s dequantization again.
So the file is converted once: the dequantized weights go into a plain model of the same architecture, which is
saved with the file's tokenizer and chat template. The cache key is the file's sha256, so an edited file is
converted anew. Anything else passes through `resolve_model` unchanged (a checkpoint folder or a Hub id).
"""
from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

from upft_bench import cache_root
from upft_bench.atomic import file_sha256, replace_dir, temp_path, write_json
from upft_bench.errors import InputError

__all__ = ["GgufError", "cache_dir", "context_length", "gguf_source", "resolve_model"]


class GgufError(InputError):
    """A GGUF model that cannot be used: the file is missing, or the `gguf` package is not installed."""


def cache_dir() -> Path:
    """Where converted GGUF models live: $UPFT_BENCH_CACHE/gguf, else ~/.cache/upft-bench/gguf."""
    return cache_root() / "gguf"


def gguf_source(path: str, gguf_file: str | None = None) -> tuple[Path, str] | None:
    """(folder, file name) of a GGUF model given as a .gguf file path or as a folder plus `gguf_file`;
    None for anything else (a checkpoint folder or a Hub id)."""
    if gguf_file:
        return Path(path).expanduser(), gguf_file
    if str(path).lower().endswith(".gguf"):
        file = Path(path).expanduser()
        return file.parent, file.name
    return None


def _require(folder: Path, name: str) -> Path:
    file = folder / name
    if not file.is_file():
        raise GgufError(f"no such GGUF file {file}")
    if importlib.util.find_spec("gguf") is None:
        raise GgufError(f"reading {file} needs the gguf package: pip install 'upft-bench[gguf]' (or pip install gguf)")
    return file


def context_length(path: str, gguf_file: str | None = None) -> int | None:
    """The context length a GGUF file declares (`<architecture>.context_length`), read from its header only."""
    folder, name = gguf_source(path, gguf_file) or (Path(path), "")
    file = _require(folder, name)
    # heavy (gguf): loaded on use
    from gguf import GGUFReader

    fields = GGUFReader(str(file)).fields

    def value(key: str):
        field = fields.get(key)
        if field is None or not field.data:
            return None
        part = field.parts[field.data[0]]
        return bytes(part).decode() if key == "general.architecture" else int(part[0])

    arch = value("general.architecture")
    return value(f"{arch}.context_length") if arch else None


def resolve_model(path: str, gguf_file: str | None = None, cache: str | Path | None = None,
                  announce=print) -> str:
    """A path transformers and lm-eval load without GGUF support: the converted (cached) checkpoint of a GGUF
    model, or `path` unchanged. `announce` is told (one line) when a conversion starts."""
    source = gguf_source(path, gguf_file)
    if source is None:
        return path
    file = _require(*source)
    digest = file_sha256(file)
    out = (Path(cache) if cache is not None else cache_dir()) / f"{file.stem}-{digest[:16]}"
    if (out / "gguf_source.json").is_file():
        return str(out)
    announce(f"[gguf] converting {file} to a transformers checkpoint (dequantized to fp32, once; cached in {out})")
    _convert(file, out, digest)
    return str(out)


def _convert(file: Path, out: Path, digest: str) -> None:
    # heavy (torch): loaded on use
    import torch
    import transformers

    # heavy (transformers): loaded on use
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
    )

    tokenizer = AutoTokenizer.from_pretrained(str(file.parent), gguf_file=file.name)
    loaded = AutoModelForCausalLM.from_pretrained(str(file.parent), gguf_file=file.name, dtype=torch.float32)
    # The loaded model is marked as GGUF-quantized and will not save; a plain model of the same architecture
    # holding its (already dequantized) weights saves and loads like any checkpoint.
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(loaded.state_dict(), strict=True)
    plain.generation_config = loaded.generation_config
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(out)
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        plain.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        write_json(tmp / "gguf_source.json", {"file": str(file.resolve()), "sha256": digest,
                                              "transformers": transformers.__version__})
        replace_dir(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
