"""The README's tables: the ones quoted from a reference report match it verbatim, and every table is whole."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
# The pages that show results: the README and the docs it links for the default in depth and for usage.
PAGES = [README, ROOT / "docs" / "RESULTS.md", ROOT / "docs" / "USAGE.md"]
QUOTE = re.compile(r"^<!-- quoted from (\S+) -->$")


def _blocks(lines: list[str]):
    """Consecutive runs of table lines ('|' first), with the line index where each starts."""
    start = None
    for i, line in enumerate(lines + [""]):
        if line.startswith("|") and start is None:
            start = i
        elif not line.startswith("|") and start is not None:
            yield start, lines[start:i]
            start = None


def _quotes(page: Path) -> int:
    """Check every quote mark of `page`; the number of quotes."""
    lines = page.read_text().splitlines()
    quoted = 0
    for i, line in enumerate(lines):
        match = QUOTE.match(line.strip())
        if not match:
            continue
        source = ROOT / match.group(1)
        assert source.exists(), f"{page.name} line {i + 1}: {match.group(1)} does not exist"
        # the quote is every line up to the next blank line: a table, or a table and the sentences under it
        block = []
        for text in lines[i + 1:]:
            if not text.strip():
                break
            block.append(text)
        assert block, f"{page.name} line {i + 1}: nothing follows the quote mark"
        assert "\n".join(block) in source.read_text(), (
            f"{page.name} line {i + 1}: the table no longer matches {match.group(1)}; copy it again from there")
        quoted += 1
    return quoted


def test_quoted_tables_match_the_reference_reports():
    counts = {page.name: _quotes(page) for page in PAGES}
    assert counts["README.md"] >= 4, "the README's results section quotes the reference run's tables"
    assert counts["RESULTS.md"] >= 2


def test_every_readme_table_is_whole():
    for page in PAGES:
        _whole_tables(page)


def test_the_readme_puts_the_layout_and_the_tour_first():
    headings = {line: i for i, line in enumerate(README.read_text().splitlines()) if line.startswith("## ")}
    layout_end = min(i for line, i in headings.items() if i > headings["## Layout"])
    assert headings["## A quick tour"] < headings["## Layout"] and layout_end <= 120, (
        "a newcomer finds the quick tour and the layout within the first 120 lines")


def _whole_tables(page: Path) -> None:
    lines = page.read_text().splitlines()
    for start, table in _blocks(lines):
        where = f"{page.name} line {start + 1}"
        assert len(table) >= 3, f"{where}: a table needs a header, a separator and a row"
        assert set(table[1].replace("|", "").strip()) <= set("-: "), f"{where}: the second line is no separator"
        widths = {len(row.strip().strip("|").split("|")) for row in table}
        assert len(widths) == 1, f"{where}: rows with different numbers of cells"
    # what a table broken into its first column looks like: bare method names, line after line
    names = {"base", "sft", "sft_self", "rft", "upft", "upft_label_filter"}
    bare = [i for i in range(len(lines) - 2) if all(lines[j].strip() in names for j in range(i, i + 3))]
    assert not bare, f"{page.name} line {bare[0] + 1}: bare method names where a table was"


def test_the_generated_reference_files_are_current():
    # plan.md and docs/PAPER.md are program output the README quotes: regenerated here, they must not differ
    from upft_bench.plan import plan_run
    from upft_bench.report import paper_report

    for folder in ("results/reference", "results/reference/synth-late-errors", "results/reference/synth-early-errors"):
        saved = (ROOT / folder / "plan.md").read_text().rstrip("\n")
        fresh = plan_run(ROOT / folder, None, 0.8, None, 10, None, 10.0).rstrip("\n")
        assert fresh == saved, f"{folder}/plan.md is stale: upft-bench plan {folder} > {folder}/plan.md"
    saved = (ROOT / "docs" / "PAPER.md").read_text().rstrip("\n")
    assert paper_report().rstrip("\n") == saved, "docs/PAPER.md is stale: upft-bench report --paper > docs/PAPER.md"
