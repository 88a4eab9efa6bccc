"""`upft-bench build`: a sample pool into a method's training examples (upft_bench.methods)."""
from __future__ import annotations

import click

from upft_bench.commands import Command, field_option, parse_fields
from upft_bench.config import load_dataclass
from upft_bench.console import say
from upft_bench.data import load_questions
from upft_bench.errors import InputError
from upft_bench.examples import write_examples
from upft_bench.methods import METHODS, MethodConfig, examples_summary
from upft_bench.models import load_tokenizer
from upft_bench.sampling import SamplesFileError, read_samples


@click.command("build", cls=Command)
@click.option("--method", "method_name", required=True, type=click.Choice([m for m in METHODS if METHODS[m].trains]),
              help="The method whose construction turns the samples into training examples.")
@click.option("--model", "model_path", required=True,
              help="The model the samples came from (folder, Hub id or .gguf file): its tokenizer and template.")
@click.option("--dataset", required=True,
              help="Question set the samples answer: synth, gsm8k, math500, ..., or your own file or hub:OWNER/NAME.")
@field_option
@click.option("--split", default="train", show_default=True)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Only the first N questions.")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None, help="Local benchmark copies.")
@click.option("--samples", "samples_path", type=click.Path(exists=True, dir_okay=False),
              help="Sample pool from `upft-bench sample` (every method but sft needs one).")
@click.option("--output", required=True, type=click.Path(dir_okay=False),
              help="Training examples JSONL, the input of `upft-bench train --examples`.")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False),
              help="YAML mapping of MethodConfig fields (prefix_tokens, structure_ratio, ...).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override one MethodConfig field, e.g. --set prefix_tokens=16 (repeatable).")
def build_cli(method_name, model_path, dataset, fields, split, limit, data_dir, samples_path, output, config_path,
              overrides):
    """Turn a sample pool into a method's training examples (what `compare` does between sampling and training).

    \b
    upft-bench sample --model M --dataset gsm8k --limit 500 --n 1 --max-new-tokens 512 --output pool.jsonl
    upft-bench build --method upft --model M --dataset gsm8k --limit 500 --samples pool.jsonl --output ex.jsonl
    upft-bench train --model M --examples ex.jsonl --output run/

    The questions (dataset, split, limit) must be the ones sampled; samples whose prompt differs from what this
    config renders (another --prompt-style / system) are refused. UPFT's structure questions need full-length
    samples (at least max_new_tokens); its prefix questions take the first prefix_tokens of any sample. Fields
    of MethodConfig: prefix_tokens, structure_ratio, rft_samples, rft_keep, max_new_tokens, keep_truncated,
    seed, system, grade_timeout.
    """
    method = METHODS[method_name]
    cfg = load_dataclass(MethodConfig, config_path, list(overrides))
    questions = load_questions(dataset, split, data_dir=data_dir, limit=limit, fields=parse_fields(fields))
    samples = read_samples(samples_path) if samples_path else []
    tokenizer = load_tokenizer(model_path, announce=say)
    if not questions:
        raise InputError(f"--dataset {dataset} ({split}) holds no questions")
    if method.plan(questions, cfg) and not samples_path:
        raise InputError(f"{method_name} builds its examples from samples: give --samples "
                         "(a pool from `upft-bench sample`)")
    try:
        examples = method.build(questions, samples, tokenizer, cfg)
    except SamplesFileError as err:  # a sample that does not fit these questions or this config: name the pool
        raise SamplesFileError(f"{samples_path}: {err}") from err
    write_examples(output, examples)
    click.echo(f"{method_name}: {examples_summary(examples)} from {len(questions)} questions -> {output}")
