"""`upft-bench compare`: sample, build, train and evaluate every method from one base model, then tabulate.

    upft-bench compare                                    # baselines/default.yaml: tiny offline base, CPU, minutes
    upft-bench compare baselines/smoke.yaml               # seconds; what CI runs
    upft-bench compare baselines/qwen2.5-math-7b-math12k.yaml --data-dir ../shared/data
    upft-bench compare --set train.lr=1e-3 --methods base,rft,upft --output results/try1 [--resume]

The pipeline, in its phases (docs/METHODS.md says what each method samples and trains on):
  1. base model: the configured checkpoint, or the tiny offline model built and cached by `upft_bench.pretrain`;
  2. per method (upft_bench.methods.METHODS, `base` included):
     sample  - the method's requests from the base model, one pool file per distinct request set (RFT and
               UPFT-with-label-filter share one), cached and resumable (upft_bench.sampling);
     train   - the method's examples, then a fresh copy of the base model tuned by the one training core
               (nothing for `base`, or when no sample passed the method's filter);
     evaluate- the project's lm-eval tasks on the method's model (upft_bench.evaluation);
  3. report: metrics.json (upft_bench.results), compare.md and compare.png (upft_bench.report).
Every phase writes its outputs atomically and then a small `.done` marker, so `--resume` redoes nothing that
finished and never trusts a half-written file.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import NamedTuple

import click

from upft_bench import selection
from upft_bench.atomic import write_json, write_text
from upft_bench.config import ConfigError, dump_yaml
from upft_bench.experiment import ExperimentConfig, changed_sections, load_experiment, runs
from upft_bench.methods import METHOD_IDS, METHODS, Method
from upft_bench.resources import measure
from upft_bench.results import MethodResult, SampleCost, TrainSummary, build_experiment_metrics, build_metrics


def _say(msg: str) -> None:
    click.echo(msg, err=True)


class Phases:
    """Done-markers under `out/.done/`; a phase counts as finished only once its marker exists.

    Also keeps the run's wall seconds across sessions (`.done/elapsed.json`, written with every marker), so a
    resumed run's total counts the earlier sessions' finished work too, not only the last session's.
    """

    ELAPSED = "elapsed"

    def __init__(self, out: Path):
        self.dir = out / ".done"
        self.started = time.time()
        earlier = self.done(self.ELAPSED)
        self.before = float(earlier["seconds"]) if earlier else 0.0

    def done(self, name: str) -> dict | None:
        marker = self.dir / f"{name}.json"
        return json.loads(marker.read_text()) if marker.exists() else None

    def mark(self, name: str, info: dict) -> dict:
        write_json(self.dir / f"{name}.json", info)
        write_json(self.dir / f"{self.ELAPSED}.json", {"seconds": round(self.elapsed(), 2)})
        return info

    def elapsed(self) -> float:
        """Wall seconds of this run: earlier sessions (up to their last marker) plus this one so far."""
        return self.before + time.time() - self.started


# ---------------------------------------------------------------------------------------------- the pipeline
def run_compare(cfg: ExperimentConfig, out: Path, resume: bool = False) -> dict:
    """Run every configured method end to end, for every seed; returns the metrics written to `out/metrics.json`.

    One seed: the run lives in `out` itself. Several seeds (or base seeds): one single-seed run per sub-folder
    (upft_bench.experiment.runs), each resumable on its own, then one metrics.json holding every run and the
    paired statistics over all of them.
    """
    out = Path(out)
    plan = runs(cfg)
    if plan == [(None, cfg)]:
        return _run_one(cfg, out, resume, {}, report=True)
    phases = _open_run_folder(cfg, out, resume)
    shared_evals: dict[str, dict] = {}  # evaluations of one model (e.g. the base model) serve every run
    results = []
    for tag, run_cfg in plan:
        finished = phases.done(f"run-{tag}")
        if finished is not None:
            metrics = json.loads((out / tag / "metrics.json").read_text())
        else:
            _say(f"[run] {tag}")
            metrics = _run_one(run_cfg, out / tag, resume, shared_evals, report=False)
            phases.mark(f"run-{tag}", {"seconds": metrics["total_seconds"]})
        _remember_evals(metrics, out / tag, shared_evals)
        results.append(metrics)
    metrics = build_experiment_metrics(cfg, results, phases.elapsed())
    _report(metrics, out)
    return metrics


def _run_one(cfg: ExperimentConfig, out: Path, resume: bool, shared_evals: dict, report: bool) -> dict:
    """One seed: every method's phases into `out`; returns (and writes) that run's metrics.json."""
    from upft_bench.data import load_questions

    phases = _open_run_folder(cfg, out, resume)

    base = _base_model(cfg, phases)
    tokenizer = _load_tokenizer(base)
    analysis = _analysis(cfg, base, out, phases) if cfg.analysis else None
    questions = load_questions(cfg.data.train, cfg.data.train_split, data_dir=cfg.data.resolved_dir(),
                               limit=cfg.data.train_limit)
    _say(f"[questions] {len(questions)} from {cfg.data.train}/{cfg.data.train_split}")

    validation = selection.validation_questions(cfg)
    if validation:
        _say(f"[questions] {len(validation)} validation questions held out after them (selection only)")

    rows: dict[str, MethodResult] = {}
    scores: dict[str, dict] = {}  # model path -> its validation score (the base model's serves several methods)
    for name in cfg.methods:
        method, mdir = METHODS[name], out / "methods" / name
        trials = [_trial(method, setting, questions, validation, tokenizer, cfg, base, mdir, out, phases, scores)
                  for setting in (selection.grid(cfg.sweep) if method.trains else [{}])]
        chosen = selection.choose([(t.setting, t.score) for t in trials]) if len(trials) > 1 else 0
        if len(trials) > 1:
            _say(f"[{name}] chosen on validation: {selection.setting_tag(trials[chosen].setting)}")
        best = trials[chosen]
        evaluation = _evaluate(name, best.model, cfg, mdir, phases, shared_evals.get(best.model))
        rows[name] = MethodResult.of(method, best.sampling, best.training, evaluation,
                                     setting={**cfg.per_method.get(name, {}), **best.setting},
                                     validation=[{"setting": t.setting, **t.score} for t in trials if t.score],
                                     selection_flops=_selection_flops(trials, chosen))

    metrics = build_metrics(cfg, base, rows, _leaf_tasks(cfg.eval.tasks), phases.elapsed())
    if analysis:
        metrics["analysis"] = analysis
    if report:
        _report(metrics, out)
    else:
        write_json(out / "metrics.json", metrics)
    return metrics


class Trial(NamedTuple):
    """One setting of a method: its samples' cost, its training, the model it gave and that model's validation."""

    setting: dict
    sampling: SampleCost
    training: TrainSummary
    model: str
    score: dict | None


def _trial(method: Method, setting: dict, questions, validation, tokenizer, cfg: ExperimentConfig, base: str,
           mdir: Path, out: Path, phases: Phases, scores: dict) -> Trial:
    """Phases 2a-2b for one setting (the only one without a sweep): sample, build and train, validate."""
    mcfg = selection.configured(cfg, method.name, setting)
    tag = selection.setting_tag(setting)
    sdir = mdir / "sweep" / tag if cfg.sweep else mdir  # without a sweep: methods/<name>/ as always
    samples, sampling = _sample(method, questions, mcfg, base, out, tokenizer, phases)
    training = _build_and_train(method, questions, samples, tokenizer, mcfg, base, sdir, phases,
                                phase=f"train-{method.name}" + (f"@{tag}" if setting else ""))
    if training.model is None:  # trained: the model is the setting's own; metrics.json names it when swept
        model = str(sdir / "train" / "model")
        training = replace(training, model=model) if cfg.sweep else training
    else:
        model = training.model
    score = _validate(method.name, setting, model, validation, mcfg, sdir, phases, scores) if validation else None
    return Trial(setting, sampling, training, model, score)


def _remember_evals(metrics: dict, out: Path, shared: dict) -> None:
    """Note which model each method of a finished run evaluated, so a later run reuses an identical evaluation."""
    for name, row in metrics["methods"].items():
        model = row.get("model")
        if model == metrics["base_model"]:  # only models shared between runs (the base model), never a trained one
            # A reused evaluation reports what the evaluation cost where it ran (as a reused sample pool does), so
            # every run's row of the same model shows the same cost; `reused_from` says it was not run again.
            tasks = {t: {**res, **({"question_ids": metrics["questions"][t]} if t in metrics.get("questions", {})
                                   else {})} for t, res in row["tasks"].items()}
            shared.setdefault(model, {"tasks": tasks, "eval_seconds": row.get("eval_seconds", 0.0),
                                      "eval_flops": row.get("eval_flops"),
                                      "eval_cpu_seconds": row.get("eval_cpu_seconds", 0.0),
                                      "eval_peak_rss_mb": row.get("eval_peak_rss_mb"),
                                      "reused_from": str(out / "methods" / name / "eval")})


def _open_run_folder(cfg: ExperimentConfig, out: Path, resume: bool) -> Phases:
    """Claim `out` for this experiment and write its resolved config.yaml.

    A folder with phase markers holds a (possibly interrupted) run: never mix two runs silently. A folder with
    only report files is rewritten when they are this experiment's (or carry no config.yaml), and refused when its
    config.yaml is another experiment's.
    """
    if (out / ".done").exists() and any((out / ".done").iterdir()) and not resume:
        raise click.ClickException(f"{out} already holds results: pass --resume to finish it, or choose --output")
    if not resume and (out / "config.yaml").exists():  # report files only: rewritten if they are this experiment's
        changed = _config_differences(out / "config.yaml", cfg)
        if changed:
            raise click.ClickException(f"{out} holds the report of another experiment (sections "
                                       f"{', '.join(changed)} differ): choose another --output, or remove the folder")
    out.mkdir(parents=True, exist_ok=True)
    if resume and (out / "config.yaml").exists():
        _check_same_config(out / "config.yaml", cfg)
    write_text(out / "config.yaml", f"# upft-bench compare, resolved config\n{dump_yaml(cfg)}")
    return Phases(out)


def _base_model(cfg: ExperimentConfig, phases: Phases) -> str:
    """Phase 1: the base model's path (a configured checkpoint or Hub id, or the tiny model built here)."""
    info = phases.done("base_model")
    if info is None:
        t0 = time.time()
        if cfg.model.path:
            from upft_bench.gguf import resolve_model

            base = resolve_model(cfg.model.path, cfg.model.gguf_file, announce=_say)
        else:
            from upft_bench.pretrain import build_base_model

            base = str(build_base_model(cfg.pretrain))
        info = phases.mark("base_model", {"path": base, "seconds": round(time.time() - t0, 2)})
        _say(f"[base model] {base} ({info['seconds']:.1f} s)")
    return info["path"]


def _analysis(cfg: ExperimentConfig, base: str, out: Path, phases: Phases) -> dict:
    """Phase 1b: the prefix analyses on the base model (upft_bench.analysis), into `out`/analysis."""
    info = phases.done("analysis")
    if info is None:
        from upft_bench.analysis import run_analysis

        results = run_analysis(cfg, out / "analysis", model=base)
        info = phases.mark("analysis", {"path": "analysis/analysis.md", "reading": results["reading"]})
    return info


def _sample(method: Method, questions, cfg: ExperimentConfig, base: str, out: Path, tokenizer,
            phases: Phases) -> tuple[list, SampleCost]:
    """Phase 2a: the method's samples. A finished pool is reused, an interrupted one resumes."""
    from upft_bench.compute import sampling_flops
    from upft_bench.sampling import sample_solutions, summarise

    requests = method.plan(questions, cfg.method)
    if not requests:
        return [], SampleCost()
    pool = _pool_key(requests)
    # What generating the pool used is recorded once, by the method that generated it: a method sharing the pool
    # (the label filter shares RFT's) is charged the same, as it would have to sample it alone.
    used = phases.done(f"sample-{pool}")
    recorded_before = used is not None
    with measure() as measured:
        samples = sample_solutions(base, requests, cfg.sampling, out / "samples" / f"{pool}.jsonl")
    if used is None:
        shape = _shape(base)
        used = phases.mark(f"sample-{pool}", {**measured, "flops": sampling_flops(shape, samples, tokenizer)
                                              if shape else None})
    summary = summarise(samples)
    cost = SampleCost(sampled_tokens=int(summary["sampled_tokens"]), samples=int(summary["samples"]),
                      sample_seconds=round(float(summary["seconds"]), 2), sample_pool=pool,
                      sample_flops=used["flops"], sample_cpu_seconds=used["cpu_seconds"],
                      sample_peak_rss_mb=used["peak_rss_mb"])
    if not recorded_before:  # said once per pool: other settings and methods reuse it silently
        _say(f"[{method.name}] samples: {cost.samples} ({cost.sampled_tokens:,} tokens, "
             f"{cost.sample_seconds:.1f} s generating; pool {pool})")
    return samples, cost


def _build_and_train(method: Method, questions, samples, tokenizer, cfg: ExperimentConfig, base: str, mdir: Path,
                     phases: Phases, phase: str) -> TrainSummary:
    """Phase 2b: the method's training examples (`mdir`/examples.jsonl) and its fine-tuned model (`mdir`/train)."""
    from upft_bench.compute import trained_positions, training_flops
    from upft_bench.examples import write_examples

    if not method.trains:
        return TrainSummary(model=base)
    info = phases.done(phase)
    if info is not None:
        return TrainSummary(**info)
    examples = method.build(questions, samples, tokenizer, cfg.method)
    write_examples(mdir / "examples.jsonl", examples)
    if examples:
        train_dir = mdir / "train"
        resume_train = (train_dir / "checkpoints").exists()
        if train_dir.exists() and not resume_train:
            shutil.rmtree(train_dir)
        with measure() as used:
            stats = _train(cfg, base, examples, mdir, train_dir, resume_train)
        shape = _shape(base)
        flops = training_flops(shape, trained_positions(examples, cfg.train)) if shape else None
        summary = TrainSummary.from_stats(stats, examples, flops, used)
        _say(f"[{method.name}] trained on {summary.train_examples} examples, "
             f"{summary.tuned_tokens:,} tuned tokens in {summary.train_seconds:.1f} s")
    else:
        # Honest, not an error: e.g. RFT on a weak model finds no verified answer. Nothing to train on means
        # the method's model IS the base model; the table says so (0 examples).
        summary = TrainSummary(model=base)
        _say(f"[{method.name}] no training examples (no sample passed the method's filter): "
             "evaluating the base model as this method's result")
    phases.mark(phase, asdict(summary))
    # Checkpoints only serve a resume mid-training; the finished model is in train/model.
    shutil.rmtree(mdir / "train" / "checkpoints", ignore_errors=True)
    return summary


def _selection_flops(trials: list[Trial], chosen: int) -> int | None:
    """What choosing cost beyond the chosen setting's own training: the other settings' training and every
    validation pass (None when a count is unknown)."""
    parts = [t.training.train_flops for i, t in enumerate(trials) if i != chosen]
    parts += [t.score.get("flops") for t in trials if t.score is not None]
    return None if None in parts else sum(parts)


def _validate(name: str, setting: dict, model: str, questions, cfg: ExperimentConfig, sdir: Path, phases: Phases,
              scores: dict) -> dict:
    """Phase 2b': greedy validation accuracy of a method's model under one setting (never the test tasks)."""
    phase = f"val-{name}" + (f"@{selection.setting_tag(setting)}" if setting else "")
    info = phases.done(phase)
    if info is None:
        info = scores.get(model) or selection.validate(model, questions, cfg, sdir / "validation.jsonl")
        phases.mark(phase, info)
        _say(f"[{name}] validation {selection.setting_tag(setting) if setting else ''}: "
             f"{100 * info['accuracy']:.1f}% of {info['n']}")
    scores.setdefault(model, info)
    return info


def _evaluate(name: str, model_path: str, cfg: ExperimentConfig, mdir: Path, phases: Phases,
              earlier: dict | None = None) -> dict:
    """Phase 2c: the method's model on the configured lm-eval tasks: per-task results, seconds, FLOPs, resources.

    `earlier`: an evaluation of this very model under the same eval settings (another seed's run of the same base
    model): greedy decoding gives the same outputs, so it is reused and the marker says where it came from.
    """
    info = phases.done(f"eval-{name}")
    if info is None and earlier is not None:
        info = phases.mark(f"eval-{name}", earlier)
        _say(f"[{name}] evaluation of {model_path} reused from {earlier['reused_from']}")
    if info is None:
        t0 = time.time()
        with measure() as used:
            results = _run_eval(cfg, model_path, mdir / "eval")
        leaves = [r for r in results.values() if "outcomes" in r]
        flops = None if any(r.get("flops") is None for r in leaves) else sum(r["flops"] for r in leaves)
        info = phases.mark(f"eval-{name}", {"tasks": results, "eval_seconds": round(time.time() - t0, 2),
                                            "eval_flops": flops, "eval_cpu_seconds": used["cpu_seconds"],
                                            "eval_peak_rss_mb": used["peak_rss_mb"]})
        accs = ", ".join(f"{t} {r['exact_match'] * 100:.1f}%" for t, r in results.items())
        _say(f"[{name}] evaluated: {accs} ({info['eval_seconds']:.1f} s)")
    return info


def _report(metrics: dict, out: Path) -> None:
    """Phase 3: metrics.json, then compare.md and compare.png rendered from it."""
    from upft_bench.report import render_report

    write_json(out / "metrics.json", metrics)
    render_report([metrics], out)


# ---------------------------------------------------------------------------------------------- helpers
def _config_differences(path: Path, cfg: ExperimentConfig) -> list[str]:
    """The sections in which the config.yaml at `path` differs from `cfg` (the method list may differ)."""
    import yaml

    try:
        return changed_sections(yaml.safe_load(path.read_text()) or {}, cfg)
    except yaml.YAMLError:
        return ["(unreadable config.yaml)"]


def _check_same_config(path: Path, cfg: ExperimentConfig) -> None:
    """--resume must not mix two experiments in one folder; the method list alone may grow or shrink."""
    changed = _config_differences(path, cfg)
    if changed:
        raise click.ClickException(
            f"{path}: --resume with a different config (sections {', '.join(changed)} differ); "
            "resume with the same config, or start a new --output")


# accelerate launch flags that say how processes are spread; without one it starts a single process.
_MODE_FLAGS = ("--multi_gpu", "--use_deepspeed", "--use_fsdp", "--use_megatron_lm", "--tpu", "--config_file")


_LAUNCH_DEFAULTS = (("--num_machines", "1"), ("--mixed_precision", "no"), ("--dynamo_backend", "no"))


def launch_mode(accelerate_args: list[str]) -> list[str]:
    """`accelerate_args` with --multi_gpu added when they name no distributed mode (gloo processes on CPU)."""
    args = list(accelerate_args)
    if not any(a.split("=")[0] in _MODE_FLAGS for a in args):
        args.insert(0, "--multi_gpu")
    return args


def _launch(cfg: ExperimentConfig, args: list[str], what: str) -> None:
    """Run `upft-bench ARGS` under `accelerate launch` on `launch.num_processes` processes (or GPUs), checked to
    really have that many (`--processes`); a failure is one line naming the command."""
    n = cfg.launch.num_processes
    given = launch_mode(cfg.launch.accelerate_args)
    # accelerate warns about each of these it has to default; say them unless the launch flags or a config do.
    quiet = [] if any(a.startswith("--config_file") for a in given) else [
        x for flag, value in _LAUNCH_DEFAULTS if not any(a.split("=")[0] == flag for a in given)
        for x in (flag, value)]
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(n), *given, *quiet,
           "-m", "upft_bench.cli", *args, "--processes", str(n)]
    _say("[launch] " + " ".join(cmd))
    done = subprocess.run(cmd)
    if done.returncode != 0:
        raise click.ClickException(f"{what} under accelerate launch failed (exit {done.returncode}); "
                                   f"command: {' '.join(cmd)}")


def _train(cfg: ExperimentConfig, base: str, examples, mdir: Path, train_dir: Path, resume: bool) -> dict:
    """Train in this process, or under `accelerate launch` on `launch.num_processes` processes/GPUs.

    The launched command is the plain `upft-bench train` on the examples file just written: the same core
    either way, which is what lets users move from one CPU to many GPUs without code changes.
    """
    from upft_bench.train import train

    if cfg.launch.num_processes == 1:
        return train(base, examples, cfg.train, train_dir, resume=resume)
    train_yaml = write_text(mdir / "train.yaml", dump_yaml(cfg.train))
    _launch(cfg, ["train", "--model", base, "--examples", str(mdir / "examples.jsonl"), "--config", str(train_yaml),
                  "--output", str(train_dir), *(["--resume"] if resume else [])], "training")
    return json.loads((train_dir / "train_stats.json").read_text())


def _run_eval(cfg: ExperimentConfig, model_path: str, out: Path) -> dict:
    """Per-task rows of `model_path` on the configured tasks, in this process or, like training, under
    `accelerate launch` on `launch.num_processes` processes, each evaluating a share of the questions."""
    from upft_bench.evaluation import evaluate

    e = cfg.eval
    if cfg.launch.num_processes == 1:
        return evaluate(model_path, e.tasks, limit=e.limit, batch_size=e.batch_size,
                        data_dir=cfg.data.resolved_dir(), output_dir=out, system=e.system,
                        max_gen_toks=e.max_gen_toks, device=e.device, backend=e.backend)
    data_dir = cfg.data.resolved_dir()
    args = ["eval", "--model", model_path, "--tasks", ",".join(e.tasks), "--batch-size", str(e.batch_size),
            "--output", str(out), "--system-prompt", e.system or "none", "--backend", e.backend]
    for flag, value in (("--limit", e.limit), ("--max-gen-toks", e.max_gen_toks), ("--data-dir", data_dir),
                        ("--device", e.device)):
        if value is not None:
            args += [flag, str(value)]
    _launch(cfg, args, "evaluation")
    return json.loads((out / "summary.json").read_text())["tasks"]


def _shape(path: str):
    """The base model's shape for FLOPs (upft_bench.compute), or None for a model whose config it cannot read."""
    from upft_bench.compute import ModelShape

    try:
        if Path(path).is_dir():
            return ModelShape.from_model_dir(path)
        from transformers import AutoConfig

        return ModelShape.from_config(AutoConfig.from_pretrained(path))
    except (OSError, ValueError):
        return None


def _load_tokenizer(path: str):
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(path)
    except OSError as err:
        raise click.ClickException(
            f"cannot load the base model's tokenizer from {path!r}: {err}\n"
            "Without Hub access, point model.path at a local checkpoint (--set model.path=/path/to/model), "
            "or run the offline default (`upft-bench compare` with no config).") from err


def _pool_key(requests) -> str:
    """Requests that ask for the same samples share a pool (e.g. rft and upft_label_filter)."""
    import hashlib

    h = hashlib.sha256()
    for r in requests:
        h.update(f"{r.question.id}\t{r.n}\t{r.max_new_tokens}\n".encode())
    return h.hexdigest()[:12]


def _leaf_tasks(names: list[str]) -> list[str]:
    """The single tasks behind task/group names, in order (a group's mean is recomputed over these)."""
    from upft_bench import task_manager
    from upft_bench.evaluation import task_leaves

    manager = task_manager()
    return list(dict.fromkeys(t for name in names for t in task_leaves(name, manager)))


def _sweep_overrides(sweeps, config, overrides: list[str]) -> list[str]:
    """`--sweep train.lr=1e-4,2e-4` options as config overrides (they replace the YAML's sweep), plus
    data.val_limit=100 when the config holds no validation questions."""
    import yaml

    grid = {}
    for item in sweeps:
        key, sep, values = item.partition("=")
        if not sep or not values.strip():
            raise click.BadParameter(f"{item!r}: expected KEY=V1,V2,... e.g. train.lr=1e-4,2e-4", param_hint="--sweep")
        grid[key.strip()] = [yaml.safe_load(v) for v in values.split(",") if v.strip()]
    extra = [f"sweep={json.dumps(grid)}"]
    try:
        has_validation = load_experiment(config, overrides).data.val_limit > 0
    except ConfigError:
        has_validation = True  # the config's own error is reported when it is loaded with the sweep
    if not has_validation:
        extra.append("data.val_limit=100")
    return extra


# ---------------------------------------------------------------------------------------------- CLI
@click.command("compare")
@click.argument("config", required=False, type=click.Path(dir_okay=False))
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a config field, e.g. --set train.lr=1e-4 --set data.train_limit=200 (repeatable).")
@click.option("--methods", help=f"Comma-separated subset of: {','.join(METHOD_IDS)}.")
@click.option("--data-dir", type=click.Path(file_okay=False),
              help="Local benchmark copies (layout of shared/data) instead of the Hub; default $UPFT_BENCH_DATA_DIR.")
@click.option("--output", type=click.Path(file_okay=False), help="Result folder (default results/<config name>).")
@click.option("--seeds", metavar="S1,S2,...",
              help="Run every method once per seed into one folder (seed-S/ each); paired statistics pool them.")
@click.option("--base-seeds", metavar="B1,B2,...",
              help="Also vary the pretraining seed of the base model built here (offline default): base-B-seed-S/.")
@click.option("--sweep", "sweeps", multiple=True, metavar="KEY=V1,V2",
              help="Train every method once per value (several --sweep: every combination) and keep, per method, the "
                   "setting with the best accuracy on validation questions held out from the training set "
                   "(data.val_limit, default 100 with a sweep), e.g. --sweep train.lr=5e-5,1e-4,2e-4.")
@click.option("--resume", is_flag=True, help="Finish an interrupted comparison in --output; finished phases are kept.")
def compare_cli(config, overrides, methods, data_dir, output, seeds, base_seeds, sweeps, resume):
    """Compare base, SFT, RFT, UPFT and UPFT+label filter from one base model: accuracy, tokens, seconds, and a
    paired verdict for each method against RFT (and the base model).

    With no CONFIG, runs the shipped offline default (baselines/default.yaml): a tiny model built and
    pretrained here on synthetic arithmetic problems, fine-tuned by every method, evaluated on upft_synth.
    Writes results/<name>/ (config.yaml, samples, per-method train_stats.json and lm-eval output,
    metrics.json, compare.md, compare.png) and prints the Markdown tables. The verdict table comes first:
    for each method the accuracy difference to the reference on the same questions with its 95% interval,
    McNemar's exact p, the smallest detectable difference, and equivalent / better / worse / inconclusive
    against the margin `report.margin` (2 points by default).
    """
    overrides = list(overrides)
    if methods:
        overrides.append(f"methods=[{methods}]")
    if seeds:
        overrides.append(f"seeds=[{seeds}]")
    if base_seeds:
        overrides.append(f"base_seeds=[{base_seeds}]")
    if sweeps:
        overrides += _sweep_overrides(sweeps, config, overrides)
    if data_dir:
        overrides.append(f"data.data_dir={data_dir}")
    from upft_bench.preflight import PreflightError, check

    try:
        cfg = load_experiment(config, overrides)
        check(cfg)  # every input, before anything is written: a bad one leaves no folder behind
    except (ConfigError, PreflightError) as err:
        raise click.ClickException(str(err)) from err
    out = Path(output) if output else Path("results") / cfg.name
    metrics = run_compare(cfg, out, resume=resume)
    click.echo((out / "compare.md").read_text())
    _say(f"[done] {out}/compare.md, metrics.json, compare.png ({metrics['total_seconds']:.0f} s in all)")


if __name__ == "__main__":
    sys.exit(compare_cli())
