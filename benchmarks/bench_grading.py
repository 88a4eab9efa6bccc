"""Answer checker benchmark: upft_bench.grading vs math-verify 0.9, side by side on the same cases.

    . .venv/bin/activate
    python benchmarks/bench_grading.py                 # full table + hostile inputs (about a minute)
    python benchmarks/bench_grading.py --no-hostile    # skip the hostile column
    python benchmarks/bench_grading.py --repeat 3      # median speed of 3 passes

Cases: tests/data/grading_cases.jsonl (pred, gold, expected verdict). upft_bench sees the raw strings. math-verify's
LaTeX extraction needs delimiters, so a gold or a prediction without `$`, `\\(`, `\\[` or `\\boxed` and without prose
words is wrapped in `$...$` for it (as in its own tests); predictions written as prose are passed unchanged.
Columns: agreement with the expected verdict, cases/s (single thread, main thread, warm), and per tag.
Hostile: tests/data/hostile_inputs.jsonl (graded with each row's `kind`, math by default); false positives (verdict
True) and the slowest case in seconds.
math-verify runs each hostile case in a forked child (SIGALRM works there) killed after --hostile-limit s,
because a C-level big-integer operation cannot be interrupted by its signal-based timeout.
"""
from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import re
import statistics
import time
from collections import defaultdict
from pathlib import Path

from upft_bench import grading

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"


def load(name):
    return [json.loads(line) for line in (DATA / name).read_text().splitlines() if line.strip()]


def hostile_text(row):
    return row["pred"] if "pred" in row else "".join(text * n for text, n in row["parts"])


def mv_wrap(text: str) -> str:
    """`$...$` around a bare math answer, so that math-verify's LaTeX extraction sees it."""
    if any(d in text for d in ("$", "\\(", "\\[", "\\boxed")) or len(text) > 200:
        return text
    if re.search(r"[A-Za-z]{4,}", re.sub(r"\\[A-Za-z]+", "", text)):
        return text   # prose: the model output as it is
    return f"${text}$"


def mv_check(pred: str, gold: str) -> bool:
    from math_verify import parse, verify

    try:
        return bool(verify(parse(mv_wrap(gold)), parse(mv_wrap(pred))))
    except Exception:  # noqa: BLE001  (a crash counts as "not equal")
        return False


def ours_check(pred: str, gold: str, kind: str) -> bool:
    return grading.is_correct(pred, gold, kind)


def run_table(cases, check, repeat):
    """Verdicts and the median cases/s over `repeat` passes."""
    speeds, verdicts = [], []
    for _ in range(repeat):
        start = time.perf_counter()
        verdicts = [check(c) for c in cases]
        speeds.append(len(cases) / (time.perf_counter() - start))
    return verdicts, statistics.median(speeds)


def _mv_child(pred, gold, queue):
    queue.put(mv_check(pred, gold))


def mv_hostile(rows, limit):
    ctx = multiprocessing.get_context("fork")
    false_pos, worst, hung = 0, 0.0, 0
    for row in rows:
        queue = ctx.Queue()
        proc = ctx.Process(target=_mv_child, args=(hostile_text(row), row["gold"], queue))
        start = time.perf_counter()
        proc.start()
        proc.join(limit)
        elapsed = time.perf_counter() - start
        if proc.is_alive():
            proc.kill()
            proc.join()
            hung += 1
        else:
            false_pos += bool(queue.get()) if not queue.empty() else 0
        worst = max(worst, elapsed)
    return false_pos, worst, hung


def ours_hostile(rows, timeout):
    false_pos, worst = 0, 0.0
    for row in rows:
        start = time.perf_counter()
        false_pos += grading.is_correct(hostile_text(row), row["gold"], row.get("kind", "math"), timeout=timeout)
        worst = max(worst, time.perf_counter() - start)
    return false_pos, worst


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--no-hostile", action="store_true")
    ap.add_argument("--hostile-limit", type=float, default=30.0)
    args = ap.parse_args()

    import math_verify  # noqa: F401  (import cost outside the timing)

    logging.disable(logging.WARNING)   # math-verify logs every timeout with the whole input

    cases = load("grading_cases.jsonl")
    grading.warm_up(1)
    mv_check("1", "1")
    ours, ours_speed = run_table(cases, lambda c: ours_check(c["pred"], c["gold"], c["kind"]), args.repeat)
    mv, mv_speed = run_table(cases, lambda c: mv_check(c["pred"], c["gold"]), args.repeat)
    numeric = [c for c in cases if c["tag"] in ("integers", "decimals-fractions", "percent", "sci-notation")]
    _, ours_num_speed = run_table(numeric, lambda c: ours_check(c["pred"], c["gold"], c["kind"]), max(3, args.repeat))
    _, mv_num_speed = run_table(numeric, lambda c: mv_check(c["pred"], c["gold"]), max(3, args.repeat))

    expected = [c["expected"] for c in cases]
    agree_ours = sum(a == e for a, e in zip(ours, expected))
    agree_mv = sum(a == e for a, e in zip(mv, expected))
    n = len(cases)
    print(f"{'':34}{'upft_bench':>16}{'math-verify 0.9':>18}")
    print(f"{f'agreement ({n} cases)':34}{f'{agree_ours} ({100 * agree_ours / n:.1f}%)':>16}"
          f"{f'{agree_mv} ({100 * agree_mv / n:.1f}%)':>18}")
    fp_ours = sum(a and not e for a, e in zip(ours, expected))
    fp_mv = sum(a and not e for a, e in zip(mv, expected))
    print(f"{'false positives on the table':34}{fp_ours:>16}{fp_mv:>18}")
    print(f"{'cases/s, whole table':34}{ours_speed:>16.0f}{mv_speed:>18.0f}")
    print(f"{f'cases/s, numeric tags ({len(numeric)})':34}{ours_num_speed:>16.0f}{mv_num_speed:>18.0f}")

    if not args.no_hostile:
        rows = load("hostile_inputs.jsonl")
        fp_o, worst_o = ours_hostile(rows, timeout=5.0)
        fp_m, worst_m, hung_m = mv_hostile(rows, args.hostile_limit)
        print(f"{f'hostile ({len(rows)}): false positives':34}{fp_o:>16}{fp_m:>18}")
        print(f"{'hostile: slowest case, s':34}{worst_o:>16.2f}{worst_m:>18.2f}")
        print(f"{f'hostile: killed after {args.hostile_limit:g} s':34}{0:>16}{hung_m:>18}")

    by_tag = defaultdict(lambda: [0, 0, 0])
    for c, a, b in zip(cases, ours, mv):
        row = by_tag[c["tag"]]
        row[0] += 1
        row[1] += a == c["expected"]
        row[2] += b == c["expected"]
    print(f"\n{'tag':24}{'cases':>7}{'upft_bench':>12}{'math-verify':>13}")
    for tag, (count, a, b) in by_tag.items():
        print(f"{tag:24}{count:>7}{a:>12}{b:>13}")
    grading.shutdown()


if __name__ == "__main__":
    main()
