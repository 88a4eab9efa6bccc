"""Sampling cost of UPFT vs RFT on the same questions: sampled tokens, seconds, and the ratios.

    python benchmarks/bench_sampling.py                     # 200 synth train questions, pretrained base if cached
    python benchmarks/bench_sampling.py --model runs/base --questions 200 --rft-samples 16 --max-new-tokens 256

Plans come from `upft_bench.methods` and samples from `upft_bench.sampling`, exactly as `upft-bench compare`
runs them, into a fresh folder (no cache reuse). Rows:
- rft: N full samples per question (upft_label_filter samples the same pool);
- sft_self: one full sample per question, which is also how the authors' code sampled for UPFT (it cut
  prefixes afterwards, so it never realised the saving);
- upft: k tokens for prefix questions, full length for the p structure share.
The examples each method builds from its samples (RFT: verified ones only) and their tuned tokens are shown too.
`--model` defaults to the cached pretrained tiny base (`upft-bench pretrain`) when one exists, else a random
"base"-size tiny model; a random model rarely emits EOS, so its full samples run to the limit (worst case for
RFT). Prints a Markdown table; `--json` also writes the figures.
"""
from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path

import click


def _default_model(workdir: Path) -> tuple[str, str]:
    from upft_bench.pretrain import PretrainConfig, cache_key, default_cache_dir

    cached = default_cache_dir() / cache_key(PretrainConfig())
    if (cached / "pretrain.json").exists():
        return str(cached), "pretrained tiny base (cached)"
    from upft_bench.synthetic import generate_problems
    from upft_bench.tiny import save_random_model

    texts = [p.question + " " + p.solution for p in generate_problems(500, 0, "train")]
    return str(save_random_model(workdir / "random-base", size="base", texts=texts)), "random tiny model, size base"


@click.command()
@click.option("--model", default=None, help="Checkpoint to sample from (default: see module docstring).")
@click.option("--questions", default=200, show_default=True, help="Synthetic train questions.")
@click.option("--rft-samples", default=4, show_default=True, help="N for RFT (paper scale: 16).")
@click.option("--prefix-tokens", default=16, show_default=True)
@click.option("--structure-ratio", default=0.1, show_default=True)
@click.option("--max-new-tokens", default=256, show_default=True, help="Limit for full samples.")
@click.option("--batch-size", default=64, show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.option("--threads", type=int, default=None,
              help="torch threads (default: torch's choice). 1 is far faster when other jobs share the cores.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), default=None, help="Also write figures here.")
def main(model, questions, rft_samples, prefix_tokens, structure_ratio, max_new_tokens, batch_size, seed, threads,
         json_out):
    """Measure sampling tokens and seconds for rft, sft_self and upft on the same questions (one run)."""
    import torch

    if threads:
        torch.set_num_threads(threads)

    from transformers import AutoTokenizer

    from upft_bench.data import load_questions
    from upft_bench.examples import count_tuned_tokens
    from upft_bench.methods import METHODS, MethodConfig
    from upft_bench.sampling import SamplingConfig, sample_solutions, summarise

    work = Path(tempfile.mkdtemp(prefix="bench-sampling-"))
    model, label = (model, model) if model else _default_model(work)
    qs = load_questions("synth", "train", limit=questions)
    mcfg = MethodConfig(prefix_tokens=prefix_tokens, structure_ratio=structure_ratio, rft_samples=rft_samples,
                        max_new_tokens=max_new_tokens, seed=seed)
    scfg = SamplingConfig(batch_size=batch_size, seed=seed)
    rows = {}
    for name in ("rft", "sft_self", "upft"):
        requests = METHODS[name].plan(qs, mcfg)
        t0 = time.perf_counter()
        samples = sample_solutions(model, requests, scfg, work / f"{name}.jsonl", progress=True)
        wall = time.perf_counter() - t0
        s = summarise(samples)
        lengths = [x.num_tokens for x in samples]
        examples = METHODS[name].build(qs, samples, AutoTokenizer.from_pretrained(model), mcfg)
        rows[name] = {**s, "wall_seconds": round(wall, 2), "median_tokens": statistics.median(lengths),
                      "max_tokens": max(lengths), "examples": len(examples),
                      "tuned_tokens": count_tuned_tokens(examples)}
    rft = rows["rft"]
    header = ("| method | samples | sampled_tokens | tokens vs rft | median / max tokens per sample "
              "| generation s | wall s | s vs rft | examples | tuned_tokens |")
    lines = [header, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, r in rows.items():
        lines.append(
            f"| {name} | {r['samples']:,} | {r['sampled_tokens']:,} | "
            f"{100 * r['sampled_tokens'] / rft['sampled_tokens']:.1f}% "
            f"| {r['median_tokens']:g} / {r['max_tokens']} | {r['seconds']:.2f} | {r['wall_seconds']:.2f} "
            f"| {100 * r['seconds'] / rft['seconds']:.1f}% | {r['examples']:,} | {r['tuned_tokens']:,} |"
        )
    click.echo(f"\nmodel: {label}; {len(qs)} synth train questions; N={rft_samples}, k={prefix_tokens}, "
               f"p={structure_ratio}, max_new_tokens={max_new_tokens}, batch {batch_size}, "
               f"temperature {scfg.temperature}, torch threads {torch.get_num_threads()}\n")
    click.echo("\n".join(lines))
    click.echo(f"\nupft / rft: {rows['upft']['sampled_tokens'] / rft['sampled_tokens']:.4f} of the tokens, "
               f"{rows['upft']['seconds'] / rft['seconds']:.4f} of the generation seconds")
    if json_out:
        Path(json_out).write_text(json.dumps({"model": label, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
