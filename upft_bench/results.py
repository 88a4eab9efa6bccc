"""What a comparison measured: one `MethodResult` per method and the `metrics.json` they are assembled into.

    from upft_bench.results import MethodResult, SampleCost, TrainSummary, build_metrics
    row = MethodResult.of(METHODS["upft"], SampleCost(sampled_tokens=4479, ...), TrainSummary(tuned_tokens=4749, ...),
                          tasks={"upft_synth": {"exact_match": 0.23, ...}}, eval_seconds=7.2)
    metrics = build_metrics(to_dict(cfg), base_model, {"upft": row, ...}, tasks=["upft_synth"], total_seconds=451.2)

Every figure here comes from the run's own files: sample pools (`sampled_tokens`, `samples`), train_stats.json
(`tuned_tokens`, `train_seconds`, ...), lm-eval output (`tasks`). `upft_bench.report` renders metrics.json,
and nothing else, into tables and the plot. Units are in `UNITS` (written into metrics.json too).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from upft_bench.data import is_own
from upft_bench.methods import COST_REFERENCE
from upft_bench.paper import paper_model
from upft_bench.stats import compare_paired

UNITS = {
    "exact_match": "fraction of questions judged correct by upft_bench.grading (0-1)",
    "extracted": "fraction of outputs in which an answer was found (0-1)",
    "mean_output_tokens": "mean generated tokens per evaluated question",
    "sampled_tokens": "generated response tokens over all samples, prompts excluded (tokens)",
    "tuned_tokens": "response tokens carrying loss, one pass over the training set (tokens)",
    "tuned_tokens_all_epochs": "tuned_tokens times epochs (tokens)",
    "sample_seconds": "wall seconds generating the method's sample pool",
    "train_seconds": "wall seconds of the training loop",
    "trainable_parameters": "parameters training updated: all of the model's, or with LoRA the adapters' (count)",
    "loss_curve": "[[optimizer step, training loss], ...]: train_stats.json's loss curve, the loss the mean over "
                  "each log window (per response token, averaged per sequence)",
    "eval_seconds": "wall seconds of lm-eval evaluation",
    "*_flops": "floating-point operations counted from the tokens processed (docs/METHODS.md, upft_bench.compute)",
    "*_cpu_seconds": "process CPU seconds of the phase, child processes included",
    "*_peak_rss_mb": "peak resident memory of the process during the phase (MiB)",
    "*_peak_cuda_mb": "peak CUDA memory allocated during the phase (MiB), on GPUs",
    f"*_vs_{COST_REFERENCE}_pct": f"percent of the {COST_REFERENCE} row's figure",
}


@dataclass
class SampleCost:
    """What a method's sampling cost (all zero for a method that samples nothing)."""

    sampled_tokens: int = 0
    samples: int = 0
    sample_seconds: float = 0.0
    sample_pool: str | None = None  # samples/<pool>.jsonl; methods asking for the same samples share a pool
    sample_flops: int | None = 0  # prompt prefill + generated tokens with a KV cache (None: model shape unknown)
    sample_cpu_seconds: float = 0.0  # process CPU seconds generating the pool (upft_bench.resources)
    sample_peak_rss_mb: float | None = None


@dataclass
class TrainSummary:
    """What a method's training did (all zero, and `model` the base model, when nothing was trained)."""

    train_examples: int = 0
    prefix_examples: int = 0
    tuned_tokens: int = 0
    tuned_tokens_all_epochs: int = 0
    train_seconds: float = 0.0
    train_steps: int = 0
    final_loss: float | None = None
    hardware: dict | str | None = None
    model: str | None = None  # the evaluated model when it is not methods/<name>/train/model (the base model)
    train_flops: int | None = 0  # 6N per input position (prompt included) + attention, every epoch (LoRA: 4N + 6A)
    trainable_parameters: int | None = None  # what the optimizer updated: every weight, or LoRA's adapters (A)
    lora: dict | None = None  # rank, alpha, dropout, targets of LoRA adapters; None: full fine-tuning
    train_cpu_seconds: float = 0.0
    train_peak_rss_mb: float | None = None
    train_peak_cuda_mb: float | None = None
    loss_curve: list = field(default_factory=list)  # [[step, loss], ...] at each logged step; [] if none trained
    # A verifier trained beside the model (V-STaR): its own summary; the fields above then total both trainings
    # (tuned tokens, seconds, FLOPs) except the counts of examples and steps, which stay the generator's.
    verifier: dict | None = None

    @classmethod
    def from_stats(cls, stats: dict, examples, flops: int | None = None, used: dict | None = None) -> "TrainSummary":
        """The summary of a finished `upft_bench.train.train` call (its train_stats.json) on `examples`, with its
        FLOPs and what the phase used (upft_bench.resources.measure)."""
        used = used or {}
        return cls(
            train_flops=flops,
            trainable_parameters=stats.get("trainable_parameters"),
            lora=stats.get("lora"),
            train_cpu_seconds=used.get("cpu_seconds", 0.0),
            train_peak_rss_mb=used.get("peak_rss_mb"),
            train_peak_cuda_mb=used.get("peak_cuda_mb"),
            train_examples=len(examples),
            prefix_examples=sum(1 for e in examples if e.kind == "prefix"),
            tuned_tokens=int(stats["tuned_tokens"]),
            tuned_tokens_all_epochs=int(stats["tuned_tokens_all_epochs"]),
            train_seconds=round(float(stats["train_seconds"]), 2),
            train_steps=int(stats["steps"]),
            final_loss=stats.get("final_loss"),
            hardware=stats.get("hardware"),
            loss_curve=[[p["step"], float(f"{p['loss']:.6g}")] for p in stats.get("loss_curve", [])],
        )


def plus_training(main: TrainSummary, other: TrainSummary, **fields) -> TrainSummary:
    """`main` with `other`'s training cost added: tuned tokens, seconds and FLOPs summed (FLOPs unknown if either
    is), peak memory the larger; everything else `main`'s, then `fields`."""
    def peak(name):
        values = [v for v in (getattr(main, name), getattr(other, name)) if v is not None]
        return max(values) if values else None

    flops = None if None in (main.train_flops, other.train_flops) else main.train_flops + other.train_flops
    return TrainSummary(**{
        **asdict(main),
        "tuned_tokens": main.tuned_tokens + other.tuned_tokens,
        "tuned_tokens_all_epochs": main.tuned_tokens_all_epochs + other.tuned_tokens_all_epochs,
        "train_seconds": round(main.train_seconds + other.train_seconds, 2),
        "train_cpu_seconds": main.train_cpu_seconds + other.train_cpu_seconds,
        "train_flops": flops,
        "train_peak_rss_mb": peak("train_peak_rss_mb"),
        "train_peak_cuda_mb": peak("train_peak_cuda_mb"),
        **fields,
    })


def with_verifier(generator: TrainSummary, verifier: TrainSummary) -> TrainSummary:
    """A generator's training summary with its verifier's (V-STaR): `plus_training`, and the verifier's own
    summary kept under `verifier`."""
    return plus_training(generator, verifier, verifier=asdict(verifier))


def best_of_row(method: str, k: int) -> str:
    """The row of a method's best-of-k decoding under its verifier: `vstar@best-of-8`."""
    return f"{method}@best-of-{k}"


@dataclass
class _Identity:
    method: str  # the id in upft_bench.methods.METHODS
    uses_labels: bool


@dataclass
class MethodResult(TrainSummary, SampleCost, _Identity):
    """One row of the comparison, as written to metrics.json: identity, then SampleCost's and TrainSummary's
    fields, then the evaluation and the figures `build_metrics` derives."""

    # evaluation: task -> lm-eval figures (exact_match, its stderr, extracted, stated, mean_output_tokens, ...)
    tasks: dict = field(default_factory=dict)
    eval_seconds: float = 0.0
    eval_flops: int | None = 0  # greedy generation over every evaluated question (prompt + output), KV cache
    eval_cpu_seconds: float = 0.0
    eval_peak_rss_mb: float | None = None
    eval_reused_from: str | None = None  # another run's evaluation of the same model (its cost is reported here too)
    # selection (upft_bench.selection): the method's settings, and the validation score of every setting tried
    setting: dict = field(default_factory=dict)
    validation: list = field(default_factory=list)
    selection_flops: int | None = 0  # the other settings' training and all validation (not part of total_flops)
    accuracy_mean: float | None = None  # unweighted over tasks, as the paper's "Avg."
    # percent of the COST_REFERENCE row (the names carry it)
    sampled_tokens_vs_rft_pct: float | None = None
    tuned_tokens_vs_rft_pct: float | None = None
    total_flops: int | None = None  # sample + train + eval
    flops_vs_rft_pct: dict = field(default_factory=dict)  # {"sample", "train", "eval", "total"}: % of the reference

    @classmethod
    def of(cls, method, sampling: SampleCost, training: TrainSummary, evaluation: dict, setting: dict | None = None,
           validation: list | None = None, selection_flops: int | None = 0):
        """A row from its phases; `evaluation` is the evaluate phase's record (tasks, seconds, flops, resources)."""
        return cls(method=method.name, uses_labels=method.uses_labels, **asdict(sampling), **asdict(training),
                   tasks=evaluation["tasks"], eval_seconds=evaluation["eval_seconds"],
                   eval_flops=evaluation.get("eval_flops"), eval_cpu_seconds=evaluation.get("eval_cpu_seconds", 0.0),
                   eval_peak_rss_mb=evaluation.get("eval_peak_rss_mb"),
                   eval_reused_from=evaluation.get("reused_from"), setting=setting or {},
                   validation=validation or [], selection_flops=selection_flops)


def build_metrics(config: dict, base_model: str, rows: dict[str, MethodResult], tasks: list[str],
                  total_seconds: float) -> dict:
    """metrics.json: every row with its mean accuracy over `tasks` and its costs relative to COST_REFERENCE.
    `config` is the run's resolved experiment config as data (`upft_bench.config.to_dict`), recorded whole."""
    for row in rows.values():
        row.accuracy_mean = sum(row.tasks[t]["exact_match"] for t in tasks) / len(tasks)
    for row in rows.values():
        parts = (row.sample_flops, row.train_flops, row.eval_flops)
        row.total_flops = None if None in parts else sum(parts)
    reference = rows.get(COST_REFERENCE)
    for row in rows.values():
        for key in ("sampled_tokens", "tuned_tokens"):
            setattr(row, f"{key}_vs_{COST_REFERENCE}_pct", _percent(getattr(row, key), reference, key))
        row.flops_vs_rft_pct = {phase: _percent(getattr(row, f"{phase}_flops"), reference, f"{phase}_flops")
                                for phase in ("sample", "train", "eval", "total")}
    questions = _hoist_question_ids(rows)
    model, data = config["model"], config["data"]
    metrics = {
        "name": config["name"],
        "base_model": base_model,
        "paper_model": model["paper_name"] or paper_model(model["path"]),
        "tasks": tasks,
        "requested_tasks": list(config["eval"]["tasks"]),
        "train_questions": (data["train"] if is_own(data["train"]) else f"{data['train']}/{data['train_split']}")
        + f" (limit {data['train_limit']})",
        "seed": config["seed"],
        "methods": {name: asdict(row) for name, row in rows.items()},
        "questions": questions,
        "total_seconds": round(total_seconds, 2),
        "units": UNITS,
        "config": config,
    }
    metrics["comparisons"] = paired_comparisons([metrics])
    return metrics


def _percent(value, reference, key: str) -> float | None:
    denom = getattr(reference, key) if reference else None
    return round(100.0 * value / denom, 2) if denom and value is not None else None


def build_experiment_metrics(config: dict, runs: list[dict], total_seconds: float) -> dict:
    """metrics.json of a several-seed experiment: every run's metrics, and paired statistics over all runs.
    `config` is the experiment's resolved config as data (`upft_bench.config.to_dict`)."""
    first = runs[0]
    for run in runs:  # a run finished before a change to the statistics gets them afresh
        run["comparisons"] = paired_comparisons([run])
    metrics = {
        "name": config["name"],
        "kind": "experiment",
        "seeds": [r["seed"] for r in runs],
        "base_seeds": [r["config"]["pretrain"]["seed"] for r in runs] if config["base_seeds"] else None,
        "base_model": first["base_model"] if len({r["base_model"] for r in runs}) == 1 else None,
        "paper_model": first["paper_model"],
        "tasks": first["tasks"],
        "comparisons": paired_comparisons(runs),
        "runs": runs,
        "total_seconds": round(total_seconds, 2),
        "units": UNITS,
        "config": config,
    }
    return metrics


def _hoist_question_ids(rows: dict[str, MethodResult]) -> dict[str, list[str]]:
    """Per task, the question ids that every method's `outcomes` string follows (kept once, not per method)."""
    questions: dict[str, list[str]] = {}
    for row in rows.values():
        for task, res in row.tasks.items():
            ids = res.pop("question_ids", None)
            if ids is None:
                continue
            if questions.setdefault(task, ids) != ids:
                raise ValueError(f"{task}: methods were evaluated on different questions ({row.method})")
    return questions


def runs_of(metrics: dict) -> list[dict]:
    """The single-seed runs inside a metrics.json (itself, or an experiment's `runs`)."""
    return list(metrics["runs"]) if "runs" in metrics else [metrics]


def report_settings(runs: list[dict], reference: str | None = None, also_against: list[str] | None = None,
                    margin: float | None = None) -> tuple[str, list[str], float]:
    """(reference, further references, margin in points): the arguments, else the runs' `report` section, else
    rft, [base], 2."""
    settings = runs[0].get("config", {}).get("report", {})
    reference = reference or settings.get("reference", COST_REFERENCE)
    others = settings.get("also_against", ["base"]) if also_against is None else also_against
    return reference, list(others), float(margin if margin is not None else settings.get("margin", 2.0))


def paired_outcomes(runs: list[dict], references: list[str]):
    """Each (reference, task, method) pairing over all `runs`: yields dicts with the names, the 0/1 `outcomes`
    and `reference_outcomes` (runs x questions), and the unit of replication: `units` None (each run, a seed, is
    one) or, when the runs were built on several base models, each run's build, with `unit_name` saying which.

    The runs are seeds of one experiment (same tasks and questions); within a run a method pairs with that run's
    reference. A task whose runs hold no per-question outcomes, or different questions, is skipped.
    """
    methods = [m for m in runs[0]["methods"] if all(m in r["methods"] for r in runs)]
    # Runs on several base builds: the build is the unit of replication (its seeds averaged), since a method's
    # seeds on one build share that build's effect (upft_bench.stats.compare_paired).
    builds = [r.get("base_model") for r in runs]
    units, unit_name = (builds, "base build") if len(set(builds)) > 1 else (None, "seed")
    for ref in dict.fromkeys(references):
        if ref not in methods:
            continue
        for task in runs[0]["tasks"]:
            ids = [r.get("questions", {}).get(task) for r in runs]
            if any(i is None for i in ids) or any(i != ids[0] for i in ids):
                continue  # no per-question outcomes (older files) or different questions: nothing to pair
            ref_outcomes = np.array([_bits(r["methods"][ref]["tasks"][task]) for r in runs])
            for name in methods:
                if name != ref:
                    yield {"method": name, "reference": ref, "task": task, "units": units, "unit_name": unit_name,
                           "outcomes": np.array([_bits(r["methods"][name]["tasks"][task]) for r in runs]),
                           "reference_outcomes": ref_outcomes}


def paired_comparisons(runs: list[dict], reference: str | None = None, also_against: list[str] | None = None,
                       margin: float | None = None, resamples: int | None = None) -> list[dict]:
    """Every method against each reference on each task, paired question by question over all `runs`
    (`paired_outcomes`). Settings default to the experiment's `report` section (`report_settings`).
    Returns one dict per (reference, method, task): upft_bench.stats.compare_paired's figures plus their names.
    """
    reference, others, margin = report_settings(runs, reference, also_against, margin)
    settings = runs[0].get("config", {}).get("report", {})
    resamples = int(resamples if resamples is not None else settings.get("bootstrap_resamples", 10_000))
    out = []
    for pair in paired_outcomes(runs, [reference, *others]):
        stats = compare_paired(pair["outcomes"], pair["reference_outcomes"], margin=margin, units=pair["units"],
                               n_resamples=resamples, unit_name=pair["unit_name"])
        out.append({"method": pair["method"], "reference": pair["reference"], "task": pair["task"], **stats})
    return out


def _bits(task_row: dict) -> list[bool]:
    return [c == "1" for c in task_row["outcomes"]]
