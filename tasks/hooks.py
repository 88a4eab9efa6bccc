"""Hooks the upft_* task YAMLs call (`!function upft_bench.tasks.hooks.<name>`): documents, prompt, score.

    lm_eval --include_path "$(upft-bench tasks --path)" --tasks upft_synth --model hf \
        --model_args pretrained=PATH --apply_chat_template --limit 8

Documents come from `upft_bench.data.load_questions`, the loader training uses too, so a task's documents
and the training questions of the same name are the same records. Scores come from `upft_bench.grading`,
the checker RFT's filter uses, so "correct" means one thing everywhere.
"""
from __future__ import annotations

import json


def load_docs(question_set: str, question_split: str = "test", data_dir: str | None = None,
              shuffle_seed: int = 0, synth_n: int | None = None, synth_seed: int | None = None,
              fields: dict | None = None, **_other_metadata):
    """`custom_dataset` loader: {split: datasets.Dataset} of one question set (a name, or your own file or
    hub: dataset, whose columns `fields` names: tasks made by `upft_bench.evaluation.write_own_tasks`).

    lm-eval passes the task's `metadata` (plus anything given to `--metadata` / TaskManager) as keyword
    arguments; keys this loader does not use (version, model args, ...) are ignored.
    """
    import datasets

    from upft_bench.data import load_questions

    questions = load_questions(question_set, question_split, data_dir=data_dir, shuffle_seed=int(shuffle_seed),
                               synth_n=None if synth_n is None else int(synth_n),
                               synth_seed=None if synth_seed is None else int(synth_seed), fields=fields)
    docs = [to_doc(q) for q in questions]
    return {question_split: datasets.Dataset.from_list(docs)}


def to_doc(question) -> dict:
    """A `Question` as an lm-eval document (flat strings: Arrow-friendly, readable in sample logs)."""
    return {"id": question.id, "question": question.question, "answer": question.answer,
            "kind": question.kind, "solution": question.solution or "",
            "meta": json.dumps(question.meta, ensure_ascii=False, sort_keys=True)}


def doc_to_text(doc: dict) -> str:
    """The bare question, verbatim: lm-eval wraps it in the chat template (and system turn) itself."""
    return doc["question"]


def doc_to_target(doc: dict) -> str:
    return doc["answer"]


def process_results(doc: dict, results: list[str]) -> dict[str, float]:
    """exact_match: the checker's verdict; extracted: 1 when an answer could be read from the output at all
    (last-number fallback included); stated: 1 when the output states a final answer (boxed, ####, "the answer
    is"), so outputs that stop early, whose last number `extracted` still finds, show up."""
    from upft_bench.grading import extract_answer, is_correct

    output = results[0]
    return {
        "exact_match": float(is_correct(output, doc["answer"], kind=doc["kind"])),
        "extracted": float(extract_answer(output, kind=doc["kind"]) is not None),
        "stated": float(extract_answer(output, kind=doc["kind"], stated=True) is not None),
    }
