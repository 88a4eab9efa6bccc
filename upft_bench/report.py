"""Tables and the plot of a comparison, rebuilt from `metrics.json` files alone.

    upft-bench report results/default                       # re-render results/default/compare.{md,png}
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
from upft_bench.methods import COST_REFERENCE

REF = COST_REFERENCE

def _pct(x) -> str:
    return "" if x is None else f"{100.0 * x:.1f}"


def _acc(task: dict) -> str:
    """Accuracy % with its standard error (lm-eval's), so differences within noise read as such."""
    se = task.get("exact_match_stderr")
    return _pct(task["exact_match"]) + (f" ± {100.0 * se:.1f}" if se is not None else "")


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
    headers += ["answered %", "stated %", "out tokens", "sampled_tokens", "tuned_tokens", "sample s", "train s",
                "eval s", f"sampled vs {REF}", f"tuned vs {REF}"]
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
            _num(row.get("sampled_tokens")),
            _num(row.get("tuned_tokens")),
            _secs(row.get("sample_seconds")),
            _secs(row.get("train_seconds")),
            _secs(row.get("eval_seconds")),
            _rel(row.get(f"sampled_tokens_vs_{REF}_pct")),
            _rel(row.get(f"tuned_tokens_vs_{REF}_pct")),
        ]
        rows.append(cells)
    return tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)


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


def render_tables(metrics_list: list[dict]) -> str:
    """Markdown for one or more comparisons: measured tables, then the paper's numbers where they apply."""
    parts = []
    for m in metrics_list:
        parts.append(f"### {m['name']}: measured\n")
        parts.append(f"Base model `{m['base_model']}`; trained on {m['train_questions']}; seed {m['seed']}; "
                     f"{_hardware_line(m)}.\n")
        parts.append(method_table(m) + "\n")
        parts.append("acc % (± standard error), answered % (an answer could be read, last number included) and "
                     "stated % (a final answer is stated: boxed, ####, \"the answer is\") are percentages of "
                     "evaluated questions; out tokens is the mean output length; sampled/tuned tokens are counts; "
                     f"seconds are wall-clock; the last two columns are percentages of the {REF} row. Numbers come "
                     "from metrics.json.\n")
    for group in seed_groups(metrics_list):
        seeds = ", ".join(str(m.get("seed")) for m in group)
        parts.append(f"### {group[0]['name']}: across {len(group)} seeds ({seeds})\n")
        parts.append(seeds_table(group) + "\n")
        parts.append("acc % is the mean ± standard deviation over seeds (n-1), then the lowest and highest run; "
                     f"stated % and the costs relative to {REF} are means over seeds. The seed changes sampling, "
                     "example building and training; the base model is the same.\n")
    shown = {m.get("paper_model") for m in metrics_list} - {None}
    for model in sorted(shown):
        parts.append(f"### {model}: reported by the paper (not measured here)\n")
        parts.append(reported_table(model) + "\n")
    return "\n".join(parts)


def _without_seeds(config):
    """A resolved config with every `seed` field removed: runs that differ only by seed compare equal."""
    if isinstance(config, dict):
        return {k: _without_seeds(v) for k, v in config.items() if k != "seed"}
    if isinstance(config, list):
        return [_without_seeds(v) for v in config]
    return config


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
    """Accuracy vs sampled tokens and vs tuned tokens per method (the paper's Figure 1 view)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    tags = _run_tags(metrics_list)
    methods = list(dict.fromkeys(name for m in metrics_list for name in m["methods"]))
    colours = {name: f"C{i % 10}" for i, name in enumerate(methods)}   # one colour per method in every run
    markers = "osD^vPX*<>"                                               # one marker per run
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, key, label in ((axes[0], "sampled_tokens", "sampled tokens"), (axes[1], "tuned_tokens", "tuned tokens")):
        labelled = set()
        for r, m in enumerate(metrics_list):
            for name, row in m["methods"].items():
                acc = row.get("accuracy_mean")
                if acc is None:
                    continue
                x = max(row.get(key) or 0, 1)  # log axis: the base model's 0 tokens sit at 1
                ax.scatter(x, 100 * acc, s=50, color=colours[name], marker=markers[r % len(markers)])
                if name not in labelled:   # each method named once, next to its first point
                    labelled.add(name)
                    ax.annotate(name, (x, 100 * acc), textcoords="offset points", xytext=(5, 4), fontsize=8,
                                color=colours[name])
        ax.set_xscale("log")
        ax.margins(x=0.08, y=0.1)   # room for the labels of the highest and rightmost points
        ax.set_xlabel(f"{label} (log scale; 0 plotted at 1)")
        ax.set_ylabel("mean accuracy %")
        ax.grid(True, alpha=0.3)
        ax.set_title(f"accuracy vs {label}")
    if len(metrics_list) > 1:
        handles = [Line2D([], [], linestyle="", marker=markers[r % len(markers)], color="0.4", label=tag)
                   for r, tag in enumerate(tags)]
        axes[1].legend(handles=handles, fontsize=8, loc="best", title="run", title_fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def _run_tags(metrics_list: list[dict]) -> list[str]:
    """A short name per run for legends: its name, with the seed where names repeat."""
    names = [m["name"] for m in metrics_list]
    return [f"{m['name']} (seed {m.get('seed')})" if names.count(m["name"]) > 1 else m["name"] for m in metrics_list]


def render_report(metrics_list: list[dict], out_dir: Path) -> None:
    """Write compare.md and compare.png into `out_dir`."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text(out_dir / "compare.md", render_tables(metrics_list))
    plot(metrics_list, out_dir / "compare.png")


def load_metrics(path: Path) -> dict:
    path = Path(path)
    file = path / "metrics.json" if path.is_dir() else path
    try:
        data = json.loads(file.read_text())
    except OSError as err:
        raise click.ClickException(f"{file}: cannot read ({err.strerror})") from err
    except json.JSONDecodeError as err:
        raise click.ClickException(f"{file}: not valid JSON ({err})") from err
    for key in ("name", "tasks", "methods"):
        if key not in data:
            raise click.ClickException(f"{file}: missing field '{key}' (not a upft-bench metrics.json?)")
    return data


@click.command("report")
@click.argument("runs", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--output", type=click.Path(file_okay=False),
              help="Where to write compare.md/compare.png (default: the single RUN's folder; required for several).")
def report_cli(runs, output):
    """Rebuild the Markdown tables and the plot from RUNS (result folders or metrics.json files)."""
    metrics = [load_metrics(Path(r)) for r in runs]
    if output is None:
        if len(runs) != 1:
            raise click.UsageError("several runs: pass --output for the combined report")
        first = Path(runs[0])
        output = first if first.is_dir() else first.parent
    render_report(metrics, Path(output))
    click.echo(render_tables(metrics))
