"""Training throughput: upft-bench's core vs TRL's SFTTrainer, side by side, same model, data, batch and dtype.

    python benchmarks/bench_train.py                       # bf16 and fp32, 3 alternating repeats each (~5 min)
    python benchmarks/bench_train.py --dtypes bf16 --repeats 1 --examples 320   # a quick look
    python benchmarks/bench_train.py --dtypes fp32 --repeats 1 --examples 3200 --compile   # + torch.compile row

Model: the tiny "base" Llama (about 0.9M parameters) from upft_bench.tiny, random init (throughput does not
depend on what the weights know). Data: synthetic word problems (upft_bench.synthetic) as chat prompt +
reference solution + EOS, tokenized once and handed to both trainers as the same token ids (TRL gets
`input_ids` + `completion_mask`, completion-only loss). Both: global batch 32 in one forward (no accumulation),
one epoch, constant lr, AdamW, grad clip 1.0, the same max_length, no gradient checkpointing (TRL's
SFTConfig turns it on by default; it is turned off here so both do the same work). TRL runs with its default collation
(pad to the longest in a randomly drawn batch); the core uses its length-bucketed batches: that is part of
what is compared.

tokens/s counts real tokens (prompt + response, no padding) per second of the training loop (TRL: its
`train_runtime`; core: `train_seconds`), so both divide the same token count. MFU = achieved model FLOP/s
over a matmul peak measured here for the same dtype, with training FLOPs per token = 6 N + 12 L d T
(N parameters counting the tied embedding once as the output matmul, L layers, d hidden size, T mean length).
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")

import torch  # noqa: E402

from upft_bench.examples import Example  # noqa: E402
from upft_bench.prompts import encode_prompt  # noqa: E402
from upft_bench.synthetic import generate_problems  # noqa: E402
from upft_bench.tiny import build_model, build_tokenizer  # noqa: E402

BATCH, MAX_LENGTH, LR = 32, 512, 1e-3


def matmul_peak(dtype: torch.dtype, n: int = 1024, seconds: float = 2.0) -> float:
    """Sustained FLOP/s of an n x n matmul loop in `dtype` (median of 5 timed chunks)."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    for _ in range(3):
        a @ b
    rates = []
    for _ in range(5):
        reps, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds / 5:
            a @ b
            reps += 1
        rates.append(2 * n**3 * reps / (time.perf_counter() - t0))
    return statistics.median(rates)


def make_data(n: int, seed: int = 0):
    problems = generate_problems(n, seed=seed, split="train")
    tok = build_tokenizer([p.question + " " + p.solution for p in problems[:2000]])
    examples = []
    for p in problems:
        prompt = encode_prompt(tok, p.question)
        response = tok(p.solution, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
        examples.append(Example(p.id, prompt, response))
    return tok, examples


def run_core(tok, examples, bf16: bool, seed: int, compile: bool = False) -> float:
    from accelerate.state import AcceleratorState

    from upft_bench.train import TrainConfig, train

    AcceleratorState._reset_state(reset_partial_state=True)  # TRL's Trainer may have set another precision
    model = build_model(tok, size="base", seed=seed)
    cfg = TrainConfig(lr=LR, batch_size=BATCH, micro_batch_size=BATCH, warmup_ratio=0.0, max_length=MAX_LENGTH,
                      mixed_precision="bf16" if bf16 else "no", seed=seed, log_every=1000, compile=compile)
    with tempfile.TemporaryDirectory() as out:
        stats = train(model, examples, cfg, out, tokenizer=tok)
    return stats["train_seconds"]


def run_trl(tok, examples, bf16: bool, seed: int) -> float:
    from accelerate.state import AcceleratorState
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    AcceleratorState._reset_state(reset_partial_state=True)
    model = build_model(tok, size="base", seed=seed)
    data = Dataset.from_list([
        {"input_ids": e.prompt_ids + e.response_ids,
         "completion_mask": [0] * len(e.prompt_ids) + [1] * len(e.response_ids)} for e in examples
    ])
    with tempfile.TemporaryDirectory() as out:
        args = SFTConfig(
            output_dir=out, per_device_train_batch_size=BATCH, gradient_accumulation_steps=1, num_train_epochs=1,
            learning_rate=LR, lr_scheduler_type="constant", warmup_steps=0, adam_beta1=0.9, adam_beta2=0.95,
            weight_decay=0.0, max_grad_norm=1.0, max_length=MAX_LENGTH, completion_only_loss=True,
            bf16=bf16, use_cpu=True, report_to=[], save_strategy="no", logging_steps=1000, seed=seed,
            disable_tqdm=True, dataloader_num_workers=0,
            gradient_checkpointing=False,  # TRL defaults to True; the core runs without it, so compare like for like
        )
        trainer = SFTTrainer(model=model, args=args, train_dataset=data, processing_class=tok)
        return trainer.train().metrics["train_runtime"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=960, help="training examples (steps = examples / 32)")
    parser.add_argument("--repeats", type=int, default=3, help="alternating runs per system and dtype; medians")
    parser.add_argument("--dtypes", default="bf16,fp32", help="comma list of bf16, fp32")
    parser.add_argument("--compile", action="store_true",
                        help="add a row for the core with compile=True (its compile time is inside its seconds)")
    args = parser.parse_args()

    import transformers
    import trl

    tok, examples = make_data(args.examples)
    lengths = [len(e.prompt_ids) + len(e.response_ids) for e in examples]
    tokens = sum(lengths)
    probe = build_model(tok, size="base")
    n_params, cfg = probe.num_parameters(), probe.config
    flops_per_token = 6 * n_params + 12 * cfg.num_hidden_layers * cfg.hidden_size * statistics.mean(lengths)
    print(f"model: tiny base, {n_params:,} parameters; data: {len(examples)} examples, {tokens:,} tokens, "
          f"length {min(lengths)}-{max(lengths)} (mean {statistics.mean(lengths):.0f}); batch {BATCH}; "
          f"torch {torch.__version__}, transformers {transformers.__version__}, trl {trl.__version__}, "
          f"{torch.get_num_threads()} threads")

    rows = []
    for name in args.dtypes.split(","):
        bf16 = name == "bf16"
        peak = matmul_peak(torch.bfloat16 if bf16 else torch.float32)
        times = {"upft-bench core": [], "TRL SFTTrainer": []}
        if args.compile:
            times["upft-bench core, compile"] = []
        for r in range(args.repeats):
            # Alternate, so a neighbour's load hits both systems alike.
            times["upft-bench core"].append(run_core(tok, examples, bf16, seed=r))
            times["TRL SFTTrainer"].append(run_trl(tok, examples, bf16, seed=r))
            if args.compile:
                times["upft-bench core, compile"].append(run_core(tok, examples, bf16, seed=r, compile=True))
            print(f"{name} repeat {r + 1}: " + ", ".join(f"{k} {v[-1]:.1f} s" for k, v in times.items()), flush=True)
        base = tokens / statistics.median(times["TRL SFTTrainer"])
        for system, secs in times.items():
            rate = tokens / statistics.median(secs)
            rows.append((system, name, statistics.median(secs), rate, rate / base,
                         rate * flops_per_token / peak, peak))

    print("\n| system | dtype | train s (median) | tokens/s | vs TRL | MFU | matmul peak GFLOP/s |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for system, name, secs, rate, ratio, mfu, peak in rows:
        print(f"| {system} | {name} | {secs:.1f} | {rate:,.0f} | {ratio:.2f}x | {100 * mfu:.1f}% | {peak / 1e9:.0f} |")


if __name__ == "__main__":
    main()
