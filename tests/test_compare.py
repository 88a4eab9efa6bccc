"""The smoke comparison end to end through the CLI: rows, columns, traceability, cost accounting, resume."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from upft_bench import baselines_dir
from upft_bench.cli import main
from upft_bench.config import dump_yaml
from upft_bench.environment import summary as environment_line
from upft_bench.experiment import load_experiment
from upft_bench.methods import METHOD_IDS
from upft_bench.report import interval_words
from upft_bench.stats import wilson_interval

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def smoke(tmp_path_factory, cache):
    """One real smoke comparison shared by the tests below (a tiny model pretrained for a few steps)."""
    out = tmp_path_factory.mktemp("runs") / "smoke"
    mp = pytest.MonkeyPatch()
    mp.setenv("UPFT_BENCH_CACHE", str(cache))
    try:
        result = CliRunner().invoke(main, ["compare", str(baselines_dir() / "smoke.yaml"), "--output", str(out)])
    finally:
        mp.undo()
    assert result.exit_code == 0, result.output + repr(result.exception)
    return out, result.output


def _table(text: str, column: str = "answered %") -> tuple[list[str], dict[str, dict[str, str]]]:
    """The first Markdown table in `text` that has `column`, as headers and {first cell: {header: cell}}."""
    lines = text.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith("|") and f" {column} " in ln)
    headers = [c.strip() for c in lines[start].strip("|").split("|")]
    rows = {}
    for ln in lines[start + 2:]:
        cells = [c.strip() for c in ln.strip("|").split("|")]
        if not ln.startswith("|") or len(cells) != len(headers):
            break
        rows[cells[0]] = dict(zip(headers, cells))
    return headers, rows


def test_table_rows_columns_and_traceability(smoke):
    out, printed = smoke
    metrics = json.loads((out / "metrics.json").read_text())
    headers, rows = _table(printed)
    # every method the smoke config runs (vstar has its own end-to-end tests: tests/test_vstar.py)
    smoke_methods = load_experiment(baselines_dir() / "smoke.yaml").methods
    assert list(rows) == smoke_methods == [m for m in METHOD_IDS if m != "vstar"]
    for col in ("upft_synth acc %", "answered %", "stated %", "sampled_tokens", "tuned_tokens", "sample s", "train s",
                "eval s", "sampled vs rft", "tuned vs rft"):
        assert col in headers
    for name, cells in rows.items():
        m = metrics["methods"][name]
        task = m["tasks"]["upft_synth"]
        low, high = wilson_interval(task["correct"], task["n"])
        assert cells["upft_synth acc %"] == f"{100 * task['exact_match']:.1f} ({100 * low:.1f}-{100 * high:.1f})"
        assert len(task["outcomes"]) == task["n"] == len(metrics["questions"]["upft_synth"])
        assert cells["answered %"] == f"{100 * task['extracted']:.1f}"
        assert cells["stated %"] == f"{100 * task['stated']:.1f}"
        assert cells["sampled_tokens"] == f"{m['sampled_tokens']:,}"
        assert cells["tuned_tokens"] == f"{m['tuned_tokens']:,}"
        assert cells["train s"] == f"{m['train_seconds']:.1f}"
        # ... and metrics.json traces back to the run's own files.
        if m["train_examples"]:
            stats = json.loads((out / "methods" / name / "train" / "train_stats.json").read_text())
            assert stats["tuned_tokens"] == m["tuned_tokens"]
        summary = json.loads((out / "methods" / name / "eval" / "summary.json").read_text())
        assert json.dumps(summary).count(str(task["exact_match"])) >= 1
    assert (out / "compare.md").read_text().strip() in printed
    assert (out / "compare.md").read_text().startswith("### smoke: each method against rft")  # verdicts first
    _, verdicts = _table(printed, "verdict")
    assert set(verdicts) == set(smoke_methods) - {"rft"}
    by_method = {c["method"]: c for c in metrics["comparisons"] if c["reference"] == "rft"}
    for name, cells in verdicts.items():
        c = by_method[name]
        assert cells["verdict"].startswith(c["verdict"])
        assert cells["vs rft (points, 95% CI)"] == interval_words(c)
    assert (out / "compare.png").stat().st_size > 1000
    # the machine and the versions that shape the digits, in metrics.json and in the report
    env = metrics["environment"]
    assert env["cpu"] and env["cpu_capability"] and env["versions"]["torch"] and env["versions"]["lm_eval"]
    assert f"Measured on {environment_line(env)}; mixed precision " in printed
    assert "rft" in metrics["methods"] and metrics["methods"]["rft"]["sampled_tokens_vs_rft_pct"] == 100.0


def _pool(out: Path, name: str) -> list[dict]:
    metrics = json.loads((out / "metrics.json").read_text())
    pool = metrics["methods"][name]["sample_pool"]
    lines = (out / "samples" / f"{pool}.jsonl").read_text().splitlines()
    return [json.loads(ln) for ln in lines[1:]]  # first line: the pool's header


def test_upft_sampled_tokens_are_its_prefix_and_structure_samples(smoke):
    out, _ = smoke
    cfg = load_experiment(baselines_dir() / "smoke.yaml")
    metrics = json.loads((out / "metrics.json").read_text())
    samples = _pool(out, "upft")
    k = cfg.method.prefix_tokens
    prefix = [s for s in samples if s["max_new_tokens"] == k]
    structure = [s for s in samples if s["max_new_tokens"] == cfg.method.max_new_tokens]
    assert len(prefix) + len(structure) == len(samples) == cfg.data.train_limit
    assert len(structure) == round(cfg.method.structure_ratio * cfg.data.train_limit)
    assert all(s["num_tokens"] <= k for s in prefix)
    assert metrics["methods"]["upft"]["sampled_tokens"] == sum(s["num_tokens"] for s in prefix + structure)
    # RFT samples N full responses per question; label filter reuses that pool at the same cost.
    rft = metrics["methods"]["rft"]
    assert rft["samples"] == cfg.method.rft_samples * cfg.data.train_limit
    assert metrics["methods"]["upft_label_filter"]["sampled_tokens"] == rft["sampled_tokens"]


def test_resume_redoes_nothing(smoke, monkeypatch, cache):
    out, printed = smoke
    import upft_bench.evaluation
    import upft_bench.sampling
    import upft_bench.train

    def boom(*a, **k):
        raise AssertionError("a finished phase was run again")

    monkeypatch.setattr(upft_bench.train, "train", boom)
    monkeypatch.setattr(upft_bench.evaluation, "evaluate", boom)
    monkeypatch.setattr(upft_bench.sampling, "_generate_batches", boom)
    monkeypatch.setenv("UPFT_BENCH_CACHE", str(cache))
    before = (out / "metrics.json").read_text()
    result = CliRunner().invoke(main, ["compare", str(baselines_dir() / "smoke.yaml"), "--output", str(out),
                                       "--resume"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    after = json.loads((out / "metrics.json").read_text())
    assert after["methods"] == json.loads(before)["methods"]


def test_interrupted_run_finishes_without_redoing(tmp_path, monkeypatch, cache):
    import upft_bench.evaluation
    import upft_bench.train

    monkeypatch.setenv("UPFT_BENCH_CACHE", str(cache))
    real_train, real_eval = upft_bench.train.train, upft_bench.evaluation.evaluate
    calls = []

    def dying_train(model, examples, config, output_dir, **kw):
        calls.append(Path(output_dir).parent.name)
        if Path(output_dir).parent.name == "upft":
            raise RuntimeError("killed")  # the run dies during upft's training
        return real_train(model, examples, config, output_dir, **kw)

    monkeypatch.setattr(upft_bench.train, "train", dying_train)
    args = ["compare", str(baselines_dir() / "smoke.yaml"), "--output", str(tmp_path / "r"),
            "--methods", "sft,upft", "--set", "eval.limit=4"]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 1 and "Error: RuntimeError: killed" in first.output  # one line, no traceback
    first_session = json.loads((tmp_path / "r" / ".done" / "elapsed.json").read_text())["seconds"]
    assert first_session > 0  # the killed session's finished work (base model, sft) is on the clock
    assert not (tmp_path / "r" / "metrics.json").exists()

    again = CliRunner().invoke(main, args)  # without --resume: refuses to mix runs
    assert again.exit_code != 0 and "--resume" in again.output

    calls.clear()
    evals = []
    monkeypatch.setattr(upft_bench.train, "train", lambda *a, **k: (calls.append(Path(a[3]).parent.name),
                                                                     real_train(*a, **k))[1])
    monkeypatch.setattr(upft_bench.evaluation, "evaluate",
                        lambda p, *a, **k: (evals.append(p), real_eval(p, *a, **k))[1])
    done = CliRunner().invoke(main, args + ["--resume"])
    assert done.exit_code == 0, done.output + repr(done.exception)
    assert calls == ["upft"]  # sft's training was kept
    assert len(evals) == 1 and evals[0].endswith("upft/train/model")
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert list(metrics["methods"]) == ["sft", "upft"]
    assert metrics["total_seconds"] > first_session  # both sessions, not only the last


def test_a_folder_with_only_report_files_is_rewritten(tmp_path, monkeypatch, cache):
    """A folder holding only report files (a copy of the shipped results/reference): `compare` does not refuse it."""
    monkeypatch.setenv("UPFT_BENCH_CACHE", str(cache))
    out = tmp_path / "default"
    out.mkdir()
    (out / "compare.md").write_text("old table")
    result = CliRunner().invoke(main, ["compare", str(baselines_dir() / "smoke.yaml"), "--output", str(out),
                                       "--methods", "base", "--set", "eval.limit=2", "--set", "analysis=true",
                                       "--set", "analyze.questions=4", "--set", "analyze.samples=2",
                                       "--set", "analyze.ks=[4]", "--set", "analyze.rollouts=1"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    text = (out / "compare.md").read_text()
    assert text != "old table"
    # analysis: true runs the prefix analyses on the base model and links them
    assert "Prefix analysis of the base model ([analysis/analysis.md](analysis/analysis.md))" in text
    assert (out / "analysis" / "analysis.json").exists()


def test_another_experiments_report_is_not_overwritten(tmp_path):
    out = tmp_path / "reference"
    out.mkdir()
    (out / "config.yaml").write_text(dump_yaml(load_experiment(None)))  # the default's report
    (out / "compare.md").write_text("the default's table")
    result = CliRunner().invoke(main, ["compare", str(baselines_dir() / "smoke.yaml"), "--output", str(out)])
    assert result.exit_code == 1 and "holds the report of another experiment" in result.output
    assert (out / "compare.md").read_text() == "the default's table" and not (out / ".done").exists()


def test_training_and_evaluation_under_accelerate_launch_two_processes(tmp_path, monkeypatch, cache, capfd):
    """launch.num_processes=2 alone runs the same `upft-bench train` and `upft-bench eval` under accelerate on 2
    real processes (gloo on CPU): compare adds --multi_gpu, without which accelerate launch would start one; the
    evaluation splits the questions between the processes and reports each question once."""
    monkeypatch.setenv("UPFT_BENCH_CACHE", str(cache))
    out = tmp_path / "ddp"
    result = CliRunner().invoke(main, [
        "compare", str(baselines_dir() / "smoke.yaml"), "--output", str(out), "--methods", "sft",
        "--set", "launch.num_processes=2", "--set", "eval.limit=5"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    stats = json.loads((out / "methods" / "sft" / "train" / "train_stats.json").read_text())
    assert stats["hardware"]["processes"] == 2
    summary = json.loads((out / "methods" / "sft" / "eval" / "summary.json").read_text())
    assert summary["settings"]["processes"] == 2
    row = summary["tasks"]["upft_synth"]
    assert row["n"] == 5 == len(set(row["question_ids"])) == len(row["outcomes"])
    assert "were not passed to `accelerate launch`" not in capfd.readouterr().err  # the launch says them all
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["methods"]["sft"]["tuned_tokens"] == stats["tuned_tokens"] > 0


def test_compare_checkpoints_training_and_a_killed_run_resumes_mid_training(tmp_path, monkeypatch, cache):
    """Training in a comparison checkpoints by default (train.save_every); a run killed mid-training continues
    from its last checkpoint on --resume, not from step 0, and the finished phase leaves no checkpoint behind.
    (The kill lands right after step 4's update; kill -9 itself is test_train's kill-and-resume test.)"""
    import upft_bench.train

    assert load_experiment(None).train.save_every > 0
    monkeypatch.setenv("UPFT_BENCH_CACHE", str(cache))
    out = tmp_path / "killed"
    args = ["compare", str(baselines_dir() / "smoke.yaml"), "--output", str(out), "--methods", "sft",
            "--set", "train.epochs=4", "--set", "train.save_every=3", "--set", "eval.limit=2"]
    real = upft_bench.train.lr_at

    def killed_at_step_5(step, total, config):
        if step == 4 and total == 8:
            raise KeyboardInterrupt  # as Ctrl-C, or a kill, between two steps
        return real(step, total, config)

    monkeypatch.setattr(upft_bench.train, "lr_at", killed_at_step_5)
    first = CliRunner().invoke(main, args)
    assert first.exit_code != 0
    train_dir = out / "methods" / "sft" / "train"
    assert [p.name for p in (train_dir / "checkpoints").iterdir()] == ["step-3"]
    monkeypatch.setattr(upft_bench.train, "lr_at", real)
    resumed = CliRunner().invoke(main, args + ["--resume"])
    assert resumed.exit_code == 0, resumed.output + repr(resumed.exception)
    stats = json.loads((train_dir / "train_stats.json").read_text())
    assert stats["resumed_from_step"] == 3 and stats["steps"] == 8
    assert not (train_dir / "checkpoints").exists()


def test_output_is_quiet_unless_verbose(tmp_path, cache):
    """By default a run prints its own bars and one-line summaries, not the libraries' loading/saving bars, logs,
    warnings or lm-eval's git error; --verbose shows them again."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "UPFT_BENCH_CACHE": str(cache)}
    env.pop("UPFT_BENCH_VERBOSE", None)
    noise = ("Loading weights", "Writing model shards", "fatal: not a git repository", "Warning",
             "Running generate_until requests")
    outputs = {}
    for flags, methods in (([], "sft_self"), (["--verbose"], "base")):
        cmd = [sys.executable, "-m", "upft_bench.cli", *flags, "compare", str(baselines_dir() / "smoke.yaml"),
               "--output", str(tmp_path / f"run{len(flags)}"), "--methods", methods, "--set", "eval.limit=2"]
        done = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True)  # not inside a clone
        assert done.returncode == 0, done.stderr[-2000:]
        outputs[bool(flags)] = done.stderr
    quiet, loud = outputs[False], outputs[True]
    assert [n for n in noise if n in quiet] == []
    for own in ("[sft_self] evaluated", "[sft_self] samples", "[sft_self] trained", "eval upft_synth", "sampling",
                "train"):
        assert own in quiet
    assert "Loading weights" in loud and "Running generate_until requests" in loud


def test_launch_mode_adds_multi_gpu_unless_a_mode_is_named():
    from upft_bench.launch import launch_mode

    assert launch_mode([]) == ["--multi_gpu"]
    assert launch_mode(["--main_process_port", "29501"]) == ["--multi_gpu", "--main_process_port", "29501"]
    for named in (["--multi_gpu"], ["--config_file", "fsdp.yaml"], ["--config_file=ds.yaml"], ["--use_deepspeed"]):
        assert launch_mode(named) == named


def test_seeds_in_one_command_pool_into_verdicts_and_resume(tmp_path, monkeypatch, cache):
    """--seeds 0,1: one folder, a run per seed, one verdict table over both; a run killed in seed 1 resumes
    without redoing seed 0 or seed 1's finished phases; `report` on the seed folders gives the same verdicts."""
    import upft_bench.evaluation
    import upft_bench.train

    monkeypatch.setenv("UPFT_BENCH_CACHE", str(cache))
    out = tmp_path / "seeds"
    args = ["compare", str(baselines_dir() / "smoke.yaml"), "--output", str(out), "--seeds", "0,1",
            "--methods", "base,sft,upft", "--set", "eval.limit=8", "--set", "report.reference=sft"]
    real_train, real_eval = upft_bench.train.train, upft_bench.evaluation.evaluate
    calls, evals = [], []

    def dying_train(model, examples, config, output_dir, **kw):
        calls.append(str(output_dir))
        if "seed-1" in str(output_dir) and Path(output_dir).parent.name == "upft":
            raise RuntimeError("killed")
        return real_train(model, examples, config, output_dir, **kw)

    monkeypatch.setattr(upft_bench.train, "train", dying_train)
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 1 and "Error: RuntimeError: killed" in first.output  # one line, no traceback
    assert (out / "seed-0" / "metrics.json").exists() and not (out / "metrics.json").exists()

    calls.clear()
    monkeypatch.setattr(upft_bench.train, "train", lambda *a, **k: (calls.append(str(a[3])), real_train(*a, **k))[1])
    monkeypatch.setattr(upft_bench.evaluation, "evaluate",
                        lambda p, *a, **k: (evals.append(p), real_eval(p, *a, **k))[1])
    done = CliRunner().invoke(main, args + ["--resume"])
    assert done.exit_code == 0, done.output + repr(done.exception)
    assert [Path(c).parent.name for c in calls] == ["upft"] and "seed-1" in calls[0]
    assert len(evals) == 1 and evals[0].endswith("seed-1/methods/upft/train/model")  # base: reused from seed 0

    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["seeds"] == [0, 1] and [r["seed"] for r in metrics["runs"]] == [0, 1]
    first, second = (r["methods"]["base"] for r in metrics["runs"])
    # the reused evaluation reports what it cost where it ran, not 0 FLOPs, and says where it came from
    assert second["eval_flops"] == first["eval_flops"] > 0 and first["eval_reused_from"] is None
    assert second["eval_reused_from"].endswith("seed-0/methods/base/eval")
    comparisons = [c for c in metrics["comparisons"] if c["reference"] == "sft"]
    assert {c["method"] for c in comparisons} == {"base", "upft"}
    assert all(c["seeds"] == 2 and c["questions"] == 8 and len(c["mcnemar"]) == 2 for c in comparisons)
    printed = done.output
    headers, rows = _table(printed, "verdict")
    assert headers == ["method", "task", "acc %", "vs sft (points, 95% CI)", "seed share", "McNemar p (each seed)",
                       "sign-flip p (questions)", "MDE", "TOST power", "verdict"]
    assert set(rows) == {"base", "upft"}

    again = CliRunner().invoke(main, ["report", str(out / "seed-0"), str(out / "seed-1"), "--output",
                                      str(tmp_path / "rep")])
    assert again.exit_code == 0, again.output
    assert _table(again.output, "verdict")[1] == rows


def _sweep_run(out, cache, monkeypatch, extra=()):
    import upft_bench.evaluation

    monkeypatch.setenv("UPFT_BENCH_CACHE", str(cache))
    real_eval, evals = upft_bench.evaluation.evaluate, []
    monkeypatch.setattr(upft_bench.evaluation, "evaluate",
                        lambda p, *a, **k: (evals.append(p), real_eval(p, *a, **k))[1])
    result = CliRunner().invoke(main, ["compare", str(baselines_dir() / "smoke.yaml"), "--output", str(out),
                                       "--sweep", "train.lr=1e-4,2e-4", "--set", "data.val_limit=8", *extra])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return json.loads((out / "metrics.json").read_text()), result.output, evals


def test_sweep_trains_every_setting_and_evaluates_the_test_task_once(tmp_path, monkeypatch, cache):
    metrics, printed, evals = _sweep_run(tmp_path / "sweep", cache, monkeypatch)
    methods = load_experiment(baselines_dir() / "smoke.yaml").methods
    trained = [name for name in methods if name != "base"]
    assert len(evals) == len(methods)  # the test tasks: once per method, the chosen model only
    for name in trained:
        row = metrics["methods"][name]
        assert [v["setting"] for v in row["validation"]] == [{"train.lr": 1e-4}, {"train.lr": 2e-4}]
        assert all(v["n"] == 8 for v in row["validation"])
        assert row["setting"] in [v["setting"] for v in row["validation"]]
        best = max(v["accuracy"] for v in row["validation"])
        assert row["setting"] == next(v["setting"] for v in row["validation"] if v["accuracy"] == best)
        for lr in ("0.0001", "0.0002"):   # both settings trained, each in its own folder
            if row["train_examples"]:
                assert (tmp_path / "sweep" / "methods" / name / "sweep" / f"train.lr={lr}" / "train" / "model").is_dir()
    md = (tmp_path / "sweep" / "compare.md").read_text()
    _, table = _table(md, "validation acc %")
    assert "### smoke: validation" in md and len([ln for ln in md.splitlines() if ln.startswith("| sft ")]) >= 3
    headers, rows = _table(md)
    assert "setting" in headers and rows["sft"]["setting"].startswith("train.lr=")


def test_changing_the_test_answers_changes_no_selection(tmp_path, monkeypatch, cache):
    """Selection reads validation questions only: scrambled test answers leave every choice and score as it was,
    and the validation questions are disjoint from the training and the test questions."""
    import upft_bench.data
    from upft_bench.selection import validation_questions

    first, _, _ = _sweep_run(tmp_path / "a", cache, monkeypatch, ["--methods", "base,sft,upft"])
    real = upft_bench.data.load_questions

    def scrambled(name, split="test", *a, **k):
        qs = real(name, split, *a, **k)
        if split != "test":
            return qs
        return [upft_bench.data.Question(q.id, q.question, str(int(q.answer) + 1), q.solution, q.kind, q.meta)
                for q in qs]

    monkeypatch.setattr(upft_bench.data, "load_questions", scrambled)
    second, _, _ = _sweep_run(tmp_path / "b", cache, monkeypatch, ["--methods", "base,sft,upft"])
    log = (tmp_path / "b" / "methods" / "sft" / "eval" / "samples_upft_synth.jsonl").read_text().splitlines()
    answers = {json.loads(ln)["doc"]["id"]: json.loads(ln)["doc"]["answer"] for ln in log}
    assert answers and all(answers[q.id] == str(int(q.answer) + 1) for q in real("synth", "test") if q.id in answers)
    for name in ("sft", "upft"):
        assert second["methods"][name]["setting"] == first["methods"][name]["setting"]
        assert second["methods"][name]["validation"] == first["methods"][name]["validation"]
    cfg = load_experiment(baselines_dir() / "smoke.yaml", ["data.val_limit=8"])
    val = {q.id for q in validation_questions(cfg)}
    train = {q.id for q in real("synth", "train", limit=cfg.data.train_limit)}
    assert len(val) == 8 and not val & train and not val & {q.id for q in real("synth", "test")}


def test_flops_are_recomputed_from_the_saved_files(smoke):
    """Every FLOPs figure of the smoke run follows from its saved samples, examples and evaluation logs."""
    from transformers import AutoTokenizer

    from upft_bench.compute import ModelShape, generation_flops, training_flops
    from upft_bench.examples import read_examples
    from upft_bench.sampling import read_samples
    from upft_bench.train import trained_positions

    out, _ = smoke
    metrics = json.loads((out / "metrics.json").read_text())
    cfg = load_experiment(baselines_dir() / "smoke.yaml")
    shape = ModelShape.from_model_dir(metrics["base_model"])
    tok = AutoTokenizer.from_pretrained(metrics["base_model"])
    for name, row in metrics["methods"].items():
        expected = 0
        if row["sample_pool"]:
            for s in read_samples(out / "samples" / f"{row['sample_pool']}.jsonl"):
                prompt = len(tok(s.prompt, add_special_tokens=False)["input_ids"])
                expected += generation_flops(shape, prompt, s.num_tokens)
        assert row["sample_flops"] == expected, name
        examples_file = out / "methods" / name / "examples.jsonl"
        trained = read_examples(examples_file) if row["train_examples"] else []
        assert row["train_flops"] == (training_flops(shape, trained_positions(trained, cfg.train)) if trained else 0)
        log = [json.loads(ln) for ln in
               (out / "methods" / name / "eval" / "samples_upft_synth.jsonl").read_text().splitlines()]
        assert row["eval_flops"] == sum(
            generation_flops(shape, len(tok(s["arguments"][0][0], add_special_tokens=False)["input_ids"]),
                             len(tok(s["filtered_resps"][0], add_special_tokens=False)["input_ids"])) for s in log)
        assert row["total_flops"] == row["sample_flops"] + row["train_flops"] + row["eval_flops"]
        assert row["sample_cpu_seconds"] >= 0 and row["eval_cpu_seconds"] > 0
    rft = metrics["methods"]["rft"]
    upft = metrics["methods"]["upft"]
    assert upft["flops_vs_rft_pct"]["sample"] == round(100 * upft["sample_flops"] / rft["sample_flops"], 2)
    assert rft["flops_vs_rft_pct"]["total"] == 100.0
    assert "sample FLOPs" in (out / "compare.md").read_text()
