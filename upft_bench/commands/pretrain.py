"""`upft-bench pretrain`: build (or reuse) the tiny offline base model (upft_bench.pretrain)."""
from __future__ import annotations

import time
from pathlib import Path

import click

from upft_bench.commands import Command
from upft_bench.config import apply_overrides, from_dict, to_dict
from upft_bench.pretrain import (
    PRESETS,
    PretrainConfig,
    build_base_model,
    cache_key,
    default_cache_dir,
    measure_base,
    read_info,
)


@click.command("pretrain", cls=Command)
@click.option("--preset", type=click.Choice(sorted(PRESETS)), default="default", show_default=True,
              help="Starting config: 'default' (the comparison's base model) or 'smoke' (tests/CI, seconds).")
@click.option("--size", type=click.Choice(["base", "small", "test"]), help="Model size (upft_bench.tiny.SIZES).")
@click.option("--steps", type=int, help="Optimizer steps (the budget; fixed so a busy CPU cannot weaken the model).")
@click.option("--seed", type=int, help="Seed for corpus, initial weights and data order.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override any PretrainConfig field, e.g. --set lr=3e-3 --set instruction_share=0.2 (repeatable).")
@click.option("--eval", "eval_n", type=int, default=None,
              help="Quick check on this many synthetic test questions (default: the config's eval_questions).")
@click.option("--force", is_flag=True, help="Rebuild even when a cached model with this config exists.")
@click.option("--output", "cache_dir", type=click.Path(file_okay=False),
              help="Folder holding base models "
                   "(default $UPFT_BENCH_CACHE/base-models or ~/.cache/upft-bench/base-models).")
def pretrain_cli(preset, size, steps, seed, overrides, eval_n, force, cache_dir):
    """Build (or reuse) the tiny offline base model and print its path, build time and a quick check.

    The quick check is greedy decoding on the synthetic test questions: accuracy, share of outputs with an
    extracted answer, mean output length; and, with UPFT's prefix instruction appended (an instruction the corpus
    never holds, as a real model has never seen it), the mean output length and the share of whole solutions:
    what UPFT starts from.
    """
    data = to_dict(PRESETS[preset])
    data.update({k: v for k, v in (("size", size), ("steps", steps), ("seed", seed)) if v is not None})
    config = from_dict(PretrainConfig, apply_overrides(data, list(overrides)), where="pretrain")
    root = Path(cache_dir) if cache_dir else default_cache_dir()
    cached = not force and (root / cache_key(config) / "pretrain.json").exists()
    t0 = time.perf_counter()
    path = build_base_model(config, cache_dir=root, force=force)
    info = read_info(path)
    train = info["train"]
    click.echo(f"base model: {path}  ({time.perf_counter() - t0:.1f} s)")
    click.echo(f"{'cached' if cached else 'built'}: {info['parameters']:,} parameters, {train['steps']} steps, "
               f"train {train['train_seconds']:.1f} s at {train['tokens_per_second']:,.0f} tokens/s, "
               f"final loss {train['final_loss']:.3f}; whole build {info['seconds']:.1f} s")
    check = info.get("check") or {}
    if eval_n is not None and eval_n != check.get("questions"):
        check = measure_base(path, eval_n) if eval_n else {}
    if check:
        click.echo(f"quick check on {check['questions']} synth test questions (greedy): "
                   f"accuracy {check['accuracy']:.1%}, answer extracted {check['extracted']:.1%}, "
                   f"mean length {check['mean_tokens']:.1f} tokens; with UPFT's prefix instruction (never in "
                   f"its corpus): mean length {check['prefix_mean_tokens']:.1f} tokens, whole solutions "
                   f"{check['prefix_full']:.1%}")
        click.echo("accuracy by steps: " + ", ".join(f"{k}: {v:.0%}" for k, v in check["accuracy_by_steps"].items()))
