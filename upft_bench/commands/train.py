"""`upft-bench train`: fine-tune a model on training examples with the one training core (upft_bench.train)."""
from __future__ import annotations

from pathlib import Path

import click

from upft_bench.commands import Command
from upft_bench.config import load_dataclass
from upft_bench.examples import ExamplesError, read_examples
from upft_bench.launch import check_processes, processes_ended
from upft_bench.train import TrainConfig, train


@click.command("train", cls=Command)
@click.option("--model", "model_path", required=True, type=click.Path(exists=True, file_okay=False),
              help="Checkpoint folder to start from (save_pretrained layout, with its tokenizer).")
@click.option("--examples", "examples_path", required=True, type=click.Path(exists=True, dir_okay=False),
              help="Training examples, JSONL of {question_id, prompt_ids, response_ids, kind}, as written by "
                   "`upft-bench build`, by `upft-bench compare` (methods/<name>/examples.jsonl) or by "
                   "upft_bench.examples.write_examples.")
@click.option("--output", "output_dir", required=True, type=click.Path(file_okay=False),
              help="Run folder: gets model/, train_stats.json, train_log.jsonl and checkpoints/.")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False),
              help="YAML mapping of TrainConfig fields (lr, epochs, batch_size, ...). Unknown keys are errors.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override one TrainConfig field, e.g. --set lr=1e-4 --set schedule=cosine (repeatable).")
@click.option("--resume", is_flag=True, help="Continue from the last checkpoint in OUTPUT (needs save_every > 0).")
@click.option("--processes", "expect_processes", type=click.IntRange(min=1),
              help="Fail unless the run really has this many processes (under `accelerate launch`, which runs "
                   "ONE process without --multi_gpu or a --config_file that spreads them).")
def train_cli(model_path, examples_path, output_dir, config_path, overrides, resume, expect_processes):
    """Fine-tune a model on training examples with the shared loop (per-sequence loss, AdamW, warmup).

    Fields of TrainConfig: lr, epochs, max_steps, batch_size (global), micro_batch_size (per process),
    warmup_ratio, schedule (constant|cosine), min_lr_ratio, adam_betas, adam_eps, weight_decay, grad_clip,
    max_length, mixed_precision (no|bf16|auto), dtype, gradient_checkpointing, compile, lora_rank (0 = full
    fine-tuning; > 0: LoRA, model/ merged and adapter/ beside it), lora_alpha, lora_dropout, lora_targets,
    load_in_4bit (QLoRA, CUDA), bucket_batches, seed,
    save_every, keep_checkpoints, log_every, report_to (none|tensorboard|wandb|...), trust_remote_code.
    """
    config = load_dataclass(TrainConfig, config_path, list(overrides))
    examples = read_examples(examples_path)
    check_processes(expect_processes)
    with processes_ended():
        try:
            stats = train(model_path, examples, config, output_dir, resume=resume)
        except ExamplesError as err:  # an example that does not fit the model: name the file it came from
            raise ExamplesError(f"{examples_path}: {err} (examples count from 1, blank lines skipped)") from err
    click.echo(
        f"trained {stats['steps']} steps on {stats['examples']} examples in {stats['train_seconds']:.1f} s; "
        f"final loss {stats['final_loss']:.4f}; tuned tokens {stats['tuned_tokens']:,}; "
        f"model in {Path(output_dir) / 'model'}"
    )
