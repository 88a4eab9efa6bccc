"""`upft-bench eval` / `evaluate()` end to end on a tiny random model through lm-eval's hf backend (CPU)."""
from __future__ import annotations

import json
import math

import pytest
from click.testing import CliRunner

from upft_bench.cli import main
from upft_bench.data import load_questions
from upft_bench.evaluation import _group_row, evaluate
from upft_bench.prompts import SYSTEM_PROMPTS, render_prompt
from upft_bench.tiny import save_random_model


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return save_random_model(tmp_path_factory.mktemp("tiny") / "model", size="test")


@pytest.fixture(scope="module")
def tiny_plain(tmp_path_factory):
    """The same kind of model, saved without a chat template (a plain base model)."""
    from transformers import AutoTokenizer

    from upft_bench.tiny import build_model, build_tokenizer, save_model

    tok = build_tokenizer()
    tok.chat_template = None
    out = save_model(build_model(tok, size="test"), tok, tmp_path_factory.mktemp("plain") / "model")
    assert not AutoTokenizer.from_pretrained(out).chat_template
    return out


def _samples(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.slow
def test_eval_command_end_to_end_on_tiny_model(tiny, tmp_path):
    out = tmp_path / "eval"
    result = CliRunner().invoke(main, ["eval", "--model", str(tiny), "--tasks", "upft_synth", "--limit", "8",
                                       "--batch-size", "8", "--device", "cpu", "--max-gen-toks", "24",
                                       "--output", str(out)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert "| upft_synth" in result.output and "exact_match %" in result.output
    assert sorted(p.name for p in out.iterdir()) == ["results_upft_synth.json", "samples_upft_synth.jsonl",
                                                     "summary.json"]
    summary = json.loads((out / "summary.json").read_text())
    row = summary["tasks"]["upft_synth"]
    assert row["n"] == 8 and 0.0 <= row["exact_match"] <= 1.0 and row["eval_seconds"] > 0
    raw = json.loads((out / "results_upft_synth.json").read_text())
    assert raw["results"]["upft_synth"]["exact_match,none"] == row["exact_match"]
    samples = _samples(out / "samples_upft_synth.jsonl")
    assert len(samples) == 8
    assert samples[0]["arguments"][0][1]["max_gen_toks"] == 24
    assert row["mean_output_tokens"] == sum(s["output_tokens"] for s in samples) / 8


@pytest.mark.slow
def test_eval_on_two_processes_splits_the_questions_and_matches_one(tiny, tmp_path):
    """The README's scale-out command for evaluation: 2 gloo processes on CPU, each evaluating half of the
    questions, gathered on the main one: the same outcomes as one process, every question once."""
    import os
    import subprocess
    import sys

    args = ["-m", "upft_bench.cli", "eval", "--model", str(tiny), "--tasks", "upft_synth", "--limit", "9",
            "--batch-size", "4", "--max-gen-toks", "12", "--device", "cpu"]
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2"]
    two = subprocess.run(launch + args + ["--output", str(tmp_path / "two"), "--processes", "2"], env=env,
                         capture_output=True, text=True)
    assert two.returncode == 0, two.stderr[-3000:]
    assert two.stdout.count("| upft_synth") == 1  # one table, from the main process
    one = CliRunner().invoke(main, args[2:] + ["--output", str(tmp_path / "one")])
    assert one.exit_code == 0, one.output
    a, b = (json.loads((tmp_path / name / "summary.json").read_text()) for name in ("one", "two"))
    assert a["settings"]["processes"] == 1 and b["settings"]["processes"] == 2
    for key in ("n", "question_ids", "outcomes", "mean_output_tokens"):
        assert a["tasks"]["upft_synth"][key] == b["tasks"]["upft_synth"][key], key
    assert len(_samples(tmp_path / "two" / "samples_upft_synth.jsonl")) == 9


@pytest.mark.parametrize("style", ["none", "qwen_boxed"])
def test_hf_backend_prompt_is_render_prompt(tiny, tiny_plain, tmp_path, style):
    """What reaches the hf model equals render_prompt, with and without a chat template, with a system prompt."""
    from transformers import AutoTokenizer

    system = SYSTEM_PROMPTS[style]
    questions = load_questions("synth", "test", limit=2)
    for model in (tiny, tiny_plain):
        out = tmp_path / model.parent.name / style
        rows = evaluate(str(model), ["upft_synth"], limit=2, batch_size=2, output_dir=out, system=style,
                        max_gen_toks=2, device="cpu")
        assert rows["upft_synth"]["n"] == 2
        tok = AutoTokenizer.from_pretrained(model)
        prompts = [s["arguments"][0][0] for s in _samples(out / "samples_upft_synth.jsonl")]
        assert prompts == [render_prompt(tok, q.question, system) for q in questions]
        if system:
            assert all(system in p for p in prompts)


def test_unknown_task_and_bad_data_dir_fail_before_loading_a_model(tmp_path):
    with pytest.raises(ValueError, match="unknown task 'upft_nope'.*upft_synth"):
        evaluate(str(tmp_path / "no-model"), ["upft_nope"])
    with pytest.raises(ValueError, match="does not exist"):
        evaluate(str(tmp_path / "no-model"), ["upft_synth"], data_dir=tmp_path / "missing")
    result = CliRunner().invoke(main, ["eval", "--model", "x", "--tasks", "upft_nope"])
    assert result.exit_code != 0 and "unknown task 'upft_nope'" in result.output


def test_group_row_is_unweighted_mean():
    rows = [dict(exact_match=1.0, exact_match_stderr=0.0, extracted=1.0, stated=1.0, n=10, correct=10,
                 mean_output_tokens=0, eval_seconds=1.0, flops=100),
            dict(exact_match=0.0, exact_match_stderr=0.1, extracted=0.5, stated=0.0, n=1000, correct=0,
                 mean_output_tokens=0, eval_seconds=2.0, flops=23)]
    samples = [[{"output_tokens": 4}] * 10, [{"output_tokens": 8}] * 1000]
    row = _group_row(rows, samples)
    assert row["exact_match"] == 0.5 and row["extracted"] == 0.75 and row["stated"] == 0.5 and row["n"] == 1010
    assert row["exact_match_stderr"] == pytest.approx(math.sqrt(0.01) / 2)
    assert row["mean_output_tokens"] == pytest.approx((40 + 8000) / 1010)
    assert row["eval_seconds"] == 3.0 and row["correct"] == 10 and row["flops"] == 123


def test_system_prompt_resolves_styles_and_literal_text():
    from upft_bench.prompts import system_prompt

    assert system_prompt(None, literal=True) is None and system_prompt("none", literal=True) is None
    assert system_prompt("qwen_boxed", literal=True) == SYSTEM_PROMPTS["qwen_boxed"]
    assert system_prompt("Be brief.", literal=True) == "Be brief."
    with pytest.raises(ValueError, match="unknown prompt style"):
        system_prompt("Be brief.")


def test_tasks_command_lists_tasks_and_path(data_dir):
    from upft_bench import tasks_dir

    runner = CliRunner()
    result = runner.invoke(main, ["tasks", "--path"])
    assert result.exit_code == 0 and result.output.strip() == str(tasks_dir())
    assert (tasks_dir() / "upft_synth.yaml").is_file()
    result = runner.invoke(main, ["tasks", "--data-dir", str(data_dir)])
    assert result.exit_code == 0, result.output
    for name in ("upft_gsm8k", "upft_math500", "upft_aime24", "upft_gpqa", "upft_gpqa_open", "upft_synth",
                 "upft_paper"):
        assert f"| {name} " in result.output
    assert "1319" in result.output and str(data_dir / "gsm8k" / "test.jsonl") in result.output


@pytest.mark.slow
def test_group_and_tasks_in_one_call(tiny, data_dir, tmp_path):
    rows = evaluate(str(tiny), ["upft_paper", "upft_synth"], limit=1, batch_size=1, data_dir=data_dir,
                    output_dir=tmp_path, max_gen_toks=2, device="cpu")
    members = ["upft_gsm8k", "upft_math500", "upft_aime24", "upft_gpqa_open"]
    assert list(rows) == ["upft_paper", "upft_synth", *members]
    assert rows["upft_paper"]["n"] == 4
    assert rows["upft_paper"]["exact_match"] == sum(rows[t]["exact_match"] for t in members) / 4
    assert rows["upft_paper"]["eval_seconds"] == pytest.approx(sum(rows[t]["eval_seconds"] for t in members), abs=0.01)
    assert {p.name for p in tmp_path.glob("results_*.json")} == {f"results_{t}.json" for t in [*members, "upft_synth"]}
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["settings"]["data_dir"] == str(data_dir) and summary["tasks"] == rows


def test_backend_errors(tmp_path):
    import importlib.util

    with pytest.raises(ValueError, match="unknown backend 'tgi'"):
        evaluate(str(tmp_path), ["upft_synth"], backend="tgi")
    if importlib.util.find_spec("vllm") is None:
        with pytest.raises(RuntimeError, match="pip install 'upft-bench\\[vllm\\]'"):
            evaluate(str(tmp_path), ["upft_synth"], backend="vllm")


@pytest.mark.slow
def test_a_failed_task_keeps_the_finished_ones_and_a_rerun_reuses_them(tiny, data_dir, tmp_path, monkeypatch):
    """Each finished task is written at once (summary.json `complete` false until the last); the same call again
    runs only what did not finish; a model retrained in the same folder is evaluated anew."""
    import os

    import lm_eval

    real, ran = lm_eval.simple_evaluate, []

    def failing(*args, tasks, **kwargs):
        ran.append(tasks[0])
        if tasks == ["upft_gsm8k"] and fail:
            raise RuntimeError("out of memory")
        return real(*args, tasks=tasks, **kwargs)

    monkeypatch.setattr(lm_eval, "simple_evaluate", failing)
    out = tmp_path / "eval"
    call = dict(limit=2, batch_size=2, data_dir=data_dir, output_dir=out, max_gen_toks=4, device="cpu")
    fail = True
    with pytest.raises(RuntimeError, match="out of memory"):
        evaluate(str(tiny), ["upft_synth", "upft_gsm8k"], **call)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["complete"] is False and list(summary["tasks"]) == ["upft_synth"]
    assert (out / "results_upft_synth.json").exists() and (out / "samples_upft_synth.jsonl").exists()
    fail, ran[:] = False, []
    rows = evaluate(str(tiny), ["upft_synth", "upft_gsm8k"], **call)
    assert ran == ["upft_gsm8k"] and rows["upft_synth"] == summary["tasks"]["upft_synth"]
    assert json.loads((out / "summary.json").read_text())["complete"] is True
    ran[:] = []
    weights = next(tiny.glob("*.safetensors"))
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 10**9))
    evaluate(str(tiny), ["upft_synth", "upft_gsm8k"], **call)
    assert ran == ["upft_synth", "upft_gsm8k"]
