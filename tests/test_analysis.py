"""The analysis' pure parts: where errors start against the questions' tricky steps, and the plain-words reading."""
from __future__ import annotations

from dataclasses import dataclass

from upft_bench.analysis import _errors, reading
from upft_bench.data import load_questions


@dataclass
class _Sample:
    text: str


def _chars(text, add_special_tokens=False):  # a tokenizer with one token per character
    return {"input_ids": list(text)}


def _wrong_at(question, step: int) -> str:
    """The gold solution with the 1-based `step`'s operand changed (the answer changes too)."""
    sentences = question.solution.split(". ")
    a, op, b, _eq, _c, *tag = sentences[step - 1].split(" ")
    b2 = int(b) + 1 if op == "+" or int(a) > int(b) else int(b) - 1
    sentences[step - 1] = f"{a} {op} {b2} = {int(a) + b2 if op == '+' else int(a) - b2} " + " ".join(tag)
    return ". ".join(sentences)


def test_errors_count_first_errors_on_tricky_steps():
    questions = load_questions("synth", "train", limit=200)
    tricky = next(q for q in questions if q.meta["tricks"] and q.meta["steps"] >= 3)
    step = tricky.meta["tricks"][0][0] + 1  # 1-based
    other = next(s for s in range(1, tricky.meta["steps"] + 1) if s not in {t + 1 for t, _ in tricky.meta["tricks"]})
    per_question = {tricky.id: [(_Sample(tricky.solution), True), (_Sample(_wrong_at(tricky, step)), False),
                                (_Sample(_wrong_at(tricky, step)), False), (_Sample(_wrong_at(tricky, other)), False)]}
    summary = _errors([tricky], per_question, _chars)
    assert summary["wrong_samples"] == 3 and summary["right_samples"] == 1
    assert summary["error_kinds"] == {"operand": 3}
    assert summary["at_tricky_step"] == round(2 / 3, 4)
    assert summary["first_wrong_step_share_by_index"][step] >= 2 / 3


def test_reading_names_greedy_accuracy_and_what_prefixes_hold():
    k8 = {"top_share": {"mean": 0.9}, "top_continuation_accuracy": 40.0, "other_continuation_accuracy": 30.0,
          "reasoning_share": 0.97}
    results = {"ks": {"8": k8}, "full_accuracy": 41.0, "greedy_accuracy": 44.0, "errors": None}
    text = reading(results, 8)
    assert "greedy decoding is 44.0% correct" in text
    assert "97% of the k=8 prefixes hold part of a reasoning step" in text
    assert "UPFT's premise holds here" in text
    results["ks"]["8"] = {**k8, "top_continuation_accuracy": 30.0}
    assert "does not hold" in reading(results, 8)
