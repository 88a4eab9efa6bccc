"""Hyper-parameter selection on a validation split: sweep settings, per-method settings, greedy validation.

    upft-bench compare baselines/smoke.yaml --sweep train.lr=1e-4,2e-4 --output results/sweep
    # YAML:  sweep: {train.lr: [5.0e-5, 1.0e-4, 2.0e-4]}     data: {val_limit: 100}
    #        per_method: {sft: {train.lr: 1.0e-4}}            (a method's own fixed settings)

Every method that trains is trained once per setting of the sweep's grid (all combinations of the listed
values, in the order given) and each model is scored on the validation questions: `data.val_limit` questions of
the training question set that follow the first `data.train_limit` (so disjoint from what any method trains on,
and from the test tasks, which are never read for selection). The setting with the highest validation accuracy
(the first of equals, in grid order) is the method's; only its model is evaluated on the test tasks. Sampling
does not depend on the training settings, so every setting of a method trains on the same samples.

Validation is greedy decoding with the sampler (same chat-templated prompt as the lm-eval tasks) up to
`eval.max_gen_toks` tokens (else `method.max_new_tokens`), judged by the project's checker.
"""
from __future__ import annotations

import itertools
from pathlib import Path

from upft_bench.compute import model_shape, sampling_flops
from upft_bench.config import from_dict, to_dict
from upft_bench.data import load_questions
from upft_bench.experiment import ExperimentConfig
from upft_bench.grading import extract_answer, grade_many
from upft_bench.models import load_tokenizer
from upft_bench.prefixes import first_error
from upft_bench.sampling import SampleRequest, SamplingConfig, sample_solutions


def grid(sweep: dict[str, list]) -> list[dict]:
    """Every combination of the sweep's values, first key slowest; [{}] without a sweep."""
    keys = list(sweep)
    return [dict(zip(keys, values)) for values in itertools.product(*(sweep[k] for k in keys))]


def setting_tag(setting: dict) -> str:
    """A folder-safe name of a setting: `train.lr=0.0001,method.prefix_tokens=8`."""
    return ",".join(f"{k}={v}" for k, v in setting.items()).replace("/", "_") or "default"


def configured(cfg, method: str, setting: dict):
    """The experiment config a method trains under: its `per_method` settings, then the sweep setting."""
    changes = {**cfg.per_method.get(method, {}), **setting}
    if not changes:
        return cfg
    data = to_dict(cfg)
    for key, value in changes.items():
        section, _, name = key.partition(".")
        data[section][name] = value
    data.update(sweep={}, per_method={})
    return from_dict(ExperimentConfig, data, where=f"{method} {setting_tag(changes)}")


def validation_questions(cfg):
    """The validation questions: `val_limit` questions right after the first `train_limit` of the training set."""
    if not cfg.data.val_limit:
        return []
    if cfg.data.train_limit is None:
        raise ValueError("data.val_limit needs data.train_limit: the validation questions follow the training ones")
    pool = load_questions(cfg.data.train, cfg.data.train_split, data_dir=cfg.data.resolved_dir(),
                          limit=cfg.data.train_limit + cfg.data.val_limit, fields=cfg.data.fields)
    held_out = pool[cfg.data.train_limit:]
    if len(held_out) < cfg.data.val_limit:
        raise ValueError(f"data.val_limit={cfg.data.val_limit}: {cfg.data.train}/{cfg.data.train_split} has only "
                         f"{len(held_out)} questions after the first {cfg.data.train_limit}")
    return held_out


def validate(model_path: str, questions, cfg, out_path: Path) -> dict:
    """Greedy accuracy of `model_path` on validation `questions`: {"accuracy", "correct", "n", "flops",
    "profile"} (outputs saved; `profile`: what the outputs look like, `output_profile`)."""
    max_new = cfg.eval.max_gen_toks or cfg.method.max_new_tokens
    greedy = SamplingConfig(temperature=0.0, batch_size=cfg.eval.batch_size, seed=0, system=cfg.eval.system,
                            device=cfg.eval.device)
    samples = sample_solutions(model_path, [SampleRequest(q, 1, max_new) for q in questions], greedy, out_path,
                               progress=False)
    by_id = {q.id: q for q in questions}
    verdicts = grade_many([(s.text, by_id[s.question_id].answer, by_id[s.question_id].kind) for s in samples],
                          timeout=cfg.method.grade_timeout)
    return {"accuracy": sum(verdicts) / len(verdicts) if verdicts else 0.0, "correct": int(sum(verdicts)),
            "n": len(verdicts), "flops": _flops(model_path, samples),
            "profile": output_profile(samples, [by_id[s.question_id] for s in samples])}


def output_profile(samples, questions) -> dict:
    """What a model's outputs look like, beyond accuracy: why a tuned model scores lower than its base.

    `stated`: share that state a final answer (boxed, "the answer is", ...; no last-number guess);
    `mean_tokens`: mean generated tokens (the stop token included); `stopped_short`: share that ended with the
    stop token without stating an answer (stopped before a whole solution); `first_step`: share whose first
    equation is the reference solution's first step, computed right (None unless every question has a
    checkable synthetic solution). `samples[i]` answers `questions[i]`.
    """
    n = len(samples)
    if not n:
        return {"stated": None, "mean_tokens": None, "stopped_short": None, "first_step": None}
    stated = [extract_answer(s.text, q.kind, stated=True) is not None for s, q in zip(samples, questions)]
    short = sum(s.finish_reason == "stop" and not ok for s, ok in zip(samples, stated))
    checkable = all(q.solution and "tricks" in q.meta for q in questions)  # synthetic: checkable chains
    first = (sum(first_error(s.text, q.solution)["first_wrong_step"] not in (0, 1) for s, q in zip(samples, questions))
             if checkable else None)
    return {"stated": round(sum(stated) / n, 4), "mean_tokens": round(sum(s.num_tokens for s in samples) / n, 2),
            "stopped_short": round(short / n, 4), "first_step": None if first is None else round(first / n, 4)}


def _flops(model_path: str, samples) -> int | None:
    """Generation FLOPs of the validation samples (None when the model's shape is unknown)."""
    shape = model_shape(model_path)
    return sampling_flops(shape, samples, load_tokenizer(model_path)) if shape else None


def choose(scores: list[tuple[dict, dict]]) -> int:
    """Index of the setting with the highest validation accuracy; the first of equals (grid order)."""
    best = max(score["accuracy"] for _, score in scores)
    return next(i for i, (_, score) in enumerate(scores) if score["accuracy"] == best)
