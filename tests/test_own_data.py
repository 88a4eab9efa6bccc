"""Your own questions: files (JSONL, CSV, Parquet) or hub: datasets for training and testing, their lm-eval tasks,
the overlap check, and the report's notes on what a row cannot show."""
from __future__ import annotations

import csv
import json
import shlex
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from upft_bench.cli import main
from upft_bench.data import DataError, load_questions, own_label, source_path
from upft_bench.evaluation import _template, task_manager, write_own_tasks
from upft_bench.experiment import load_experiment
from upft_bench.preflight import PreflightError, check

OWN = Path(__file__).parent / "data" / "own"
TRAIN, TEST = OWN / "train.jsonl", OWN / "test.jsonl"


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_the_shipped_example_files_load_as_questions():
    train, test = load_questions(str(TRAIN), "train"), load_questions(str(TEST), "test")
    assert len(train) == 24 and len(test) == 12
    first = _rows(TRAIN)[0]
    assert (train[0].id, train[0].question, train[0].answer, train[0].solution) == (
        first["id"], first["question"], first["answer"], first["solution"])
    assert test[0].solution is None and test[0].kind == "math"
    assert source_path(str(TEST)) == TEST and own_label(str(TEST)) == "test"


def test_csv_and_parquet_with_their_own_column_names(tmp_path):
    rows = [{"problem": f"What is {i} + {i}?", "final": 2 * i, "uid": f"q{i}"} for i in range(1, 4)]
    with open(tmp_path / "mine.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["problem", "final", "uid"])
        writer.writeheader()
        writer.writerows(rows)
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "mine.parquet")
    fields = {"question": "problem", "answer": "final", "id": "uid"}
    for name in ("mine.csv", "mine.parquet"):
        qs = load_questions(str(tmp_path / name), "test", fields=fields)
        assert [(q.id, q.question, q.answer) for q in qs] == [
            (r["uid"], r["problem"], str(r["final"])) for r in rows]
    with pytest.raises(DataError, match=r"mine\.csv line 2: missing field 'answer'"):
        load_questions(str(tmp_path / "mine.csv"), fields={"question": "problem"})
    with pytest.raises(DataError, match=r"^data\.fields: unknown field\(s\) qestion"):
        load_questions(str(tmp_path / "mine.csv"), fields={"qestion": "problem"})


def test_gsm8k_style_answers_give_the_number_and_a_solution(tmp_path):
    path = tmp_path / "gsm.jsonl"
    path.write_text(json.dumps({"question": "Ann has 3 and gets 4. How many?",
                                "answer": "3 + 4 = <<3+4=7>>7\n#### 7"}) + "\n")
    (q,) = load_questions(str(path))
    assert q.answer == "7" and q.solution == "3 + 4 = 7\nThe answer is \\boxed{7}." and q.id == "gsm-0"


def test_bad_rows_and_bytes_are_named_by_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b'{"question": "fine?", "answer": "1"}\n{"question": "caf\xe9?", "answer": "2"}\n')
    with pytest.raises(DataError, match=r"bad\.jsonl line 2: not UTF-8 text \(byte 0xe9"):
        load_questions(str(path))
    csv_path = tmp_path / "bad.csv"
    csv_path.write_bytes(b"question,answer\ncaf\xe9?,2\n")
    with pytest.raises(DataError, match=r"bad\.csv: not UTF-8 text"):
        load_questions(str(csv_path))
    with pytest.raises(DataError, match=r"nope\.jsonl: no such file"):
        load_questions(str(tmp_path / "nope.jsonl"))


def test_an_unknown_name_says_files_and_hub_datasets_are_accepted():
    with pytest.raises(DataError, match=r"unknown question set 'my_data'.*\.jsonl.*hub:OWNER/NAME"):
        load_questions("my_data")


def test_hub_datasets_load_through_datasets_with_their_config_and_split(monkeypatch):
    import datasets

    calls = []

    def load_dataset(path, config=None, split=None):
        calls.append((path, config, split))
        return datasets.Dataset.from_list([{"problem": "2 + 2?", "final": "4"}])

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    (q,) = load_questions("hub:acme/probs:easy@dev", "train", fields={"question": "problem", "answer": "final"})
    assert calls == [("acme/probs", "easy", "dev")]
    assert (q.id, q.question, q.answer) == ("probs_easy_dev-0", "2 + 2?", "4")
    load_questions("hub:acme/probs", "train", fields={"question": "problem", "answer": "final"})
    assert calls[-1] == ("acme/probs", None, "train")
    with pytest.raises(DataError, match=r"^hub:probs: a Hub dataset is hub:OWNER/NAME"):
        load_questions("hub:probs")


def test_hub_datasets_fail_in_one_line_offline():
    with pytest.raises(DataError, match=r"^hub:acme/no-such-set@test: could not load from the Hugging Face Hub"):
        load_questions("hub:acme/no-such-set@test")


def test_the_task_made_for_a_file_loads_in_lm_eval_with_the_same_questions(tmp_path):
    made = write_own_tasks([str(TEST), "upft_synth"], tmp_path / "tasks")
    assert made == {str(TEST): "upft_own_test"}
    text = (tmp_path / "tasks" / "upft_own_test.yaml").read_text()
    assert f"lm_eval --include_path {(tmp_path / 'tasks').resolve()} --tasks upft_own_test" in text
    manager = task_manager(extra_paths=[tmp_path / "tasks"])
    assert "upft_own_test" in manager.all_tasks
    task = manager.load_task_or_group(["upft_own_test"])["upft_own_test"]
    template = _template()  # same prompt, decoding and stop strings as every shipped task
    assert task.config.generation_kwargs == template["generation_kwargs"]
    assert task.config.generation_kwargs["until"] and task.config.generation_kwargs["do_sample"] is False
    docs = list(task.test_docs())
    assert [(d["id"], d["question"], d["answer"]) for d in docs] == [
        (r["id"], r["question"], r["answer"]) for r in _rows(TEST)]
    assert "upft_own_test" not in task_manager().all_tasks  # the shipped tag `upft` does not grow


def test_two_files_with_one_stem_are_refused(tmp_path):
    (tmp_path / "a").mkdir()
    shutil.copy(TEST, tmp_path / "a" / "test.jsonl")
    with pytest.raises(ValueError, match="would both be the task upft_own_test; rename one file"):
        write_own_tasks([str(TEST), str(tmp_path / "a" / "test.jsonl")], tmp_path / "tasks")


def test_preflight_checks_own_files_and_refuses_overlap_unless_allowed(tmp_path):
    sets = [f"data.train={TRAIN}", f"eval.tasks=[{TEST}]"]
    facts = check(load_experiment("baselines/smoke.yaml", sets))
    assert facts["tasks"] == {"upft_own_test": {"questions": 12, "max_gen_toks": 48}} and facts["overlap"] == {}
    same = [f"data.train={TEST}", f"eval.tasks=[{TEST}]", "methods=[base,upft]"]
    with pytest.raises(PreflightError, match=r"^eval\.tasks: 12 of 12 questions of upft_own_test also appear among "
                                             r"the training questions .*--allow-overlap"):
        check(load_experiment("baselines/smoke.yaml", same))
    facts = check(load_experiment("baselines/smoke.yaml", [*same, "data.allow_overlap=true"]))
    assert facts["overlap"] == {"upft_own_test": (12, 12, "test-0")}
    with pytest.raises(PreflightError, match=r"has no solution for 12 of 12 questions .*sft trains on reference"):
        check(load_experiment("baselines/smoke.yaml", [f"data.train={TEST}", f"eval.tasks=[{TRAIN}]"]))


def test_compare_on_own_files_marks_untrained_methods_and_overlap(tmp_path):
    out = tmp_path / "own"
    result = CliRunner().invoke(main, [
        "compare", "baselines/smoke.yaml", "--methods", "base,rft,upft", "--set", f"data.train={TEST}",
        "--set", f"eval.tasks=[{TEST}]", "--allow-overlap", "--output", str(out)])
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["tasks"] == ["upft_own_test"] and metrics["train_questions"] == f"{TEST} (limit 16)"
    report = (out / "compare.md").read_text()
    assert "upft_own_test: 12 of 12 questions also appear among the training questions" in report
    for name in ("rft", "upft"):  # marked exactly when the method had nothing to train on
        empty = metrics["methods"][name]["train_examples"] == 0
        assert (f"{name}: 0 examples: evaluated as the base model" in report) == empty
        assert (metrics["methods"][name]["model"] == metrics["base_model"]) == empty
    assert metrics["methods"]["upft"]["train_examples"] > 0  # UPFT needs no label
    assert (out / "methods" / "base" / "eval" / "tasks" / "upft_own_test.yaml").is_file()


def test_the_readme_example_runs_as_written(tmp_path):
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    section = readme.split("## Your own data", 1)[1]
    block = section.split("```bash\n", 1)[1].split("```", 1)[0]
    args = shlex.split(block.replace("\\\n", " "))
    assert args[:2] == ["upft-bench", "compare"] and "--output" in args
    args[args.index("--output") + 1] = str(tmp_path / "own-example")
    result = CliRunner().invoke(main, args[1:])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "own-example" / "metrics.json").read_text())["tasks"] == ["upft_own_test"]


def test_sample_and_build_take_own_files_with_their_columns(tmp_path):
    from upft_bench.tiny import save_random_model

    model = save_random_model(tmp_path / "model", size="test")
    path = tmp_path / "mine.csv"
    path.write_text("problem,final\nWhat is 2 + 2?,4\nWhat is 3 + 5?,8\n")
    fields = ["--field", "question=problem", "--field", "answer=final"]
    pool, examples = tmp_path / "pool.jsonl", tmp_path / "ex.jsonl"
    result = CliRunner().invoke(main, ["sample", "--model", str(model), "--dataset", str(path), *fields, "--n", "1",
                                       "--max-new-tokens", "4", "--output", str(pool), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(main, ["build", "--method", "upft", "--model", str(model), "--dataset", str(path),
                                       *fields, "--samples", str(pool), "--output", str(examples)])
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["question_id"] for line in examples.read_text().splitlines()] == ["mine-0", "mine-1"]
    result = CliRunner().invoke(main, ["sample", "--model", str(model), "--dataset", str(path), "--field", "question",
                                       "--output", str(pool)])
    assert result.exit_code == 2 and "--field" in result.output and "expected KEY=COLUMN" in result.output
