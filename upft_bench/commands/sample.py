"""`upft-bench sample`: sample solutions from a model for a question set (upft_bench.sampling)."""
from __future__ import annotations

import json

import click

from upft_bench.commands import Command, field_option, parse_fields
from upft_bench.console import say
from upft_bench.data import load_questions
from upft_bench.gguf import resolve_model
from upft_bench.prompts import SYSTEM_PROMPTS
from upft_bench.sampling import SampleRequest, SamplingConfig, sample_solutions, summarise


@click.command("sample", cls=Command)
@click.option("--model", "model_path", required=True, help="Local checkpoint folder, Hub id or .gguf file.")
@click.option("--dataset", required=True,
              help="Question set: synth, gsm8k, math500, math12k, aime24, gpqa, ..., or your own .jsonl/.csv/.parquet "
                   "file or hub:OWNER/NAME.")
@field_option
@click.option("--split", default="train", show_default=True)
@click.option("--n", "n", default=1, show_default=True, help="Samples per question.")
@click.option("--max-new-tokens", default=512, show_default=True, help="Generated tokens per sample, EOS included.")
@click.option("--limit", type=int, default=None, help="Only the first N questions.")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None, help="Local benchmark copies.")
@click.option("--output", required=True, type=click.Path(dir_okay=False), help="Samples JSONL (resumable).")
@click.option("--temperature", default=0.6, show_default=True, help="0 = greedy.")
@click.option("--top-p", type=float, default=None, help="Default: the model's generation config, else 1.0.")
@click.option("--top-k", type=int, default=None, help="Default: the model's generation config, else off.")
@click.option("--batch-size", default=64, show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.option("--prompt-style", default="none", show_default=True, type=click.Choice(sorted(SYSTEM_PROMPTS)),
              help="System prompt: none = the bare question in the chat template (the paper's protocol).")
@click.option("--dtype", default="auto", show_default=True,
              type=click.Choice(["auto", "float32", "bfloat16", "float16"]))
@click.option("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda when available).")
@click.option("--backend", default="hf", show_default=True, type=click.Choice(["hf", "vllm"]))
@click.option("--overwrite", is_flag=True, help="Start afresh when OUTPUT holds samples from other settings.")
def sample_cli(model_path, dataset, fields, split, n, max_new_tokens, limit, data_dir, output, temperature, top_p,
               top_k, batch_size, seed, prompt_style, dtype, device, backend, overwrite):
    """Sample N solutions per question from a model and write them as JSONL.

    An interrupted run resumes where it stopped (rerun the same command); a finished file is reused when the
    model, settings and questions are the same, and refused when they differ. Prints the cost summary as JSON.
    """
    try:
        config = SamplingConfig(temperature=temperature, top_p=top_p, top_k=top_k, max_new_tokens=max_new_tokens,
                                batch_size=batch_size, seed=seed, dtype=dtype, device=device, backend=backend,
                                system=None if prompt_style == "none" else prompt_style)
    except ValueError as err:
        raise click.BadParameter(str(err)) from err
    questions = load_questions(dataset, split, data_dir=data_dir, limit=limit, fields=parse_fields(fields))
    requests = [SampleRequest(q, n, max_new_tokens) for q in questions]
    model_path = resolve_model(model_path, announce=say)
    samples = sample_solutions(model_path, requests, config, output, overwrite=overwrite)
    click.echo(json.dumps({"output": str(output), **summarise(samples)}, indent=2))
