"""The comparison as a recipe: sample, build, train and evaluate every method from one base model, then report.

    from upft_bench.compare import Comparison, run_compare
    metrics = run_compare(load_experiment(), Path("results/default"))      # every seed of the experiment
    metrics = Comparison(cfg, Path("results/try1")).run()                  # one seed, read top to bottom

The pipeline, in its phases (docs/METHODS.md says what each method samples and trains on):
  1. base model: the configured checkpoint, or the tiny offline model built and cached by `upft_bench.pretrain`;
  2. per method (upft_bench.methods.METHODS, `base` included), per setting of its sweep (one without a sweep):
     sample   - the method's requests from the base model, one pool file per distinct request set (RFT and
                UPFT-with-label-filter share one), cached and resumable (upft_bench.sampling);
     train    - the method's examples, then a fresh copy of the base model tuned by the one training core
                (nothing for `base`, or when no sample passed the method's filter), in this process or under
                `accelerate launch` (upft_bench.launch);
     validate - with a sweep: each setting's model on held-out validation questions (upft_bench.selection);
     evaluate - the project's lm-eval tasks on the chosen model (upft_bench.evaluation);
  3. report: metrics.json (upft_bench.results), compare.md and compare.png (upft_bench.report).
Every phase writes its outputs atomically and then a small `.done` marker, so `--resume` redoes nothing that
finished and never trusts a half-written file.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import NamedTuple

from upft_bench import data, evaluation, sampling, selection
from upft_bench import train as training
from upft_bench.analysis import run_analysis
from upft_bench.atomic import file_sha256, write_json, write_text
from upft_bench.compute import forward_flops, model_shape, sampling_flops, training_flops
from upft_bench.config import dump_yaml, to_dict
from upft_bench.console import say
from upft_bench.environment import describe
from upft_bench.examples import write_examples
from upft_bench.experiment import ExperimentConfig, runs
from upft_bench.gguf import resolve_model
from upft_bench.launch import run_launched
from upft_bench.methods import METHODS, Method
from upft_bench.models import load_tokenizer
from upft_bench.preflight import check_tasks, overlap
from upft_bench.pretrain import build_base_model
from upft_bench.report import render_report
from upft_bench.resources import measure
from upft_bench.results import (
    MethodResult,
    SampleCost,
    TrainSummary,
    best_of_row,
    build_experiment_metrics,
    build_metrics,
    plus_training,
    with_verifier,
)
from upft_bench.runfolder import Phases, check_same_config, config_differences, open_run_folder  # noqa: F401

__all__ = ["Comparison", "Phases", "run_compare"]


class Trained(NamedTuple):
    """A training phase's result: its summary (what metrics.json records) and the model it left, explicitly:
    the setting's own `train/model`, or the base model when there was nothing to train."""

    summary: TrainSummary
    model: str


class Trial(NamedTuple):
    """One setting of a method: its samples' cost, its training, the model it gave and that model's validation,
    and the verifier trained beside it (V-STaR; None for other methods)."""

    setting: dict
    sampling: SampleCost
    training: TrainSummary
    model: str
    score: dict | None
    verifier: str | None = None


# ---------------------------------------------------------------------------------------------- the experiment
def run_compare(cfg: ExperimentConfig, out: Path, resume: bool = False) -> dict:
    """Run every configured method end to end, for every seed; returns the metrics written to `out/metrics.json`.

    One seed: the run lives in `out` itself. Several seeds (or base seeds): one single-seed run per sub-folder
    (upft_bench.experiment.runs), each resumable on its own, then one metrics.json holding every run and the
    paired statistics over all of them. An evaluation of a model every run shares (the base model) is done once.
    """
    out = Path(out)
    plan = runs(cfg)
    if plan == [(None, cfg)]:
        return Comparison(cfg, out, resume).run()
    phases = open_run_folder(cfg, out, resume)
    with phases:  # the folder is this run's until it ends (upft_bench.runfolder)
        return _run_seeds(cfg, out, resume, plan, phases)


def _run_seeds(cfg: ExperimentConfig, out: Path, resume: bool, plan: list, phases: Phases) -> dict:
    """The seeds' runs, each in its sub-folder of `out`, then the experiment's metrics over all of them."""
    shared: dict[str, dict] = {}  # evaluations of one model (e.g. the base model) serve every run
    results = []
    for tag, run_cfg in plan:
        if phases.done(f"run-{tag}") is not None:
            metrics = json.loads((out / tag / "metrics.json").read_text())
        else:
            say(f"[run] {tag}")
            metrics = Comparison(run_cfg, out / tag, resume, shared).run(report=False)
            phases.mark(f"run-{tag}", {"seconds": metrics["total_seconds"]})
        _remember_evals(metrics, out / tag, shared)
        results.append(metrics)
    metrics = build_experiment_metrics(to_dict(cfg), results, phases.elapsed())
    metrics["environment"] = describe()
    _report(metrics, out)
    return metrics


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


def _report(metrics: dict, out: Path) -> None:
    """Phase 3: metrics.json, then compare.md and compare.png rendered from it."""
    write_json(out / "metrics.json", metrics)
    render_report([metrics], out)


# ---------------------------------------------------------------------------------------------- one seed
class Comparison:
    """One seed's comparison, read top to bottom in `run`. It holds what every phase shares: the resolved config,
    the output folder and its phase markers, the base model, its tokenizer and the question sets; a phase takes
    only what it acts on (a method, a setting) and returns what it made."""

    def __init__(self, cfg: ExperimentConfig, out: Path, resume: bool = False, shared_evals: dict | None = None):
        self.cfg = cfg
        self.out = Path(out)
        self.phases = open_run_folder(cfg, self.out, resume)
        self.shared_evals = {} if shared_evals is None else shared_evals  # model path -> an evaluation to reuse
        self.scores: dict[str, dict] = {}  # model path -> its validation score (the base model serves several)
        self.trained: dict[tuple, Trained] = {}  # (examples file hash, train settings) -> the training that made them
        self.base = self.tokenizer = None
        self.questions: list = []
        self.validation: list = []

    def run(self, report: bool = True) -> dict:
        """Every method's phases; returns (and writes) this run's metrics.json, with compare.md/png if `report`."""
        with self.phases:  # the folder is this run's until it ends (upft_bench.runfolder)
            return self._run(report)

    def _run(self, report: bool) -> dict:
        cfg = self.cfg
        self.base = self.base_model()
        self.tokenizer = load_tokenizer(self.base)
        analysis = self.analysis() if cfg.analysis else None
        self.questions = data.load_questions(cfg.data.train, cfg.data.train_split, data_dir=cfg.data.resolved_dir(),
                                             limit=cfg.data.train_limit, fields=cfg.data.fields)
        source = cfg.data.train if data.is_own(cfg.data.train) else f"{cfg.data.train}/{cfg.data.train_split}"
        say(f"[questions] {len(self.questions)} from {source}")
        self.validation = selection.validation_questions(cfg)
        if self.validation:
            say(f"[questions] {len(self.validation)} validation questions held out after them (selection only)")
        rows = {name: row for method in cfg.methods for name, row in self.method_rows(METHODS[method]).items()}
        metrics = build_metrics(to_dict(cfg), self.base, rows, _leaf_tasks(cfg.eval.tasks), self.phases.elapsed())
        metrics["environment"] = describe()
        if cfg.data.allow_overlap:
            metrics["overlap"] = _overlap(cfg, self.questions + self.validation)
        if analysis:
            metrics["analysis"] = analysis
        if report:
            _report(metrics, self.out)
        else:
            write_json(self.out / "metrics.json", metrics)
        return metrics

    def method_rows(self, method: Method) -> dict[str, MethodResult]:
        """A method's row: every setting tried (one without a sweep), the best on validation, its evaluation; a
        method with a verifier (V-STaR) adds the row of its best-of-k decoding (`best_of_row`)."""
        cfg = self.cfg
        trials = [self.trial(method, setting) for setting in (selection.grid(cfg.sweep) if method.trains else [{}])]
        chosen = selection.choose([(t.setting, t.score) for t in trials]) if len(trials) > 1 else 0
        if len(trials) > 1:
            say(f"[{method.name}] chosen on validation: {selection.setting_tag(trials[chosen].setting)}")
        best = trials[chosen]
        evaluations = {method.name: self.evaluate(method.name, best.model)}
        if method.pairs is not None:
            evaluations[best_of_row(method.name, cfg.eval.best_of)] = self.evaluate(
                method.name, best.model, best_of=self.best_of_settings(best.verifier))
        return {name: MethodResult.of(method, best.sampling, best.training, result,
                                      setting={**cfg.per_method.get(method.name, {}), **best.setting},
                                      validation=[{"setting": t.setting, **t.score} for t in trials if t.score],
                                      selection_flops=_selection_flops(trials, chosen))
                for name, result in evaluations.items()}

    def best_of_settings(self, verifier: str) -> dict:
        """Best-of-k decoding under `verifier`, its DPO reference the base model it was trained from; candidates
        sampled at the sampling temperature."""
        return {"k": self.cfg.eval.best_of, "verifier": verifier, "reference": self.base,
                "temperature": self.cfg.sampling.temperature}

    # -- phase 1: the base model (and its prefix analysis) --------------------------------------------------------
    def base_model(self) -> str:
        """The base model's path: a configured checkpoint or Hub id (a GGUF file converted once), or the tiny
        model built here."""
        info = self.phases.done("base_model")
        if info is None:
            t0 = time.time()
            model = self.cfg.model
            if model.path:
                base = resolve_model(model.path, model.gguf_file, announce=say)
            else:
                base = str(build_base_model(self.cfg.pretrain))
            info = self.phases.mark("base_model", {"path": base, "seconds": round(time.time() - t0, 2)})
            say(f"[base model] {base} ({info['seconds']:.1f} s)")
        return info["path"]

    def analysis(self) -> dict:
        """The prefix analyses on the base model (upft_bench.analysis), into `out`/analysis."""
        info = self.phases.done("analysis")
        if info is None:
            results = run_analysis(self.cfg, self.out / "analysis", model=self.base)
            info = self.phases.mark("analysis", {"path": "analysis/analysis.md", "reading": results["reading"]})
        return info

    # -- phase 2: one setting of one method ------------------------------------------------------------------------
    def trial(self, method: Method, setting: dict) -> Trial:
        """Sample, build and train, validate: one setting (the only one without a sweep)."""
        cfg = selection.configured(self.cfg, method.name, setting)
        tag = selection.setting_tag(setting)
        mdir = self.out / "methods" / method.name
        sdir = mdir / "sweep" / tag if self.cfg.sweep else mdir  # without a sweep: methods/<name>/ as always
        samples, cost = self.sample(method, cfg)
        phase = f"train-{method.name}" + (f"@{tag}" if setting else "")
        trained = self.build_and_train(method, samples, cfg, sdir, phase)
        verifier = None
        if method.pairs is not None:
            samples, cost, trained = self.iterate(method, samples, cost, trained, cfg, sdir, phase)
            verifier, verifier_summary = self.train_verifier(method, samples, cfg, sdir, phase)
            trained = Trained(with_verifier(trained.summary, verifier_summary), trained.model)
        summary = trained.summary
        if self.cfg.sweep and summary.model is None:  # a swept setting's model is its own: metrics.json names it
            summary = replace(summary, model=trained.model)
        score = self.validate(method.name, setting, trained.model, cfg, sdir) if self.validation else None
        return Trial(setting, cost, summary, trained.model, score, verifier)

    def iterate(self, method: Method, samples: list, cost: SampleCost, trained: Trained, cfg: ExperimentConfig,
                sdir: Path, phase: str) -> tuple[list, SampleCost, Trained]:
        """V-STaR's later generator iterations (method.vstar_iterations): iteration t samples the method's requests
        from generator t-1 and retrains from the base model on the method's examples of every pool so far (each
        pool built as the method builds one; an example repeated across pools kept once). Returns all samples,
        their cost summed over the pools, and the last generator."""
        pools, total = [samples], trained.summary
        for t in range(2, cfg.method.vstar_iterations + 1):
            more, more_cost = self.sample(method, cfg, model=trained.model, label=f"{phase}-iteration-{t}")
            pools.append(more)
            cost = _added(cost, more_cost)
            built = [e for pool in pools for e in method.build(self.questions, pool, self.tokenizer, cfg.method)]
            unique = list({(e.question_id, tuple(e.response_ids)): e for e in built}.values())
            trained = self.build_and_train(method, [], cfg, sdir / "iterations" / str(t), f"{phase}-iteration-{t}",
                                           examples=unique)
            # The row reports the last generator (its examples, steps, model) and every iteration's training cost.
            total = plus_training(trained.summary, total, model=trained.model)
        return [s for pool in pools for s in pool], cost, Trained(total, trained.model)

    def train_verifier(self, method: Method, samples: list, cfg: ExperimentConfig, sdir: Path, phase: str
                       ) -> tuple[str, TrainSummary]:
        """V-STaR's verifier: the base model trained with DPO (the base model also its frozen reference) on the
        method's preference pairs (`method.pairs`), in `sdir`/verifier. Its model path and training summary (FLOPs:
        the policy on both sequences of each pair, and the reference's one forward over each, docs/METHODS.md).
        No pair (no question with both a verified and a rejected sample): no training, the base model scores, so
        best-of-k keeps the first candidate."""
        vdir, vphase = sdir / "verifier", phase.replace("train-", "verifier-", 1)
        info = self.phases.done(vphase)
        if info is not None:
            summary = TrainSummary(**info)
            return summary.model or str(vdir / "train" / "model"), summary
        pairs = method.pairs(self.questions, samples, self.tokenizer, cfg.method)
        write_examples(vdir / "examples.jsonl", pairs)
        if not pairs:
            say(f"[{method.name}] verifier: no preference pairs (no question has both a verified and a rejected "
                "sample): best-of-k keeps the first candidate")
            self.phases.mark(vphase, asdict(TrainSummary(model=self.base)))
            return self.base, TrainSummary(model=self.base)
        vtrain = replace(cfg.train, objective="dpo", dpo_beta=cfg.method.vstar_beta,
                         lr=cfg.method.vstar_verifier_lr or cfg.train.lr)
        summary = self.fit(replace(cfg, train=vtrain), pairs, vdir)
        self.phases.mark(vphase, asdict(summary))
        shutil.rmtree(vdir / "train" / "checkpoints", ignore_errors=True)
        say(f"[{method.name}] verifier trained on {len(pairs) // 2} preference pairs, {summary.tuned_tokens:,} "
            f"tuned tokens in {summary.train_seconds:.1f} s")
        return str(vdir / "train" / "model"), summary

    def sample(self, method: Method, cfg: ExperimentConfig, model: str | None = None, label: str | None = None
               ) -> tuple[list, SampleCost]:
        """The method's samples, from the base model or `model` (then `label` names the pool's own file). A
        finished pool is reused, an interrupted one resumes."""
        requests = method.plan(self.questions, cfg.method)
        if not requests:
            return [], SampleCost()
        pool = _pool_key(requests) + (f"-{label}" if label else "")
        # What generating the pool used is recorded once, by the method that generated it: a method sharing the
        # pool (the label filter shares RFT's) is charged the same, as it would have to sample it alone.
        used = self.phases.done(f"sample-{pool}")
        recorded_before = used is not None
        with measure() as measured:
            samples = sampling.sample_solutions(model or self.base, requests, cfg.sampling,
                                                self.out / "samples" / f"{pool}.jsonl")
        if used is None:
            shape = model_shape(self.base)
            used = self.phases.mark(f"sample-{pool}", {**measured, "flops": sampling_flops(shape, samples,
                                                                                            self.tokenizer)
                                                       if shape else None})
        summary = sampling.summarise(samples)
        cost = SampleCost(sampled_tokens=int(summary["sampled_tokens"]), samples=int(summary["samples"]),
                          sample_seconds=round(float(summary["seconds"]), 2), sample_pool=pool,
                          sample_flops=used["flops"], sample_cpu_seconds=used["cpu_seconds"],
                          sample_peak_rss_mb=used["peak_rss_mb"])
        if not recorded_before:  # said once per pool: other settings and methods reuse it silently
            say(f"[{method.name}] samples: {cost.samples} ({cost.sampled_tokens:,} tokens, "
                f"{cost.sample_seconds:.1f} s generating; pool {pool})")
        return samples, cost

    def build_and_train(self, method: Method, samples: list, cfg: ExperimentConfig, sdir: Path, phase: str,
                        examples: list | None = None) -> Trained:
        """The method's training examples (`sdir`/examples.jsonl; `examples` when given, else built from
        `samples`) and its fine-tuned model (`sdir`/train/model); the base model, untouched, for a method that
        trains nothing or has no example."""
        if not method.trains:
            return Trained(TrainSummary(model=self.base), self.base)
        info = self.phases.done(phase)
        if info is not None:
            summary = TrainSummary(**info)
            trained = Trained(summary, summary.model or str(sdir / "train" / "model"))
            if summary.train_examples:
                self.trained.setdefault(_training_key(sdir, cfg), trained)
            return trained
        if examples is None:
            examples = method.build(self.questions, samples, self.tokenizer, cfg.method)
        write_examples(sdir / "examples.jsonl", examples)
        earlier = self.trained.get(_training_key(sdir, cfg)) if examples else None
        if earlier is not None:
            # The same examples under the same settings (V-STaR's generator is RFT's): the same model. It is charged
            # in full, as a shared sample pool is, since the method alone would have to train it.
            summary = replace(earlier.summary, model=earlier.model)
            say(f"[{method.name}] the same examples and settings as {earlier.model}: that model, not trained again")
            self.phases.mark(phase, asdict(summary))
            return Trained(summary, earlier.model)
        if examples:
            summary = self.fit(cfg, examples, sdir)
            say(f"[{method.name}] trained on {summary.train_examples} examples, "
                f"{summary.tuned_tokens:,} tuned tokens in {summary.train_seconds:.1f} s")
            model = str(sdir / "train" / "model")
        else:
            # Honest, not an error: e.g. RFT on a weak model finds no verified answer. Nothing to train on means
            # the method's model IS the base model; the table says so (0 examples).
            summary, model = TrainSummary(model=self.base), self.base
            say(f"[{method.name}] no training examples (no sample passed the method's filter): "
                "evaluating the base model as this method's result")
        self.phases.mark(phase, asdict(summary))
        # Checkpoints only serve a resume mid-training; the finished model is in train/model.
        shutil.rmtree(sdir / "train" / "checkpoints", ignore_errors=True)
        if examples:
            self.trained.setdefault(_training_key(sdir, cfg), Trained(summary, model))
        return Trained(summary, model)

    def fit(self, cfg: ExperimentConfig, examples: list, sdir: Path) -> TrainSummary:
        """A fresh copy of the base model trained on `examples` into `sdir`/train (continuing from its checkpoint
        when an interrupted run left one): the summary with what it used and its FLOPs. LoRA counts frozen base
        weights (upft_bench.compute.training_flops); DPO adds the reference's one forward over each sequence."""
        train_dir = sdir / "train"
        resume = (train_dir / "checkpoints").exists()
        if train_dir.exists() and not resume:
            shutil.rmtree(train_dir)
        with measure() as used:
            stats = self.train(cfg, examples, sdir, resume)
        shape = model_shape(self.base)
        trainable = stats.get("trainable_parameters") if stats.get("lora") else None
        flops = (training_flops(shape, training.trained_positions(examples, cfg.train), trainable)
                 + sum(forward_flops(shape, n) for n in training.reference_positions(examples, cfg.train))
                 if shape else None)
        return TrainSummary.from_stats(stats, examples, flops, used)

    def train(self, cfg: ExperimentConfig, examples: list, sdir: Path, resume: bool) -> dict:
        """Train on `examples` in this process, or under `accelerate launch` on `launch.num_processes`
        processes/GPUs: the plain `upft-bench train` on `sdir`/examples.jsonl just written, the same core either
        way, which is what lets users move from one CPU to many GPUs without code changes."""
        train_dir = sdir / "train"
        if cfg.launch.num_processes == 1:
            return training.train(self.base, examples, cfg.train, train_dir, resume=resume)
        train_yaml = write_text(sdir / "train.yaml", dump_yaml(cfg.train))
        run_launched(["train", "--model", self.base, "--examples", str(sdir / "examples.jsonl"),
                      "--config", str(train_yaml), "--output", str(train_dir), *(["--resume"] if resume else [])],
                     cfg.launch.num_processes, cfg.launch.accelerate_args, "training")
        return json.loads((train_dir / "train_stats.json").read_text())

    def validate(self, name: str, setting: dict, model: str, cfg: ExperimentConfig, sdir: Path) -> dict:
        """Greedy validation accuracy of a method's model under one setting (never the test tasks)."""
        phase = f"val-{name}" + (f"@{selection.setting_tag(setting)}" if setting else "")
        info = self.phases.done(phase)
        if info is None:
            info = self.scores.get(model) or selection.validate(model, self.validation, cfg, sdir / "validation.jsonl")
            self.phases.mark(phase, info)
            say(f"[{name}] validation {selection.setting_tag(setting) if setting else ''}: "
                f"{100 * info['accuracy']:.1f}% of {info['n']}")
        self.scores.setdefault(model, info)
        return info

    def evaluate(self, name: str, model: str, best_of: dict | None = None) -> dict:
        """The method's model on the configured lm-eval tasks: per-task results, seconds, FLOPs, resources;
        greedy, or best-of-k under a verifier (`best_of`, into methods/<name>/eval-best-of-k).

        A greedy evaluation of this very model under the same eval settings (another seed's run of the same base
        model) is reused: greedy decoding gives the same outputs, and the marker says where it came from.
        """
        row = best_of_row(name, best_of["k"]) if best_of else name
        folder = f"eval-best-of-{best_of['k']}" if best_of else "eval"
        info = self.phases.done(f"eval-{row}")
        earlier = None if best_of else self.shared_evals.get(model)
        if info is None and earlier is not None:
            info = self.phases.mark(f"eval-{row}", earlier)
            say(f"[{name}] evaluation of {model} reused from {earlier['reused_from']}")
        if info is None:
            t0 = time.time()
            with measure() as used:
                results = self.run_eval(model, self.out / "methods" / name / folder, best_of)
            leaves = [r for r in results.values() if "outcomes" in r]
            flops = None if any(r.get("flops") is None for r in leaves) else sum(r["flops"] for r in leaves)
            info = self.phases.mark(f"eval-{row}", {"tasks": results, "eval_seconds": round(time.time() - t0, 2),
                                                     "eval_flops": flops, "eval_cpu_seconds": used["cpu_seconds"],
                                                     "eval_peak_rss_mb": used["peak_rss_mb"]})
            accs = ", ".join(f"{t} {r['exact_match'] * 100:.1f}%" for t, r in results.items())
            say(f"[{row}] evaluated: {accs} ({info['eval_seconds']:.1f} s)")
        return info

    def run_eval(self, model: str, out: Path, best_of: dict | None = None) -> dict:
        """Per-task rows of `model` on the configured tasks, in this process or, like training, under `accelerate
        launch` on `launch.num_processes` processes, each evaluating a share of the questions."""
        e, data_dir = self.cfg.eval, self.cfg.data.resolved_dir()
        if self.cfg.launch.num_processes == 1:
            return evaluation.evaluate(model, e.tasks, limit=e.limit, batch_size=e.batch_size, data_dir=data_dir,
                                       output_dir=out, system=e.system, max_gen_toks=e.max_gen_toks,
                                       device=e.device, backend=e.backend, fields=self.cfg.data.fields,
                                       best_of=best_of)
        args = ["eval", "--model", model, "--tasks", ",".join(e.tasks), "--batch-size", str(e.batch_size),
                "--output", str(out), "--system-prompt", e.system or "none", "--backend", e.backend]
        for flag, value in (("--limit", e.limit), ("--max-gen-toks", e.max_gen_toks), ("--data-dir", data_dir),
                            ("--device", e.device)):
            if value is not None:
                args += [flag, str(value)]
        for key, column in self.cfg.data.fields.items():
            args += ["--field", f"{key}={column}"]
        if best_of:
            args += ["--best-of", str(best_of["k"]), "--verifier", str(best_of["verifier"]),
                     "--reference", str(best_of["reference"]), "--temperature", str(best_of["temperature"])]
        launch = self.cfg.launch
        run_launched(args, launch.num_processes, launch.accelerate_args, "evaluation")
        return json.loads((out / "summary.json").read_text())["tasks"]


# ---------------------------------------------------------------------------------------------- helpers
def _selection_flops(trials: list[Trial], chosen: int) -> int | None:
    """What choosing cost beyond the chosen setting's own training: the other settings' training and every
    validation pass (None when a count is unknown)."""
    parts = [t.training.train_flops for i, t in enumerate(trials) if i != chosen]
    parts += [t.score.get("flops") for t in trials if t.score is not None]
    return None if None in parts else sum(parts)


def _overlap(cfg: ExperimentConfig, train: list) -> dict:
    """Per test task, its questions that are also training or validation questions (upft_bench.preflight.overlap)."""
    tests: dict[str, list] = {}
    check_tasks(cfg.eval.tasks, cfg.data.resolved_dir(), cfg.eval.limit, cfg.eval.max_gen_toks, fields=cfg.data.fields,
                questions=tests)
    return overlap(train, tests)


def _added(a: SampleCost, b: SampleCost) -> SampleCost:
    """Two pools' costs as one (V-STaR's iterations): counts and seconds summed, FLOPs None if either is unknown,
    peak memory the larger; the first pool names the row's pool."""
    flops = None if None in (a.sample_flops, b.sample_flops) else a.sample_flops + b.sample_flops
    peaks = [m for m in (a.sample_peak_rss_mb, b.sample_peak_rss_mb) if m is not None]
    return SampleCost(sampled_tokens=a.sampled_tokens + b.sampled_tokens, samples=a.samples + b.samples,
                      sample_seconds=round(a.sample_seconds + b.sample_seconds, 2), sample_pool=a.sample_pool,
                      sample_flops=flops, sample_cpu_seconds=a.sample_cpu_seconds + b.sample_cpu_seconds,
                      sample_peak_rss_mb=max(peaks) if peaks else None)


def _training_key(sdir: Path, cfg: ExperimentConfig) -> tuple:
    """What makes a training's model: its examples (the file `sdir`/examples.jsonl, by content) and its settings."""
    return file_sha256(sdir / "examples.jsonl"), json.dumps(to_dict(cfg.train), sort_keys=True)


def _pool_key(requests) -> str:
    """Requests that ask for the same samples share a pool (e.g. rft and upft_label_filter)."""
    h = hashlib.sha256()
    for r in requests:
        h.update(f"{r.question.id}\t{r.n}\t{r.max_new_tokens}\n".encode())
    return h.hexdigest()[:12]


def _leaf_tasks(names: list[str]) -> list[str]:
    """The single tasks behind task/group names, in order (a group's mean is recomputed over these)."""
    manager = evaluation.task_manager()
    return list(dict.fromkeys(t for name in names for t in (
        [evaluation.own_task_name(name)] if data.is_own(name) else evaluation.task_leaves(name, manager))))
