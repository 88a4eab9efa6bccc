"""Tables and the plot of a comparison, rebuilt from `metrics.json` files alone.

    upft-bench report results/default                       # re-render results/default/compare.{md,png}
    upft-bench report results/reference                     # the README's run, shipped with the repository
    upft-bench report results/a results/b --output results/ab

Every number printed here is read from metrics.json, which `upft-bench compare` wrote from the run's own
train_stats.json, sample pools and lm-eval output. The "reported" table quotes the paper (upft_bench.paper).
"""
from __future__ import annotations

import json
import statistics
from pathlib import Path

import click
from tabulate import tabulate

from upft_bench import paper
from upft_bench.atomic import atomic_path, write_text
from upft_bench.methods import COST_REFERENCE, METHODS

REF = COST_REFERENCE

def _pct(x) -> str:
    return "" if x is None else f"{100.0 * x:.1f}"


def accuracy_interval(task: dict) -> tuple[float, float] | None:
    """95% interval of a task's accuracy (fractions): Wilson's, which stays valid near 0% and 100%.

    For a group row (an unweighted mean over tasks) or an older file without counts: the normal interval from
    lm-eval's standard error, clipped to [0, 1]; None when neither is known.
    """
    from upft_bench.stats import wilson_interval

    if task.get("correct") is not None and task.get("n") and "outcomes" in task:
        return wilson_interval(int(task["correct"]), int(task["n"]))
    se = task.get("exact_match_stderr")
    if se is None:
        return None
    return max(0.0, task["exact_match"] - 1.96 * se), min(1.0, task["exact_match"] + 1.96 * se)


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
    """What each phase used: wall and process CPU seconds, peak memory; FLOPs per phase relative to RFT."""
    headers = ["method", "sample s (CPU s)", "train s (CPU s)", "eval s (CPU s)", "peak MiB sample/train/eval",
               f"sample/train/eval FLOPs vs {REF}", "selection FLOPs"]
    rows = []
    for name, row in metrics["methods"].items():
        rel = row.get("flops_vs_rft_pct") or {}
        rows.append([name] + [f"{_secs(row.get(f'{p}_seconds'))} ({_secs(row.get(f'{p}_cpu_seconds'))})"
                              for p in ("sample", "train", "eval")]
                    + ["/".join(_mib(row.get(f"{p}_peak_rss_mb")) or "-" for p in ("sample", "train", "eval")),
                       "/".join(_rel(rel.get(p)) or "-" for p in ("sample", "train", "eval")),
                       _flops(row.get("selection_flops")) if row.get("validation") else ""])
    return tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)


def _setting(setting: dict | None) -> str:
    return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in (setting or {}).items())


def validation_table(metrics: dict) -> str:
    """Every setting each method was trained with and its validation accuracy; the chosen one marked."""
    rows = []
    for name, row in metrics["methods"].items():
        chosen = row.get("setting") or {}
        for trial in row.get("validation") or []:
            low, high = _wilson(trial["correct"], trial["n"])
            mark = "chosen" if len(row["validation"]) > 1 and all(
                chosen.get(k) == v for k, v in trial["setting"].items()) else ""
            rows.append([name, _setting(trial["setting"]) or "(as configured)",
                         f"{100 * trial['accuracy']:.1f} ({100 * low:.1f}-{100 * high:.1f})", trial["n"], mark])
    return tabulate(rows, headers=["method", "setting", "validation acc %", "questions", ""], tablefmt="github",
                    disable_numparse=True)


def _wilson(correct: int, n: int) -> tuple[float, float]:
    from upft_bench.stats import wilson_interval

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


def verdict_table(comparisons: list[dict], reference: str) -> str:
    """One row per (method, task) against `reference`: accuracy, paired difference, McNemar p, MDE, verdict."""
    headers = ["method", "task", "acc %", f"vs {reference} (points, 95% CI)", "McNemar p", "MDE", "verdict"]
    rows = []
    for c in comparisons:
        if c["reference"] != reference:
            continue
        ps = [f"{t['p']:.2g}" for t in c["mcnemar"]]
        p_cell = ps[0] if len(ps) == 1 else f"{', '.join(ps)} (pooled {c['mcnemar_p_pooled']:.2g})"
        rows.append([c["method"], c["task"], f"{c['accuracy']:.1f}",
                     f"{c['difference']:+.1f} ({c['ci95'][0]:+.1f} to {c['ci95'][1]:+.1f})", p_cell,
                     f"{c['mde']:.1f}", _verdict_words(c)])
    return tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)


def _verdict_words(c: dict) -> str:
    if c["verdict"] == "equivalent":
        return f"equivalent (within ±{c['margin']:g})"
    if c["verdict"] == "inconclusive" and c.get("questions_needed"):
        return f"inconclusive (~{c['questions_needed']:,} questions)"
    return c["verdict"]


VERDICT_NOTE = (
    "Paired over the same questions (and seeds): the difference is the method's accuracy minus the reference's, in "
    "points, with a 95% bootstrap interval over questions (and seeds). McNemar p is the exact test of each seed's "
    "paired table (pooled: the tables summed). MDE is the smallest true difference this many questions detect at "
    "80% power. Verdict: equivalent when the 90% interval lies inside ±margin (two one-sided tests at 5%); better "
    "or worse when the 95% interval excludes 0; otherwise inconclusive, with roughly how many questions would "
    "settle it if the observed difference held.\n"
)


def render_tables(metrics_list: list[dict], reference: str | None = None, margin: float | None = None) -> str:
    """Markdown for one or more comparisons: per experiment its verdict tables (paired statistics recomputed from
    the per-question outcomes), the spread over seeds, each run's measured table; then the paper's numbers."""
    from upft_bench.results import paired_comparisons, runs_of

    runs = [r for m in metrics_list for r in runs_of(m)]
    parts = []
    for group in experiment_groups(runs):
        settings = group[0].get("config", {}).get("report", {})
        comparisons = paired_comparisons(group, reference=reference, margin=margin)
        seeds = ", ".join(str(m.get("seed")) for m in group)
        for ref in dict.fromkeys(c["reference"] for c in comparisons):
            what = f"{len(group)} seeds ({seeds})" if len(group) > 1 else f"seed {seeds}"
            parts.append(f"### {group[0]['name']}: each method against {ref}, {what}\n")
            parts.append(verdict_table(comparisons, ref) + "\n")
        if comparisons:
            margin_used = comparisons[0]["margin"]
            parts.append(VERDICT_NOTE.replace("±margin", f"±{margin_used:g} points"))
        elif settings:
            parts.append("No paired statistics: these files hold no per-question outcomes.\n")
        if len(group) > 1:
            parts.append(f"### {group[0]['name']}: across {len(group)} seeds ({seeds})\n")
            parts.append(seeds_table(group) + "\n")
            parts.append("acc % is the mean ± standard deviation over seeds (n-1), then the lowest and highest run; "
                         f"stated % and the costs relative to {REF} are means over seeds. The seed changes sampling, "
                         "example building and training" + (
                             "; base seeds change the base model too.\n" if _varies_base(group) else
                             "; the base model is the same.\n"))
        for m in group:
            parts.append(f"### {m['name']}: measured" + (f", seed {m['seed']}" if len(group) > 1 else "") + "\n")
            parts.append(f"Base model `{m['base_model']}`; trained on {m['train_questions']}; seed {m['seed']}; "
                         f"{_hardware_line(m)}.\n")
            parts.append(method_table(m) + "\n")
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
                     "generation, 6N per position for training, docs/METHODS.md), the same on any machine; "
                     f"seconds are wall-clock (CPU seconds: the process and its children); the vs {REF} columns "
                     f"are percentages of the {REF} row. Numbers come from metrics.json.\n")
    shown = {m.get("paper_model") for m in runs} - {None}
    for model in sorted(shown):
        parts.append(f"### {model}: reported by the paper (not measured here)\n")
        parts.append(reported_table(model) + "\n")
    return "\n".join(parts)


def _varies_base(group: list[dict]) -> bool:
    return len({m.get("base_model") for m in group}) > 1


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


def plot(metrics_list: list[dict], path: Path) -> None:
    """Accuracy vs sampled tokens, vs tuned tokens (the paper's Figure 1 view) and vs total FLOPs per method, each
    point with its 95% interval; one colour per method, one marker per run (seed), both in legends."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    from upft_bench.results import runs_of

    runs = [r for m in metrics_list for r in runs_of(m)]
    tags = _run_tags(runs)
    methods = list(dict.fromkeys(name for m in runs for name in m["methods"]))
    colours = {name: f"C{i % 10}" for i, name in enumerate(methods)}   # one colour per method in every run
    markers = "osD^vPX*<>"                                               # one marker per run
    panels = [("sampled_tokens", "sampled tokens"), ("tuned_tokens", "tuned tokens")]
    if any(row.get("total_flops") for m in runs for row in m["methods"].values()):
        panels.append(("total_flops", "FLOPs (sample + train + eval)"))
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.6))
    for ax, (key, label) in zip(axes, panels):
        for r, m in enumerate(runs):
            # Runs side by side, a few percent apart on the log axis, so their bars do not hide each other.
            shift = 1.0 + 0.06 * (r - (len(runs) - 1) / 2)
            for name, row in m["methods"].items():
                acc = row.get("accuracy_mean")
                if acc is None:
                    continue
                low, high = _mean_interval(row, m["tasks"])
                x = max(row.get(key) or 0, 1) * shift  # log axis: the base model's 0 tokens sit at 1
                ax.errorbar(x, 100 * acc, yerr=[[100 * (acc - low)], [100 * (high - acc)]], fmt=markers[r % 10],
                            color=colours[name], markersize=6, capsize=3, elinewidth=1)
        ax.set_xscale("log")
        ax.margins(x=0.1, y=0.1)
        ax.set_xlabel(f"{label} (log scale; 0 plotted at 1)")
        ax.set_ylabel("mean accuracy % (95% interval)")
        ax.grid(True, alpha=0.3)
        ax.set_title(f"accuracy vs {label}")
    method_handles = [Line2D([], [], linestyle="", marker="s", color=colours[n],
                             label=METHODS[n].label if n in METHODS else n) for n in methods]
    first = axes[0].legend(handles=method_handles, fontsize=8, loc="best", title="method", title_fontsize=8)
    axes[0].add_artist(first)
    if len(runs) > 1:
        handles = [Line2D([], [], linestyle="", marker=markers[r % len(markers)], color="0.4", label=tag)
                   for r, tag in enumerate(tags)]
        axes[-1].legend(handles=handles, fontsize=8, loc="best", title="run", title_fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


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


def render_report(metrics_list: list[dict], out_dir: Path, reference: str | None = None,
                  margin: float | None = None) -> None:
    """Write compare.md and compare.png into `out_dir`."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text(out_dir / "compare.md", render_tables(metrics_list, reference=reference, margin=margin))
    plot(metrics_list, out_dir / "compare.png")


def load_metrics(path: Path) -> dict:
    """A metrics.json (of one run, or of a several-seed experiment holding its runs), with a named error."""
    path = Path(path)
    file = path / "metrics.json" if path.is_dir() else path
    try:
        data = json.loads(file.read_text())
    except OSError as err:
        raise click.ClickException(f"{file}: cannot read ({err.strerror})") from err
    except json.JSONDecodeError as err:
        raise click.ClickException(f"{file}: not valid JSON ({err})") from err
    for key in ("name", "tasks", "runs" if "runs" in data else "methods"):
        if key not in data:
            raise click.ClickException(f"{file}: missing field '{key}' (not a upft-bench metrics.json?)")
    return data


@click.command("report")
@click.argument("runs", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--output", type=click.Path(file_okay=False),
              help="Where to write compare.md/compare.png (default: the single RUN's folder; required for several).")
@click.option("--reference", help="Compare every method with this one (default: the runs' report.reference, rft).")
@click.option("--margin", type=float, help="Equivalence margin in accuracy points (default: report.margin, 2).")
def report_cli(runs, output, reference, margin):
    """Rebuild the Markdown tables and the plot from RUNS (result folders or metrics.json files).

    Runs of one experiment under different seeds (given as separate folders, or one several-seed folder) are
    pooled: the paired statistics and verdicts are recomputed from their per-question outcomes.
    """
    metrics = [load_metrics(Path(r)) for r in runs]
    if output is None:
        if len(runs) != 1:
            raise click.UsageError("several runs: pass --output for the combined report")
        first = Path(runs[0])
        output = first if first.is_dir() else first.parent
    render_report(metrics, Path(output), reference=reference, margin=margin)
    click.echo((Path(output) / "compare.md").read_text())
