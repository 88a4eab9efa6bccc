"""Tables and the plot of a comparison, rebuilt from `metrics.json` files alone.

    upft-bench report results/default                       # re-render results/default/compare.{md,png}
    upft-bench report results/reference                     # the README's run, shipped with the repository
    upft-bench report results/a results/b --output results/ab

Every number printed here is read from metrics.json, which `upft-bench compare` wrote from the run's own
train_stats.json, sample pools and lm-eval output. The "reported" table quotes the paper (upft_bench.paper).
"""
from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

from tabulate import tabulate

from upft_bench import paper
from upft_bench.atomic import write_text
from upft_bench.environment import summary
from upft_bench.errors import InputError
from upft_bench.methods import COST_REFERENCE, METHODS
from upft_bench.quiet import pyplot, save_figure
from upft_bench.results import paired_comparisons, runs_of
from upft_bench.stats import accuracy_interval, wilson_interval

REF = COST_REFERENCE
LOSS_FIGURE = "loss.png"  # next to compare.png: each trained method's training loss (`loss_plot`)

def _pct(x) -> str:
    return "" if x is None else f"{100.0 * x:.1f}"


def _acc(task: dict) -> str:
    """Accuracy % with its 95% interval, so differences within noise read as such."""
    ci = accuracy_interval(task)
    return _pct(task["exact_match"]) + (f" ({100 * ci[0]:.1f}-{100 * ci[1]:.1f})" if ci else "")


def _num(x) -> str:
    return "" if x is None else f"{x:,}"


def _secs(x) -> str:
    return "" if x is None else f"{x:.1f}"


def _rel(x) -> str:
    return "" if x is None else f"{x:.1f}%"


def method_table(metrics: dict) -> str:
    """One row per method: accuracy per task and mean, answer rate, length, token costs, seconds, cost vs RFT."""
    tasks = metrics["tasks"]
    headers = ["method"] + [f"{t} acc %" for t in tasks]
    if len(tasks) > 1:
        headers.append("mean acc %")
    with_settings = any(row.get("setting") for row in metrics["methods"].values())
    headers += ["answered %", "stated %", "out tokens"] + (["setting"] if with_settings else []) + [
                "sampled_tokens", "tuned_tokens", "sample FLOPs", "train FLOPs", "eval FLOPs", "sample s", "train s",
                "eval s", f"sampled vs {REF}", f"tuned vs {REF}", f"FLOPs vs {REF}"]
    rows = []
    for name, row in metrics["methods"].items():
        res = row["tasks"]
        cells = [name] + [_acc(res[t]) if t in res else "" for t in tasks]
        if len(tasks) > 1:
            cells.append(_pct(row.get("accuracy_mean")))
        leaf = [res[t] for t in tasks if t in res]
        answered = [r["extracted"] for r in leaf if r.get("extracted") is not None]
        stated = [r["stated"] for r in leaf if r.get("stated") is not None]
        lengths = [r["mean_output_tokens"] for r in leaf if r.get("mean_output_tokens") is not None]
        cells += [
            _pct(sum(answered) / len(answered)) if answered else "",
            _pct(sum(stated) / len(stated)) if stated else "",
            f"{sum(lengths) / len(lengths):.1f}" if lengths else "",
            *([_setting(row.get("setting"))] if with_settings else []),
            _num(row.get("sampled_tokens")),
            _num(row.get("tuned_tokens")),
            _flops(row.get("sample_flops")),
            _flops(row.get("train_flops")),
            _flops(row.get("eval_flops")),
            _secs(row.get("sample_seconds")),
            _secs(row.get("train_seconds")),
            _secs(row.get("eval_seconds")),
            _rel(row.get(f"sampled_tokens_vs_{REF}_pct")),
            _rel(row.get(f"tuned_tokens_vs_{REF}_pct")),
            _rel((row.get("flops_vs_rft_pct") or {}).get("total")),
        ]
        rows.append(cells)
    return tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)


def _flops(x) -> str:
    return "" if x is None else f"{x:.2e}"


def _mib(x) -> str:
    return "" if x is None else f"{x:,.0f}"


def resources_table(metrics: dict) -> str:
    """What each phase used: wall and process CPU seconds, peak memory; FLOPs per phase relative to RFT; with a
    column of the parameters each method trained when any method trained LoRA adapters."""
    lora = any(row.get("lora") for row in metrics["methods"].values())
    headers = ["method", "sample s (CPU s)", "train s (CPU s)", "eval s (CPU s)", "peak MiB sample/train/eval",
               f"sample/train/eval FLOPs vs {REF}", "selection FLOPs"] + (["trainable params"] if lora else [])
    rows = []
    for name, row in metrics["methods"].items():
        rel = row.get("flops_vs_rft_pct") or {}
        rows.append([name] + [f"{_secs(row.get(f'{p}_seconds'))} ({_secs(row.get(f'{p}_cpu_seconds'))})"
                              for p in ("sample", "train", "eval")]
                    + ["/".join(_mib(row.get(f"{p}_peak_rss_mb")) or "-" for p in ("sample", "train", "eval")),
                       "/".join(_rel(rel.get(p)) or "-" for p in ("sample", "train", "eval")),
                       _flops(row.get("selection_flops")) if row.get("validation") else ""]
                    + ([_num(row.get("trainable_parameters")) + (f" (LoRA r={row['lora']['rank']})"
                                                                 if row.get("lora") else "")] if lora else []))
    return tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)


def _setting(setting: dict | None) -> str:
    return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in (setting or {}).items())


def validation_table(metrics: dict) -> str:
    """Every setting each method was trained with, its validation accuracy and what its outputs look like
    (`selection.output_profile`); the chosen setting marked."""
    rows = []
    for name, row in metrics["methods"].items():
        chosen = row.get("setting") or {}
        for trial in row.get("validation") or []:
            low, high = _wilson(trial["correct"], trial["n"])
            mark = "chosen" if len(row["validation"]) > 1 and all(
                chosen.get(k) == v for k, v in trial["setting"].items()) else ""
            profile = trial.get("profile") or {}
            rows.append([name, _setting(trial["setting"]) or "(as configured)",
                         f"{100 * trial['accuracy']:.1f} ({100 * low:.1f}-{100 * high:.1f})", trial["n"],
                         _pct(profile.get("stated")), _tokens(profile.get("mean_tokens")),
                         _pct(profile.get("stopped_short")), _pct(profile.get("first_step")), mark])
    return tabulate(rows, headers=["method", "setting", "validation acc %", "questions", "stated answer %",
                                   "mean tokens", "stopped short %", "first step right %", ""],
                    tablefmt="github", disable_numparse=True)


def _tokens(value) -> str:
    return "" if value is None else f"{value:.0f}"


def _wilson(correct: int, n: int) -> tuple[float, float]:
    return wilson_interval(correct, n)


def reported_table(model: str) -> str:
    """The paper's own numbers for `model` (upft_bench.paper), clearly labelled as reported, not measured."""
    rows = [[f"{method} ({tuned_on})" if tuned_on else method, *(f"{v:.1f}" for v in accs)]
            for method, tuned_on, accs in paper.ACCURACY[model]]
    table = tabulate(rows, headers=["reported row", "gsm8k", "math500", "aime24", "gpqa (open)", "avg"],
                     tablefmt="github", disable_numparse=True)
    cost = paper.COST_MILLIONS.get(model, {})
    if cost:
        crow = [[m, f"{s:.1f}M", f"{t:.1f}M"] for m, (s, t) in cost.items()]
        table += "\n\n" + tabulate(crow, headers=["reported cost (PRM-12K)", "sampled tokens", "tuned tokens"],
                                   tablefmt="github", disable_numparse=True)
    return table


def _binomial_se(accuracy_pct: float, n: int) -> float:
    """Standard error (points) of an accuracy measured on n questions: 100·sqrt(p(1-p)/n)."""
    p = accuracy_pct / 100
    return 100 * math.sqrt(p * (1 - p) / n)


def paper_uncertainty_table(model: str) -> str:
    """The paper's reported gains for `model` in units of their own noise: per benchmark, each row's gain over the
    base model and over RFT in points, in questions, and in binomial standard errors of the reference's accuracy
    at the benchmark's size; differences of 2 SE or more either way in bold, with a count underneath."""
    rows = paper.ACCURACY[model]
    refs = {"base": next(accs for m, _, accs in rows if m == "base"),
            "rft": next((accs for m, _, accs in rows if m == "rft"), None)}
    headers = ["reported row"] + [f"{b} vs {ref}" for ref in refs for b in paper.BENCHMARKS if refs[ref]]
    out, counts = [], {ref: [0, 0] for ref in refs}
    for method, tuned_on, accs in rows:
        if method == "base":
            continue
        cells = [f"{method} ({tuned_on})" if tuned_on else method]
        for ref, ref_accs in refs.items():
            if ref_accs is None:
                continue
            for i, bench in enumerate(paper.BENCHMARKS):
                if method == ref:
                    cells.append("")
                    continue
                n = paper.BENCHMARK_SIZES[bench]
                gain, se = accs[i] - ref_accs[i], _binomial_se(ref_accs[i], n)
                z = gain / se if se else 0.0
                cell = f"{gain:+.1f} ({round(gain * n / 100):+d} q, {z:+.1f} SE)"
                counts[ref][1] += 1
                if abs(z) >= 2:
                    counts[ref][0] += 1
                    cell = f"**{cell}**"
                cells.append(cell)
        out.append(cells)
    sizes = ", ".join(f"{b} {paper.BENCHMARK_SIZES[b]:,}" for b in paper.BENCHMARKS)
    summary = "; ".join(f"{k} of {n} differences from {ref} reach 2 SE" for ref, (k, n) in counts.items() if n)
    return (tabulate(out, headers=headers, tablefmt="github", disable_numparse=True) + "\n\n"
            f"Gain in points, in questions (q) and in binomial standard errors of the reference's accuracy on the "
            f"benchmark's test set ({sizes} questions), each from one reported run; bold: 2 SE or more either way; "
            f"{summary}. "
            "The paper gives no per-question outcomes, so the paired standard error, smaller when two models agree "
            "on most questions, cannot be computed; two independent evaluations would have √2 times this SE, and "
            "seeds, which the paper does not vary, add their own spread.\n")


def verdict_table(comparisons: list[dict], reference: str) -> str:
    """One row per (method, task) against `reference`: accuracy, paired difference with its 95% interval, the
    seeds' share of its variance, McNemar p per seed, the sign-flip p with questions as units, MDE, the chance that
    this design shows equivalence (if the true difference were 0), verdict."""
    rows = [c for c in comparisons if c["reference"] == reference]
    unit = rows[0].get("unit", "seed") if rows else "seed"
    headers = ["method", "task", "acc %", f"vs {reference} (points, 95% CI)", f"{unit} share",
               "McNemar p (each seed)", "sign-flip p (questions)", "MDE", "TOST power", "verdict"]
    out = []
    for c in rows:
        share = c.get("unit_share")
        power = c.get("equivalence_power")
        out.append([c["method"], c["task"], f"{c['accuracy']:.1f}",
                    interval_words(c),
                    "" if share is None or c.get("units", 1) < 2 else f"{100 * share:.0f}%",
                    ", ".join(f"{t['p']:.2g}" for t in c["mcnemar"]), f"{c['signflip_p']:.2g}",
                    f"{c['mde']:.1f}", "" if power is None else f"{100 * power:.0f}%", verdict_words(c)])
    return tabulate(out, headers=headers, tablefmt="github", disable_numparse=True)


# Below this equivalence power a run's design is said to be unable to show equivalence.
UNREACHABLE_POWER = 0.05


def verdict_words(c: dict) -> str:
    """The verdict as the table prints it; an inconclusive one says when this design could not have shown
    equivalence at all (TOST power under UNREACHABLE_POWER if the true difference were 0)."""
    if c["verdict"] == "equivalent":
        return f"equivalent (within ±{c['margin']:g})"
    if c["verdict"] == "inconclusive" and c.get("equivalence_power") is not None \
            and c["equivalence_power"] < UNREACHABLE_POWER:
        return "inconclusive; equivalence out of reach"
    return c["verdict"]


def points(x: float) -> str:
    """Points with a sign and one decimal; two decimals for a value that one decimal would print as ±0.0, so an
    interval end just below 0 does not read as 0 (e.g. -0.01)."""
    return f"{x:+.2f}" if x and round(x, 1) == 0 else f"{x:+.1f}"


def interval_words(c: dict) -> str:
    """`+1.3 (-0.7 to +3.3)`: the difference and its 95% interval, in points."""
    return f"{points(c['difference'])} ({points(c['ci95'][0])} to {points(c['ci95'][1])})"


def _cell(c: dict) -> str:
    return f"{c['method']} ({interval_words(c).replace(' (', ', ').rstrip(')')})"


def _names(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _design_words(c: dict) -> str:
    design = c.get("equivalence_design")
    unit = c.get("unit", "seed")
    if design:
        return (f"{c['method']} {design['questions']:,} questions x {design['units']} {unit}s")
    return f"{c['method']} none up to 20 {unit}s (at most {100 * (c.get('equivalence_power_limit') or 0):.0f}%)"


def verdict_prose(comparisons: list[dict], reference: str) -> str:
    """Sentences under a verdict table, written from the verdicts alone. An inconclusive verdict is never read as
    "no difference": it says the interval holds both a difference and none."""
    rows = [c for c in comparisons if c["reference"] == reference]
    if not rows:
        return ""
    margin = rows[0]["margin"]
    unit = rows[0].get("unit", "seed")
    by = {v: [c for c in rows if c["verdict"] == v] for v in ("better", "worse", "equivalent", "inconclusive")}
    lines = []
    if by["better"]:
        lines.append(f"- Better than {reference}: {', '.join(_cell(c) for c in by['better'])}.")
    if by["worse"]:
        lines.append(f"- Worse than {reference}: {', '.join(_cell(c) for c in by['worse'])}.")
    if by["equivalent"]:
        lines.append(f"- Equivalent to {reference} within ±{margin:g} points (the 90% interval inside the margin): "
                     f"{', '.join(_cell(c) for c in by['equivalent'])}.")
    if by["inconclusive"]:
        names = [c["method"] for c in by["inconclusive"]]
        lines.append(f"- Inconclusive against {reference}: {', '.join(_cell(c) for c in by['inconclusive'])}. "
                     f"{'Its' if len(names) == 1 else 'Each'} interval holds both a difference and none: the data "
                     f"cannot tell {'it' if len(names) == 1 else 'them'} from {reference}, nor show that "
                     f"{'they match' if len(names) == 1 else 'they match it'}.")
    powers = [c for c in rows if c.get("equivalence_power") is not None]
    if powers:
        low = [c for c in powers if c["equivalence_power"] < UNREACHABLE_POWER]
        top = max(c["equivalence_power"] for c in powers)
        low_open = [c for c in low if c["verdict"] == "inconclusive"]
        if len(low) == len(powers):
            lines.append(f"- This design cannot show equivalence to {reference} within ±{margin:g} points: even if "
                         f"a true difference were 0, the chance that TOST succeeds (TOST power) is at most "
                         f"{100 * top:.0f}%, so \"does it match {reference}?\" can only come out better, worse or "
                         "inconclusive here.")
        elif low_open:
            lines.append(f"- Equivalence within ±{margin:g} points is out of reach at this design for "
                         f"{_names([c['method'] for c in low_open])} (TOST power under "
                         f"{100 * UNREACHABLE_POWER:.0f}% even if the true difference were 0).")
    seedy = [c for c in rows if (c.get("unit_share") or 0) > 0.5 and c.get("units", 1) > 1]
    if seedy:
        lines.append(f"- {unit.capitalize()}s carry most of the variance for {_names([c['method'] for c in seedy])}: "
                     f"more {unit}s, not more questions, narrow {'its' if len(seedy) == 1 else 'their'} interval.")
    undecided = by["inconclusive"]
    if undecided:
        lines.append(f"- Designs that would show equivalence within ±{margin:g} points with 80% power if the true "
                     f"difference were 0 (fewest {unit}s, then questions; `upft-bench plan` adds their cost): "
                     f"{'; '.join(_design_words(c) for c in undecided)}.")
    return "\n".join(lines) + "\n"


VERDICT_NOTE = (
    "Paired over the same questions and seeds: the difference is the method's accuracy minus the reference's, in "
    "points, with a 95% interval whose variance has a question part, a seed part and their interaction (a crossed "
    "design; the fiducial interval, which allows for how few seeds estimate the seed part; docs/METHODS.md). Seed "
    "share is the seeds' part of that variance: where it is large, more seeds, not more questions, narrow the "
    "interval. McNemar p is the exact test of each seed's paired table; the sign-flip p tests all seeds at once "
    "with each question counted once (a question that differs in every seed is one question, not three). MDE is "
    "the smallest true difference this design detects with 80% power. TOST power is the chance that this design "
    "shows equivalence within ±margin if the true difference were 0. Verdict: equivalent when the 90% interval "
    "lies inside ±margin (two one-sided tests at 5%); better or worse when the 95% interval excludes 0; otherwise "
    "inconclusive, which is not evidence of no difference.\n"
)


def render_tables(metrics_list: list[dict], reference: str | None = None, margin: float | None = None,
                  loss_figure: str | None = None) -> str:
    """Markdown for one or more comparisons: per experiment its verdict tables (paired statistics recomputed from
    the per-question outcomes), the spread over seeds, each run's measured table, a link to `loss_figure` (the
    training-loss figure, when one was drawn); then the paper's numbers."""
    runs = [r for m in metrics_list for r in runs_of(m)]
    parts = []
    for group in experiment_groups(runs):
        settings = group[0].get("config", {}).get("report", {})
        comparisons = paired_comparisons(group, reference=reference, margin=margin)
        what = _runs_words(group)
        for ref in dict.fromkeys(c["reference"] for c in comparisons):
            parts.append(f"### {group[0]['name']}: each method against {ref}, {what}\n")
            parts.append(verdict_table(comparisons, ref) + "\n")
            parts.append(verdict_prose(comparisons, ref))
        if comparisons:
            margin_used = comparisons[0]["margin"]
            parts.append(VERDICT_NOTE.replace("±margin", f"±{margin_used:g} points"))
        if group[0].get("environment"):
            parts.append(f"Measured on {summary(group[0]['environment'])}; {_precision(group)}. Another machine "
                         "(another CPU, other bf16 kernels, other library versions) builds another base model "
                         "and gets other digits: what it should reproduce is the verdicts.\n")
        elif settings:
            parts.append("No paired statistics: these files hold no per-question outcomes.\n")
        if len(group) > 1:
            parts.append(f"### {group[0]['name']}: across {what}\n")
            parts.append(seeds_table(group) + "\n")
            parts.append("acc % is the mean ± standard deviation over seeds (n-1), then the lowest and highest run; "
                         f"stated % and the costs relative to {REF} are means over seeds. The seed changes sampling, "
                         "example building and training" + (
                             "; base seeds change the base model too.\n" if _varies_base(group) else
                             "; the base model is the same.\n"))
        for m in group:
            build = f", base build {_pretrain_seed(m)}" if _varies_base(group) else ""
            parts.append(f"### {m['name']}: measured" + (f"{build}, seed {m['seed']}" if len(group) > 1 else "") + "\n")
            parts.append(f"Base model `{m['base_model']}`; trained on {m['train_questions']}; seed {m['seed']}; "
                         f"{_hardware_line(m)}.\n")
            parts.append(method_table(m) + "\n")
            parts += _caveats(m)
            if m.get("analysis"):
                parts.append(f"Prefix analysis of the base model ([{m['analysis']['path']}]({m['analysis']['path']})):"
                             f" {m['analysis']['reading']}\n")
            if any("sample_cpu_seconds" in row for row in m["methods"].values()):
                parts.append(f"What each phase used (run {m['name']}, seed {m['seed']}):\n")
                parts.append(resources_table(m) + "\n")
            if any(row.get("validation") for row in m["methods"].values()):
                parts.append(f"### {m['name']}: validation" + (f", seed {m['seed']}" if len(group) > 1 else "")
                             + "\n")
                parts.append(validation_table(m) + "\n")
                parts.append("Validation questions are held out from the training set (never the test tasks); "
                             "each method keeps the setting with the highest validation accuracy, the first of "
                             "equals, and only that model is evaluated on the test tasks.\n")
        parts.append("acc % (95% Wilson interval), answered % (an answer could be read, last number included) and "
                     "stated % (a final answer is stated: boxed, ####, \"the answer is\") are percentages of "
                     "evaluated questions; out tokens is the mean output length; sampled/tuned tokens are counts; "
                     "FLOPs are counted from the tokens each phase processed (2N per token plus attention for "
                     "generation, 6N per position for training" + (
                         ", 4N plus 6 per trained adapter parameter for LoRA" if _uses_lora(group) else "")
                     + ", docs/METHODS.md), the same on any machine; "
                     f"seconds are wall-clock (CPU seconds: the process and its children); the vs {REF} columns "
                     f"are percentages of the {REF} row. Numbers come from metrics.json.\n")
    if loss_figure:
        parts.append(f"Training loss per method: [{loss_figure}]({loss_figure})\n")
    shown = {m.get("paper_model") for m in runs} - {None}
    for model in sorted(shown):
        parts.append(f"### {model}: reported by the paper (not measured here)\n")
        parts.append(reported_table(model) + "\n")
        parts.append(f"The same gains in units of their noise:\n\n{paper_uncertainty_table(model)}")
    return "\n".join(parts)


def _caveats(m: dict) -> list[str]:
    """Lines under a run's table for what its rows cannot show: methods that had nothing to train on, what a
    best-of-k row did, and test questions that were also training questions (allowed by data.allow_overlap)."""
    lines = []
    empty = [name for name, row in m["methods"].items()
             if name in METHODS and METHODS[name].trains and not row.get("train_examples")]
    if empty:
        lines.append(f"{', '.join(empty)}: 0 examples: evaluated as the base model (no sample passed "
                     f"{'its' if len(empty) == 1 else 'their'} filter, so there was nothing to train on).\n")
    for name, row in m["methods"].items():
        best = next((r["best_of"] for r in row.get("tasks", {}).values() if r.get("best_of")), None)
        verifier = row.get("verifier")
        if best is not None:
            pairs = (verifier or {}).get("train_examples", 0) // 2
            lines.append(f"{name}: best-of-{best['k']} under {row['method']}'s verifier (trained on {pairs} preference "
                         f"pairs{'' if pairs else ': none, so the first candidate answers'}): k samples at temperature "
                         f"{best['temperature']:g} per question, each scored by the verifier and its reference; its "
                         "eval FLOPs count all of them. Its sampling and training cost is the greedy row's "
                         "(generator and verifier).\n")
    for task, (n, total, example) in (m.get("overlap") or {}).items():
        lines.append(f"{task}: {n} of {total} questions also appear among the training questions (e.g. {example}; "
                     "allowed by data.allow_overlap): accuracy there measures recall of trained questions, not "
                     "generalisation.\n")
    return lines


def _precision(group: list[dict]) -> str:
    """How training ran, from the runs' train_stats hardware records."""
    used = {row["hardware"].get("mixed_precision") for m in group for row in m["methods"].values()
            if isinstance(row.get("hardware"), dict)}
    used.discard(None)
    return f"mixed precision {', '.join(sorted(used))}" if used else "nothing trained"


def _uses_lora(group: list[dict]) -> bool:
    return any(row.get("lora") for m in group for row in m["methods"].values())


def _varies_base(group: list[dict]) -> bool:
    return len({m.get("base_model") for m in group}) > 1


def _pretrain_seed(run: dict):
    return ((run.get("config") or {}).get("pretrain") or {}).get("seed")


def _runs_words(group: list[dict]) -> str:
    """What a group of runs is: "seed 0", "3 seeds (0, 1, 2)" or, when the base build varies,
    "3 base builds (pretraining seeds 0, 1, 2) x seeds 0, 1"."""
    seeds = list(dict.fromkeys(m.get("seed") for m in group))
    if len(group) == 1:
        return f"seed {seeds[0]}"
    if not _varies_base(group):
        return f"{len(group)} seeds ({', '.join(map(str, seeds))})"
    builds = list(dict.fromkeys(_pretrain_seed(m) for m in group))
    return (f"{len(builds)} base builds (pretraining seeds {', '.join(map(str, builds))}) x "
            f"seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}")


def _without_seeds(config):
    """A resolved config with every `seed` field removed: runs that differ only by seed compare equal."""
    if isinstance(config, dict):
        return {k: _without_seeds(v) for k, v in config.items() if k != "seed"}
    if isinstance(config, list):
        return [_without_seeds(v) for v in config]
    return config


def experiment_groups(runs: list[dict]) -> list[list[dict]]:
    """Runs grouped by experiment (same name, tasks and config but the seeds), every run in exactly one group, in
    the order of each group's first run. A run without a recorded config is a group of its own."""
    groups: dict[str, list[dict]] = {}
    for i, m in enumerate(runs):
        key = (json.dumps([m["name"], m["tasks"], _without_seeds(m["config"])], sort_keys=True, default=str)
               if isinstance(m.get("config"), dict) else f"run {i}")
        group = groups.setdefault(key, [])
        if any(g.get("seed") == m.get("seed") and g.get("base_model") == m.get("base_model") for g in group):
            groups[f"{key} #{i}"] = [m]  # the same seed twice: another experiment, not another seed
        else:
            group.append(m)
    return list(groups.values())


def seed_groups(metrics_list: list[dict]) -> list[list[dict]]:
    """Runs of one experiment under different seeds (same name, tasks and config but the seed): the groups of
    two or more, in the order of their first run. Runs without a recorded config are never grouped."""
    groups: dict[str, list[dict]] = {}
    for m in metrics_list:
        if not isinstance(m.get("config"), dict):
            continue
        key = json.dumps([m["name"], m["tasks"], _without_seeds(m["config"])], sort_keys=True, default=str)
        groups.setdefault(key, []).append(m)
    return [g for g in groups.values() if len({m.get("seed") for m in g}) == len(g) >= 2]


def _spread(values: list[float], scale: float = 100.0, digits: int = 1) -> str:
    """`mean ± sd (min-max)` of a seed group, sd over seeds (n-1)."""
    if not values:
        return ""
    xs = [scale * v for v in values]
    sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
    return f"{statistics.fmean(xs):.{digits}f} ± {sd:.{digits}f} ({min(xs):.{digits}f}-{max(xs):.{digits}f})"


def seeds_table(group: list[dict]) -> str:
    """One row per method over the runs of a seed group: accuracy per task (mean ± sd over seeds, min-max),
    stated %, and the token costs relative to RFT (mean over seeds)."""
    tasks = group[0]["tasks"]
    methods = [name for name in group[0]["methods"] if all(name in m["methods"] for m in group)]
    headers = ["method"] + [f"{t} acc %" for t in tasks] + ["stated %", f"sampled vs {REF}", f"tuned vs {REF}"]
    rows = []
    for name in methods:
        runs = [m["methods"][name] for m in group]
        cells = [name]
        for t in tasks:
            cells.append(_spread([r["tasks"][t]["exact_match"] for r in runs if t in r["tasks"]]))
        stated = [statistics.fmean(v["stated"] for v in r["tasks"].values()) for r in runs
                  if r["tasks"] and all(v.get("stated") is not None for v in r["tasks"].values())]
        cells.append(f"{100 * statistics.fmean(stated):.1f}" if stated else "")
        for key in (f"sampled_tokens_vs_{REF}_pct", f"tuned_tokens_vs_{REF}_pct"):
            vals = [r[key] for r in runs if r.get(key) is not None]
            cells.append(f"{statistics.fmean(vals):.1f}%" if len(vals) == len(runs) else "")
        rows.append(cells)
    return tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)


def _hardware_line(metrics: dict) -> str:
    for row in metrics["methods"].values():
        hw = row.get("hardware")
        if isinstance(hw, dict):
            chip = hw.get("gpu") or hw.get("cpu") or hw.get("device", "?")
            threads = f", {hw['threads']} threads" if hw.get("threads") and not hw.get("gpu") else ""
            return (f"trained on {chip}{threads}, {hw.get('processes', 1)} process(es), "
                    f"mixed precision {hw.get('mixed_precision', '?')}")
        if hw:
            return str(hw)
    return "hardware not recorded"


_VERDICT_COLOURS = {"better": "#2a9d3c", "worse": "#c0392b", "equivalent": "#1f5fbf", "inconclusive": "#666666"}
_COSTS = [("sampled_tokens_vs_rft_pct", "sampled tokens"), ("tuned_tokens_vs_rft_pct", "tuned tokens"),
          ("total_flops_vs_rft_pct", "FLOPs (sample + train + eval)")]


def _cost_pct(row: dict, key: str) -> float | None:
    if key == "total_flops_vs_rft_pct":
        return (row.get("flops_vs_rft_pct") or {}).get("total")
    return row.get(key)


def plot(metrics_list: list[dict], path: Path) -> None:
    """The verdicts as forest plots, one panel per reference: each method's difference to it with its 95% (thin)
    and 90% (thick) interval, the ±margin band shaded, the verdict written beside; then each method's cost as a
    percentage of the cost reference (sampled tokens, tuned tokens, FLOPs; means over seeds) on a log scale, where
    a cost of 0 is written as 0, not plotted."""
    plt = pyplot()

    runs = [r for m in metrics_list for r in runs_of(m)]
    groups = experiment_groups(runs)
    several = len(groups) > 1
    comparisons = []
    for group in groups:
        for c in paired_comparisons(group):
            comparisons.append({**c, "group": group[0]["name"]})
    references = list(dict.fromkeys(c["reference"] for c in comparisons))
    n_rows = max([len([c for c in comparisons if c["reference"] == ref]) for ref in references] + [1])
    methods = [(g[0]["name"], name) for g in groups for name in g[0]["methods"]]
    heights = [n_rows + 1.6] * len(references) + [len(methods) + 2.2]
    fig, axes = plt.subplots(len(references) + 1, 1, squeeze=False, figsize=(10, 0.42 * sum(heights)),
                             gridspec_kw={"height_ratios": heights})
    axes = axes[:, 0]
    for ax, ref in zip(axes, references):
        rows = [c for c in comparisons if c["reference"] == ref][::-1]
        margin = rows[0]["margin"]
        ax.axvspan(-margin, margin, color="#1f5fbf", alpha=0.12, lw=0, label=f"±{margin:g} points")
        ax.axvline(0, color="0.3", lw=0.8)
        for y, c in enumerate(rows):
            colour = _VERDICT_COLOURS.get(c["verdict"], "0.4")
            ax.plot(c["ci95"], [y, y], color=colour, lw=1.2)
            ax.plot(c["ci90"], [y, y], color=colour, lw=4, alpha=0.6, solid_capstyle="butt")
            ax.plot([c["difference"]], [y], "o", color=colour, ms=5)
            ax.annotate(f"{c['difference']:+.1f}: {verdict_words(c)}", (c["ci95"][1], y), xytext=(6, 0),
                        textcoords="offset points", va="center", fontsize=8, color=colour)
        labels = [(f"{c['group']}: " if several else "") + _label(c["method"]) +
                  (f" ({c['task']})" if len({r['task'] for r in rows}) > 1 else "") for c in rows]
        ax.set_yticks(range(len(rows)), labels, fontsize=9)
        ax.set_ylim(-0.7, len(rows) - 0.3)
        low, high = min(c["ci95"][0] for c in rows), max(c["ci95"][1] for c in rows)
        span = max(high - low, 2 * margin)
        ax.set_xlim(min(low, -margin) - 0.05 * span, max(high, margin) + 0.75 * span)  # room for the words
        ax.set_xlabel(f"accuracy minus {ref}'s, points (95% interval thin, 90% thick; shaded: ±{margin:g})")
        ax.set_title(f"each method against {ref}")
        ax.grid(True, axis="x", alpha=0.3)
    _cost_panel(axes[-1], groups, several)
    save_figure(fig, path)


def _label(name: str) -> str:
    """A method's registry label (what it trains on), for the plot's axes."""
    return METHODS[name].label if name in METHODS else name


def _cost_panel(ax, groups: list[list[dict]], several: bool) -> None:
    """Horizontal bars: each method's mean cost over its runs as % of the cost reference, log scale; 0 as text."""
    labels, values = [], []
    for group in groups:
        for name in group[0]["methods"]:
            rows = [m["methods"][name] for m in group if name in m["methods"]]
            means = []
            for key, _ in _COSTS:
                vals = [_cost_pct(r, key) for r in rows]
                means.append(None if any(v is None for v in vals) else statistics.fmean(vals))
            labels.append((f"{group[0]['name']}: " if several else "") + _label(name))
            values.append(means)
    labels, values = labels[::-1], values[::-1]
    positive = [v for row in values for v in row if v]
    low = 10 ** math.floor(math.log10(min(positive))) if positive else 1.0
    high = 10 ** math.ceil(math.log10(max(positive) * 1.5)) if positive else 1000.0
    height = 0.8 / len(_COSTS)
    for j, (_, label) in enumerate(_COSTS):
        offset = (j - (len(_COSTS) - 1) / 2) * height
        for y, row in enumerate(values):
            v = row[j]
            if v is None:
                continue
            if v > 0:
                ax.barh(y - offset, v - low, height=height, left=low, color=f"C{j}", label=label if y == 0 else None)
                ax.text(v * 1.08, y - offset, f"{v:.3g}%", va="center", fontsize=7)
            else:
                ax.text(low * 1.15, y - offset, "0", va="center", fontsize=7, color=f"C{j}")
    ax.set_xscale("log")
    ax.set_xlim(low, high * 3)
    ax.axvline(100, color="0.3", lw=0.8, ls="--")
    ax.set_yticks(range(len(labels)), labels, fontsize=9)
    ax.set_ylim(-0.7, len(labels) - 0.3)
    ax.set_xlabel(f"% of {REF}'s cost, mean over seeds (log scale; a cost of 0 is written 0)")
    ax.set_title(f"what each method cost, relative to {REF}")
    if ax.get_legend_handles_labels()[0]:  # no bars at all when no run holds the cost reference
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=len(_COSTS), frameon=False)
    ax.grid(True, axis="x", alpha=0.3)


def _mean_interval(row: dict, tasks: list[str]) -> tuple[float, float]:
    """95% interval of a row's mean accuracy: the task's own for one task; for several, the normal interval of the
    unweighted mean from the per-task binomial variances."""
    acc = row["accuracy_mean"]
    if len(tasks) == 1 and tasks[0] in row["tasks"]:
        ci = accuracy_interval(row["tasks"][tasks[0]])
        return ci if ci else (acc, acc)
    var = sum(t["exact_match"] * (1 - t["exact_match"]) / max(t.get("n") or 1, 1)
              for name, t in row["tasks"].items() if name in tasks)
    half = 1.96 * var ** 0.5 / len(tasks)
    return max(0.0, acc - half), min(1.0, acc + half)


def _run_tags(runs: list[dict]) -> list[str]:
    """A short name per run for legends: its name, with the seed (and base seed) where names repeat."""
    names = [m["name"] for m in runs]
    tags = []
    for m in runs:
        tag = m["name"]
        if names.count(m["name"]) > 1:
            base_seed = (m.get("config") or {}).get("pretrain", {}).get("seed")
            tag += f" (seed {m.get('seed')}" + (f", base {base_seed})" if _varies_base(runs) else ")")
        tags.append(tag)
    return tags


def loss_plot(metrics_list: list[dict], path: Path) -> bool:
    """The training loss of every method that trained, against the optimizer step, in one figure, from the rows'
    `loss_curve` ([[step, loss], ...]): one colour per method, one thin line per seed where there are several.
    Returns False and draws nothing when no row holds a curve (only the base model, or an older metrics.json)."""
    runs = [r for m in metrics_list for r in runs_of(m)]
    groups = experiment_groups(runs)
    several = len(groups) > 1
    lines = []  # (label, that method's curves: one per run)
    for group in groups:
        for name in group[0]["methods"]:
            curves = [m["methods"][name].get("loss_curve") for m in group if name in m["methods"]]
            curves = [c for c in curves if c]
            if curves:
                lines.append(((f"{group[0]['name']}: " if several else "") + _label(name), curves))
    if not lines:
        return False
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(9, 5))
    seeded = any(len(curves) > 1 for _, curves in lines)
    for i, (label, curves) in enumerate(lines):
        for j, curve in enumerate(curves):
            steps, losses = zip(*curve)
            ax.plot(steps, losses, color=f"C{i % 10}", lw=0.9 if seeded else 1.6, alpha=0.7 if seeded else 1.0,
                    marker="o" if len(steps) == 1 else None, ms=4, label=label if j == 0 else None)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("training loss (per response token)")
    ax.set_title("training loss of each method that trained, the mean over each log window (train.log_every steps)"
                 + ("; one thin line per seed" if seeded else ""), fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    save_figure(fig, path)
    return True


def render_report(metrics_list: list[dict], out_dir: Path, reference: str | None = None,
                  margin: float | None = None) -> None:
    """Write compare.md and compare.png into `out_dir`, and loss.png (linked from compare.md) when a method
    trained."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    loss_figure = LOSS_FIGURE if loss_plot(metrics_list, out_dir / LOSS_FIGURE) else None
    if loss_figure is None:
        (out_dir / LOSS_FIGURE).unlink(missing_ok=True)  # an earlier render's figure, which nothing links now
    write_text(out_dir / "compare.md", render_tables(metrics_list, reference=reference, margin=margin,
                                                     loss_figure=loss_figure))
    plot(metrics_list, out_dir / "compare.png")


def load_metrics(path: Path) -> dict:
    """A metrics.json (of one run, or of a several-seed experiment holding its runs), with a named error."""
    path = Path(path)
    file = path / "metrics.json" if path.is_dir() else path
    try:
        data = json.loads(file.read_text())
    except OSError as err:
        raise InputError(f"{file}: cannot read ({err.strerror})") from err
    except json.JSONDecodeError as err:
        raise InputError(f"{file}: not valid JSON ({err})") from err
    for key in ("name", "tasks", "runs" if "runs" in data else "methods"):
        if key not in data:
            raise InputError(f"{file}: missing field '{key}' (not a upft-bench metrics.json?)")
    return data


def paper_report() -> str:
    """Every model of the paper: its reported table and the gains in units of their noise (`report --paper`)."""
    parts = []
    for model in paper.ACCURACY:
        parts.append(f"### {model}: reported by the paper (not measured here)\n")
        parts.append(reported_table(model) + "\n")
        parts.append(f"The same gains in units of their noise:\n\n{paper_uncertainty_table(model)}")
    return "\n".join(parts)
