"""Loss curves you can look at: the per-step log (train_log.jsonl), experiment trackers (train.report_to) and the
loss figure of a comparison (loss.png)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import fp32, make_examples  # tests/helpers.py (pytest puts tests/ on sys.path)

from upft_bench import baselines_dir
from upft_bench.cli import main
from upft_bench.commands.train import train_cli
from upft_bench.errors import InputError
from upft_bench.examples import write_examples
from upft_bench.report import render_report
from upft_bench.tiny import save_random_model
from upft_bench.train import LOG_FILE, TRACKERS, TrainConfig, train

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return save_random_model(tmp_path_factory.mktemp("tiny") / "base", size="test", seed=0)




def read_log(run_dir: Path) -> list[dict]:
    """The rows of a run's train_log.jsonl (every line whole: the log is flushed row by row)."""
    return [json.loads(line) for line in (run_dir / LOG_FILE).read_text().splitlines()]


def steps_and_losses(rows: list[dict]) -> list[tuple[int, float]]:
    return [(r["step"], r["loss"]) for r in rows]


# ------------------------------------------------------------------ train_log.jsonl


def test_log_has_a_row_per_logged_step_and_is_the_loss_curve(base, tmp_path):
    # 20 examples in batches of 4: 5 steps per epoch, 10 in all; logged at 1, every 3rd, and the last.
    stats = train(base, make_examples(20), fp32(batch_size=4, epochs=2, log_every=3), tmp_path / "run")
    rows = read_log(tmp_path / "run")
    assert [r["step"] for r in rows] == [1, 3, 6, 9, 10]
    on_disk = json.loads((tmp_path / "run" / "train_stats.json").read_text())
    assert rows == on_disk["loss_curve"] == json.loads(json.dumps(stats["loss_curve"]))  # row for row, every field
    for row in rows:
        assert set(row) == {"step", "epoch", "loss", "lr", "grad_norm", "tokens_per_second", "elapsed_seconds"}
        assert row["tokens_per_second"] > 0 and row["loss"] > 0
    assert [r["epoch"] for r in rows] == [0, 0, 1, 1, 1]
    assert [r["elapsed_seconds"] for r in rows] == sorted(r["elapsed_seconds"] for r in rows)
    assert rows[-1]["elapsed_seconds"] <= on_disk["train_seconds"]
    # No clipping, no grad_norm; a new run in the same folder starts a new log.
    train(base, make_examples(8), fp32(batch_size=4, grad_clip=0.0), tmp_path / "run")
    rows = read_log(tmp_path / "run")
    assert [r["step"] for r in rows] == [1, 2] and all("grad_norm" not in r for r in rows)


def test_resumed_log_drops_rows_after_the_checkpoint_and_matches_an_uninterrupted_run(base, tmp_path):
    examples = make_examples(24)
    cfg = fp32(batch_size=4, save_every=4, log_every=1)  # 6 steps; a checkpoint at step 4
    train(base, examples, cfg, tmp_path / "full")
    run = tmp_path / "run"
    train(base, examples, cfg, run)
    # A run killed after step 6 was logged but before it finished: no train_stats.json, a torn last line.
    (run / "train_stats.json").unlink()
    with open(run / LOG_FILE, "a") as fh:
        fh.write('{"step": 7, "lo')
    resumed = train(base, examples, cfg, run, resume=True)
    assert resumed["resumed_from_step"] == 4
    rows = read_log(run)
    assert [r["step"] for r in rows] == list(range(1, 7))  # none missing, none twice
    assert steps_and_losses(rows) == steps_and_losses(read_log(tmp_path / "full"))
    assert rows == resumed["loss_curve"]


@pytest.mark.slow
def test_a_killed_run_keeps_its_log_and_resumes_it(base, tmp_path):
    """kill -9 once the first checkpoint lands: the rows logged so far are on disk, whole; --resume continues
    the log with no step twice or missing, the uninterrupted run's steps and losses."""
    examples = write_examples(tmp_path / "examples.jsonl", make_examples(40))
    sets = ["batch_size=2", "micro_batch_size=2", "save_every=3", "mixed_precision=no", "log_every=1", "lr=3e-3"]
    cmd = [sys.executable, "-m", "upft_bench.cli", "train", "--model", str(base), "--examples", str(examples)]
    cmd += [x for s in sets for x in ("--set", s)]
    env = os.environ | {"HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    full = subprocess.run(cmd + ["--output", str(tmp_path / "full")], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)
    assert full.returncode == 0, full.stderr[-3000:]

    run = tmp_path / "run"
    proc = subprocess.Popen(cmd + ["--output", str(run)], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while proc.poll() is None and time.time() < deadline:
        if (run / "checkpoints").is_dir() and any(p.name.startswith("step-") for p in (run / "checkpoints").iterdir()):
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.005)
    assert proc.wait(timeout=60) == -signal.SIGKILL, "the run finished or died before it could be killed"
    kept = [json.loads(line) for line in (run / LOG_FILE).read_text().split("\n")[:-1]]  # whole lines only
    assert [r["step"] for r in kept] == list(range(1, len(kept) + 1)) and len(kept) >= 3

    resumed = subprocess.run(cmd + ["--output", str(run), "--resume"], cwd=REPO, env=env, capture_output=True,
                             text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    rows = read_log(run)
    assert [r["step"] for r in rows] == list(range(1, 21))
    assert steps_and_losses(rows) == steps_and_losses(read_log(tmp_path / "full"))
    assert rows == json.loads((run / "train_stats.json").read_text())["loss_curve"]


# ------------------------------------------------------------------ train.report_to


def test_trackers_are_the_ones_accelerate_supports():
    from accelerate.utils import LoggerType

    assert set(TRACKERS) == {str(t) for t in LoggerType}


def test_tensorboard_events_hold_the_loss(base, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    stats = train(base, make_examples(16), fp32(batch_size=4, log_every=2, report_to="tensorboard"), tmp_path / "run")
    logdir = tmp_path / "run" / "runs" / "upft-bench"
    assert list(logdir.glob("events.out.tfevents.*")), sorted(p.name for p in logdir.rglob("*"))
    events = EventAccumulator(str(logdir))
    events.Reload()
    assert {"loss", "lr", "grad_norm", "tokens_per_second"} <= set(events.Tags()["scalars"])
    loss = events.Scalars("loss")
    assert [e.step for e in loss] == [p["step"] for p in stats["loss_curve"]] == [1, 2, 4]
    assert [e.value for e in loss] == pytest.approx([p["loss"] for p in stats["loss_curve"]], rel=1e-6)
    # A fresh run in the same folder starts the tracker's files afresh (no stale curve beside the new one).
    train(base, make_examples(8), fp32(batch_size=4, report_to="tensorboard"), tmp_path / "run")
    events = EventAccumulator(str(logdir))
    events.Reload()
    assert [e.step for e in events.Scalars("loss")] == [1, 2]


def test_unknown_or_missing_tracker_is_a_one_line_error(base, tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="report_to must be 'none' or one of tensorboard, wandb"):
        TrainConfig(report_to="tensorbored")
    examples = write_examples(tmp_path / "examples.jsonl", make_examples(4))
    args = ["--model", str(base), "--examples", str(examples), "--output", str(tmp_path / "run")]
    result = CliRunner().invoke(main, ["train", *args, "--set", "report_to=tensorbored"])
    assert result.exit_code != 0 and "report_to must be 'none' or one of" in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert "report_to" in CliRunner().invoke(train_cli, ["--help"]).output

    # Installed or not, as accelerate sees it: a tracker it cannot find names its package, before anything runs.
    import accelerate.tracking

    monkeypatch.setattr(accelerate.tracking, "get_available_trackers", lambda: [])
    with pytest.raises(InputError) as err:
        train(base, make_examples(4), fp32(report_to="tensorboard"), tmp_path / "run")
    assert str(err.value) == "train.report_to tensorboard needs tensorboard: pip install 'upft-bench[tracking]'"
    result = CliRunner().invoke(main, ["train", *args, "--set", "report_to=wandb"])
    assert result.exit_code != 0 and "train.report_to wandb needs wandb: pip install wandb" in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert not (tmp_path / "run").exists()


def test_compare_checks_the_tracker_before_it_starts(monkeypatch):
    import accelerate.tracking

    from upft_bench.experiment import load_experiment
    from upft_bench.preflight import PreflightError, check

    monkeypatch.setattr(accelerate.tracking, "get_available_trackers", lambda: [])
    with pytest.raises(PreflightError, match=r"^train.report_to mlflow needs mlflow: pip install mlflow$"):
        check(load_experiment(None, ["train.report_to=mlflow"]))
    check(load_experiment(None, ["train.report_to=mlflow", "methods=[base]"]))  # nothing trains: no tracker


# ------------------------------------------------------------------ loss.png


def _row(curve):
    return {"tasks": {}, "loss_curve": curve}


def test_loss_figure_only_when_a_method_trained(tmp_path, monkeypatch):
    import upft_bench.report as report

    monkeypatch.setattr(report, "plot", lambda metrics_list, path: None)  # the verdict figure is tested elsewhere
    monkeypatch.setattr(report, "render_tables", lambda metrics_list, **kw: f"tables\n{kw.get('loss_figure')}")
    trained = {"name": "x", "tasks": [], "methods": {"base": _row([]), "sft": _row([[1, 5.0], [10, 3.5], [20, 2.0]]),
                                                    "upft": _row([[1, 5.1], [4, 4.0]])}}
    render_report([trained], tmp_path)
    assert (tmp_path / "loss.png").stat().st_size > 5_000
    untrained = {"name": "x", "tasks": [], "methods": {"base": _row([])}}
    render_report([untrained], tmp_path)
    assert not (tmp_path / "loss.png").exists()  # no figure, and none left from an earlier render


@pytest.mark.slow
def test_compare_draws_the_loss_of_each_trained_method(tmp_path, monkeypatch):
    monkeypatch.setenv("UPFT_BENCH_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "smoke"
    result = CliRunner().invoke(main, ["compare", str(baselines_dir() / "smoke.yaml"), "--methods", "base,sft,upft",
                                       "--output", str(out)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["methods"]["base"]["loss_curve"] == []
    for name in ("sft", "upft"):
        stats = json.loads((out / "methods" / name / "train" / "train_stats.json").read_text())
        curve = metrics["methods"][name]["loss_curve"]
        assert [step for step, _ in curve] == [p["step"] for p in stats["loss_curve"]]
        assert [loss for _, loss in curve] == pytest.approx([p["loss"] for p in stats["loss_curve"]], rel=1e-5)
        assert read_log(out / "methods" / name / "train") == stats["loss_curve"]
    text = (out / "compare.md").read_text()
    assert text.count("Training loss per method: [loss.png](loss.png)") == 1
    assert (out / "loss.png").stat().st_size > 5_000
    # `upft-bench report` draws it again from metrics.json alone.
    (out / "loss.png").unlink()
    again = CliRunner().invoke(main, ["report", str(out)])
    assert again.exit_code == 0, again.output
    assert (out / "loss.png").exists() and "[loss.png](loss.png)" in again.output
