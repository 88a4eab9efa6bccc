"""`upft-bench analyze`: does UPFT's premise hold for this model on this data? Measured before any training.

    upft-bench analyze                                   # the offline default's base model, a few minutes on CPU
    upft-bench analyze baselines/smoke.yaml --output results/smoke/analysis     # seconds
    upft-bench analyze --model PATH --data gsm8k --data-dir ../shared/data --k 8,16,32 --samples 16 --rollouts 4

UPFT trains on the first k tokens of one sample per question. It rests on two claims (Ji et al. 2025), written
there as p(correct | x) = sum over prefixes of p(prefix | x) * p(correct | prefix, x):
  * prefix self-consistency: the first k tokens of different samples to one question are largely shared;
  * continuations from the shared prefix are about as accurate as full samples, because errors appear late.
Measured here, with the experiment config's model, training questions, prompt and sampling settings, and the
same sampler as `compare` (pools cached and resumable under OUTPUT/samples):
  1. per k: distinct k-token prefixes among M samples per question (on token ids), the share of samples that
     carry the most common one, the prefix entropy; mean and quartiles over questions;
  2. per k: R continuations from each question's most common prefix and from a random other prefix, and the share
     that reach a correct answer (the project's checker), against the accuracy of the full samples;
  3. where errors start, on the synthetic task, whose steps can be checked against the reference chain: the first
     wrong step of every wrong sample (index and token offset), the share of wrong-answer samples right until the
     last step, and of right-answer samples whose chain has an error (other tasks: skipped, said so);
  4. what a k-token prefix contains: the share that holds part of a reasoning step (synthetic task: it reaches
     into a computation, "12 +"), rather than only restating the question;
  5. the accuracy of greedy decoding on the same questions, against the samples' (sampling should not add many
     errors that greedy decoding removes, as on real models).
Writes analysis.md, analysis.json (every number) and analysis.png, and prints a one-paragraph reading.
"""
from __future__ import annotations

import dataclasses
import hashlib
import random
import time
from pathlib import Path

from tabulate import tabulate

from upft_bench.atomic import write_json, write_text
from upft_bench.console import say
from upft_bench.data import load_questions
from upft_bench.gguf import resolve_model
from upft_bench.grading import grade_many
from upft_bench.prefixes import chain_summary, first_error, holds_reasoning, other_prefix, prefix_consistency, summarize
from upft_bench.pretrain import build_base_model
from upft_bench.quiet import pyplot, save_figure
from upft_bench.sampling import SampleRequest, sample_solutions

PREMISE_SHARE = 0.5  # prefixes "largely shared": the most common prefix carries at least this share of samples
PREMISE_GAP = 2.0  # continuations "about as accurate": within this many points of the full samples (or better)




def run_analysis(cfg, out: Path, model: str | None = None) -> dict:
    """All four analyses for `cfg` (an ExperimentConfig) on `model` (default: the config's base model)."""
    # heavy (transformers): loaded on use
    from transformers import AutoTokenizer

    settings = cfg.analyze
    out = Path(out)
    started = time.time()

    model = resolve_model(model, announce=say) if model else _base_model(cfg)
    tokenizer = AutoTokenizer.from_pretrained(model)
    questions = load_questions(cfg.data.train, cfg.data.train_split, data_dir=cfg.data.resolved_dir(),
                               limit=settings.questions, fields=cfg.data.fields)
    max_new = settings.max_new_tokens or cfg.method.max_new_tokens
    say(f"[analyze] {model}: {len(questions)} questions from {cfg.data.train}/{cfg.data.train_split}, "
         f"{settings.samples} samples each, k = {', '.join(map(str, settings.ks))}, {settings.rollouts} "
         "continuations per prefix")
    by_id = {q.id: q for q in questions}
    cost = {"sampled_tokens": 0, "samples": 0}

    # Full samples: what the model does on its own.
    full = _pool(model, [_request(q, settings.samples, max_new) for q in questions], cfg, out, "full", cost)
    verdicts = _grade([(s.text, by_id[s.question_id]) for s in full], cfg, grade_many)
    per_question = {q.id: [] for q in questions}
    for s, ok in zip(full, verdicts):
        per_question[s.question_id].append((s, ok))
    full_accuracy = 100.0 * sum(verdicts) / len(verdicts)
    greedy = _pool(model, [_request(q, 1, max_new) for q in questions], cfg, out, "greedy", cost,
                   sampling=dataclasses.replace(cfg.sampling, temperature=0.0))
    greedy_verdicts = _grade([(s.text, by_id[s.question_id]) for s in greedy], cfg, grade_many)
    greedy_accuracy = 100.0 * sum(greedy_verdicts) / len(greedy_verdicts)

    results = {"model": model, "questions": len(questions), "samples_per_question": settings.samples,
               "rollouts": settings.rollouts, "max_new_tokens": max_new, "full_accuracy": round(full_accuracy, 2),
               "greedy_accuracy": round(greedy_accuracy, 2),
               "ks": {}, "synthetic": cfg.data.train == "synth"}
    for k in settings.ks:
        results["ks"][str(k)] = _analyse_k(k, questions, per_question, model, tokenizer, cfg, out, max_new, cost)
        r = results["ks"][str(k)]
        say(f"[analyze] k={k}: top prefix {100 * r['top_share']['mean']:.0f}% of samples, continuations "
             f"{r['top_continuation_accuracy']:.1f}% (other prefix {r['other_continuation_accuracy']}) vs "
             f"{full_accuracy:.1f}% full")
    results["errors"] = _errors(questions, per_question, tokenizer) if results["synthetic"] else None
    results["cost"] = cost
    results["seconds"] = round(time.time() - started, 2)
    results["reading"] = reading(results, cfg.method.prefix_tokens)

    write_json(out / "analysis.json", results)
    write_text(out / "analysis.md", render(results, cfg.method.prefix_tokens))
    plot(results, out / "analysis.png")
    return results


def _base_model(cfg) -> str:
    if cfg.model.path:
        return resolve_model(cfg.model.path, cfg.model.gguf_file, announce=say)

    return str(build_base_model(cfg.pretrain))


def _request(question, n: int, max_new: int, prefix: tuple[int, ...] = ()):
    return SampleRequest(question, n, max(1, max_new - len(prefix)), tuple(prefix))


def _pool(model: str, requests, cfg, out: Path, name: str, cost: dict, sampling=None):
    """Samples for `requests` in a pool file named by their content (cached, resumable), counted in `cost`.

    `sampling` (default the config's) sets the decoding, e.g. temperature 0 for greedy."""
    digest = hashlib.sha256()
    for r in requests:
        digest.update(f"{r.question.id}\t{r.n}\t{r.max_new_tokens}\t{list(r.prefix_ids)}\n".encode())
    path = out / "samples" / f"{name}-{digest.hexdigest()[:12]}.jsonl"
    samples = sample_solutions(model, requests, sampling or cfg.sampling, path, progress=True)
    cost["sampled_tokens"] += sum(s.num_tokens for s in samples)
    cost["samples"] += len(samples)
    return samples


def _grade(pairs, cfg, grade_many) -> list[bool]:
    return grade_many([(text, q.answer, q.kind) for text, q in pairs], timeout=cfg.method.grade_timeout)


def _analyse_k(k, questions, per_question, model, tokenizer, cfg, out, max_new, cost) -> dict:
    """Consistency, continuation accuracy and prefix content at one k."""
    stats, tops, others, reasoning = [], {}, {}, []
    for q in questions:
        prefixes = [tuple(s.token_ids[:k]) for s, _ in per_question[q.id]]
        c = prefix_consistency(prefixes)
        stats.append(c)
        tops[q.id] = c["top"]
        other = other_prefix(prefixes, c["top"], random.Random(f"{cfg.seed}:{q.id}:{k}"))
        if other is not None:
            others[q.id] = other
        if cfg.data.train == "synth":
            reasoning += [holds_reasoning(tokenizer.decode(p, skip_special_tokens=True)) for p in prefixes]

    def continuations(chosen: dict, name: str) -> float | None:
        if not chosen:
            return None
        requests = [_request(q, cfg.analyze.rollouts, max_new, chosen[q.id]) for q in questions if q.id in chosen]
        samples = _pool(model, requests, cfg, out, f"{name}-k{k}", cost)
        by_id = {q.id: q for q in questions}
        texts = [(tokenizer.decode(list(chosen[s.question_id]) + s.token_ids, skip_special_tokens=True),
                  by_id[s.question_id]) for s in samples]
        return round(100.0 * sum(_grade(texts, cfg, grade_many)) / len(texts), 2)

    return {
        "distinct": summarize([c["distinct"] for c in stats]),
        "top_share": summarize([c["top_share"] for c in stats]),
        "entropy_bits": summarize([c["entropy_bits"] for c in stats]),
        "top_continuation_accuracy": continuations(tops, "top"),
        "other_continuation_accuracy": continuations(others, "other"),
        "questions_with_other_prefix": len(others),
        "reasoning_share": round(sum(reasoning) / len(reasoning), 4) if reasoning else None,
    }


def _errors(questions, per_question, tokenizer) -> dict:
    """Where the chains of the full samples first go wrong (synthetic task: checkable steps)."""
    records, offsets, kinds, at_trick = [], [], {}, []
    for q in questions:
        tricky = {int(step) + 1 for step, _kind in q.meta.get("tricks", ())}  # 1-based, as first_wrong_step
        for s, ok in per_question[q.id]:
            e = first_error(s.text, q.solution)
            records.append({"correct": bool(ok), "first_wrong_step": e["first_wrong_step"], "steps": e["steps"]})
            if not ok and e["first_wrong_step"] is not None:
                kinds[e["kind"]] = kinds.get(e["kind"], 0) + 1
                at_trick.append(e["first_wrong_step"] in tricky)
                cut = len(s.text) if e["char_offset"] is None else e["char_offset"]
                offsets.append(len(tokenizer(s.text[:cut], add_special_tokens=False)["input_ids"]))
    summary = chain_summary(records)
    summary["first_wrong_token_offset"] = summarize(offsets) if offsets else None
    summary["error_kinds"] = kinds
    # Share of located first errors that fall on one of the question's tricky steps (upft_bench.synthetic).
    summary["at_tricky_step"] = round(sum(at_trick) / len(at_trick), 4) if at_trick else None
    summary["gold_steps"] = summarize([r["steps"] for r in records])
    return summary


# ---------------------------------------------------------------------------------------------- report
def reading(results: dict, k: int) -> str:
    """The plain-words reading at the method's k (or the nearest analysed k)."""
    ks = [int(x) for x in results["ks"]]
    at = min(ks, key=lambda x: (abs(x - k), x))
    r = results["ks"][str(at)]
    share = 100 * r["top_share"]["mean"]
    top, full = r["top_continuation_accuracy"], results["full_accuracy"]
    parts = [f"Prefixes agree {share:.0f}% at k={at} (mean share of samples carrying a question's most common "
             f"prefix); continuations from the top prefix are {top:.1f}% correct vs {full:.1f}% for full samples"]
    if r["other_continuation_accuracy"] is not None:
        parts[-1] += f" ({r['other_continuation_accuracy']:.1f}% from another prefix)"
    if results.get("greedy_accuracy") is not None:
        parts.append(f"greedy decoding is {results['greedy_accuracy']:.1f}% correct on the same questions")
    if r.get("reasoning_share") is not None:
        parts.append(f"{100 * r['reasoning_share']:.0f}% of the k={at} prefixes hold part of a reasoning step")
    errors = results.get("errors")
    if errors and errors.get("median_first_wrong_step") is not None:
        parts.append(f"errors start at step {errors['median_first_wrong_step']:g} on median, of "
                     f"{errors['gold_steps']['median']:g}")
    shared, accurate = share >= 100 * PREMISE_SHARE, top >= full - PREMISE_GAP
    if shared and accurate:
        verdict = "UPFT's premise holds here"
    else:
        failed = ([f"prefixes are not largely shared (under {100 * PREMISE_SHARE:.0f}%)"] if not shared else []) + (
            [f"continuations from the shared prefix lose more than {PREMISE_GAP:g} points"] if not accurate else [])
        verdict = "UPFT's premise does not hold here: " + " and ".join(failed)
    return "; ".join(parts) + f". {verdict}."


def render(results: dict, k: int) -> str:
    rows = []
    for kk, r in results["ks"].items():
        q = r["top_share"]
        share = f"{100 * q['mean']:.0f} ({100 * q['q1']:.0f}-{100 * q['q3']:.0f})"
        rows.append([kk, f"{r['distinct']['mean']:.1f}", share,
                     f"{r['entropy_bits']['mean']:.2f}", _pct(r["top_continuation_accuracy"]),
                     _pct(r["other_continuation_accuracy"]),
                     "" if r.get("reasoning_share") is None else f"{100 * r['reasoning_share']:.0f}"])
    parts = [f"### Prefix analysis of `{results['model']}`\n",
             f"{results['questions']} questions, {results['samples_per_question']} samples each (full samples "
             f"{results['full_accuracy']:.1f}% correct; greedy decoding {results['greedy_accuracy']:.1f}%), "
             f"{results['rollouts']} continuations per prefix.\n",
             tabulate(rows, headers=["k", "distinct prefixes", "top prefix share % (q1-q3)", "entropy bits",
                                     "top-prefix continuations correct %", "other-prefix continuations correct %",
                                     "reasoning %"], tablefmt="github", disable_numparse=True) + "\n",
             "Distinct prefixes and entropy are means over questions of their M samples' k-token prefixes (token "
             "ids); the top prefix share is the share of a question's samples that carry its most common prefix. "
             "Continuations are sampled from that prefix (and from a random other one) and judged by the checker; "
             "reasoning % is the share of prefixes that hold part of a reasoning step (a number and the operator "
             "applied to it), not only a restatement of the question.\n"]
    errors = results.get("errors")
    if errors:
        by_index = ", ".join(f"step {i}: {100 * v:.0f}%" for i, v in sorted(
            errors["first_wrong_step_share_by_index"].items(), key=lambda kv: int(kv[0])))
        parts += ["### Where errors start\n",
                  f"Of {errors['wrong_samples']} wrong-answer samples, the first wrong step (1 = the first "
                  f"equation): {by_index}; median step {errors['median_first_wrong_step']}"
                  + (f", median token offset {errors['first_wrong_token_offset']['median']:.0f}"
                     if errors.get("first_wrong_token_offset") else "") + ". "
                  "Wrong answers whose chain was right until the last step: "
                  f"{_share(errors['wrong_right_until_last'])}; "
                  f"right answers whose chain has an error: {_share(errors['right_with_error'])} (the answer check "
                  f"passes them). Error kinds: {errors['error_kinds']}"
                  + (f"; first errors on one of the question's tricky steps: {_share(errors['at_tricky_step'])}"
                     if errors.get("at_tricky_step") is not None else "") + ".\n"]
    else:
        parts.append("Where errors start needs checkable steps (the synthetic task); skipped for this question set.\n")
    parts.append(f"Cost of the analysis: {results['cost']['samples']:,} samples, "
                 f"{results['cost']['sampled_tokens']:,} sampled tokens, {results['seconds']:.0f} s.\n")
    parts.append(f"**Reading.** {results['reading']}\n")
    return "\n".join(parts)


def _pct(x) -> str:
    return "" if x is None else f"{x:.1f}"


def _share(x) -> str:
    return "n/a" if x is None else f"{100 * x:.0f}%"


def plot(results: dict, path: Path) -> None:
    """Prefix agreement and continuation accuracy against k (in the style of the paper's prefix figures)."""
    plt = pyplot()

    ks = [int(k) for k in results["ks"]]
    rs = [results["ks"][str(k)] for k in ks]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    share = [100 * r["top_share"]["mean"] for r in rs]
    axes[0].plot(ks, share, marker="o", label="top prefix share (mean)")
    axes[0].fill_between(ks, [100 * r["top_share"]["q1"] for r in rs], [100 * r["top_share"]["q3"] for r in rs],
                         alpha=0.2, label="quartiles over questions")
    axes[0].set(xlabel="prefix length k (tokens)", ylabel="% of samples", title="prefix self-consistency",
                ylim=(0, 105))
    axes[1].plot(ks, [r["top_continuation_accuracy"] for r in rs], marker="o", label="from the top prefix")
    if any(r["other_continuation_accuracy"] is not None for r in rs):
        axes[1].plot(ks, [r["other_continuation_accuracy"] for r in rs], marker="s", label="from another prefix")
    axes[1].axhline(results["full_accuracy"], color="0.4", linestyle="--", label="full samples")
    axes[1].set(xlabel="prefix length k (tokens)", ylabel="% correct", title="accuracy of continuations")
    for ax in axes:
        ax.set_xscale("log", base=2)
        ax.set_xticks(ks, [str(k) for k in ks])
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    save_figure(fig, path)


# ---------------------------------------------------------------------------------------------- CLI
