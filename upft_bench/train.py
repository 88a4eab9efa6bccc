"""The one training loop, for every method and for pretraining the tiny base model.

    upft-bench train --model runs/base/model --examples runs/upft/examples.jsonl --output runs/upft/train \\
        --set lr=2e-4 --set batch_size=16 --set epochs=2
    upft-bench train ... --resume                              # continue a killed run from its last checkpoint
    upft-bench train ... --set lora_rank=8                     # LoRA adapters (pip install 'upft-bench[lora]')
    accelerate launch --multi_gpu --num_processes 2 -m upft_bench.cli train ... --processes 2   # DDP (gloo on CPU)

    from upft_bench.train import TrainConfig, train
    stats = train("runs/base/model", examples, TrainConfig(lr=2e-4), "runs/upft/train")

Loss: causal-LM cross entropy on response tokens only, averaged per sequence, then over the sequences of the
optimizer step (docs/METHODS.md, "Training"), so every example weighs the same whatever the micro-batch
size, gradient accumulation or process count. Writes `model/` (save_pretrained + tokenizer + chat template),
`train_stats.json` and `checkpoints/step-N/` under the output folder, each atomically, and as it trains
`train_log.jsonl`: one row per loss-curve point (the rows of train_stats.json's `loss_curve`), also sent to the
experiment tracker of `report_to` (TensorBoard, W&B, MLflow, ... through accelerate).

LoRA (`lora_rank` > 0, peft): only low-rank adapters train, on frozen base weights (QLoRA: `load_in_4bit`, the base
in 4 bits on a CUDA GPU); `model/` is then the adapters merged into the base weights, a plain checkpoint, and
`adapter/` the adapter alone (PeftModel.save_pretrained).
"""
from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import math
import os
import random
import shutil
import time
from array import array
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NamedTuple

from tqdm.auto import tqdm

from upft_bench.atomic import replace_dir, temp_path, write_json, write_lines
from upft_bench.environment import cpu_model
from upft_bench.errors import InputError, UpftError
from upft_bench.examples import Example, ExamplesError, count_tuned_tokens, loss_positions


class DivergedError(UpftError):
    """The training loss became NaN or infinite (a learning rate too high for the model, or broken examples)."""


# TrainConfig fields that change no result (how often training saves and logs): a resumed run and a config
# comparison (upft_bench.experiment.changed_sections) ignore them.
RESULT_NEUTRAL = ("save_every", "keep_checkpoints", "log_every", "report_to")
# The preference objective's fields: left out of a plain (sft) run's resume key, as LORA_FIELDS without LoRA.
DPO_FIELDS = ("objective", "dpo_beta")
# Example kinds of a preference pair, in the order a pairs file holds them (consecutive rows).
PAIR_KINDS = ("chosen", "rejected")

# TrainConfig's LoRA fields: they change the result only with lora_rank > 0.
LORA_FIELDS = ("lora_rank", "lora_alpha", "lora_dropout", "lora_targets", "load_in_4bit")

# The per-step log under the output folder: one JSON row per loss-curve point, written as the run trains.
LOG_FILE = "train_log.jsonl"
# Experiment trackers accelerate supports (accelerate.utils.LoggerType) for TrainConfig.report_to; "all": every
# one installed.
TRACKERS = ("tensorboard", "wandb", "mlflow", "comet_ml", "aim", "clearml", "dvclive", "swanlab", "trackio", "all")


@dataclass
class TrainConfig:
    """Everything the loop needs; each field is a `--set key=value` override of `upft-bench train`."""

    lr: float = 2e-6  # peak learning rate (authors' value for 7-8B models; small models need more)
    epochs: int = 1  # passes over the examples
    max_steps: int = 0  # stop after this many optimizer steps (0 = epochs decide); the schedule spans it
    batch_size: int = 64  # global batch: examples per optimizer step, over all processes
    micro_batch_size: int = 8  # examples per forward pass per process (gradient accumulation fills the rest)
    warmup_ratio: float = 0.03  # share of steps with linear warmup from 0
    schedule: str = "constant"  # after warmup: "constant" or "cosine" (decays to min_lr_ratio * lr)
    min_lr_ratio: float = 0.0  # cosine floor as a fraction of lr
    adam_betas: tuple[float, float] = (0.9, 0.95)  # AdamW betas (authors' values)
    adam_eps: float = 1e-8  # AdamW epsilon
    weight_decay: float = 0.0  # AdamW decoupled weight decay on matrices (not on norms/biases)
    grad_clip: float = 1.0  # clip the global gradient norm to this (0 = off)
    max_length: int = 3072  # prompt + response tokens kept per example; the response's end is cut
    mixed_precision: str = "auto"  # "no" (fp32), "bf16" (autocast, fp32 master weights), "auto" (bf16 if supported)
    dtype: str = "float32"  # dtype the weights are loaded in from a path: "float32", "bfloat16" or "auto"
    gradient_checkpointing: bool = False  # recompute activations in backward: less memory, ~30% slower
    compile: bool = False  # torch.compile the forward: ~1.7x faster steps on CPU after ~2 min of compiling
    # LoRA (peft): train low-rank adapters on frozen base weights; model/ is saved merged, adapter/ beside it.
    lora_rank: int = 0  # adapter rank r (0 = full fine-tuning)
    lora_alpha: float = 16.0  # adapter scale: alpha / r
    lora_dropout: float = 0.0  # dropout on the adapters' input
    lora_targets: list[str] | None = None  # module names to adapt; None: every linear layer but the LM head
    load_in_4bit: bool = False  # QLoRA: base weights in 4-bit NF4 (bitsandbytes, CUDA); needs lora_rank > 0
    bucket_batches: int = 16  # length bucketing: sort within windows of this many global batches (1 = no sort)
    seed: int | None = None  # data order and any randomness in the model; None: 0 (compare sets the experiment seed)
    # Checkpoint every N optimizer steps (0 = never): a killed run resumes from the last one (--resume). The
    # weights and the loss curve do not depend on it; a finished `compare` phase deletes its checkpoints.
    save_every: int = 100
    keep_checkpoints: int = 1  # how many recent checkpoints to keep
    log_every: int = 10  # loss-curve point (mean over the window) every N steps: a row of train_log.jsonl
    # Also send each loss-curve point to an experiment tracker: "none", or one accelerate supports (TRACKERS), its
    # package installed (tensorboard: pip install 'upft-bench[tracking]'). TensorBoard writes under
    # <output>/runs/upft-bench/ (`tensorboard --logdir <output>/runs`); accelerate's trackers run on the main process.
    report_to: str = "none"
    trust_remote_code: bool = False  # passed to from_pretrained; off unless you trust the checkpoint's code
    # What the loss is. "sft": each response's mean token negative log-likelihood. "dpo": preference pairs
    # (consecutive chosen/rejected examples of one prompt), -log sigmoid(beta * ((log p_c - log r_c) -
    # (log p_w - log r_w))) with summed response log-probabilities under the model (p) and under the model as it
    # was before training (r, the frozen reference); batch_size and micro_batch_size then count pairs.
    objective: str = "sft"
    dpo_beta: float = 0.1  # DPO's beta: how far from the reference the preference may pull (objective dpo)

    def __post_init__(self):
        if str(self.mixed_precision).lower() in ("false", "off"):  # YAML reads a bare `no` as false
            self.mixed_precision = "no"
        self.adam_betas = tuple(float(b) for b in self.adam_betas)
        self.lora_alpha, self.lora_dropout = float(self.lora_alpha), float(self.lora_dropout)
        if isinstance(self.lora_targets, str):
            self.lora_targets = [t.strip() for t in self.lora_targets.split(",") if t.strip()]
        elif self.lora_targets is not None:
            self.lora_targets = list(self.lora_targets)  # a list, as it reads back from JSON (resume compares it)
        checks = [
            (0 < self.lr < math.inf, "lr must be > 0"),
            (self.epochs >= 1, "epochs must be >= 1"),
            (self.max_steps >= 0, "max_steps must be >= 0"),
            (self.batch_size >= 1, "batch_size must be >= 1"),
            (1 <= self.micro_batch_size, "micro_batch_size must be >= 1"),
            (0 <= self.warmup_ratio < 1, "warmup_ratio must be in [0, 1)"),
            (self.schedule in ("constant", "cosine"), "schedule must be 'constant' or 'cosine'"),
            (0 <= self.min_lr_ratio <= 1, "min_lr_ratio must be in [0, 1]"),
            (len(self.adam_betas) == 2 and all(0 <= b < 1 for b in self.adam_betas),
             "adam_betas: two values in [0, 1)"),
            (self.adam_eps > 0, "adam_eps must be > 0"),
            (self.weight_decay >= 0, "weight_decay must be >= 0"),
            (self.grad_clip >= 0, "grad_clip must be >= 0"),
            (self.max_length >= 2, "max_length must be >= 2"),
            (self.mixed_precision in ("no", "bf16", "auto"), "mixed_precision must be 'no', 'bf16' or 'auto'"),
            (self.dtype in ("float32", "bfloat16", "auto"), "dtype must be 'float32', 'bfloat16' or 'auto'"),
            (self.bucket_batches >= 1, "bucket_batches must be >= 1"),
            (self.save_every >= 0, "save_every must be >= 0"),
            (self.keep_checkpoints >= 1, "keep_checkpoints must be >= 1"),
            (self.log_every >= 1, "log_every must be >= 1"),
            (self.report_to in ("none", *TRACKERS), f"report_to must be 'none' or one of {', '.join(TRACKERS)}"),
            (self.seed is None or self.seed >= 0, "seed must be >= 0 (or null: 0)"),
            (self.lora_rank >= 0, "lora_rank must be >= 0 (0 = full fine-tuning)"),
            (0 < self.lora_alpha < math.inf, "lora_alpha must be > 0"),
            (0 <= self.lora_dropout < 1, "lora_dropout must be in [0, 1)"),
            (self.lora_targets is None or (self.lora_targets and all(isinstance(t, str) and t
                                                                     for t in self.lora_targets)),
             "lora_targets: one or more module names (or null: every linear layer but the LM head)"),
            (not self.load_in_4bit or self.lora_rank > 0, "load_in_4bit needs lora_rank > 0 (QLoRA trains adapters)"),
            (self.objective in ("sft", "dpo"), "objective must be 'sft' or 'dpo'"),
            (0 < self.dpo_beta < math.inf, "dpo_beta must be > 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"TrainConfig: {message}")
        missing = _lora_requirements(self)
        if missing:
            raise ValueError(f"TrainConfig: {missing}")


def _lora_requirements(config: TrainConfig) -> str | None:
    """What LoRA or QLoRA needs that this machine lacks, or None (peft is only looked up, never imported here)."""
    if config.lora_rank and importlib.util.find_spec("peft") is None:
        return "lora_rank needs peft: pip install 'upft-bench[lora]'"
    if not config.load_in_4bit:
        return None
    need = "load_in_4bit needs a CUDA GPU and bitsandbytes (pip install 'upft-bench[qlora]')"
    # heavy (torch): loaded on use, only for QLoRA
    import torch

    if not torch.cuda.is_available():
        return f"{need}; this machine has no CUDA device"
    if importlib.util.find_spec("bitsandbytes") is None:
        return f"{need}; bitsandbytes is not installed"
    return None


# ----------------------------------------------------------------------------- data order


def plan_batches(lengths: list[int], batch_size: int, seed: int, epoch: int, bucket_batches: int) -> list[list[int]]:
    """Global batches (lists of example indices) for one epoch, a pure function of its arguments.

    Shuffle with (seed, epoch), sort each window of `bucket_batches` batches by length so a batch holds similar
    lengths (little padding), cut into batches, shuffle the batch order. Independent of process count and
    micro-batch size: the same examples share an optimizer step however the work is split.
    """
    rng = random.Random(f"{seed}:{epoch}")
    order = list(range(len(lengths)))
    rng.shuffle(order)
    window = batch_size * bucket_batches
    batches = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start : start + window], key=lambda i: (lengths[i], i))
        batches += [chunk[j : j + batch_size] for j in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def training_units(examples, objective: str = "sft") -> list[tuple[int, ...]]:
    """What a global batch counts and the loss averages over, as example indices: each example (sft), or each
    (chosen, rejected) pair of consecutive examples of one question and prompt (dpo). A file that is not pairs
    throughout is an ExamplesError naming the example."""
    if objective != "dpo":
        return [(i,) for i in range(len(examples))]
    for i, e in enumerate(examples):
        want = PAIR_KINDS[i % 2]
        if e.kind != want:
            raise ExamplesError(f"example {i + 1} (question {e.question_id!r}): objective dpo trains on pairs of "
                                f"consecutive '{PAIR_KINDS[0]}' and '{PAIR_KINDS[1]}' examples; expected kind "
                                f"'{want}', got '{e.kind}'")
        if i % 2 and (e.question_id != examples[i - 1].question_id or e.prompt_ids != examples[i - 1].prompt_ids):
            raise ExamplesError(f"example {i + 1} (question {e.question_id!r}): a rejected response must follow "
                                f"the chosen one of the same question and prompt (example {i} is question "
                                f"{examples[i - 1].question_id!r})")
    if len(examples) % 2:
        raise ExamplesError(f"example {len(examples)}: objective dpo: the last chosen response has no rejected one")
    return [(i, i + 1) for i in range(0, len(examples), 2)]


def _unit_schedule(lengths: list[int], units: list[tuple[int, ...]], config) -> list[tuple[int, list[int]]]:
    """(epoch, global batch of unit indices) per optimizer step of the whole run, cut at max_steps; a unit's
    length for bucketing is its longest sequence's."""
    unit_lengths = [max(lengths[i] for i in unit) for unit in units]
    schedule = [(epoch, batch) for epoch in range(config.epochs)
                for batch in plan_batches(unit_lengths, config.batch_size, config.seed or 0, epoch,
                                          config.bucket_batches)]
    return schedule[: config.max_steps] if config.max_steps else schedule


def _planned(examples, config):
    """(kept length per example, units, the run's schedule of units): the loop's plan, as the cost counts see it."""
    lengths = [loss_positions(len(e.prompt_ids), len(e.response_ids), config.max_length)[0] for e in examples]
    units = training_units(examples, config.objective)
    return lengths, units, _unit_schedule(lengths, units, config)


def trained_positions(examples, config) -> list[int]:
    """Input positions of every example each time the training loop processes it (`upft_bench.train.TrainConfig`):
    the loop's own data order (`plan_batches` over its units, cut at max_steps) over the examples truncated to
    max_length; a sequence of n ids has n-1 input positions (inputs are ids[:-1])."""
    lengths, units, schedule = _planned(examples, config)
    return [lengths[i] - 1 for _, batch in schedule for u in batch for i in units[u]]


def reference_positions(examples, config) -> list[int]:
    """Input positions the frozen reference runs forward (objective dpo): every sequence of a pair the run trains
    on, once, however many epochs repeat it (its log-probabilities are computed once, before training); [] for
    sft."""
    if config.objective != "dpo":
        return []
    lengths, units, schedule = _planned(examples, config)
    return [lengths[i] - 1 for u in sorted({u for _, batch in schedule for u in batch}) for i in units[u]]


def dpo_loss(policy_chosen, policy_rejected, reference_chosen, reference_rejected, beta: float):
    """Per-pair DPO loss -log sigmoid(beta * ((pc - rc) - (pw - rw))) on summed response log-probabilities
    (tensors of one value per pair)."""
    # heavy (torch): loaded on use
    import torch.nn.functional as F

    margin = beta * ((policy_chosen - reference_chosen) - (policy_rejected - reference_rejected))
    return -F.logsigmoid(margin)


def lr_at(step: int, total_steps: int, config: TrainConfig) -> float:
    """Learning rate of optimizer step `step` (0-based): linear warmup, then constant or cosine."""
    warmup = round(config.warmup_ratio * total_steps)
    if step < warmup:
        return config.lr * (step + 1) / warmup
    if config.schedule == "constant":
        return config.lr
    progress = (step - warmup) / max(1, total_steps - warmup)
    return config.lr * (config.min_lr_ratio + (1 - config.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def collate(rows: list[tuple[list[int], int]], pad_id: int):
    """Right-padded (inputs, targets, attention mask) for rows of (token ids, index of the first loss token).

    Inputs are ids[:-1] and targets ids[1:] (pre-shifted), with -100 at prompt and pad positions.
    Right padding keeps positions 0..n-1 for every row, as in generation.
    """
    # heavy (torch): loaded on use
    import torch

    width = max(len(ids) for ids, _ in rows) - 1
    inputs = torch.full((len(rows), width), pad_id, dtype=torch.long)
    targets = torch.full((len(rows), width), -100, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for r, (ids, first) in enumerate(rows):
        n = len(ids) - 1
        inputs[r, :n] = torch.tensor(ids[:-1])
        mask[r, :n] = 1
        targets[r, first - 1 : n] = torch.tensor(ids[first:])
    return inputs, targets, mask


# ----------------------------------------------------------------------------- small helpers


def _checkpoints(output_dir: Path) -> list[Path]:
    """Complete checkpoints (renamed into place), oldest first. Half-written `.tmp-*` folders are ignored."""
    root = output_dir / "checkpoints"
    found = [p for p in root.glob("step-*") if p.is_dir() and p.name[5:].isdigit()] if root.exists() else []
    return sorted(found, key=lambda p: int(p.name[5:]))


def _use_bf16(setting: str, device) -> bool:
    # heavy (torch): loaded on use
    import torch

    if setting != "auto":
        return setting == "bf16"
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    # On CPU only native bf16 (AVX512-BF16 or AMX) pays: without it bf16 matmuls are emulated and ran 4-5x
    # slower than fp32 on a Xeon with plain AVX512 (oneDNN's own "bf16 supported" check says yes there).
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return device.type == "cpu" and any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def _hardware(accelerator, bf16: bool) -> dict:
    # heavy (torch): loaded on use
    import torch
    import transformers

    info = {
        "device": accelerator.device.type,
        "processes": accelerator.num_processes,
        "distributed": str(accelerator.distributed_type).rsplit(".", 1)[-1],  # NO, MULTI_CPU, FSDP, DEEPSPEED, ...
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "mixed_precision": "bf16" if bf16 else "no",
        "threads": torch.get_num_threads(),
    }
    plugin = getattr(accelerator.state, "deepspeed_plugin", None) if info["distributed"] == "DEEPSPEED" else None
    if plugin is not None:
        info["zero_stage"] = plugin.zero_stage
    if accelerator.device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(accelerator.device)
    info["cpu"] = cpu_model()
    return info


class _LossPositions:
    """Runs the model's output layer (LM head) only at the positions that carry loss.

    A forward pre-hook on `model.get_output_embeddings()` swaps the final hidden states (rows, width, hidden) for
    the rows at the flat positions given to `only(...)`, so the vocabulary projection, the log-softmax and their
    backward skip prompt and pad positions (the prompt's share of the positions; often most of them with long
    prompts and large vocabularies). The model still runs its own forward (DDP, autocast, any logit scaling or
    softcapping after the head), and the hook passes everything through outside `only(...)`. A model whose head
    is not reached as a module call on (rows, width, hidden) returns full logits, which `select` gathers instead:
    the same logits either way. `model=None` hooks nothing (for a compiled forward: the index's length changes
    every micro-batch, and as a hook's state it would recompile the graph each time).
    """

    def __init__(self, model):
        # heavy (torch): loaded on use
        import torch

        head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
        self._handle = head.register_forward_pre_hook(self._pick) if isinstance(head, torch.nn.Module) else None
        self._index = None

    def _pick(self, module, args):
        if self._index is None or not args or getattr(args[0], "ndim", 0) != 3:
            return None
        return (args[0].flatten(0, 1).index_select(0, self._index), *args[1:])

    @contextlib.contextmanager
    def only(self, index):
        """Within this block the head sees only the rows at `index` (flat positions into rows x width)."""
        self._index = index
        try:
            yield
        finally:
            self._index = None

    @staticmethod
    def select(logits, index):
        """(positions, vocab) logits at `index`, whether or not the hook already picked them."""
        if logits.dim() == 3:
            logits = logits.flatten(0, 1).index_select(0, index)
        if logits.dim() != 2 or logits.shape[0] != index.numel():
            raise RuntimeError(f"train(): expected logits for {index.numel()} positions, "
                               f"got shape {tuple(logits.shape)}")
        return logits

    def remove(self) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None


def _load(model_or_path, tokenizer, config: TrainConfig, device=None):
    # heavy (torch): loaded on use
    import torch
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
    )

    if isinstance(model_or_path, (str, Path)):
        dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "auto": "auto"}[config.dtype]
        path = str(model_or_path)
        quantized = {}
        if config.load_in_4bit:  # QLoRA: NF4 weights placed on this process's GPU as they load
            from transformers import BitsAndBytesConfig

            quantized = {"quantization_config": BitsAndBytesConfig(
                load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16),
                "device_map": {"": device.index if device.index is not None else torch.cuda.current_device()}}
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, trust_remote_code=config.trust_remote_code,
                                                     **quantized)
        tokenizer = tokenizer or AutoTokenizer.from_pretrained(path, trust_remote_code=config.trust_remote_code)
        return model, tokenizer
    if tokenizer is None:
        raise ValueError("train(): pass tokenizer= with an in-memory model (it is saved next to the weights)")
    if config.load_in_4bit:
        raise ValueError("train(): load_in_4bit loads the base model from its folder; pass a path, not a model")
    return model_or_path, tokenizer


def _with_lora(model, config: TrainConfig):
    """`model` wrapped by peft with LoRA adapters (only they train); for QLoRA prepared for k-bit training first.

    The adapters' initial values (A random, B zero) are drawn from torch's generator seeded here, so they are the
    same for a given seed, whatever loading the model drew before.
    """
    # heavy (torch, peft): loaded on use
    import torch
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    if config.load_in_4bit:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=config.gradient_checkpointing,
                                                gradient_checkpointing_kwargs={"use_reentrant": False})
    torch.manual_seed(config.seed or 0)
    lora = LoraConfig(r=config.lora_rank, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                      target_modules=config.lora_targets or "all-linear", task_type="CAUSAL_LM")
    return get_peft_model(model, lora)


def _config_record(config: TrainConfig) -> dict:
    """The config as JSON data, with the seed the run used (an unset seed is 0)."""
    return asdict(config) | {"adam_betas": list(config.adam_betas), "seed": config.seed or 0}


def _resume_key(config: TrainConfig) -> dict:
    """The config fields that shape the result; logging and checkpoint cadence may change on resume. The LoRA
    fields count when LoRA is on, the preference fields with objective dpo; otherwise they change nothing and are
    left out (a plain run keeps the key it had before they existed, so its older checkpoints still resume)."""
    data = _config_record(config)
    unused = (() if config.lora_rank else LORA_FIELDS) + (() if config.objective == "dpo" else DPO_FIELDS)
    return {k: v for k, v in data.items() if k not in RESULT_NEUTRAL and k not in unused}


def _fingerprint(rows: list[tuple[list[int], int]]) -> str:
    """A hash of the training sequences, so a resume never continues on different examples."""
    digest = hashlib.sha256()
    for ids, first in rows:
        digest.update(array("q", [len(ids), first, *ids]).tobytes())
    return digest.hexdigest()


def _sequences(examples: list[Example], max_length: int, vocab_size: int) -> list[tuple[list[int], int]]:
    """(truncated ids, first loss index) per example; errors name the example that cannot be trained on."""
    rows = []
    for i, e in enumerate(examples):
        if not isinstance(e, Example):
            raise TypeError(f"example {i + 1}: expected an Example, got {type(e).__name__}")
        length, n_loss = loss_positions(len(e.prompt_ids), len(e.response_ids), max_length)
        if n_loss == 0:
            raise ExamplesError(
                f"example {i + 1} (question {e.question_id!r}): no response token fits in max_length={max_length} "
                f"(prompt has {len(e.prompt_ids)} tokens, response {len(e.response_ids)})"
            )
        ids = (list(e.prompt_ids) + list(e.response_ids))[:length]
        if max(ids) >= vocab_size or min(ids) < 0:
            bad = next(t for t in ids if t >= vocab_size or t < 0)
            field = "prompt_ids" if bad in e.prompt_ids else "response_ids"
            raise ExamplesError(f"example {i + 1} (question {e.question_id!r}), {field}: token id {bad} is outside "
                             f"the model's vocabulary (0..{vocab_size - 1})")
        rows.append((ids, max(len(e.prompt_ids), 1)))
    return rows


# ----------------------------------------------------------------------------- the loop


def train(model_or_path, examples: list[Example], config: TrainConfig, output_dir, resume: bool = False,
          tokenizer=None) -> dict:
    """Fine-tune (or pretrain) a causal LM on `examples`; returns the stats also written to train_stats.json.

    `model_or_path`: a checkpoint folder, or an in-memory model (then pass `tokenizer`; it is trained in place).
    `resume=True` continues from the last checkpoint under output_dir/checkpoints (same config and examples).
    """
    # heavy (torch): loaded on use
    import torch

    # heavy (accelerate): loaded on use
    from accelerate import Accelerator
    from accelerate.utils import InitProcessGroupKwargs, ProjectConfiguration

    if not examples:
        raise ValueError("train(): no examples")
    check_tracker(config.report_to)
    output_dir = Path(output_dir)
    # No GPU: real processes over gloo on CPU; mixed precision is our own autocast below. A tracker (report_to)
    # writes under output_dir/runs/ (TensorBoard: runs/upft-bench/).
    project = ProjectConfiguration(project_dir=str(output_dir), logging_dir=str(output_dir / "runs"))
    # DeepSpeed (launched with a DeepSpeed accelerate config) runs on the GPUs, or without one on its CPU
    # accelerator; accelerate finds no process-group backend for the latter by itself, so it is named (gloo).
    deepspeed = os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() == "true"
    cpu = not torch.cuda.is_available()
    handlers = [InitProcessGroupKwargs(backend="gloo")] if deepspeed and cpu else []
    accelerator = Accelerator(cpu=cpu and not deepspeed, mixed_precision="no", project_config=project,
                              kwargs_handlers=handlers,
                              log_with=None if config.report_to == "none" else config.report_to)
    try:
        return _train(accelerator, model_or_path, examples, config, output_dir, resume, tokenizer)
    finally:
        _close_trackers(accelerator)


def _train(accelerator, model_or_path, examples: list[Example], config: TrainConfig, output_dir: Path,
           resume: bool, tokenizer) -> dict:
    """train()'s work on `accelerator`; train() closes its trackers however this ends."""
    # heavy (torch): loaded on use
    import torch

    device = accelerator.device
    _check_distributed(accelerator, config)
    deepspeed = _deepspeed_settings(accelerator, config)
    torch.manual_seed(config.seed or 0)
    model, tokenizer = _load(model_or_path, tokenizer, config, device)
    rows = _sequences(examples, config.max_length, model.get_input_embeddings().num_embeddings)
    units = training_units(examples, config.objective)
    pad_id = next((t for t in (tokenizer.pad_token_id, tokenizer.eos_token_id) if t is not None), 0)
    bf16 = _use_bf16(config.mixed_precision, device)
    if config.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if config.lora_rank:  # a PeftModel from here on: the optimizer, checkpoints and the head hook see through it
        model = _with_lora(model, config)
    model.train()
    model, optimizer = accelerator.prepare(model, _optimizer(model, config, device))
    # Compiling fuses the many small elementwise ops (norms, rotary, SiLU) that dominate a tiny model on CPU.
    # dynamic=True: bucketed batches change length every step; one recompile, not one per length.
    forward = torch.compile(model, dynamic=True) if config.compile else model
    schedule = _unit_schedule([len(ids) for ids, _ in rows], units, config)
    total_steps = len(schedule)
    world, rank = accelerator.num_processes, accelerator.process_index
    # Logits only where a loss is taken.
    head = _LossPositions(None if config.compile else accelerator.unwrap_model(model))
    step_rows = _RowPass(forward, head, rows, units, pad_id, device, bf16)
    # DPO: the reference's log-probabilities, from the weights as loaded (before any update or resumed state),
    # for every sequence this process will train on.
    reference = step_rows.reference(model, schedule, rank, world, config) if config.objective == "dpo" else None

    run_id = {"config": _resume_key(config), "data": _fingerprint(rows), "total_steps": total_steps}
    finished, start = _resume_state(accelerator, output_dir, run_id, resume)
    if finished is not None:  # this exact run already finished: nothing to redo
        return finished
    start_step, elapsed, curve, window = start
    step_log = _StepLog(accelerator, config, output_dir, curve, start_step)

    bar = tqdm(total=total_steps, initial=start_step, desc="train", disable=not accelerator.is_main_process)
    # The log window's loss sum stays on the device in float64 (the Python float it replaces): it is read only at
    # log and checkpoint points, so no step waits for the device just to keep a running sum.
    window_loss = torch.tensor(window[0], device=device, dtype=torch.float32 if device.type == "mps" else torch.float64)
    window_steps, seen_tokens = window[1], 0
    t0 = time.perf_counter()
    # Throughput of the log window (on resume, of its part run in this call): its start time and tokens seen.
    window_t0, window_seen = t0, 0
    for step in range(start_step, total_steps):
        epoch, batch = schedule[step]
        lr = lr_at(step, total_steps, config)
        for group in optimizer.param_groups:
            group["lr"] = lr

        # This process's share of the global batch, cut into micro-batches. Every process runs the same number
        # of micro-batches (DDP syncs on each backward); missing slots are filled with a zero-weight example.
        mine = batch[rank::world]
        n_micro = math.ceil(math.ceil(len(batch) / world) / config.micro_batch_size)
        loss_sum = torch.zeros((), device=device)
        for m in range(n_micro):
            idx = mine[m * config.micro_batch_size : (m + 1) * config.micro_batch_size]
            filler = not idx
            idx = batch[:1] if filler else idx
            weight = torch.full((len(idx),), 0.0 if filler else 1.0, device=device)
            sync = m == n_micro - 1
            with (contextlib.nullcontext() if sync or deepspeed else accelerator.no_sync(model)):
                nll, n_tokens, order, n_seen = step_rows.run(idx)
                seen_tokens += 0 if filler else n_seen
                if reference is None:
                    seq_loss = nll / n_tokens  # mean over each sequence's response tokens
                else:  # rows come as (chosen, rejected) per pair; log-probabilities are -nll
                    ref = reference[order].view(-1, 2)
                    pair = (-nll).view(-1, 2)
                    seq_loss = dpo_loss(pair[:, 0], pair[:, 1], ref[:, 0], ref[:, 1], config.dpo_beta)
                # Sum here, divide by the GLOBAL unit count; DDP averages gradients over processes, so x world.
                loss = (seq_loss * weight).sum() * world / len(batch)
                if deepspeed:  # the engine steps (clips, updates, zeroes) after the last micro-batch's backward
                    accelerator.deepspeed_engine_wrapped.backward(loss, sync_gradients=sync)
                else:
                    accelerator.backward(loss)
            loss_sum += (seq_loss.detach() * weight).sum()
        # Under DeepSpeed the engine has clipped and stepped already; this reads its norm, and step is a no-op.
        grad_norm = accelerator.clip_grad_norm_(model.parameters(), config.grad_clip) if config.grad_clip else None
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

        window_loss += (accelerator.reduce(loss_sum, reduction="sum") / len(batch)).to(window_loss.dtype)
        window_steps += 1
        done = step + 1
        if done % config.log_every == 0 or done == total_steps or done == 1:
            point = {"step": done, "epoch": epoch, "loss": window_loss.item() / window_steps, "lr": lr}
            if grad_norm is not None:
                point["grad_norm"] = float(grad_norm)
            # Every process sees the same reduced loss and clipped norm, so all stop here together.
            bad = next((f"the {key} is {point[key]}" for key in ("loss", "grad_norm") if key in point
                        and not math.isfinite(point[key])), None)
            if bad is None and done == total_steps and not _finite(model, accelerator):  # the last update
                bad = "the weights are no longer finite"
            if bad is not None:
                bar.close()
                head.remove()
                raise DivergedError(f"training diverged: {bad} at step {done} of {total_steps} (lr {lr:.2e}); "
                                    "the model was not saved. Lower train.lr, or check the examples")
            # Real tokens (prompt + response, no padding) of all processes per second over the window: one reduce
            # at log points only, where the loss was just read anyway.
            now, tokens = time.perf_counter(), seen_tokens - window_seen
            if world > 1:
                tokens = int(accelerator.reduce(torch.tensor(tokens, device=device), reduction="sum"))
            point["tokens_per_second"] = round(tokens / max(now - window_t0, 1e-9), 1)
            point["elapsed_seconds"] = round(elapsed + now - t0, 3)
            curve.append(point)
            step_log.write(point)  # the same dict: the log's rows are the loss curve's points
            window_loss.zero_()
            window_steps = 0
            window_t0, window_seen = now, seen_tokens
            bar.set_postfix(loss=f"{point['loss']:.4f}", lr=f"{lr:.2e}")
        bar.update(1)

        if config.save_every and done % config.save_every == 0 and done < total_steps:
            saving = time.perf_counter()
            _save_checkpoint(accelerator, output_dir, config, {
                "step": done, "run": run_id, "train_seconds": elapsed + saving - t0,
                "loss_curve": curve, "window": [window_loss.item(), window_steps]})
            window_t0 += time.perf_counter() - saving  # the window's throughput is training's, not saving's
    bar.close()
    head.remove()
    run_seconds = max(time.perf_counter() - t0, 1e-9)
    run = _Run(accelerator, tokenizer, config, output_dir, bf16, run_id, schedule, units)
    return _finish(run, model, examples, _Progress(start_step, elapsed + run_seconds, run_seconds, seen_tokens, curve))


class _StepLog:
    """Where each loss-curve point goes as it is made: a row of output_dir/train_log.jsonl, flushed (closed) at
    once so a killed run keeps what it logged, and the trackers of `report_to` (accelerate's). Only the main
    process writes either.

    The log starts as the curve so far: empty on a fresh run, the checkpoint's points on resume, so the rows a
    killed session logged after its checkpoint (and a torn last line) are dropped and no step appears twice.
    """

    def __init__(self, accelerator, config: TrainConfig, output_dir: Path, curve: list, start_step: int):
        self.accelerator, self.path = accelerator, output_dir / LOG_FILE
        if accelerator.is_main_process:
            write_lines(self.path, (json.dumps(point) + "\n" for point in curve))
            if not start_step:  # a fresh run: no tracker files of an earlier run beside its own
                shutil.rmtree(output_dir / "runs", ignore_errors=True)
        if config.report_to != "none":
            # On resume TensorBoard drops what it holds from the checkpoint's step on (a killed session's steps).
            resumed = {"tensorboard": {"purge_step": start_step + 1}} if start_step else {}
            accelerator.init_trackers("upft-bench", config=_tracker_config(config), init_kwargs=resumed)

    def write(self, point: dict) -> None:
        if self.accelerator.is_main_process:
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(point) + "\n")
        self.accelerator.log({k: v for k, v in point.items() if k != "step"}, step=point["step"])


def check_tracker(report_to: str) -> None:
    """A one-line InputError when `report_to` names a tracker whose package is not installed (accelerate would
    leave it out without a word)."""
    if report_to in ("none", "all"):
        return
    # heavy (accelerate): loaded on use
    from accelerate.tracking import get_available_trackers

    if report_to not in {str(t) for t in get_available_trackers()}:
        package = "'upft-bench[tracking]'" if report_to == "tensorboard" else report_to
        raise InputError(f"train.report_to {report_to} needs {report_to}: pip install {package}")


def _tracker_config(config: TrainConfig) -> dict:
    """The config as flat scalars, as the trackers take hyperparameters (lists and nulls as JSON text)."""
    return {key: value if isinstance(value, (bool, int, float, str)) else json.dumps(value)
            for key, value in _config_record(config).items()}


def _close_trackers(accelerator) -> None:
    """The trackers' part of accelerator.end_training(): their files closed. Not its process-group teardown: a
    launched command tears the group down after a barrier (upft_bench.launch.processes_ended), and a caller that
    trains twice in one launched script still needs it."""
    for tracker in accelerator.trackers:
        tracker.finish()
    accelerator.trackers.clear()


def _check_distributed(accelerator, config: TrainConfig) -> None:
    """The loop runs in one process, over DDP (CPU processes or GPUs), FSDP and DeepSpeed ZeRO; it refuses what it
    does not handle: LoRA with sharded weights (the adapters would be merged from shards), and a compiled forward
    under DeepSpeed (its engine hooks every module)."""
    kind = str(getattr(accelerator, "distributed_type", ""))
    for name, tag in (("FSDP", "FSDP"), ("DeepSpeed", "DEEPSPEED")):
        if tag in kind and config.lora_rank:
            raise ValueError(f"train: LoRA under {name} is not supported; LoRA trains on one GPU (or one process "
                             f"per GPU without --config_file), full fine-tuning shards with {name}")
    if "DEEPSPEED" in kind and config.compile:
        raise ValueError("train: train.compile is not supported under DeepSpeed; set train.compile=false")


def _deepspeed_settings(accelerator, config: TrainConfig) -> bool:
    """Under DeepSpeed (`accelerate launch --config_file baselines/accelerate/zero3.yaml`), the engine's settings
    that belong to the loop: it cuts global batches into micro-batches and accumulates itself, so DeepSpeed takes
    one micro-batch per process and no accumulation of its own (it would divide the loss again), clips at
    train.grad_clip, and the optimizer and learning-rate schedule are the loop's. False when not under DeepSpeed.
    """
    plugin = getattr(getattr(accelerator, "state", None), "deepspeed_plugin", None)
    if "DEEPSPEED" not in str(getattr(accelerator, "distributed_type", "")) or plugin is None:
        return False
    ds = plugin.deepspeed_config
    source = "the DeepSpeed config of the accelerate config file"
    for key in ("optimizer", "scheduler"):
        if key in ds:
            raise ValueError(f"train: {source} sets '{key}'; remove it: the {key} is the loop's (train.lr, "
                             "train.schedule, train.weight_decay)")
    for key in ("fp16", "bf16"):
        if str(ds.get(key, {}).get("enabled", False)).lower() == "true":
            raise ValueError(f"train: {source} enables {key}; set mixed_precision: 'no' there: the loop runs bf16 "
                             "autocast over fp32 weights itself (train.mixed_precision)")
    ds["train_micro_batch_size_per_gpu"] = config.micro_batch_size
    ds["gradient_accumulation_steps"] = 1
    ds["gradient_clipping"] = float(config.grad_clip or 0.0)
    ds.pop("train_batch_size", None)  # DeepSpeed derives it: micro-batch x 1 x processes
    return True


def _finite(model, accelerator=None) -> bool:
    """True when every parameter is finite in every process (one pass over the weights, no copy; with sharded
    weights each process checks its shard and the verdicts are combined, so all processes agree)."""
    # heavy (torch): loaded on use
    import torch

    # DeepSpeed ZeRO-3 keeps this process's shard in ds_tensor (the parameter itself is empty between forwards).
    local = all(bool(torch.isfinite(getattr(p, "ds_tensor", p)).all()) for p in model.parameters())
    if accelerator is None or accelerator.num_processes == 1:
        return local
    bad = accelerator.reduce(torch.tensor(0.0 if local else 1.0, device=accelerator.device), reduction="sum")
    return float(bad) == 0.0


def _optimizer(model, config: TrainConfig, device):
    """AdamW over the trainable parameters, weight decay on matrices only."""
    # heavy (torch): loaded on use
    import torch

    # Decay matrices only (nanoGPT); with the default weight_decay=0 this changes nothing.
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": config.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    # Fused AdamW: one kernel over all tensors; per-step overhead matters for a 0.9M-parameter model.
    return torch.optim.AdamW(groups, lr=config.lr, betas=config.adam_betas, eps=config.adam_eps,
                             fused=device.type in ("cpu", "cuda"))


def _resume_state(accelerator, output_dir: Path, run_id: dict, resume: bool):
    """Where this call starts: (finished stats, None) when this exact run already finished, else
    (None, (step, train seconds so far, loss curve, open log window)), from the last checkpoint with `resume`.

    A fresh start removes old checkpoints; resuming checks the checkpoint was written for this run and loads the
    accelerate state (model, optimizer, RNG).
    """
    finished = output_dir / "train_stats.json"
    if resume and finished.exists() and (output_dir / "model").is_dir():
        done_stats = json.loads(finished.read_text())
        if done_stats.get("run") == run_id:
            return done_stats, None
    checkpoints = _checkpoints(output_dir)
    start = (0, 0.0, [], (0.0, 0))
    if resume and checkpoints:
        state = json.loads((checkpoints[-1] / "trainer_state.json").read_text())
        checks = (("config", "a different config"), ("data", "other examples"), ("total_steps", "other examples"))
        for key, what in checks:
            if state["run"][key] != run_id[key]:
                raise ValueError(f"{checkpoints[-1]}: checkpoint was written for {what} ({key} differs); cannot resume")
        accelerator.load_state(str(checkpoints[-1]))
        start = (state["step"], state["train_seconds"], state["loss_curve"], tuple(state["window"]))
    else:
        if resume and accelerator.is_main_process:
            print(f"train: no checkpoint under {output_dir / 'checkpoints'}; starting from step 0")
        if accelerator.is_main_process:
            shutil.rmtree(output_dir / "checkpoints", ignore_errors=True)  # a fresh run never resumes stale state
    output_dir.mkdir(parents=True, exist_ok=True)
    accelerator.wait_for_everyone()
    return None, start


class _RowPass:
    """The forward pass the loop and the DPO reference share: the sequences of some units, one micro-batch, through
    the model with logits only at loss positions; per sequence the summed response negative log-likelihood and
    the response token count."""

    def __init__(self, forward, head, rows, units, pad_id: int, device, bf16: bool):
        self.forward, self.head, self.rows, self.units = forward, head, rows, units
        self.pad_id, self.device, self.bf16 = pad_id, device, bf16

    def run(self, unit_indices: list[int]):
        """(summed NLL per sequence, response tokens per sequence, the sequences' row indices as a tensor, real
        tokens processed) for the units' sequences, in unit order (a pair's chosen then rejected)."""
        # heavy (torch): loaded on use
        import torch
        import torch.nn.functional as F

        order = [i for u in unit_indices for i in self.units[u]]
        mb = _micro_batch([self.rows[i] for i in order], self.pad_id, self.device)
        with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            # No attention mask: with right padding a causal model's real tokens never see a pad, and without a
            # mask SDPA takes its causal fast path. Pad positions only have -100 targets.
            with self.head.only(mb.keep):
                logits = self.head.select(self.forward(input_ids=mb.inputs, use_cache=False).logits, mb.keep)
        token_loss = F.cross_entropy(logits.float(), mb.targets, reduction="none")
        nll = torch.zeros(len(order), device=self.device).index_add(0, mb.row_of, token_loss)
        return nll, mb.n_tokens, torch.tensor(order, device=self.device), mb.n_seen

    def reference(self, model, schedule, rank: int, world: int, config: TrainConfig):
        """Summed response log-probabilities under the model as it is now (the DPO reference), for every sequence
        this process trains on over the whole run (its units of each step, and the filler unit), in micro-batches
        without gradients and in eval mode; NaN for the others. One value per sequence, computed once."""
        # heavy (torch): loaded on use
        import torch

        needed = sorted({u for _, batch in schedule for u in batch[rank::world] + batch[:1]})
        values = torch.full((len(self.rows),), math.nan, device=self.device)
        model.eval()
        try:
            with torch.no_grad():
                for start in range(0, len(needed), config.micro_batch_size):
                    nll, _, order, _ = self.run(needed[start : start + config.micro_batch_size])
                    values[order] = -nll
        finally:
            model.train()
        return values


class MicroBatch(NamedTuple):
    """One micro-batch on the device: the inputs, the flat row-major positions that carry loss with their rows and
    targets, the loss tokens per row, and the real (unpadded) token count."""

    inputs: Any
    keep: Any
    row_of: Any
    targets: Any
    n_tokens: Any
    n_seen: int


def _micro_batch(rows: list[tuple[list[int], int]], pad_id: int, device) -> MicroBatch:
    """Collate `rows` and move them to `device`; the loss positions are found on the host (no device sync)."""
    inputs, targets, mask = collate(rows, pad_id)
    keep = (targets != -100).flatten().nonzero().squeeze(1)
    n_tokens = (targets != -100).sum(dim=1).to(device)
    row_of = (keep // targets.shape[1]).to(device)
    flat_targets = targets.flatten()[keep].to(device)
    return MicroBatch(inputs.to(device), keep.to(device), row_of, flat_targets, n_tokens, int(mask.sum()))


@dataclass
class _Run:
    """What every step of a training run, its checkpoints and its end share."""

    accelerator: Any
    tokenizer: Any
    config: TrainConfig
    output_dir: Path
    bf16: bool
    run_id: dict
    schedule: list  # (epoch, global batch of unit indices) per optimizer step
    units: list  # example indices per unit: one example (sft) or a (chosen, rejected) pair (dpo)


@dataclass
class _Progress:
    """What the loop measured: where this call started, seconds (earlier sessions included, and this call's loop
    alone), real tokens processed by this process, and the loss curve."""

    start_step: int
    elapsed: float
    run_seconds: float
    seen_tokens: int
    curve: list


def _finish(run: _Run, model, examples: list[Example], progress: _Progress) -> dict:
    """The run's stats; the main process writes the final model and train_stats.json, each atomically."""
    # heavy (torch): loaded on use
    import torch

    accelerator, config, schedule, curve = run.accelerator, run.config, run.schedule, progress.curve
    start_step, run_seconds = progress.start_step, progress.run_seconds
    seen_tokens = int(accelerator.reduce(torch.tensor(progress.seen_tokens, device=accelerator.device),
                                         reduction="sum"))

    # Final model, atomically: weights + tokenizer + chat template, loadable by from_pretrained and lm-eval's hf.
    accelerator.wait_for_everyone()
    unwrapped = accelerator.unwrap_model(model)
    if config.gradient_checkpointing:
        unwrapped.gradient_checkpointing_disable()
    unwrapped.eval()
    tuned = count_tuned_tokens(examples, config.max_length)
    n_loss = [loss_positions(len(e.prompt_ids), len(e.response_ids), config.max_length)[1] for e in examples]
    tuned_all = sum(n_loss[i] for _, batch in schedule for u in batch for i in run.units[u])
    tuned_run = sum(n_loss[i] for _, batch in schedule[start_step:] for u in batch for i in run.units[u])
    total_steps = len(schedule)
    trainable, total = _parameter_counts(unwrapped)
    stats = {
        "tuned_tokens": tuned,
        "tuned_tokens_all_epochs": tuned_all,
        "train_seconds": round(progress.elapsed, 3),
        "steps": total_steps,
        "examples": len(examples),
        "epochs": config.epochs,
        # fewer than `epochs` when max_steps cuts the run
        "epochs_completed": round(total_steps / math.ceil(len(run.units) / config.batch_size), 4),
        "resumed_from_step": start_step,
        # Parameters the optimizer updated (all of them in full fine-tuning, the adapters' with LoRA) and in all.
        "trainable_parameters": trainable,
        "total_parameters": total,
        **({"lora": _lora_record(unwrapped, config)} if config.lora_rank else {}),
        # Throughput of this call (a resumed run measures only the steps it ran): positions processed
        # (prompt + response, no padding) and tokens carrying loss, per second of loop time.
        "tokens_per_second": round(seen_tokens / run_seconds, 1),
        "tuned_tokens_per_second": round(tuned_run / run_seconds, 1),
        "final_loss": curve[-1]["loss"] if curve else None,
        "loss_curve": curve,
        "hardware": _hardware(accelerator, run.bf16),
        "run": run.run_id,
        "config": _config_record(config),
    }
    # Every process takes part in gathering the weights (a collective under FSDP); the main one saves them.
    state = None if config.lora_rank else accelerator.get_state_dict(model)
    if accelerator.is_main_process:
        tmp = temp_path(run.output_dir / "model")
        shutil.rmtree(tmp, ignore_errors=True)
        if config.lora_rank:
            _save_lora(unwrapped, config, tmp, run.output_dir)
        else:
            unwrapped.save_pretrained(tmp, state_dict=state)
        run.tokenizer.save_pretrained(tmp)
        replace_dir(tmp, run.output_dir / "model")
        write_json(run.output_dir / "train_stats.json", stats)
    accelerator.wait_for_everyone()
    return stats


def _parameter_counts(model) -> tuple[int, int]:
    """(trainable, all) parameters, a tied tensor once; peft's own count for an adapter model (it counts a 4-bit
    weight's values, not its packed bytes)."""
    if hasattr(model, "get_nb_trainable_parameters"):  # a PeftModel
        trainable, total = model.get_nb_trainable_parameters()
        return int(trainable), int(total)
    # Under DeepSpeed ZeRO-3 a parameter is an empty placeholder; ds_numel is its whole size.
    sizes = [(getattr(p, "ds_numel", p.numel()), p.requires_grad) for p in model.parameters()]
    return sum(n for n, trains in sizes if trains), sum(n for n, _ in sizes)


def _lora_record(model, config: TrainConfig) -> dict:
    """The adapters as trained: rank, alpha, dropout and the names of the modules peft adapted ("all-linear"
    resolved to the layers' own names, e.g. q_proj)."""
    targets = model.peft_config["default"].target_modules
    return {"rank": config.lora_rank, "alpha": config.lora_alpha, "dropout": config.lora_dropout,
            "targets": targets if isinstance(targets, str) else sorted({t.rsplit(".", 1)[-1] for t in targets})}


def _save_lora(model, config: TrainConfig, model_dir: Path, output_dir: Path) -> None:
    """The adapter into output_dir/adapter (PeftModel.save_pretrained, atomically), and the merged weights into
    `model_dir`: a plain checkpoint that from_pretrained and lm-eval's hf load without peft."""
    adapter = temp_path(output_dir / "adapter")
    shutil.rmtree(adapter, ignore_errors=True)
    model.save_pretrained(adapter)
    _merged(model, config, adapter).save_pretrained(model_dir)
    replace_dir(adapter, output_dir / "adapter")


def _merged(model, config: TrainConfig, adapter_dir: Path):
    """The base model with the adapters added into its weights (peft's merge_and_unload, in place).

    QLoRA: merged into 4-bit weights the sum would be rounded back to 4 bits, so the base model is loaded again
    unquantized (bf16, on the CPU) from its folder and the saved adapter merged into that copy. This branch runs
    only with a CUDA GPU and bitsandbytes, so the CPU test suite cannot reach it: it is kept this small for that.
    """
    if not config.load_in_4bit:
        return model.merge_and_unload()
    # heavy (torch, peft, transformers): loaded on use
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(model.get_base_model().name_or_path, dtype=torch.bfloat16,
                                                device_map={"": "cpu"}, trust_remote_code=config.trust_remote_code)
    return PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload()


def _save_checkpoint(accelerator, output_dir: Path, config: TrainConfig, state: dict) -> None:
    """accelerate state (model, optimizer, RNG) + data position (`state`) into checkpoints/step-N, atomically."""
    root, step = output_dir / "checkpoints", state["step"]
    # Every process writes into this folder (its RNG state), so its name is the same in all of them (no PID).
    tmp = root / f".tmp-step-{step}"
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    # Pickle, not safetensors: tied embeddings share storage, which safetensors refuses.
    accelerator.save_state(str(tmp), safe_serialization=False)
    # Every process has written its part (DeepSpeed: each its own partition files, with no barrier of its own)
    # before the main one renames the folder into place.
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        write_json(tmp / "trainer_state.json", state)
        replace_dir(tmp, root / f"step-{step}")
        for old in _checkpoints(output_dir)[: -config.keep_checkpoints]:
            shutil.rmtree(old)
    accelerator.wait_for_everyone()


# ----------------------------------------------------------------------------- command line
