"""Example records: JSONL round trip, row/field-named errors, the tuned-token count."""
from __future__ import annotations

import json

import pytest

from upft_bench.examples import (
    Example,
    ExamplesError,
    count_tuned_tokens,
    loss_positions,
    read_examples,
    write_examples,
)


def test_round_trip(tmp_path):
    examples = [Example("q1", [1, 2, 3], [4, 5, 1], "prefix"), Example("q2", [], [7, 8, 9], "pretrain")]
    path = write_examples(tmp_path / "sub" / "ex.jsonl", examples)
    assert read_examples(path) == examples
    # Nothing but the file itself is left behind (the temp file was renamed).
    assert [p.name for p in path.parent.iterdir()] == ["ex.jsonl"]


def test_write_is_atomic_on_failure(tmp_path):
    path = tmp_path / "ex.jsonl"
    write_examples(path, [Example("old", [1], [2])])

    def broken():
        yield Example("new", [1], [2])
        raise RuntimeError("builder crashed")

    with pytest.raises(RuntimeError):
        write_examples(path, broken())
    assert read_examples(path) == [Example("old", [1], [2])]
    assert [p.name for p in tmp_path.iterdir()] == ["ex.jsonl"]


def _write_rows(path, rows):
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return path


GOOD = {"question_id": "q", "prompt_ids": [1, 2], "response_ids": [3, 1]}


@pytest.mark.parametrize(
    "bad, message",
    [
        ({**GOOD, "response_ids": []}, "field 'response_ids' must be a non-empty list"),
        ({**GOOD, "response_ids": [1, "2"]}, "field 'response_ids' must be a non-empty list"),
        ({**GOOD, "prompt_ids": [1.5]}, "field 'prompt_ids' must be a list"),
        ({**GOOD, "prompt_ids": [-1]}, "field 'prompt_ids' must be a list"),
        ({k: v for k, v in GOOD.items() if k != "question_id"}, "field 'question_id' is missing"),
        ({**GOOD, "question_id": 3}, "field 'question_id' must be a non-empty string"),
        ({**GOOD, "kind": ""}, "field 'kind'"),
        ({**GOOD, "respones_ids": [1]}, "unknown field(s) 'respones_ids'"),
        ({**GOOD, "prompt_ids": [], "response_ids": [5]}, "at least 2 tokens"),
        ("[1, 2]", "expected a JSON object"),
        ("{not json", "not valid JSON"),
    ],
)
def test_bad_rows_name_file_row_and_field(tmp_path, bad, message):
    # Row 3 is bad; a blank line before it still counts as a row number in the file.
    path = _write_rows(tmp_path / "examples.jsonl", [GOOD, "", bad, GOOD])
    with pytest.raises(ExamplesError) as err:
        read_examples(path)
    assert "examples.jsonl line 3: " in str(err.value)
    assert message in str(err.value)


def test_empty_and_missing_files(tmp_path):
    with pytest.raises(ExamplesError, match="no examples"):
        read_examples(_write_rows(tmp_path / "empty.jsonl", [""]))
    with pytest.raises(ExamplesError, match="missing.jsonl: cannot read"):
        read_examples(tmp_path / "missing.jsonl")


def test_count_tuned_tokens_counts_responses_after_truncation():
    examples = [Example("a", [1] * 5, [2] * 4), Example("b", [1] * 3, [2] * 10), Example("c", [], [2] * 6)]
    # Every response token carries loss, except the first token of a prompt-less sequence (nothing predicts it).
    assert count_tuned_tokens(examples) == 4 + 10 + 5
    # max_length=8 keeps the first 8 tokens of prompt + response.
    assert count_tuned_tokens(examples, max_length=8) == 3 + 5 + 5
    assert loss_positions(5, 4, max_length=5) == (5, 0)  # prompt fills the window: nothing to train on
    assert loss_positions(5, 4) == (9, 4)
