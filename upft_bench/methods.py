"""Methods as data: what each method samples, and how its samples become training examples (docs/METHODS.md).

    from upft_bench.methods import METHODS, MethodConfig
    method, cfg = METHODS["upft"], MethodConfig(prefix_tokens=16, structure_ratio=0.1, seed=0)
    requests = method.plan(questions, cfg)                          # -> sampling.sample_solutions
    examples = method.build(questions, samples, tokenizer, cfg)     # -> train.train

`METHODS` is the one registry: every list of method ids, every label and the cost reference (`COST_REFERENCE`)
derive from it. `base` is a method too: it samples nothing and trains nothing (`trains` is False), so its
model is the untouched base model.

| method            | samples per question            | examples                                           | labels |
|-------------------|---------------------------------|----------------------------------------------------|--------|
| base              | none                            | none: the base model is evaluated as it is         | no     |
| sft               | none                            | gold reference solution                            | yes    |
| sft_self          | 1 full                          | that sample, unfiltered                            | no     |
| rft               | N full (rft_samples)            | <= rft_keep distinct checker-verified samples      | yes    |
| upft              | 1: k tokens (prefix), full (p) | prefix: instruction + first k ids; structure: full | no     |
| upft_label_filter | RFT's pool                      | UPFT construction on one verified sample           | yes    |
| vstar             | RFT's pool (+ one per iteration) | generator: as RFT; verifier: DPO on (verified,     | yes    |
|                   |                                 | wrong) pairs of one question                       |        |

Decisions docs/METHODS.md records:
- Every response ends with the end-of-turn id (`prompts.end_of_turn_id`), appended here; prefixes are cut on
  the stored generated ids, never by re-tokenising text.
- A full-length sample that hit max_new_tokens without EOS ("truncated") is dropped from full examples
  (sft_self, UPFT structure) by default: appending EOS to it would teach stopping mid-solution, which a tiny
  base model then does on every prompt. `keep_truncated=True` keeps it WITHOUT an appended EOS. Dropping uses no labels.
  RFT and the label filter never accept a truncated sample: a cut answer is not a verified answer.
- A sample with no token before its stop token yields no example (it would only teach "answer nothing").
- RFT keeps the lowest-index verified samples whose texts differ (after stripping whitespace).
- The UPFT label filter draws its structure subset among the questions that have a verified sample.
- V-STaR's verifier pairs a complete verified sample (chosen) with a complete sample the checker rejects
  (rejected) of the same question, distinct texts on each side; `vstar_pairs` pairs per question, taken in
  the order (0,0), (0,1), (1,0), (0,2), (1,1), ... of (chosen, rejected) sample ranks. Truncated samples are in
  no pair (a cut solution is neither a verified nor a finished wrong one).
"""
from __future__ import annotations

import logging
import math
import random
from dataclasses import dataclass
from typing import Callable

from upft_bench.data import DataError, Question
from upft_bench.examples import Example, count_tuned_tokens
from upft_bench.grading import MAX_TIMEOUT, grade_many
from upft_bench.prompts import PREFIX_INSTRUCTION, encode_prompt, end_of_turn_id, render_prompt, system_prompt
from upft_bench.sampling import Sample, SampleRequest, SamplesFileError

log = logging.getLogger(__name__)


@dataclass
class MethodConfig:
    prefix_tokens: int = 16  # k: generated tokens a prefix example keeps (paper range 8-32)
    structure_ratio: float = 0.1  # p: share of questions whose UPFT example keeps the full response
    rft_samples: int = 16  # N: full samples per question for rft / upft_label_filter (paper's counts fit 16)
    rft_keep: int = 1  # distinct verified responses kept per question (the paper's tuned-token counts fit 1)
    max_new_tokens: int = 512  # generation limit of full samples
    keep_truncated: bool = False  # keep length-limited full samples in sft_self / UPFT structure (without EOS)
    seed: int | None = None  # structure-subset draw; None: 0 (compare sets the experiment seed)
    system: str | None = None  # prompt style (prompts.SYSTEM_PROMPTS); must match the sampling config's
    grade_timeout: float = 5.0  # seconds per answer check (RFT filter), at most grading.MAX_TIMEOUT
    # V-STaR (Hosseini et al. 2024): preference pairs per question for its verifier, generator iterations (each
    # samples from the previous generator and retrains from the base on all verified samples so far), DPO's beta
    vstar_pairs: int = 1
    vstar_iterations: int = 1
    vstar_beta: float = 0.1
    vstar_verifier_lr: float | None = None  # the verifier's learning rate; None: train.lr (the method's)

    def __post_init__(self):
        if min(self.prefix_tokens, self.max_new_tokens, self.rft_samples, self.rft_keep, self.vstar_pairs,
               self.vstar_iterations) < 1:
            raise ValueError("method: prefix_tokens, max_new_tokens, rft_samples, rft_keep, vstar_pairs and "
                             "vstar_iterations must be >= 1")
        if not 0 < self.vstar_beta < math.inf:
            raise ValueError(f"method.vstar_beta must be > 0, got {self.vstar_beta}")
        if self.vstar_verifier_lr is not None and not 0 < self.vstar_verifier_lr < math.inf:
            raise ValueError(f"method.vstar_verifier_lr must be > 0 (or null: train.lr), got {self.vstar_verifier_lr}")
        if not 0 <= self.structure_ratio <= 1:
            raise ValueError(f"method.structure_ratio must be in [0, 1], got {self.structure_ratio}")
        if not 0 < self.grade_timeout <= MAX_TIMEOUT:  # NaN fails too
            raise ValueError(f"method.grade_timeout must be seconds in (0, {MAX_TIMEOUT:g}], got {self.grade_timeout}")
        if self.seed is not None and self.seed < 0:
            raise ValueError(f"method.seed must be >= 0 (or null: the experiment's), got {self.seed}")
        system_prompt(self.system)


@dataclass(frozen=True)
class Method:
    name: str  # the id used in configs, result folders and table rows
    label: str  # a few words for tables and plots
    description: str
    uses_labels: bool  # needs gold answers or solutions
    plan: Callable[[list[Question], MethodConfig], list[SampleRequest]]
    build: Callable[..., list[Example]] | None  # (questions, samples, tokenizer, cfg) -> examples; None: no training
    # A verifier trained beside the model (V-STaR): (questions, samples, tokenizer, cfg) -> its preference pairs,
    # consecutive chosen/rejected examples for the training core's dpo objective; None: no verifier.
    pairs: Callable[..., list[Example]] | None = None

    @property
    def trains(self) -> bool:
        """False for `base`: its model is the base model itself."""
        return self.build is not None


# ---------------------------------------------------------------------------------------------- pieces
def structure_subset(questions: list[Question], p: float, seed: int | None) -> set[str]:
    """Seeded uniform draw of round(p * |Q|) question ids (half rounds up); independent of the questions' order."""
    ids = sorted(q.id for q in questions)
    count = int(math.floor(p * len(ids) + 0.5))
    return set(random.Random(f"upft-structure-{seed or 0}").sample(ids, count))


def _prompt(tokenizer, question: Question, cfg: MethodConfig, instruction: str = "") -> list[int]:
    return encode_prompt(tokenizer, question.question, system_prompt(cfg.system), instruction)


def _by_question(questions: list[Question], samples: list[Sample], tokenizer, cfg: MethodConfig):
    """Samples grouped per question (index order); unknown ids or prompts from other settings are errors."""
    grouped: dict[str, list[Sample]] = {q.id: [] for q in questions}
    expected = {q.id: render_prompt(tokenizer, q.question, system_prompt(cfg.system)) for q in questions}
    for s in samples:
        if s.question_id not in grouped:
            raise SamplesFileError(f"sample {s.question_id}#{s.index} belongs to no question of this question set")
        if s.prompt != expected[s.question_id]:
            raise SamplesFileError(
                f"sample {s.question_id}#{s.index} was generated from prompt {s.prompt!r}, but this method config "
                f"renders {expected[s.question_id]!r}: sampling.system and method.system must agree"
            )
        grouped[s.question_id].append(s)
    for group in grouped.values():
        group.sort(key=lambda s: s.index)
    return grouped


def _full(tokenizer, question, sample: Sample, cfg: MethodConfig, eos: int, kind: str) -> Example | None:
    """Bare question -> the whole generated response + EOS; a truncated sample per `cfg.keep_truncated`."""
    if not sample.token_ids:
        return None
    if sample.finish_reason == "stop":
        return Example(question.id, _prompt(tokenizer, question, cfg), list(sample.token_ids) + [eos], kind)
    if cfg.keep_truncated:
        return Example(question.id, _prompt(tokenizer, question, cfg), list(sample.token_ids), kind)
    return None


def _prefix(tokenizer, question, sample: Sample, cfg: MethodConfig, eos: int) -> Example | None:
    """Question + prefix instruction -> the first k generated ids + EOS (all of them if it stopped earlier)."""
    if not sample.token_ids:
        return None
    return Example(question.id, _prompt(tokenizer, question, cfg, PREFIX_INSTRUCTION),
                   list(sample.token_ids[: cfg.prefix_tokens]) + [eos], "prefix")


def _verdicts(questions, grouped, cfg: MethodConfig) -> tuple[dict[str, list[Sample]], dict[str, list[Sample]]]:
    """Per question, its complete samples the checker accepts and those it rejects (each in index order)."""
    gold = {q.id: q for q in questions}
    candidates = [s for q in questions for s in grouped[q.id] if s.finish_reason == "stop"]
    verdicts = grade_many([(s.text, gold[s.question_id].answer, gold[s.question_id].kind) for s in candidates],
                          timeout=cfg.grade_timeout)
    ok: dict[str, list[Sample]] = {q.id: [] for q in questions}
    wrong: dict[str, list[Sample]] = {q.id: [] for q in questions}
    for s, good in zip(candidates, verdicts):
        (ok if good else wrong)[s.question_id].append(s)
    return ok, wrong


def _verified(questions, grouped, cfg: MethodConfig) -> dict[str, list[Sample]]:
    """Per question, its complete samples whose final answer the checker accepts (index order)."""
    return _verdicts(questions, grouped, cfg)[0]


def _distinct(samples: list[Sample]) -> list[Sample]:
    """The samples whose texts (whitespace stripped) differ, the first of each."""
    seen: set[str] = set()
    return [s for s in samples if not (s.text.strip() in seen or seen.add(s.text.strip()))]


def pair_order(n_chosen: int, n_rejected: int, limit: int) -> list[tuple[int, int]]:
    """The first `limit` (chosen rank, rejected rank) pairs, by rank sum then chosen rank: (0,0), (0,1), (1,0), ...
    so that a few pairs use several samples of each side before any sample twice."""
    pairs = [(c, r) for c in range(n_chosen) for r in range(n_rejected)]
    return sorted(pairs, key=lambda cr: (cr[0] + cr[1], cr[0]))[:limit]


def _upft_examples(questions, chosen: dict[str, Sample], tokenizer, cfg: MethodConfig, eos: int) -> list[Example]:
    """The UPFT construction on one sample per question in `chosen` (questions without one are skipped)."""
    pool = [q for q in questions if q.id in chosen]
    structure = structure_subset(pool, cfg.structure_ratio, cfg.seed)
    examples = []
    for q in pool:
        if q.id in structure:
            ex = _full(tokenizer, q, chosen[q.id], cfg, eos, "structure")
        else:
            ex = _prefix(tokenizer, q, chosen[q.id], cfg, eos)
        if ex is not None:
            examples.append(ex)
    prefix = sum(e.kind == "prefix" for e in examples)
    log.info("upft: %d prefix + %d structure examples from %d questions (%d empty or truncated samples dropped)",
             prefix, len(examples) - prefix, len(pool), len(pool) - len(examples))
    return examples


# ---------------------------------------------------------------------------------------------- methods
def plan_nothing(questions, cfg):
    return []


def plan_one_full(questions, cfg):
    return [SampleRequest(q, 1, cfg.max_new_tokens) for q in questions]


def plan_rft(questions, cfg):
    return [SampleRequest(q, cfg.rft_samples, cfg.max_new_tokens) for q in questions]


def plan_upft(questions, cfg):
    """One sample per question: k tokens for prefix questions, full length for the structure subset."""
    structure = structure_subset(questions, cfg.structure_ratio, cfg.seed)
    return [SampleRequest(q, 1, cfg.max_new_tokens if q.id in structure else cfg.prefix_tokens) for q in questions]


def build_sft(questions, samples, tokenizer, cfg):
    """Gold reference solutions: tokenised solution + EOS."""
    eos = end_of_turn_id(tokenizer)
    missing = [q.id for q in questions if not q.solution]
    if missing:
        raise DataError(f"sft needs reference solutions; {len(missing)} question(s) have none, e.g. {missing[0]!r}")
    return [Example(q.id, _prompt(tokenizer, q, cfg), tokenizer(q.solution, add_special_tokens=False)["input_ids"]
                    + [eos], "gold") for q in questions]


def build_sft_self(questions, samples, tokenizer, cfg):
    """One full self-generated sample per question (the lowest index), no answer filter."""
    eos = end_of_turn_id(tokenizer)
    grouped = _by_question(questions, samples, tokenizer, cfg)
    examples = []
    for q in questions:
        if not grouped[q.id]:
            raise SamplesFileError(f"sft_self: no sample for question {q.id!r}")
        ex = _full(tokenizer, q, grouped[q.id][0], cfg, eos, "full")
        if ex is not None:
            examples.append(ex)
    log.info("sft_self: %d examples (%d empty or truncated samples dropped)", len(examples),
             len(questions) - len(examples))
    return examples


def build_rft(questions, samples, tokenizer, cfg):
    """Per question, up to `rft_keep` distinct verified complete samples, at full length."""
    eos = end_of_turn_id(tokenizer)
    verified = _verified(questions, _by_question(questions, samples, tokenizer, cfg), cfg)
    examples = []
    for q in questions:
        texts = set()
        for s in verified[q.id]:
            if len(texts) == cfg.rft_keep:
                break
            example = _full(tokenizer, q, s, cfg, eos, "full") if s.text.strip() not in texts else None
            if example is not None:  # a distinct text, and not an empty sample
                texts.add(s.text.strip())
                examples.append(example)
    log.info("rft: %d examples from %d of %d questions", len(examples),
             sum(1 for v in verified.values() if v), len(questions))
    return examples


def build_upft(questions, samples, tokenizer, cfg):
    """UPFT: prefix examples (instruction + first k ids + EOS) and a seeded p-share of full structure examples."""
    eos = end_of_turn_id(tokenizer)
    grouped = _by_question(questions, samples, tokenizer, cfg)
    structure = structure_subset(questions, cfg.structure_ratio, cfg.seed)
    for q in questions:
        if not grouped[q.id]:
            raise SamplesFileError(f"upft: no sample for question {q.id!r}")
        s = grouped[q.id][0]
        if q.id in structure and s.max_new_tokens < cfg.max_new_tokens:
            raise SamplesFileError(
                f"upft: structure question {q.id!r} has a sample capped at {s.max_new_tokens} tokens: the samples "
                f"were planned with another structure subset (seed / structure_ratio) or max_new_tokens"
            )
    return _upft_examples(questions, {q.id: grouped[q.id][0] for q in questions}, tokenizer, cfg, eos)


def build_upft_label_filter(questions, samples, tokenizer, cfg):
    """The UPFT construction on one verified sample per question, taken from RFT's pool."""
    eos = end_of_turn_id(tokenizer)
    verified = _verified(questions, _by_question(questions, samples, tokenizer, cfg), cfg)
    return _upft_examples(questions, {qid: v[0] for qid, v in verified.items() if v}, tokenizer, cfg, eos)


def build_vstar_pairs(questions, samples, tokenizer, cfg):
    """V-STaR's verifier data: per question up to `vstar_pairs` (verified, rejected) pairs of its own complete
    samples with distinct texts (`pair_order`), each as two consecutive examples (kinds chosen, rejected) with
    the same prompt; questions with no verified or no rejected sample give none."""
    eos = end_of_turn_id(tokenizer)
    ok, wrong = _verdicts(questions, _by_question(questions, samples, tokenizer, cfg), cfg)
    examples = []
    for q in questions:
        good, bad = _distinct(ok[q.id]), _distinct(wrong[q.id])
        for c, r in pair_order(len(good), len(bad), cfg.vstar_pairs):
            pair = [_full(tokenizer, q, s, cfg, eos, kind) for s, kind in ((good[c], "chosen"), (bad[r], "rejected"))]
            if None not in pair:
                examples += pair
    log.info("vstar: %d preference pairs from %d questions", len(examples) // 2, len(questions))
    return examples


METHODS: dict[str, Method] = {m.name: m for m in (
    Method("base", "base (no tuning)", "The base model as it is: no sampling, no training", False,
           plan_nothing, None),
    Method("sft", "sft (gold solutions)", "SFT on gold reference solutions", True, plan_nothing, build_sft),
    Method("sft_self", "sft_self (one unfiltered self-sample)", "SFT on one unfiltered full self-sample per question",
           False, plan_one_full, build_sft_self),
    Method("rft", "rft (rejection sampling)",
           "Rejection-sampling FT: N samples, keep one checker-verified response per question", True,
           plan_rft, build_rft),
    Method("upft", "upft (prefixes, no labels)",
           "Unsupervised prefix FT: k-token prefixes + p share of full structure examples", False,
           plan_upft, build_upft),
    Method("upft_label_filter", "upft_label_filter (prefixes of verified samples)",
           "UPFT construction on a verified response from RFT's pool", True, plan_rft, build_upft_label_filter),
    Method("vstar", "vstar (RFT generator + DPO verifier)",
           "V-STaR: a generator tuned as RFT and a verifier tuned with DPO on (verified, wrong) sample pairs; "
           "greedy, and best-of-k under the verifier", True, plan_rft, build_rft, build_vstar_pairs),
)}
METHOD_IDS: tuple[str, ...] = tuple(METHODS)
# The row every cost is expressed against ("% of RFT"): the supervised method UPFT claims to match.
COST_REFERENCE = "rft"


# ---------------------------------------------------------------------------------------------- CLI
def examples_summary(examples: list[Example]) -> str:
    kinds: dict[str, int] = {}
    for e in examples:
        kinds[e.kind] = kinds.get(e.kind, 0) + 1
    parts = ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items())) or "none"
    return f"{len(examples)} examples ({parts}); {count_tuned_tokens(examples):,} tuned tokens"
