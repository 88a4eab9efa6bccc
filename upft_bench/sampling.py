"""Sampling ("rollouts"): generate solutions from the base model, resumable, cached and deterministic.

    upft-bench sample --model runs/base --dataset synth --split train --n 4 --max-new-tokens 256 \
        --limit 200 --output samples.jsonl

    from upft_bench.sampling import SampleRequest, SamplingConfig, sample_solutions, summarise
    samples = sample_solutions("runs/base", [SampleRequest(q, n=1, max_new_tokens=16)], SamplingConfig(), "s.jsonl")
    summarise(samples)   # {"sampled_tokens": ..., "samples": ..., "questions": ..., "seconds": ...}

Design (docs/METHODS.md, "Sampling" and "Cost accounting"):
- One prompt per question: `upft_bench.prompts.encode_prompt` (the bare question in the chat template).
- Our own decoding loop over the model's KV cache instead of `model.generate`, for two reasons. Every row draws
  its random numbers from its own generator seeded by (seed, question id, sample index), so a sample depends
  neither on where an interrupted run resumed nor (up to floating-point effects of batch shapes: none seen on
  the tiny CPU models) on which rows share its batch. And every row stops at its
  own `max_new_tokens` or EOS and leaves the batch at once: a UPFT prefix row costs k tokens, not the length of
  the longest row beside it.
- Rows are batched in a fixed order decided by the whole request list (sorted by max_new_tokens, then prompt
  length, so little padding), so a resumed run recomputes the very same batches: same shapes, same numerics.
- Counting: `token_ids` are the generated ids without the stop token; `num_tokens` counts every generated
  token INCLUDING the stop (EOS / end-of-turn) token when one was produced, because the model computed it.
  So `num_tokens <= max_new_tokens` always, and `sampled_tokens` = sum of `num_tokens` over all samples.
- File: JSONL, line 1 a header holding `key` (hash of model identity, sampling config, prompts and requests).
  While running, samples are appended to `<output>.partial` and flushed after every batch; a restart reads it,
  drops a torn last line and redoes only unfinished batches. On completion the file is rewritten in request
  order and renamed to `<output>`. A completed file with the same key is reused without loading the model;
  a different key is an error (or, with `overwrite=True`, a fresh file): samples are never mixed.
- `backend="vllm"` (GPU users, optional, untested on CPU machines): same records; vLLM's own per-request seed.
"""
from __future__ import annotations

import hashlib
import inspect
import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Literal

from tqdm.auto import tqdm

from upft_bench.atomic import write_lines
from upft_bench.config import shown
from upft_bench.data import Question
from upft_bench.errors import InputError
from upft_bench.jsonl import read_jsonl
from upft_bench.prompts import (
    encode_prompt,
    end_of_turn_id,
    generation_config,
    render_prompt,
    stop_token_ids,
    system_prompt,
)

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")


@dataclass
class SamplingConfig:
    temperature: float = 0.6  # the authors' value (docs/METHODS.md); 0 = greedy
    top_p: float | None = None  # None: the model's generation_config.json value, else no nucleus cut
    top_k: int | None = None  # None: the model's generation_config.json value, else no top-k cut
    max_new_tokens: int = 512  # default for the CLI; each SampleRequest carries its own limit
    batch_size: int = 64  # rows (question x sample index) per forward pass; part of the cache key
    seed: int | None = None  # None: 0 (compare sets the experiment seed)
    system: str | None = None  # prompt style name (upft_bench.prompts.SYSTEM_PROMPTS); None = bare question
    dtype: str = "auto"  # auto (float32 on CPU, bfloat16 on CUDA), float32, bfloat16, float16
    device: str | None = None  # None: cuda when available, else cpu
    backend: Literal["hf", "vllm"] = "hf"  # vllm: optional, GPU only, imported lazily

    def __post_init__(self):
        if not 0 <= self.temperature < math.inf:  # NaN fails too
            raise ValueError(f"sampling.temperature must be >= 0 (and finite), got {self.temperature}")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise ValueError(f"sampling.top_p must be in (0, 1], got {self.top_p}")
        if self.top_k is not None and self.top_k < 0:
            raise ValueError(f"sampling.top_k must be >= 0 (0 = off), got {self.top_k}")
        if self.max_new_tokens < 1 or self.batch_size < 1:
            raise ValueError("sampling.max_new_tokens and sampling.batch_size must be >= 1")
        if self.dtype not in ("auto", "float32", "bfloat16", "float16"):
            raise ValueError(f"sampling.dtype must be auto, float32, bfloat16 or float16, got {shown(self.dtype)}")
        if self.backend not in ("hf", "vllm"):
            raise ValueError(f"sampling.backend must be 'hf' or 'vllm', got {shown(self.backend)}")
        if self.seed is not None and self.seed < 0:
            raise ValueError(f"sampling.seed must be >= 0 (or null: the experiment's), got {self.seed}")
        system_prompt(self.system)  # unknown style names fail here, not mid-run


@dataclass(frozen=True)
class SampleRequest:
    """Sample `n` responses to `question`, each at most `max_new_tokens` generated tokens (stop token included).

    `prefix_ids`: response tokens the model is given after the prompt (a continuation from a prefix, as the prefix
    analysis samples them); the samples hold only the generated continuation.
    """

    question: Question
    n: int
    max_new_tokens: int
    prefix_ids: tuple[int, ...] = ()


@dataclass
class Sample:
    question_id: str
    index: int  # 0 .. n-1 within its request
    prompt: str  # the rendered prompt string the model saw
    token_ids: list[int]  # generated ids, without the stop token
    text: str  # decoded token_ids, special tokens skipped
    finish_reason: str  # "stop": produced EOS/end-of-turn; "length": hit max_new_tokens
    num_tokens: int  # generated tokens including the stop token if produced (= cost)
    max_new_tokens: int  # the request's limit
    seconds: float  # this sample's share of its batch's wall time


class SamplesFileError(InputError):
    """A samples file that cannot be used; the message names the file (and line)."""


# ---------------------------------------------------------------------------------------------- cache key
def model_identity(model_path: str | Path) -> dict:
    """What makes a model the same model: a local folder's path, config and weight files (size, mtime); or a Hub id.

    For a Hub id only the id is used: a re-uploaded model under the same id counts as the same model.
    """
    path = Path(model_path)
    if not path.is_dir():
        return {"hub_id": str(model_path)}
    config = path / "config.json"
    weights = sorted(
        [p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in path.iterdir() if p.name.endswith(WEIGHT_SUFFIXES)
    )
    digest = hashlib.sha256(config.read_bytes()).hexdigest() if config.exists() else None
    return {"path": str(path.resolve()), "config_sha256": digest, "weights": weights}


def _resolved(config: SamplingConfig, model_path) -> dict:
    """The sampling settings that decide the tokens, with None values resolved (part of the cache key)."""
    gen = generation_config(model_path)
    top_p = config.top_p if config.top_p is not None else gen.get("top_p", 1.0)
    top_k = config.top_k if config.top_k is not None else gen.get("top_k", 0)
    device = config.device or ("cuda" if _cuda_available() else "cpu")
    dtype = config.dtype if config.dtype != "auto" else ("bfloat16" if device.startswith("cuda") else "float32")
    return {
        "temperature": float(config.temperature), "top_p": float(top_p or 1.0), "top_k": int(top_k or 0),
        "seed": int(config.seed or 0), "system": system_prompt(config.system), "dtype": dtype,
        "device": device, "backend": config.backend,
        "batch_size": config.batch_size if config.backend == "hf" else None,
    }


def _cuda_available() -> bool:
    # heavy (torch): loaded on use
    import torch

    return torch.cuda.is_available()


def _row_seed(seed: int, question_id: str, index: int) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}\x00{question_id}\x00{index}".encode()).digest()[:8], "big") >> 1


# ---------------------------------------------------------------------------------------------- generation
@dataclass
class _Row:
    question_id: str
    index: int
    prompt: str
    prompt_ids: list[int]
    max_new_tokens: int
    seed: int


def _load_model(model_path, settings: dict):
    # heavy (torch): loaded on use
    import torch

    # heavy (transformers): loaded on use
    from transformers import AutoModelForCausalLM

    dtype = getattr(torch, settings["dtype"])
    model = AutoModelForCausalLM.from_pretrained(str(model_path), dtype=dtype)
    return model.to(settings["device"]).eval()


def _pick(logits, settings: dict, generators):
    """Next token per row: temperature, top-k, top-p, then inverse-CDF sampling with one uniform per row."""
    # heavy (torch): loaded on use
    import torch

    if settings["temperature"] == 0:
        return logits.argmax(dim=-1)
    probs = torch.softmax(logits.float() / settings["temperature"], dim=-1)
    probs, order = probs.sort(dim=-1, descending=True)
    if settings["top_k"] > 0:
        probs[:, settings["top_k"]:] = 0
    if settings["top_p"] < 1.0:
        # Drop a token when the tokens ranked above it already reach top_p (the top token always stays).
        before = probs.cumsum(dim=-1) - probs
        probs[before >= settings["top_p"]] = 0
    cdf = probs.cumsum(dim=-1)
    u = torch.stack([torch.rand((), generator=g, dtype=torch.float64) for g in generators]).to(cdf.device)
    pos = torch.searchsorted(cdf, (u * cdf[:, -1].double()).to(cdf.dtype).unsqueeze(1)).squeeze(1)
    pos = pos.clamp(max=cdf.shape[1] - 1)
    return order.gather(1, pos.unsqueeze(1)).squeeze(1)


def _generate_hf(model, rows: list[_Row], settings: dict, stop_ids: set[int], pad_id: int):
    """Generate one batch; returns [(token_ids, finish_reason, num_tokens)] in row order."""
    # heavy (torch): loaded on use
    import torch

    device = settings["device"]
    width = max(len(r.prompt_ids) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):  # left padding: every row's next token goes in the last column
        ids[i, width - len(r.prompt_ids):] = torch.tensor(r.prompt_ids)
        mask[i, width - len(r.prompt_ids):] = 1
    ids, mask = ids.to(device), mask.to(device)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    generators = [torch.Generator().manual_seed(r.seed) for r in rows]
    out_ids = [[] for _ in rows]
    results: list = [None] * len(rows)
    active = list(range(len(rows)))  # original row numbers still generating, in batch order
    # transformers renamed the KV-cache argument and output from past_key_values to cache; use what this one has.
    cache_arg = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
    with torch.inference_mode():
        out = model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, logits_to_keep=1)
        cache = out["cache"] if "cache" in out else out["past_key_values"]
        prunable = hasattr(cache, "batch_select_indices")
        while True:
            picked = _pick(out.logits[:, -1, :], settings, [generators[i] for i in active]).tolist()
            keep = []
            for j, i in enumerate(active):
                if results[i] is not None:  # finished, still in the batch because the cache cannot shrink
                    continue
                token = picked[j]
                if token in stop_ids:
                    results[i] = (out_ids[i], "stop", len(out_ids[i]) + 1)
                    continue
                out_ids[i].append(token)
                if len(out_ids[i]) >= rows[i].max_new_tokens:
                    results[i] = (out_ids[i], "length", len(out_ids[i]))
                    continue
                keep.append(j)
            if not keep:
                break
            if prunable and len(keep) < len(active):
                index = torch.tensor(keep, device=device)
                cache.batch_select_indices(index)
                mask, positions = mask[index], positions[index]
                active = [active[j] for j in keep]
                picked = [picked[j] for j in keep]
            mask = torch.cat([mask, mask.new_ones((len(active), 1))], dim=1)
            positions = positions[:, -1:] + 1
            step = torch.tensor(picked, device=device).unsqueeze(1)
            out = model(input_ids=step, attention_mask=mask, position_ids=positions, use_cache=True,
                        **{cache_arg: cache})
    return results


def _generate_vllm(llm, rows: list[_Row], settings: dict, stop_ids: set[int]):
    """vLLM backend (GPU users; NOT exercised by the CPU test suite). Same result shape as `_generate_hf`."""
    # heavy (vllm): loaded on use
    from vllm import SamplingParams

    params = [
        SamplingParams(
            n=1, temperature=settings["temperature"], top_p=settings["top_p"], top_k=settings["top_k"] or -1,
            max_tokens=r.max_new_tokens, seed=r.seed, stop_token_ids=sorted(stop_ids), detokenize=False,
        )
        for r in rows
    ]
    outputs = llm.generate([{"prompt_token_ids": r.prompt_ids} for r in rows], sampling_params=params,
                           use_tqdm=False)
    results = []
    for out in outputs:
        comp = out.outputs[0]
        ids = list(comp.token_ids)
        stopped = comp.finish_reason == "stop"
        if stopped and ids and ids[-1] in stop_ids:
            ids = ids[:-1]
        results.append((ids, "stop" if stopped else "length", len(ids) + (1 if stopped else 0)))
    return results


# ---------------------------------------------------------------------------------------------- files
def _read_samples(path: Path, tolerate_torn_tail: bool) -> tuple[dict, list[Sample]]:
    """Header and samples of a samples file; a torn last line is dropped when `tolerate_torn_tail`."""
    rows = read_jsonl(path, SamplesFileError, tolerate_torn_tail)
    if not rows:
        raise SamplesFileError(f"{path}: empty samples file (no header)")
    number, header = rows[0]
    if header.get("format") != "upft-bench-samples":
        raise SamplesFileError(f"{path} line {number}: not an upft-bench samples header")
    names = {f.name for f in fields(Sample)}
    samples = []
    for number, row in rows[1:]:
        if set(row) != names:
            raise SamplesFileError(f"{path} line {number}: expected fields {sorted(names)}, got {sorted(row)}")
        samples.append(Sample(**row))
    return header, samples


def _dump(sample: Sample) -> str:
    return json.dumps(asdict(sample), ensure_ascii=False, separators=(",", ":")) + "\n"


def _write_pool(path: Path, header: dict, samples: list[Sample]) -> None:
    """The header line, then one line per sample, atomically."""
    write_lines(path, [json.dumps(header) + "\n", *(_dump(s) for s in samples)])


def _mismatch(path: Path, header: dict, mine: dict) -> str:
    parts = [name for name in ("model", "settings", "requests_sha256") if header.get(name) != mine[name]]
    return (f"{path} holds samples for different {', '.join(parts) or 'inputs'} (key {header.get('key')} != "
            f"{mine['key']}); delete it, choose another output, or pass overwrite=True / --overwrite")


# ---------------------------------------------------------------------------------------------- public API
def sample_solutions(model_path, requests: list[SampleRequest], config: SamplingConfig, out_path,
                     progress: bool = True, overwrite: bool = False) -> list[Sample]:
    """Samples for every (request, index), in request order: reused, resumed or generated (see module doc)."""
    # heavy (transformers): loaded on use
    from transformers import AutoTokenizer

    out_path = Path(out_path)
    partial = out_path.with_name(out_path.name + ".partial")
    seen = set()
    for r in requests:
        if r.n < 1 or r.max_new_tokens < 1:
            raise ValueError(f"request for question {r.question.id!r}: n and max_new_tokens must be >= 1")
        if r.question.id in seen:
            raise ValueError(f"question id {r.question.id!r} requested twice: merge the requests")
        seen.add(r.question.id)

    tokenizer = AutoTokenizer.from_pretrained(str(model_path))
    settings = _resolved(config, model_path)
    rows: list[_Row] = []
    digest = hashlib.sha256()
    for r in requests:
        prompt = render_prompt(tokenizer, r.question.question, settings["system"])
        prompt_ids = encode_prompt(tokenizer, r.question.question, settings["system"]) + list(r.prefix_ids)
        digest.update(json.dumps([r.question.id, r.n, r.max_new_tokens, prompt_ids]).encode() + b"\n")
        for index in range(r.n):
            rows.append(_Row(r.question.id, index, prompt, prompt_ids, r.max_new_tokens,
                             _row_seed(settings["seed"], r.question.id, index)))
    header = {"format": "upft-bench-samples", "version": FORMAT_VERSION, "model": model_identity(model_path),
              "settings": settings, "requests_sha256": digest.hexdigest(), "requests": len(requests),
              "samples": len(rows)}
    header["key"] = hashlib.sha256(json.dumps(
        [header["model"], settings, header["requests_sha256"], FORMAT_VERSION], sort_keys=True).encode()
    ).hexdigest()[:16]
    order = {(r.question_id, r.index): i for i, r in enumerate(rows)}

    # 1. a completed file: reuse it, or refuse to mix.
    if out_path.exists() and not overwrite:
        old, samples = _read_samples(out_path, tolerate_torn_tail=False)
        if old.get("key") != header["key"]:
            raise SamplesFileError(_mismatch(out_path, old, header))
        if {(s.question_id, s.index) for s in samples} != set(order) or len(samples) != len(rows):
            raise SamplesFileError(f"{out_path}: header matches but it lacks samples; delete it and rerun")
        log.info("reusing %d samples from %s", len(samples), out_path)
        return sorted(samples, key=lambda s: order[(s.question_id, s.index)])

    # 2. a partial file: keep what it holds.
    done: dict[tuple[str, int], Sample] = {}
    if partial.exists() and not overwrite:
        old, samples = _read_samples(partial, tolerate_torn_tail=True)
        if old.get("key") != header["key"]:
            raise SamplesFileError(_mismatch(partial, old, header))
        done = {(s.question_id, s.index): s for s in samples if (s.question_id, s.index) in order}
        log.info("resuming %s: %d of %d samples already done", partial, len(done), len(rows))
    out_path.parent.mkdir(parents=True, exist_ok=True)
    # Rewrite (atomically) without a torn tail or stray rows, so appends below start on a clean line.
    _write_pool(partial, header, sorted(done.values(), key=lambda s: order[(s.question_id, s.index)]))

    # 3. generate the unfinished batches. The batch plan depends only on the requests, never on `done`.
    plan = sorted(range(len(rows)), key=lambda i: (rows[i].max_new_tokens, len(rows[i].prompt_ids), i))
    size = settings["batch_size"] or len(plan)
    batches = [[rows[i] for i in plan[s:s + size]] for s in range(0, len(plan), size)]
    todo = [b for b in batches if any((r.question_id, r.index) not in done for r in b)]
    if todo:
        _generate_batches(model_path, tokenizer, todo, settings, done, partial, progress, len(rows))

    # 4. complete: rewrite in request order, atomically, then drop the partial file.
    samples = sorted(done.values(), key=lambda s: order[(s.question_id, s.index)])
    _write_pool(out_path, header, samples)
    partial.unlink()
    return samples


def _generate_batches(model_path, tokenizer, batches, settings, done, partial: Path, progress: bool, total: int):
    stop_ids = stop_token_ids(tokenizer, model_path)
    if settings["backend"] == "vllm":
        from vllm import LLM  # optional dependency: pip install 'upft-bench[vllm]'

        llm = LLM(model=str(model_path), dtype=settings["dtype"], seed=settings["seed"])
        run = lambda rows: _generate_vllm(llm, rows, settings, stop_ids)  # noqa: E731
    else:
        model = _load_model(model_path, settings)
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else end_of_turn_id(tokenizer)
        run = lambda rows: _generate_hf(model, rows, settings, stop_ids, pad_id)  # noqa: E731
    bar = tqdm(total=total, initial=len(done), desc="sampling", unit="sample", disable=not progress)
    with open(partial, "a", encoding="utf-8") as f:
        for rows in batches:
            t0 = time.perf_counter()
            results = run(rows)
            share = (time.perf_counter() - t0) / len(rows)
            new = []
            for row, (ids, finish, num) in zip(rows, results):
                if (row.question_id, row.index) in done:  # redone only to keep the batch identical
                    continue
                sample = Sample(row.question_id, row.index, row.prompt, ids,
                                tokenizer.decode(ids, skip_special_tokens=True), finish, num, row.max_new_tokens,
                                round(share, 6))
                done[(row.question_id, row.index)] = sample
                new.append(sample)
            f.writelines(_dump(s) for s in new)
            f.flush()
            os.fsync(f.fileno())
            bar.update(len(new))
    bar.close()


def read_samples(path) -> list[Sample]:
    """The samples of a completed samples file (errors name the file and line)."""
    return _read_samples(Path(path), tolerate_torn_tail=False)[1]


def summarise(samples: list[Sample]) -> dict:
    """Cost figures of a sample pool: sampled_tokens (docs/METHODS.md), samples, questions, seconds, finish counts.

    `seconds` is the generation time recorded when the samples were made (batches only, model loading excluded),
    so a reused file reports what the pool cost, not the milliseconds it took to read it.
    """
    seconds = sum(s.seconds for s in samples)
    tokens = sum(s.num_tokens for s in samples)
    return {
        "sampled_tokens": tokens,
        "samples": len(samples),
        "questions": len({s.question_id for s in samples}),
        "seconds": round(seconds, 3),
        "tokens_per_second": round(tokens / seconds, 1) if seconds else None,
        "stopped": sum(1 for s in samples if s.finish_reason == "stop"),
        "truncated": sum(1 for s in samples if s.finish_reason == "length"),
    }


# ---------------------------------------------------------------------------------------------- CLI
