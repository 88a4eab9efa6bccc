"""The lm-eval tasks: every task and the group register, prompts equal render_prompt, an oracle scores 100%."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from upft_bench import tasks_dir
from upft_bench.data import load_questions
from upft_bench.evaluation import task_manager
from upft_bench.prompts import SYSTEM_PROMPTS, render_prompt
from upft_bench.tiny import build_tokenizer

TASKS = ["upft_gsm8k", "upft_math500", "upft_aime24", "upft_gpqa", "upft_gpqa_open", "upft_synth"]
QUESTION_SET = {"upft_gsm8k": "gsm8k", "upft_math500": "math500", "upft_aime24": "aime24", "upft_gpqa": "gpqa",
                "upft_gpqa_open": "gpqa_open", "upft_synth": "synth"}
PAPER = ["upft_gsm8k", "upft_math500", "upft_aime24", "upft_gpqa_open"]
LIMIT = 20


@pytest.fixture(scope="module")
def manager():
    return task_manager()


def test_every_task_and_the_group_register(manager):
    # lm-eval skips a YAML it cannot parse without a word: check each shipped name is indexed.
    assert set(TASKS) <= set(manager.all_tasks)
    assert "upft_paper" in manager.all_groups
    declared = set()
    for path in Path(tasks_dir()).glob("*.yaml"):
        if path.name.startswith("_"):
            continue
        cfg = yaml.load(path.read_text(), Loader=yaml.BaseLoader)  # `!function` tags are not needed here
        declared.add(cfg["group"] if "group" in cfg else cfg["task"])
    assert declared == set(TASKS) | {"upft_paper"}
    assert manager.task_index["upft_paper"].cfg["task"] == PAPER


def test_task_documents_are_the_training_questions(manager, data_dir):
    loaded = task_manager().load(TASKS)["tasks"]  # fresh manager: data_dir from the environment below
    for task in TASKS:
        docs = list(loaded[task].eval_docs)[:LIMIT]
        questions = load_questions(QUESTION_SET[task], "test", data_dir=data_dir, limit=LIMIT)
        assert [d["id"] for d in docs] == [q.id for q in questions], task
        assert [(d["question"], d["answer"], d["kind"]) for d in docs] == \
               [(q.question, q.answer, q.kind) for q in questions], task


@pytest.fixture(autouse=True)
def _local_data(monkeypatch, request):
    # The tasks load through $UPFT_BENCH_DATA_DIR (what `lm_eval --include_path` users set as well).
    if "data_dir" in request.fixturenames:
        monkeypatch.setenv("UPFT_BENCH_DATA_DIR", str(request.getfixturevalue("data_dir")))


# ---------------------------------------------------------------------------------------------- scripted LMs
def _lm_class():
    from lm_eval.api.model import LM

    class ScriptedLM(LM):
        """Answers each prompt through `answer(prompt)`; renders chat like lm-eval's HFLM does."""

        def __init__(self, tokenizer, answer):
            super().__init__()
            self.tokenizer, self.answer, self.prompts = tokenizer, answer, []

        def generate_until(self, requests, disable_tqdm=False):
            out = []
            for req in requests:
                prompt = req.args[0]
                self.prompts.append(prompt)
                out.append(self.answer(prompt))
            return out

        def loglikelihood(self, requests, disable_tqdm=False):
            raise NotImplementedError

        def loglikelihood_rolling(self, requests, disable_tqdm=False):
            raise NotImplementedError

        @property
        def tokenizer_name(self):
            return "scripted"

        def chat_template(self, chat_template=False):
            return self.tokenizer.chat_template

        def apply_chat_template(self, chat_history, add_generation_prompt=True):
            return self.tokenizer.apply_chat_template(chat_history, tokenize=False,
                                                      add_generation_prompt=add_generation_prompt)

    return ScriptedLM


@pytest.fixture(scope="module")
def chat_tokenizer():
    return build_tokenizer()


def _oracle_answers(tokenizer, data_dir, system=None) -> dict[str, tuple[str, object]]:
    """rendered prompt -> (reference response, question): what training would see for the same question."""
    table = {}
    for task in TASKS:
        for q in load_questions(QUESTION_SET[task], "test", data_dir=data_dir, limit=LIMIT):
            # Reference solutions where the project trains on them (gsm8k after conversion, synth), else the
            # gold answer boxed: both must be judged correct.
            if task in ("upft_gsm8k", "upft_synth"):
                response = q.solution
            else:
                response = f"So the final answer is $\\boxed{{{q.answer}}}$."
            table[render_prompt(tokenizer, q.question, system)] = (response, q)
    return table


def _run(lm, tasks, system=None):
    import lm_eval

    return lm_eval.simple_evaluate(model=lm, tasks=tasks, task_manager=task_manager(), limit=LIMIT,
                                   apply_chat_template=True, system_instruction=system, log_samples=True)


@pytest.mark.slow
def test_oracle_scores_100_and_wrong_answers_0_on_every_task_and_the_group(data_dir, chat_tokenizer):
    table = _oracle_answers(chat_tokenizer, data_dir)
    ScriptedLM = _lm_class()

    def oracle(prompt):
        assert prompt in table, f"prompt reaching the model differs from render_prompt:\n{prompt!r}"
        return table[prompt][0]

    def wrong(prompt):
        q = table[prompt][1]
        if q.kind == "choice":
            return f"The answer is \\boxed{{{'ABCD'[('ABCD'.index(q.answer) + 1) % 4]}}}."
        return "The answer is \\boxed{-987654321}."

    def silent(prompt):
        return "Let me think about how to approach this problem step by step first"

    tasks = ["upft_paper", "upft_gpqa", "upft_synth"]
    res = _run(ScriptedLM(chat_tokenizer, oracle), tasks)
    for task in TASKS:
        assert res["results"][task]["exact_match,none"] == 1.0, task
        assert res["results"][task]["extracted,none"] == 1.0, task
        assert res["results"][task]["stated,none"] == 1.0, task
        assert len(res["samples"][task]) == LIMIT
    assert res["groups"]["upft_paper"]["exact_match,none"] == 1.0

    res = _run(ScriptedLM(chat_tokenizer, wrong), tasks)
    for task in TASKS:
        assert res["results"][task]["exact_match,none"] == 0.0, task
        assert res["results"][task]["extracted,none"] == 1.0, task
    assert res["groups"]["upft_paper"]["exact_match,none"] == 0.0

    res = _run(ScriptedLM(chat_tokenizer, silent), ["upft_synth", "upft_gpqa"])
    for task in ("upft_synth", "upft_gpqa"):
        assert res["results"][task]["extracted,none"] == 0.0, task
        assert res["results"][task]["stated,none"] == 0.0, task
        assert res["results"][task]["exact_match,none"] == 0.0, task

    def stops_early(prompt):  # a solution cut after its first step: a number, but no stated answer
        return "Tom starts with 12 apples. He buys 5 more: 12 + 5 = 17."

    res = _run(ScriptedLM(chat_tokenizer, stops_early), ["upft_synth"])
    assert res["results"]["upft_synth"]["extracted,none"] == 1.0
    assert res["results"]["upft_synth"]["stated,none"] == 0.0


def test_group_reports_the_unweighted_mean(data_dir, chat_tokenizer):
    table = _oracle_answers(chat_tokenizer, data_dir)
    ScriptedLM = _lm_class()
    # Right on gsm8k only: the group mean must be 1/4 whatever the task sizes.
    lm = ScriptedLM(chat_tokenizer, lambda p: table[p][0] if table[p][1].id.startswith("gsm8k") else "\\boxed{-1}")
    res = _run(lm, ["upft_paper"])
    assert res["results"]["upft_gsm8k"]["exact_match,none"] == 1.0
    assert res["groups"]["upft_paper"]["exact_match,none"] == pytest.approx(0.25)


@pytest.mark.parametrize("style", ["none", "qwen_boxed"])
def test_system_instruction_reaches_the_prompt_as_render_prompt_builds_it(data_dir, chat_tokenizer, style):
    system = SYSTEM_PROMPTS[style]
    ScriptedLM = _lm_class()
    lm = ScriptedLM(chat_tokenizer, lambda p: "")
    _run(lm, ["upft_gpqa", "upft_synth"], system=system)
    expected = {render_prompt(chat_tokenizer, q.question, system)
                for name in ("gpqa", "synth") for q in load_questions(name, "test", data_dir=data_dir, limit=LIMIT)}
    assert set(lm.prompts) == expected
    if system:
        assert all(system in p for p in lm.prompts)


def test_gpqa_documents_identical_across_runs(data_dir):
    first = [d for d in task_manager().load(["upft_gpqa"])["tasks"]["upft_gpqa"].eval_docs]
    second = [d for d in task_manager().load(["upft_gpqa"])["tasks"]["upft_gpqa"].eval_docs]
    assert first == second
    assert {d["answer"] for d in first} == set("ABCD")
