"""`upft-bench eval` and `upft-bench tasks`: a model on upft-bench's lm-eval tasks (upft_bench.evaluation)."""
from __future__ import annotations

import os
from pathlib import Path

import click
from tabulate import tabulate

from upft_bench import tasks_dir
from upft_bench.commands import Command, field_option, parse_fields
from upft_bench.console import say
from upft_bench.data import DATA_DIR_ENV, SIZES, source_of
from upft_bench.evaluation import default_output, evaluate, format_table, task_leaves, task_manager
from upft_bench.gguf import resolve_model
from upft_bench.launch import check_processes, processes_ended
from upft_bench.preflight import check_model, check_tasks
from upft_bench.prompts import SYSTEM_PROMPTS


@click.command("eval", cls=Command)
@click.option("--model", "model", required=True,
              help="Local checkpoint folder, Hub id or .gguf file (remote code is not trusted).")
@click.option("--tasks", default="upft_synth", show_default=True,
              help="Comma-separated task or group names (see `upft-bench tasks`), e.g. upft_gsm8k,upft_paper.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Evaluate only the first N questions per task.")
@click.option("--batch-size", type=click.IntRange(min=1), default=16, show_default=True,
              help="Fixed generation batch size ('auto' is not offered: it wastes ~20 s probing on CPU).")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Local benchmark copies (layout of shared/data); default $UPFT_BENCH_DATA_DIR, else the Hub.")
@click.option("--output", type=click.Path(file_okay=False), default=None,
              help="Folder for results_<task>.json, samples_<task>.jsonl, summary.json [results/eval/<model name>].")
@click.option("--system-prompt", type=click.Choice(list(SYSTEM_PROMPTS)), default="none", show_default=True,
              help="System instruction style (upft_bench.prompts.SYSTEM_PROMPTS); 'none' = the bare question.")
@click.option("--max-gen-toks", type=click.IntRange(min=1), default=None,
              help="Override every task's max generated tokens (defaults per task: tasks/README.md).")
@click.option("--backend", type=click.Choice(["hf", "vllm"]), default="hf", show_default=True,
              help="lm-eval model backend; vllm only where installed (GPU).")
@click.option("--device", default=None, help="cpu, cuda, cuda:1 ... [cuda when available, else cpu]")
@field_option
@click.option("--best-of", "best_of", type=click.IntRange(min=1), default=None,
              help="Best-of-k decoding: k samples per question, the one --verifier scores highest against "
                   "--reference answers (V-STaR; upft_bench.best_of). Default: greedy.")
@click.option("--verifier", default=None, help="With --best-of: the verifier model (a DPO-trained checkpoint).")
@click.option("--reference", default=None, help="With --best-of: the verifier's DPO reference (the model it was "
                                                 "trained from).")
@click.option("--temperature", type=click.FloatRange(min=0, min_open=True), default=0.6, show_default=True,
              help="With --best-of: the sampling temperature of the k candidates.")
@click.option("--processes", "expect_processes", type=click.IntRange(min=1),
              help="Fail unless the run really has this many processes (accelerate launch starts ONE without "
                   "--multi_gpu or a --config_file that spreads them).")
def eval_cli(model, tasks, limit, batch_size, data_dir, output, system_prompt, max_gen_toks, backend, device,
             fields, best_of, verifier, reference, temperature, expect_processes):
    """Evaluate a model on upft-bench's lm-eval tasks: greedy, bare question in the model's chat template.

    \b
    upft-bench eval --model results/default/methods/sft/train/model --tasks upft_synth --limit 8
    upft-bench eval --model Qwen/Qwen2.5-Math-7B-Instruct --tasks upft_paper --system-prompt qwen_boxed
    upft-bench eval --model PATH --tasks my_test.jsonl --field question=problem   # your own questions
    upft-bench eval --model GENERATOR --best-of 8 --verifier VERIFIER --reference BASE   # V-STaR decoding

    Writes the raw lm-eval results and per-sample logs to --output and prints a Markdown table. On several
    processes (CPU or GPUs) each evaluates a share of the questions:

    \b
    accelerate launch --multi_gpu --num_processes 2 -m upft_bench.cli eval --model PATH --processes 2
    """
    # every input before the model loads: a bad task or an empty file costs seconds
    names, where = [n.strip() for n in tasks.split(",") if n.strip()], data_dir or os.environ.get(DATA_DIR_ENV)
    columns = parse_fields(fields)
    if best_of and not (verifier and reference):
        raise click.UsageError("--best-of needs --verifier and --reference")
    if not best_of and (verifier or reference):
        raise click.UsageError("--verifier and --reference are for --best-of")
    check_tasks(names, where, limit, max_gen_toks, key="--tasks", fields=columns)
    for path, key in ((verifier, "--verifier"), (reference, "--reference")):
        if path:
            check_model(path, key=key)
    context = check_model(model, key="--model")
    if context:  # now the generation lengths against the model's context
        check_tasks(names, where, limit, max_gen_toks, context, key="--tasks", fields=columns)
    check_processes(expect_processes)
    out = Path(output) if output else default_output(model)
    path = resolve_model(model, announce=say)
    with processes_ended():
        rows = evaluate(path, names, limit=limit, batch_size=batch_size, data_dir=data_dir, output_dir=out,
                        system=system_prompt, max_gen_toks=max_gen_toks, device=device, backend=backend,
                        fields=columns, best_of={"k": best_of, "verifier": resolve_model(verifier, announce=say),
                                                 "reference": resolve_model(reference, announce=say),
                                                 "temperature": temperature} if best_of else None)
    if not rows:  # another process of a multi-process run: the main one reports
        return
    click.echo(format_table(rows))
    click.echo(f"\nresults and per-sample logs: {out}")


@click.command("tasks", cls=Command)
@click.option("--path", "show_path", is_flag=True,
              help="Print only the task folder, for `lm_eval --include_path \"$(upft-bench tasks --path)\"`.")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Show sources as they would load with this data directory [$UPFT_BENCH_DATA_DIR].")
def tasks_cli(show_path, data_dir):
    """List upft-bench's lm-eval tasks and groups: name, data source, size, generation length."""
    if show_path:
        click.echo(str(tasks_dir()))
        return
    from lm_eval.tasks._index import Kind  # heavy: only when listing

    manager = task_manager()
    body = []
    for name in manager.all_tasks:
        entry = manager.task_index[name]
        if entry.kind is Kind.GROUP:
            body.append([name, "group", "mean of " + ", ".join(task_leaves(name, manager)), "", ""])
        elif entry.kind is Kind.TASK:
            meta = entry.cfg.get("metadata", {})
            qset, split = meta.get("question_set"), meta.get("question_split", "test")
            size = meta.get("synth_n") if qset == "synth" else SIZES.get(qset, {}).get(split)
            body.append([name, "task", source_of(qset, split, data_dir), size or "?",
                         entry.cfg.get("generation_kwargs", {}).get("max_gen_toks", "")])
    click.echo(tabulate(body, headers=["name", "kind", "data", "size", "max_gen_toks"], tablefmt="github"))
    click.echo(f"\ntask folder: {tasks_dir()}   (tag `upft` = every task)")
