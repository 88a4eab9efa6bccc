"""The training core: loss weighting, masking, data order, saving, resume after a kill, 1 vs 2 processes."""
from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from helpers import fp32, make_examples  # tests/helpers.py (pytest puts tests/ on sys.path)
from safetensors.torch import load_file

from upft_bench.commands.train import train_cli
from upft_bench.examples import Example, count_tuned_tokens, write_examples
from upft_bench.tiny import save_random_model
from upft_bench.train import TrainConfig, collate, lr_at, plan_batches, train

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return save_random_model(tmp_path_factory.mktemp("tiny") / "base", size="test", seed=0)




def weights(run_dir: Path) -> dict:
    return load_file(str(run_dir / "model" / "model.safetensors"))


def assert_same_weights(a: dict, b: dict, atol: float = 1e-6, exact: bool = False):
    assert a.keys() == b.keys()
    for name in a:
        if exact:
            assert torch.equal(a[name], b[name]), name
        else:
            assert torch.allclose(a[name], b[name], atol=atol, rtol=1e-5), (name, (a[name] - b[name]).abs().max())


# ------------------------------------------------------------------ data order and schedule


def test_plan_batches_is_a_bucketed_permutation():
    rng = random.Random(1)
    lengths = [rng.randint(1, 100) for _ in range(50)]
    batches = plan_batches(lengths, batch_size=8, seed=3, epoch=0, bucket_batches=4)
    assert sorted(i for b in batches for i in b) == list(range(50))  # every example once per epoch
    assert [len(b) for b in batches].count(8) == 6
    assert batches == plan_batches(lengths, batch_size=8, seed=3, epoch=0, bucket_batches=4)  # deterministic
    assert batches != plan_batches(lengths, batch_size=8, seed=3, epoch=1, bucket_batches=4)  # reshuffled per epoch
    assert batches != plan_batches(lengths, batch_size=8, seed=4, epoch=0, bucket_batches=4)
    # Bucketing: batches hold similar lengths, so padding is a fraction of what a random order pads.
    def padding(bs):
        return sum(max(lengths[i] for i in b) * len(b) - sum(lengths[i] for i in b) for b in bs)
    assert padding(batches) < 0.5 * padding(plan_batches(lengths, 8, 3, 0, bucket_batches=1))


def test_lr_schedule():
    cfg = TrainConfig(lr=1.0, warmup_ratio=0.1, schedule="cosine", min_lr_ratio=0.1)
    lrs = [lr_at(s, 100, cfg) for s in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)  # 10 warmup steps, linear
    assert lrs[10] == pytest.approx(1.0) and lrs[-1] == pytest.approx(0.1, abs=1e-3)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))
    const = TrainConfig(lr=2.0, warmup_ratio=0.0)
    assert {lr_at(s, 50, const) for s in range(50)} == {2.0}


def test_config_validation():
    with pytest.raises(ValueError, match="schedule"):
        TrainConfig(schedule="linear")
    with pytest.raises(ValueError, match="mixed_precision"):
        TrainConfig(mixed_precision="fp16")
    with pytest.raises(ValueError, match="batch_size"):
        TrainConfig(batch_size=0)


# ------------------------------------------------------------------ what carries loss


def test_prompt_positions_carry_no_loss():
    rows = [([10, 11, 12, 20, 21, 1], 3), ([10, 20, 1], 1), ([20, 21, 22, 1], 1)]
    inputs, targets, mask = collate(rows, pad_id=0)
    assert inputs.shape == (3, 5)
    assert inputs[0].tolist() == [10, 11, 12, 20, 21] and mask[0].tolist() == [1] * 5
    # Targets are the next token; prompt positions and padding are -100; the EOS (1) is trained.
    assert targets[0].tolist() == [-100, -100, 20, 21, 1]
    assert targets[1].tolist() == [20, 1, -100, -100, -100] and mask[1].tolist() == [1, 1, 0, 0, 0]
    assert targets[2].tolist() == [21, 22, 1, -100, -100]  # empty prompt: the first token is never predicted
    # Other prompt contents, same response: exactly the same positions carry loss.
    other = collate([([99, 98, 97, 20, 21, 1], 3)], pad_id=0)[1]
    assert other[0].tolist() == targets[0].tolist()


def test_loss_is_mean_of_per_sequence_means(base, tmp_path):
    """The logged first-step loss equals a hand computation on the untouched model, not the token mean."""
    from transformers import AutoModelForCausalLM

    examples = [Example("short", [7, 8, 9], [30, 1]), Example("long", [7, 8], list(range(40, 80)) + [1]),
                Example("mid", [5], [60, 61, 62, 1])]
    stats = train(base, examples, fp32(batch_size=3, max_steps=1), tmp_path / "run")
    model = AutoModelForCausalLM.from_pretrained(base)
    per_seq, total, count = [], 0.0, 0
    for e in examples:  # one sequence at a time: no padding, no batching
        ids = torch.tensor([e.prompt_ids + e.response_ids])
        logits = model(ids, use_cache=False).logits[0, len(e.prompt_ids) - 1 : -1]
        ce = torch.nn.functional.cross_entropy(logits, ids[0, len(e.prompt_ids):], reduction="none")
        per_seq.append(ce.mean())
        total, count = total + ce.sum().item(), count + len(ce)
    mean = torch.stack(per_seq).mean()
    mean.backward()
    expected = mean.item()
    grad_norm = torch.cat([p.grad.flatten() for p in model.parameters()]).norm().item()
    assert stats["loss_curve"][0]["loss"] == pytest.approx(expected, rel=1e-5)
    # The gradient's scale too (Adam hides a constant factor in the weights; the norm does not).
    assert stats["loss_curve"][0]["grad_norm"] == pytest.approx(grad_norm, rel=1e-4)
    assert abs(expected - total / count) > 1e-3  # the test would notice a token-weighted mean
    assert stats["tuned_tokens"] == 2 + 41 + 4 == count_tuned_tokens(examples)


def test_head_runs_only_at_loss_positions(base, tmp_path):
    """The LM head sees the response positions of a micro-batch, not the prompt or padding; no hook is left behind."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model, tok = AutoModelForCausalLM.from_pretrained(base), AutoTokenizer.from_pretrained(base)
    head = model.get_output_embeddings()
    seen = []
    probe = head.register_forward_hook(lambda module, args, out: seen.append(tuple(out.shape)))
    examples = [Example("a", [7, 8, 9, 10], [30, 1]), Example("b", [7], [40, 41, 42, 1]), Example("c", [5, 6], [60, 1])]
    train(model, examples, fp32(batch_size=3, max_steps=1), tmp_path / "run", tokenizer=tok)
    probe.remove()
    assert seen == [(2 + 4 + 2, model.config.vocab_size)]  # 8 loss positions of 3 x 6 (the longest row, shifted)
    assert not head._forward_pre_hooks and not head._forward_hooks
    assert model(torch.tensor([[7, 8, 9]])).logits.shape == (1, 3, model.config.vocab_size)  # full logits again


def test_same_result_whatever_the_micro_batch(base, tmp_path):
    """(batch 8, micro 8) vs micro 2 (4 accumulation steps) vs micro 3 (uneven) vs micro 1: same losses, weights."""
    examples = make_examples(16)
    runs = {}
    for micro in (8, 2, 3, 1):
        stats = train(base, examples, fp32(micro_batch_size=micro, epochs=2), tmp_path / f"m{micro}")
        curve = [(p["loss"], p["grad_norm"]) for p in stats["loss_curve"]]
        runs[micro] = (curve, weights(tmp_path / f"m{micro}"))
    ref_curve, ref_weights = runs[8]
    assert len(ref_curve) == 4
    for micro in (2, 3, 1):
        flat = [x for pair in runs[micro][0] for x in pair]
        assert flat == pytest.approx([x for pair in ref_curve for x in pair], rel=1e-5)
        assert_same_weights(runs[micro][1], ref_weights, atol=1e-5)
    # And the weights did move (the comparison is not between untouched models).
    untouched = load_file(str(base / "model.safetensors"))["model.norm.weight"]
    assert not torch.allclose(ref_weights["model.norm.weight"], untouched)


def test_loss_decreases_and_model_saves(base, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    pattern = [Example(f"q{i}", [10 + i % 3, 11], [20, 21, 22, 23, 24, 25, 1]) for i in range(24)]
    cfg = fp32(lr=1e-2, batch_size=8, epochs=10, log_every=5, mixed_precision="bf16")
    stats = train(base, pattern, cfg, tmp_path / "run")
    losses = [p["loss"] for p in stats["loss_curve"]]
    assert losses[-1] < 0.3 * losses[0], losses
    assert stats["steps"] == 30 and stats["tuned_tokens"] == 24 * 7 and stats["tuned_tokens_all_epochs"] == 240 * 7
    assert stats["hardware"]["mixed_precision"] == "bf16" and stats["hardware"]["processes"] == 1
    on_disk = json.loads((tmp_path / "run" / "train_stats.json").read_text())
    assert on_disk["tuned_tokens"] == stats["tuned_tokens"] and on_disk["config"]["lr"] == 1e-2
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "run" / "model")
    tok = AutoTokenizer.from_pretrained(tmp_path / "run" / "model")
    assert tok.chat_template and (tmp_path / "run" / "model" / "chat_template.jinja").exists()
    # The saved model learned the pattern: greedy continuation of a training prompt reproduces it.
    out = model.generate(torch.tensor([[10, 11]]), max_new_tokens=7, do_sample=False)
    assert out[0, 2:].tolist() == [20, 21, 22, 23, 24, 25, 1]


def test_in_memory_model(base, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model, tok = AutoModelForCausalLM.from_pretrained(base), AutoTokenizer.from_pretrained(base)
    with pytest.raises(ValueError, match="tokenizer"):
        train(model, make_examples(4), fp32(max_steps=1), tmp_path / "a")
    train(model, make_examples(8), fp32(max_steps=2), tmp_path / "b", tokenizer=tok)
    train(base, make_examples(8), fp32(max_steps=2), tmp_path / "c")
    assert_same_weights(weights(tmp_path / "b"), weights(tmp_path / "c"), exact=True)


def test_bad_examples_fail_before_writing(base, tmp_path):
    with pytest.raises(ValueError, match=r"example 2 \(question 'big'\), response_ids: token id 1000000 is outside"):
        train(base, [Example("ok", [5], [6, 1]), Example("big", [5], [10**6])], fp32(), tmp_path / "run")
    with pytest.raises(ValueError, match="question 'long'.*max_length=4"):
        train(base, [Example("long", [5] * 6, [6, 1])], fp32(max_length=4), tmp_path / "run")
    assert not (tmp_path / "run").exists()


# ------------------------------------------------------------------ command line


def test_cli_overrides_and_errors(base, tmp_path):
    examples = write_examples(tmp_path / "examples.jsonl", make_examples(8))
    runner = CliRunner()
    args = ["--model", str(base), "--examples", str(examples), "--output", str(tmp_path / "run")]
    result = runner.invoke(train_cli, args + ["--set", "max_steps=2", "--set", "batch_size=4",
                                              "--set", "adam_betas=[0.8,0.9]", "--set", "mixed_precision=no"])
    assert result.exit_code == 0, result.output
    stats = json.loads((tmp_path / "run" / "train_stats.json").read_text())
    assert stats["steps"] == 2 and stats["config"]["adam_betas"] == [0.8, 0.9] and stats["config"]["batch_size"] == 4

    result = runner.invoke(train_cli, args + ["--set", "learning_rate=1"])
    assert result.exit_code != 0 and "unknown key(s) learning_rate" in result.output
    result = runner.invoke(train_cli, args + ["--set", "schedule=linear"])
    assert result.exit_code != 0 and "schedule" in result.output

    bad = tmp_path / "bad.jsonl"
    bad.write_text(examples.read_text() + '{"question_id": "x", "prompt_ids": [1], "response_ids": []}\n')
    result = runner.invoke(train_cli, ["--model", str(base), "--examples", str(bad), "--output", str(tmp_path / "new")])
    assert result.exit_code != 0
    assert "bad.jsonl line 9: field 'response_ids' must be a non-empty list" in result.output
    assert not (tmp_path / "new").exists()
    assert "micro_batch_size" in runner.invoke(train_cli, ["--help"]).output


# ------------------------------------------------------------------ real processes (slow)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(extra: dict | None = None) -> dict:
    """One thread per process: the same float reductions in every run, so weights can be compared bit for bit."""
    return os.environ | {"HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"} | (extra or {})


def _run(cmd: list[str], env_extra: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=REPO, env=_env(env_extra), capture_output=True, text=True, timeout=300)


def _cli(base, examples, out, sets) -> list[str]:
    cmd = ["train", "--model", str(base), "--examples", str(examples), "--output", str(out)]
    return cmd + [x for s in sets for x in ("--set", s)]


@pytest.mark.slow
def test_kill_and_resume_reaches_the_same_weights(base, tmp_path):
    """kill -9 from outside as soon as the first checkpoint lands; --resume continues from it and ends with the
    uninterrupted run's weights and loss curve, bit for bit."""
    examples = write_examples(tmp_path / "examples.jsonl", make_examples(40))
    sets = ["batch_size=2", "micro_batch_size=2", "epochs=1", "save_every=3", "mixed_precision=no",
            "log_every=1", "lr=3e-3", "schedule=cosine", "warmup_ratio=0.2"]
    py = [sys.executable, "-m", "upft_bench.cli"]
    full = _run(py + _cli(base, examples, tmp_path / "full", sets))
    assert full.returncode == 0, full.stderr[-3000:]

    checkpoints = tmp_path / "run" / "checkpoints"
    proc = subprocess.Popen(py + _cli(base, examples, tmp_path / "run", sets), cwd=REPO, env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while proc.poll() is None and time.time() < deadline:
        if checkpoints.is_dir() and any(p.name.startswith("step-") for p in checkpoints.iterdir()):
            proc.send_signal(signal.SIGKILL)  # the hardest stop: no cleanup, no finally
            break
        time.sleep(0.005)
    assert proc.wait(timeout=60) == -signal.SIGKILL, "the run finished or died before it could be killed"
    assert not (tmp_path / "run" / "model").exists() and not (tmp_path / "run" / "train_stats.json").exists()
    saved = [p.name for p in checkpoints.iterdir() if p.name.startswith("step-")]
    assert len(saved) == 1, saved
    step = int(saved[0].split("-")[1])

    resumed = _run(py + _cli(base, examples, tmp_path / "run", sets) + ["--resume"])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    a = json.loads((tmp_path / "full" / "train_stats.json").read_text())
    b = json.loads((tmp_path / "run" / "train_stats.json").read_text())
    assert b["resumed_from_step"] == step and 3 <= step < 20 and b["steps"] == a["steps"] == 20
    assert [p["loss"] for p in b["loss_curve"]] == [p["loss"] for p in a["loss_curve"]]
    assert_same_weights(weights(tmp_path / "run"), weights(tmp_path / "full"), exact=True)


@pytest.mark.slow
def test_two_processes_match_one(base, tmp_path):
    """accelerate launch with 2 gloo processes gives the single-process result at the same global batch.

    21 examples in batches of 8: the last batch has 5, split 3/2 over the processes, so one process runs a
    zero-weight filler micro-batch; micro_batch_size differs between the runs on purpose.
    """
    examples = write_examples(tmp_path / "examples.jsonl", make_examples(21, seed=5))
    sets = ["batch_size=8", "epochs=2", "mixed_precision=no", "log_every=1", "lr=3e-3"]
    cli = [sys.executable, "-m", "upft_bench.cli"]
    one = _run(cli + _cli(base, examples, tmp_path / "one", sets + ["micro_batch_size=3"]))
    assert one.returncode == 0, one.stderr[-3000:]
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
              "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
              "--main_process_port", str(_free_port()), "-m", "upft_bench.cli"]
    two = _run(launch + _cli(base, examples, tmp_path / "two", sets + ["micro_batch_size=2"]) + ["--processes", "2"])
    assert two.returncode == 0, two.stderr[-3000:]
    a = json.loads((tmp_path / "one" / "train_stats.json").read_text())
    b = json.loads((tmp_path / "two" / "train_stats.json").read_text())
    assert a["hardware"]["processes"] == 1 and b["hardware"]["processes"] == 2
    assert a["steps"] == b["steps"] == 6
    for key in ("loss", "grad_norm"):  # the gradient norm catches a wrong DDP scale that Adam would hide
        assert [p[key] for p in b["loss_curve"]] == pytest.approx([p[key] for p in a["loss_curve"]], rel=1e-5)
    assert_same_weights(weights(tmp_path / "two"), weights(tmp_path / "one"), atol=1e-5)


@pytest.mark.slow
def test_deepspeed_zero3_over_two_processes_matches_one_and_resumes(base, tmp_path):
    """DeepSpeed ZeRO-3 (baselines/accelerate/zero3.yaml, on DeepSpeed's CPU accelerator over gloo): parameters,
    gradients and optimizer state partitioned over 2 processes give the single-process loss curve, gradient norms
    and weights (with gradient checkpointing); a run that lost its last checkpoint and its end resumes from the one
    before, bit for bit."""
    pytest.importorskip("deepspeed")
    examples = write_examples(tmp_path / "examples.jsonl", make_examples(21, seed=5))
    sets = ["batch_size=8", "epochs=2", "mixed_precision=no", "log_every=1", "lr=3e-3", "compile=false"]
    cli = [sys.executable, "-m", "upft_bench.cli"]
    one = _run(cli + _cli(base, examples, tmp_path / "one", sets + ["micro_batch_size=3"]))
    assert one.returncode == 0, one.stderr[-3000:]
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
              str(REPO / "baselines" / "accelerate" / "zero3.yaml"), "--num_processes", "2",
              "--main_process_port", str(_free_port()), "-m", "upft_bench.cli"]
    # Gradient checkpointing on: recomputed activations must match under partitioned weights too.
    zero = sets + ["micro_batch_size=2", "save_every=2", "keep_checkpoints=3", "gradient_checkpointing=true"]
    two = _run(launch + _cli(base, examples, tmp_path / "two", zero) + ["--processes", "2"])
    assert two.returncode == 0, two.stderr[-3000:]
    a = json.loads((tmp_path / "one" / "train_stats.json").read_text())
    b = json.loads((tmp_path / "two" / "train_stats.json").read_text())
    assert b["hardware"]["processes"] == 2 and b["hardware"]["distributed"] == "DEEPSPEED"
    assert b["hardware"]["zero_stage"] == 3
    # A partitioned parameter is an empty placeholder: the count comes from each one's whole size.
    assert b["trainable_parameters"] == b["total_parameters"] == a["total_parameters"] > 0
    for key in ("loss", "grad_norm"):
        assert [p[key] for p in b["loss_curve"]] == pytest.approx([p[key] for p in a["loss_curve"]], rel=1e-5)
    assert_same_weights(weights(tmp_path / "two"), weights(tmp_path / "one"), atol=1e-5)

    full = weights(tmp_path / "two")
    run = tmp_path / "two"
    shutil.rmtree(run / "model")
    (run / "train_stats.json").unlink()
    shutil.rmtree(run / "checkpoints" / "step-4")
    resumed = _run(launch + _cli(base, examples, run, zero) + ["--processes", "2", "--resume"])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    c = json.loads((run / "train_stats.json").read_text())
    assert c["resumed_from_step"] == 2
    assert [p["loss"] for p in c["loss_curve"]] == [p["loss"] for p in b["loss_curve"]]
    assert_same_weights(weights(run), full, exact=True)


@pytest.mark.slow
def test_launch_that_starts_one_process_fails_with_one_line(base, tmp_path):
    """`accelerate launch --num_processes 2` without --multi_gpu starts ONE process: --processes 2 says so."""
    examples = write_examples(tmp_path / "examples.jsonl", make_examples(4))
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "2", "--num_machines", "1",
              "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "upft_bench.cli"]
    done = _run(launch + _cli(base, examples, tmp_path / "run", ["batch_size=2"]) + ["--processes", "2"])
    assert done.returncode != 0
    assert "Error: asked for 2 processes but this run has 1" in done.stderr and "--multi_gpu" in done.stderr
    assert not (tmp_path / "run" / "train_stats.json").exists()


_GROUP_SCRIPT = """
import os, sys
import torch.distributed as dist
from upft_bench import grading
from upft_bench.launch import processes_ended
os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=sys.argv[1], RANK="0", WORLD_SIZE="1")
dist.init_process_group("gloo")
grading.warm_up(1)
workers = [w.proc for w in grading._workers._POOL.idle]
try:
    with processes_ended():
        if sys.argv[2] == "fail":
            raise ValueError("a failure in the work")
except ValueError:
    pass
print(dist.is_initialized(), all(w.poll() is not None for w in workers), len(workers))
"""


@pytest.mark.parametrize("how", ["ok", "fail"])
def test_launched_work_ends_its_process_group_and_checker_workers_before_exit(how):
    """What a launched train or eval does at its end, finished or failed: the process group is destroyed and the
    answer checker's worker processes have exited while the interpreter is whole (not left to its teardown)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    done = subprocess.run([sys.executable, "-c", _GROUP_SCRIPT, str(port), how], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "True", "1"]


def test_a_token_outside_the_vocabulary_names_file_example_and_field(base, tmp_path):
    examples = make_examples(3)
    examples[1] = Example(examples[1].question_id, examples[1].prompt_ids, [7, 99_999, 8], "full")
    path = write_examples(tmp_path / "ex.jsonl", examples)
    result = CliRunner().invoke(train_cli, ["--model", str(base), "--examples", str(path),
                                            "--output", str(tmp_path / "run")])
    assert result.exit_code == 1
    line = result.output.strip().split("\n")[-1]  # after the weight-loading bar
    assert line.startswith(f"Error: {path}: example 2 (question 'q1'), response_ids: token id 99999 is outside")
    assert not (tmp_path / "run" / "train_stats.json").exists()


def test_resume_checks_the_run(base, tmp_path):
    examples = make_examples(16)
    out = tmp_path / "run"
    first = train(base, examples, fp32(batch_size=4, save_every=2), out)
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["step-2"]  # keep_checkpoints=1; none at the end
    # The same run, finished: resume returns its stats without training again (log cadence may differ).
    again = train(base, examples, fp32(batch_size=4, save_every=2, log_every=3), out, resume=True)
    assert again == json.loads(json.dumps(first))
    (out / "train_stats.json").unlink()
    with pytest.raises(ValueError, match="step-2: checkpoint was written for a different config"):
        train(base, examples, fp32(batch_size=4, save_every=2, lr=5e-3), out, resume=True)
    with pytest.raises(ValueError, match="step-2: checkpoint was written for other examples"):
        train(base, make_examples(16, seed=1), fp32(batch_size=4, save_every=2), out, resume=True)


@pytest.mark.slow
def test_compiled_forward_matches_eager(base, tmp_path):
    examples = make_examples(8)
    eager = train(base, examples, fp32(batch_size=4), tmp_path / "eager")
    compiled = train(base, examples, fp32(batch_size=4, compile=True), tmp_path / "compiled")
    for key in ("loss", "grad_norm"):
        expected = [p[key] for p in eager["loss_curve"]]
        assert [p[key] for p in compiled["loss_curve"]] == pytest.approx(expected, rel=1e-4)
    assert_same_weights(weights(tmp_path / "compiled"), weights(tmp_path / "eager"), atol=1e-4)


def test_distributed_modes_the_loop_does_not_handle_are_refused_in_one_line():
    from types import SimpleNamespace

    from upft_bench.train import _check_distributed

    full, lora = TrainConfig(), TrainConfig(lora_rank=8)
    for kind in ("DistributedType.NO", "DistributedType.MULTI_CPU", "DistributedType.MULTI_GPU",
                 "DistributedType.FSDP", "DistributedType.DEEPSPEED"):
        _check_distributed(SimpleNamespace(distributed_type=kind), full)
    for kind, name in (("DistributedType.FSDP", "FSDP"), ("DistributedType.DEEPSPEED", "DeepSpeed")):
        with pytest.raises(ValueError, match=rf"^train: LoRA under {name} is not supported"):
            _check_distributed(SimpleNamespace(distributed_type=kind), lora)
    with pytest.raises(ValueError, match=r"^train: train.compile is not supported under DeepSpeed"):
        _check_distributed(SimpleNamespace(distributed_type="DistributedType.DEEPSPEED"), TrainConfig(compile=True))


def test_the_loop_sets_deepspeed_to_its_own_batching_clipping_and_optimizer():
    """Under DeepSpeed the engine takes one micro-batch per process with no accumulation of its own (the loop
    accumulates and scales the loss itself), clips at train.grad_clip; an optimizer, scheduler or DeepSpeed mixed
    precision in the config is refused in one line."""
    from types import SimpleNamespace

    from upft_bench.train import _deepspeed_settings

    def accelerator(ds):
        return SimpleNamespace(distributed_type="DistributedType.DEEPSPEED",
                               state=SimpleNamespace(deepspeed_plugin=SimpleNamespace(deepspeed_config=ds)))

    ds = {"train_batch_size": "auto", "train_micro_batch_size_per_gpu": "auto", "gradient_accumulation_steps": 4,
          "gradient_clipping": "auto", "zero_optimization": {"stage": 3}, "bf16": {"enabled": False}}
    assert _deepspeed_settings(accelerator(ds), TrainConfig(micro_batch_size=3, grad_clip=0.5)) is True
    assert ds["train_micro_batch_size_per_gpu"] == 3 and ds["gradient_accumulation_steps"] == 1
    assert ds["gradient_clipping"] == 0.5 and "train_batch_size" not in ds
    assert _deepspeed_settings(SimpleNamespace(distributed_type="DistributedType.MULTI_CPU"), TrainConfig()) is False
    for extra, pattern in (({"optimizer": {"type": "AdamW"}}, "sets 'optimizer'"),
                           ({"scheduler": {"type": "WarmupLR"}}, "sets 'scheduler'"),
                           ({"bf16": {"enabled": True}}, "enables bf16"),
                           ({"fp16": {"enabled": "true"}}, "enables fp16")):
        with pytest.raises(ValueError, match=rf"^train: the DeepSpeed config .* {pattern}; "):
            _deepspeed_settings(accelerator({**ds, **extra}), TrainConfig())
