"""Training examples: the one record every method builds and the training core consumes.

    from upft_bench.examples import Example, write_examples, read_examples, count_tuned_tokens
    write_examples("run/examples.jsonl", [Example("q1", prompt_ids, response_ids + [eos_id], kind="prefix")])
    examples = read_examples("run/examples.jsonl")   # errors name the file, the 1-based row and the field

A method is data: SFT, RFT and UPFT differ only in which `Example`s they write. The builder appends the
end-of-turn/EOS id to `response_ids`; the training core never adds a token.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable

from upft_bench.atomic import write_lines
from upft_bench.errors import InputError
from upft_bench.jsonl import read_jsonl


@dataclass
class Example:
    """One training sequence: prompt tokens (no loss) followed by response tokens (loss)."""

    question_id: str  # the Question.id it came from (several examples may share one)
    prompt_ids: list[int]  # chat-templated prompt; may be empty (pretraining text)
    response_ids: list[int]  # tokens that carry loss, already ending with the end-of-turn/EOS id
    kind: str = "full"  # "full", "prefix", "gold", "pretrain", ...: for counting, never for weighting


class ExamplesError(InputError):
    """A malformed examples file; the message names the file, the 1-based row and the field."""


def loss_positions(prompt_len: int, response_len: int, max_length: int | None = None) -> tuple[int, int]:
    """(kept sequence length, number of tokens carrying loss) after truncating to `max_length`.

    Truncation keeps the first `max_length` tokens (the response's end is cut). A token carries loss when it is
    a kept response token with at least one token before it: with an empty prompt the first token is never
    predicted. This is the single rule that the training core and `count_tuned_tokens` both use.
    """
    length = prompt_len + response_len
    if max_length is not None:
        length = min(length, max_length)
    return length, max(0, length - max(prompt_len, 1))


def count_tuned_tokens(examples: Iterable[Example], max_length: int | None = None) -> int:
    """Tokens that carry loss over one pass of `examples` (docs/METHODS.md, `tuned_tokens`).

    Without `max_length` this is the sum of len(response_ids) (minus one for each example with an empty prompt,
    whose first token has nothing to be predicted from); with it, response tokens past `max_length` are not counted,
    exactly as the training core truncates them.
    """
    return sum(loss_positions(len(e.prompt_ids), len(e.response_ids), max_length)[1] for e in examples)


def _check_ids(value, field: str, where: str, allow_empty: bool) -> list[int]:
    ok = isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)
    if not ok or (not allow_empty and not value):
        what = "a list" if allow_empty else "a non-empty list"
        raise ExamplesError(f"{where}: field {field!r} must be {what} of non-negative ints")
    return value


def _parse_row(row, where: str) -> Example:
    if not isinstance(row, dict):
        raise ExamplesError(f"{where}: expected a JSON object, got {type(row).__name__}")
    unknown = sorted(set(row) - {"question_id", "prompt_ids", "response_ids", "kind"})
    if unknown:
        raise ExamplesError(f"{where}: unknown field(s) {', '.join(map(repr, unknown))}")
    for name in ("question_id", "prompt_ids", "response_ids"):
        if name not in row:
            raise ExamplesError(f"{where}: field {name!r} is missing")
    qid = row["question_id"]
    if not isinstance(qid, str) or not qid:
        raise ExamplesError(f"{where}: field 'question_id' must be a non-empty string")
    kind = row.get("kind", "full")
    if not isinstance(kind, str) or not kind:
        raise ExamplesError(f"{where}: field 'kind' must be a non-empty string")
    prompt = _check_ids(row["prompt_ids"], "prompt_ids", where, allow_empty=True)
    response = _check_ids(row["response_ids"], "response_ids", where, allow_empty=False)
    if not prompt and len(response) < 2:
        raise ExamplesError(f"{where}: field 'response_ids' needs at least 2 tokens when 'prompt_ids' is empty")
    return Example(qid, prompt, response, kind)


def read_examples(path: str | Path) -> list[Example]:
    """Read a JSONL file of examples, one object per line (blank lines skipped); fail loudly on a bad row."""
    examples = [_parse_row(row, f"{path} line {number}") for number, row in read_jsonl(path, ExamplesError)]
    if not examples:
        raise ExamplesError(f"{path}: no examples")
    return examples


def write_examples(path: str | Path, examples: Iterable[Example]) -> Path:
    """Write examples as JSONL atomically: a crash leaves the old file or none, never half a file."""
    return write_lines(path, (json.dumps(asdict(e), separators=(",", ":")) + "\n" for e in examples))
