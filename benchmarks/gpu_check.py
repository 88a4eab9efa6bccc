"""One-shot GPU check: the pipeline on CUDA in bf16, FSDP2 on one process, LoRA and its merge, with figures.

    python benchmarks/gpu_check.py                      # on a GPU machine: about 2-5 minutes
    python benchmarks/gpu_check.py --out /tmp/gpu       # keep the artefacts somewhere else
    python benchmarks/gpu_check.py --cpu                # the same steps on CPU (a dry run; FSDP is skipped)

Needs torch, transformers, accelerate and peft (what a bare GPU image has) and upft-bench's light dependencies,
which come with them (pyyaml, tqdm, tokenizers, safetensors, sympy, numpy): run it from a checkout, nothing to
install or carry (`python benchmarks/gpu_check.py --out "$OUT/gpu"` on a lent machine brings the JSON back). It
does not use lm-eval, click, scipy or datasets (checked with `python -X importtime`: none is imported by
upft-bench's code on this path): the evaluation here is the project's own greedy evaluator
(`upft_bench.selection.validate`: the sampler at temperature 0 and the same answer checker) on the synthetic test
questions, not the lm-eval task.

Steps, each timed, with peak CUDA memory (torch.cuda.max_memory_allocated) per step:
  1. base model: the smoke config's tiny model pretrained on CUDA (bf16 autocast);
  2. per method (sft, sft_self, rft, upft): sampling, example building, training in bf16, greedy evaluation;
  3. FSDP2: `accelerate launch --num_processes 1 --config_file baselines/accelerate/fsdp2.yaml` training the
     same examples as sft, then the saved model reloaded and evaluated (one process: the sharding code path with
     a world of one);
  4. LoRA (rank 8) on the same examples; the merged checkpoint's greedy outputs compared with the adapter's.
Then one table: seconds, tokens/s, model FLOPs per second and MFU against the chip's dense bf16 peak, peak memory.
Exit status 1 if a check fails (FSDP or the merge), with the reason printed.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# Dense bf16 peak FLOP/s by device-name fragment (vendor data sheets, without sparsity).
PEAK_BF16 = {"H200": 989e12, "H100 SXM": 989e12, "H100 NVL": 835e12, "H100 PCIe": 756e12, "H100": 756e12,
             "A100": 312e12, "L40S": 362e12, "A10G": 70e12, "L4": 121e12}


def peak_flops(device_name: str) -> float | None:
    for fragment, peak in PEAK_BF16.items():
        if fragment in device_name:
            return peak
    return None


class Phase:
    """Times a step and records the peak CUDA memory it allocated."""

    rows: list[dict] = []

    def __init__(self, name: str, cuda: bool):
        self.name, self.cuda, self.info = name, cuda, {}

    def __enter__(self):
        import torch

        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        import torch

        if self.cuda:
            torch.cuda.synchronize()
        row = {"phase": self.name, "seconds": time.perf_counter() - self.t0, **self.info}
        if self.cuda and "peak_mib" not in row:
            row["peak_mib"] = torch.cuda.max_memory_allocated() / 2**20
        Phase.rows.append(row)
        print(f"[gpu-check] {self.name}: {row['seconds']:.1f} s " + " ".join(
            f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()
            if k not in ("phase", "seconds")), flush=True)


def train_figures(stats: dict, examples, config, shape, peak: float | None) -> dict:
    """tokens/s, model FLOPs/s and MFU of one training run, from its train_stats and the examples' positions."""
    from upft_bench.compute import training_flops
    from upft_bench.train import trained_positions

    flops = training_flops(shape, trained_positions(examples, config))
    per_second = flops / max(stats["train_seconds"], 1e-9)
    return {"tokens_per_s": float(stats["tokens_per_second"]), "tflops_per_s": per_second / 1e12,
            **({"mfu_pct": 100 * per_second / peak} if peak else {})}


def fsdp_worker(args) -> None:
    """Inside `accelerate launch`: train on the examples under the FSDP2 plugin, record the peak memory."""
    import torch

    from upft_bench.examples import read_examples
    from upft_bench.train import TrainConfig, train

    config = TrainConfig(**json.loads(args.train_config))
    stats = train(args.model, read_examples(args.examples), config, args.output)
    if int(os.environ.get("RANK", "0")) == 0:
        peak = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None
        Path(args.output, "worker.json").write_text(json.dumps({"peak_mib": peak, "stats": stats}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="/tmp/upft-gpu-check", help="folder for models, pools and the summary")
    parser.add_argument("--cpu", action="store_true", help="run on CPU (a dry run of the script; FSDP skipped)")
    parser.add_argument("--fsdp-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--examples", help=argparse.SUPPRESS)
    parser.add_argument("--output", help=argparse.SUPPRESS)
    parser.add_argument("--train-config", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.fsdp_worker:
        fsdp_worker(args)
        return 0

    import dataclasses

    import torch

    from upft_bench.compute import model_shape
    from upft_bench.data import load_questions
    from upft_bench.examples import write_examples
    from upft_bench.experiment import load_experiment
    from upft_bench.methods import METHODS
    from upft_bench.models import load_tokenizer
    from upft_bench.pretrain import build_base_model
    from upft_bench.sampling import sample_solutions
    from upft_bench.selection import validate
    from upft_bench.train import train

    cuda = torch.cuda.is_available() and not args.cpu
    if not cuda and not args.cpu:
        print("[gpu-check] no CUDA device: run with --cpu for a dry run", file=sys.stderr)
        return 1
    device = "cuda" if cuda else "cpu"
    name = torch.cuda.get_device_name(0) if cuda else "cpu"
    peak = peak_flops(name) if cuda else None
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    os.environ["UPFT_BENCH_CACHE"] = str(out / "cache")
    print(f"[gpu-check] {name}; torch {torch.__version__}; bf16 peak "
          f"{peak / 1e12:.0f} TFLOP/s" if peak else f"[gpu-check] {name}; torch {torch.__version__}", flush=True)

    cfg = load_experiment(ROOT / "baselines" / "smoke.yaml", [
        f"eval.device={device}", f"sampling.device={device}", "train.mixed_precision=" + ("bf16" if cuda else "no"),
        "eval.limit=16"])
    sampling = cfg.sampling
    failures = []

    with Phase("base model (pretrain)", cuda):
        base = str(build_base_model(cfg.pretrain))
    tokenizer = load_tokenizer(base)
    shape = model_shape(base)
    questions = load_questions(cfg.data.train, cfg.data.train_split, limit=cfg.data.train_limit)
    tests = load_questions("synth", "test", limit=cfg.eval.limit)
    with Phase("evaluate base", cuda) as phase:
        phase.info["accuracy"] = validate(base, tests, cfg, out / "eval-base.jsonl")["accuracy"]

    sft_examples = None
    for method_name in ("sft", "sft_self", "rft", "upft"):
        method = METHODS[method_name]
        requests = method.plan(questions, cfg.method)
        with Phase(f"{method_name}: sample", cuda) as phase:
            samples = sample_solutions(base, requests, sampling, out / "samples" / f"{method_name}.jsonl",
                                       progress=False) if requests else []
            phase.info["samples"] = len(samples)
        examples = method.build(questions, samples, tokenizer, cfg.method)
        if method_name == "sft":
            sft_examples = examples
        if not examples:
            print(f"[gpu-check] {method_name}: no examples (nothing passed the filter); not trained")
            continue
        with Phase(f"{method_name}: train", cuda) as phase:
            stats = train(base, examples, cfg.train, out / method_name)
            phase.info.update(train_figures(stats, examples, cfg.train, shape, peak))
        with Phase(f"{method_name}: evaluate", cuda) as phase:
            phase.info["accuracy"] = validate(str(out / method_name / "model"), tests, cfg,
                                              out / f"eval-{method_name}.jsonl")["accuracy"]

    examples_file = write_examples(out / "sft_examples.jsonl", sft_examples)
    if cuda:
        launch = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "1", "--config_file",
                  str(ROOT / "baselines" / "accelerate" / "fsdp2.yaml"), str(Path(__file__).resolve()),
                  "--fsdp-worker", "--model", base, "--examples", str(examples_file), "--output", str(out / "fsdp"),
                  "--train-config", json.dumps(dataclasses.asdict(cfg.train))]
        with Phase("fsdp2: train (1 process)", False) as phase:
            done = subprocess.run(launch, capture_output=True, text=True)
            if done.returncode != 0:
                failures.append("FSDP2 training failed: " + done.stderr.strip()[-2000:])
            else:
                worker = json.loads((out / "fsdp" / "worker.json").read_text())
                phase.info.update(train_figures(worker["stats"], sft_examples, cfg.train, shape, peak),
                                  peak_mib=worker["peak_mib"])
        if done.returncode == 0:
            with Phase("fsdp2: reload and evaluate", cuda) as phase:
                phase.info["accuracy"] = validate(str(out / "fsdp" / "model"), tests, cfg,
                                                  out / "eval-fsdp.jsonl")["accuracy"]
    else:
        print("[gpu-check] FSDP2 skipped on CPU (accelerate runs FSDP on GPUs only)")

    lora = dataclasses.replace(cfg.train, lora_rank=8, lora_alpha=16.0)
    with Phase("lora r8: train", cuda) as phase:
        stats = train(base, sft_examples, lora, out / "lora")
        phase.info.update(train_figures(stats, sft_examples, lora, shape, peak),
                          trainable=stats.get("trainable_parameters"))
    with Phase("lora r8: merged vs adapter", cuda) as phase:
        same = merged_matches_adapter(base, out / "lora", tests[:8], tokenizer, device)
        phase.info["same_outputs"] = same
        if not same:
            failures.append("LoRA: the merged checkpoint's greedy outputs differ from the adapter model's")

    summary = {"device": name, "torch": torch.__version__, "peak_bf16_flops": peak, "phases": Phase.rows,
               "failures": failures}
    (out / "gpu_check.json").write_text(json.dumps(summary, indent=2))
    print(f"\n{'phase':<32} {'s':>7} {'tokens/s':>10} {'TFLOP/s':>8} {'MFU %':>7} {'peak MiB':>9}  other")
    for row in Phase.rows:
        other = {k: v for k, v in row.items()
                 if k not in ("phase", "seconds", "tokens_per_s", "tflops_per_s", "mfu_pct", "peak_mib")}
        print(f"{row['phase']:<32} {row['seconds']:>7.1f} {_f(row.get('tokens_per_s'), '.0f'):>10} "
              f"{_f(row.get('tflops_per_s'), '.4f'):>8} {_f(row.get('mfu_pct'), '.4f'):>7} "
              f"{_f(row.get('peak_mib'), '.0f'):>9}  {json.dumps(other) if other else ''}")
    for failure in failures:
        print(f"FAILED: {failure}")
    print(f"\n{out / 'gpu_check.json'}")
    return 1 if failures else 0


def merged_matches_adapter(base: str, run: Path, questions, tokenizer, device: str) -> bool:
    """Greedy outputs of the merged checkpoint (run/model) equal those of base + adapter (run/adapter)."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from upft_bench.prompts import render_prompt

    prompts = [render_prompt(tokenizer, q.question, None) for q in questions]
    outputs = []
    for model in (AutoModelForCausalLM.from_pretrained(str(run / "model")),
                  PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), str(run / "adapter"))):
        model = model.to(device).eval()
        texts = []
        for prompt in prompts:
            ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False).to(device)
            with torch.no_grad():
                new = model.generate(**ids, max_new_tokens=24, do_sample=False,
                                     pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id)
            texts.append(tokenizer.decode(new[0, ids["input_ids"].shape[1]:]))
        outputs.append(texts)
    return outputs[0] == outputs[1]


def _f(value, spec: str) -> str:
    return "" if value is None else format(value, spec)


if __name__ == "__main__":
    sys.exit(main())
