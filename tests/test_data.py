"""Question loaders: real benchmark copies, conversions, GPQA shuffling, and errors that say where."""
from __future__ import annotations

import json
import re

import pytest

from upft_bench.data import SIZES, DataError, last_boxed, load_questions, shuffled_options

REAL = [("gsm8k", "train"), ("gsm8k", "test"), ("math500", "test"), ("aime24", "test"), ("gpqa", "test"),
        ("gpqa_open", "test")]


@pytest.mark.parametrize("name,split", REAL)
def test_real_copies_load_with_published_sizes(data_dir, name, split):
    qs = load_questions(name, split, data_dir=data_dir)
    assert len(qs) == SIZES[name][split]
    assert len({q.id for q in qs}) == len(qs)
    assert all(q.question.strip() and q.answer.strip() for q in qs)
    assert {q.kind for q in qs} == {"choice" if name == "gpqa" else "math"}
    assert load_questions(name, split, data_dir=data_dir, limit=5) == qs[:5]


def test_gsm8k_answer_and_converted_solution(data_dir):
    raw = json.loads((data_dir / "gsm8k" / "test.jsonl").read_text().splitlines()[0])
    q = load_questions("gsm8k", "test", data_dir=data_dir, limit=1)[0]
    assert q.id == "gsm8k-test-0"
    assert q.answer == raw["answer"].split("####")[-1].strip() == "18"
    assert q.solution.endswith("\nThe answer is \\boxed{18}.")
    assert "<<" not in q.solution and "####" not in q.solution
    assert q.meta["solution_raw"] == raw["answer"]
    for q in load_questions("gsm8k", "train", data_dir=data_dir):
        assert re.fullmatch(r"-?\d+(\.\d+)?", q.answer), q.answer  # commas removed: a plain number
        assert "<<" not in q.solution


def test_gpqa_options_shuffled_deterministically(data_dir):
    a = load_questions("gpqa", data_dir=data_dir)
    b = load_questions("gpqa", data_dir=data_dir)
    assert [(q.question, q.answer) for q in a] == [(q.question, q.answer) for q in b]
    counts = {letter: sum(q.answer == letter for q in a) for letter in "ABCD"}
    assert min(counts.values()) > 25, counts  # shuffled, not always the published first option
    for q in a:
        options = q.meta["options"]
        assert options["ABCD".index(q.answer)] == q.meta["correct_text"]
        for letter, option in zip("ABCD", options):
            assert f"\n{letter}) {option}" in q.question
    other = load_questions("gpqa", data_dir=data_dir, shuffle_seed=1)
    assert [q.answer for q in other] != [q.answer for q in a]
    # The order is a function of (seed, id) alone: stable under reordering or subsetting of the file.
    wrong = ["w1", "w2", "w3"]
    assert shuffled_options("rec1", "right", wrong) == shuffled_options("rec1", "right", list(wrong))


def test_gpqa_open_shows_no_options_and_wants_the_option_text(data_dir):
    choice = load_questions("gpqa", data_dir=data_dir, limit=10)
    open_ = load_questions("gpqa_open", data_dir=data_dir, limit=10)
    for c, o in zip(choice, open_):
        assert c.id == o.id and c.question.startswith(o.question)
        assert "\nA) " not in o.question
        assert o.answer == c.meta["correct_text"] and o.kind == "math"


def test_synth_defaults_and_prefix_stability():
    test = load_questions("synth", "test")
    assert len(test) == 300 and all(q.solution.endswith(f"\\boxed{{{q.answer}}}.") for q in test)
    assert load_questions("synth", "test", limit=8) == test[:8]
    assert load_questions("synth", "test", synth_seed=7, limit=5) != test[:5]
    assert not {q.id for q in load_questions("synth", "train", limit=300)} & {q.id for q in test}


def test_last_boxed_handles_nesting():
    assert last_boxed("a \\boxed{1} then \\boxed{\\frac{1}{2}} end") == "\\frac{1}{2}"
    assert last_boxed("no box") is None
    assert last_boxed("\\boxed{unclosed") is None


# ---------------------------------------------------------------------------------------------- errors
def _write(path, lines):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines))


def test_missing_data_dir_is_named(tmp_path):
    with pytest.raises(DataError, match="does-not-exist.*does not exist"):
        load_questions("gsm8k", data_dir=tmp_path / "does-not-exist")


def test_missing_file_in_dataset_folder_is_named(tmp_path):
    (tmp_path / "gsm8k").mkdir()
    with pytest.raises(DataError, match=r"gsm8k/test\.jsonl not found"):
        load_questions("gsm8k", "test", data_dir=tmp_path)


def test_no_local_copy_and_no_hub_says_how_to_fix(tmp_path, monkeypatch):
    monkeypatch.delenv("UPFT_BENCH_DATA_DIR", raising=False)
    with pytest.raises(DataError) as err:
        load_questions("math500", "test")
    msg = str(err.value)
    assert "math500" in msg and "HuggingFaceH4/MATH-500" in msg
    assert "UPFT_BENCH_DATA_DIR" in msg and "math500/test.jsonl" in msg
    with pytest.raises(DataError, match="no math12k/ folder"):
        load_questions("math12k", "train", data_dir=tmp_path)


def test_malformed_json_names_file_and_line(tmp_path):
    good = json.dumps({"question": "q", "answer": "r\n#### 3"})
    _write(tmp_path / "gsm8k" / "test.jsonl", [good, "", good, "{not json"])
    with pytest.raises(DataError, match=r"test\.jsonl line 4: not valid JSON"):
        load_questions("gsm8k", "test", data_dir=tmp_path)


@pytest.mark.parametrize("name,path,row,message", [
    ("gsm8k", "gsm8k/test.jsonl", {"question": "q"}, "line 2: missing field 'answer'"),
    ("gsm8k", "gsm8k/test.jsonl", {"question": "q", "answer": "no final line"}, "line 2: field 'answer' has no"),
    ("math500", "math500/test.jsonl", {"problem": "p", "solution": "s", "id": "x"},
     "line 2: missing field 'expected_answer' or 'answer'"),
    ("aime24", "aime24/test.jsonl", {"id": 1, "question": "q", "answer": ""},
     "line 2: field 'answer' must be a non-empty string"),
    ("gpqa", "gpqa/diamond.jsonl", {"id": "r", "question": "q", "correct_answer": "c", "incorrect_answers": ["a"]},
     "line 2: field 'incorrect_answers' must be a list of 3"),
    ("math12k", "math12k/train.jsonl", {"problem": "p", "solution": "no box here"}, "line 2: no 'answer' field"),
])
def test_malformed_rows_name_file_line_and_field(tmp_path, name, path, row, message):
    good = {
        "gsm8k": {"question": "q", "answer": "r\n#### 3"},
        "math500": {"problem": "p", "solution": "s", "id": "a", "expected_answer": "1"},
        "aime24": {"id": 0, "question": "q", "answer": "3"},
        "gpqa": {"id": "g", "question": "q", "correct_answer": "c", "incorrect_answers": ["a", "b", "d"]},
        "math12k": {"problem": "p", "solution": "so \\boxed{2}"},
    }[name]
    _write(tmp_path / path, [json.dumps(good), json.dumps(row)])
    split = "train" if name == "math12k" else "test"
    with pytest.raises(DataError, match=re.escape(f"{tmp_path / path} {message}")):
        load_questions(name, split, data_dir=tmp_path)


def test_local_math12k_file(tmp_path):
    rows = [{"problem": "What is 1+1?", "solution": "It is $\\boxed{2}$."},
            {"id": "train/algebra/7.json", "problem": "p", "solution": "s", "answer": "\\frac12"}]
    _write(tmp_path / "math12k" / "train.jsonl", [json.dumps(r) for r in rows])
    qs = load_questions("math12k", "train", data_dir=tmp_path)
    assert [(q.id, q.answer) for q in qs] == [("math12k-0", "2"), ("train/algebra/7.json", "\\frac12")]


def test_duplicate_ids_and_bad_names(tmp_path):
    row = json.dumps({"id": "same", "question": "q", "answer": "1"})
    _write(tmp_path / "aime24" / "test.jsonl", [row, row])
    with pytest.raises(DataError, match="'same' appears twice"):
        load_questions("aime24", data_dir=tmp_path)
    with pytest.raises(DataError, match="unknown question set 'mmlu'"):
        load_questions("mmlu")
    with pytest.raises(DataError, match="math500 has no split 'train'"):
        load_questions("math500", "train", data_dir=tmp_path)


def test_data_dir_from_environment(data_dir, monkeypatch):
    monkeypatch.setenv("UPFT_BENCH_DATA_DIR", str(data_dir))
    assert len(load_questions("aime24")) == 30


def test_hub_spellings_and_math12k_composition(monkeypatch):
    """The Hub code path, with `datasets.load_dataset` replaced by rows in the Hub's own field names."""
    import datasets

    monkeypatch.delenv("UPFT_BENCH_DATA_DIR", raising=False)
    calls = []
    hub = {
        ("Idavidrein/gpqa", "gpqa_diamond", "train"): [
            {"Record ID": "recA", "Question": " Which? ", "Correct Answer": " right ",
             "Incorrect Answer 1": "w1", "Incorrect Answer 2": "w2", "Incorrect Answer 3": "w3"}],
        ("HuggingFaceH4/MATH-500", None, "test"): [
            {"unique_id": "test/algebra/1.json", "problem": "Held out?", "solution": "\\boxed{1}", "answer": "1",
             "subject": "Algebra", "level": 1}],
        ("HuggingFaceH4/aime_2024", None, "train"): [{"id": 60, "problem": "P", "solution": "S", "answer": 204}],
    }
    for subject in ("algebra", "counting_and_probability", "geometry", "intermediate_algebra", "number_theory",
                    "prealgebra", "precalculus"):
        for split in ("train", "test"):
            hub[("EleutherAI/hendrycks_math", subject, split)] = [
                {"problem": f"{subject} {split}", "solution": "so $\\boxed{3}$", "type": subject, "level": "Level 1"}]
    hub[("EleutherAI/hendrycks_math", "algebra", "test")].append(
        {"problem": "Held   out?", "solution": "\\boxed{1}", "type": "Algebra", "level": "Level 1"})

    def fake_load_dataset(path, name=None, split=None):
        calls.append((path, name, split))
        return hub[(path, name, split)]

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    (q,) = load_questions("gpqa")
    assert q.id == "recA" and q.question.startswith("Which?\n\nA) ") and q.meta["correct_text"] == "right"
    assert load_questions("gpqa_open")[0].answer == "right"
    (m,) = load_questions("math500")
    assert (m.id, m.answer, m.meta["subject"]) == ("test/algebra/1.json", "1", "Algebra")
    (a,) = load_questions("aime24")
    assert (a.id, a.question, a.answer) == ("60", "P", "204")
    train = load_questions("math12k", "train")
    assert len(train) == 14  # 7 subjects x 2 splits; the MATH-500 problem (whitespace aside) is left out
    assert "Held out?" not in {q.question for q in train}
    assert train[0].id == "train/algebra/0" and train[0].answer == "3"
