"""Methods: exactly which examples each method builds from given samples (docs/METHODS.md)."""
from __future__ import annotations

import pytest

from upft_bench.data import Question
from upft_bench.methods import COST_REFERENCE, METHOD_IDS, METHODS, MethodConfig, structure_subset
from upft_bench.prompts import PREFIX_INSTRUCTION, encode_prompt, end_of_turn_id, render_prompt
from upft_bench.sampling import Sample, SampleRequest


@pytest.fixture(scope="module")
def tok():
    from upft_bench.tiny import build_tokenizer

    return build_tokenizer()


def _questions(n):
    return [Question(f"q{i:03d}", f"Tom has {i} apples and buys 2 more. How many?", str(i + 2),
                     solution=f"{i} + 2 = {i + 2}. The answer is \\boxed{{{i + 2}}}.") for i in range(n)]


def _sample(tok, q, text, index=0, finish="stop", max_new=64, system=None):
    ids = tok(text, add_special_tokens=False)["input_ids"]
    return Sample(q.id, index, render_prompt(tok, q.question, system), ids, tok.decode(ids, skip_special_tokens=True),
                  finish, len(ids) + (finish == "stop"), max_new, 0.0)


def test_registry_and_flags():
    assert list(METHODS) == list(METHOD_IDS) == ["base", "sft", "sft_self", "rft", "upft", "upft_label_filter",
                                                 "vstar"]
    assert {n for n, m in METHODS.items() if m.uses_labels} == {"sft", "rft", "upft_label_filter", "vstar"}
    assert {n for n, m in METHODS.items() if m.pairs} == {"vstar"}
    assert {n for n, m in METHODS.items() if not m.trains} == {"base"}
    assert all(m.name == n and m.description and m.label.startswith(n) for n, m in METHODS.items())
    assert COST_REFERENCE in METHODS and METHODS[COST_REFERENCE].trains
    assert METHODS["base"].plan(_questions(3), MethodConfig()) == []


def test_paper_rows_name_registered_methods():
    from upft_bench import paper

    for rows in paper.ACCURACY.values():
        assert {method for method, _, _ in rows} <= set(METHODS)
    for costs in paper.COST_MILLIONS.values():
        assert set(costs) <= set(METHODS)


def test_plans():
    qs = _questions(20)
    cfg = MethodConfig(prefix_tokens=8, structure_ratio=0.1, rft_samples=4, max_new_tokens=100, seed=1)
    assert METHODS["sft"].plan(qs, cfg) == []
    assert METHODS["sft_self"].plan(qs, cfg) == [SampleRequest(q, 1, 100) for q in qs]
    assert METHODS["rft"].plan(qs, cfg) == [SampleRequest(q, 4, 100) for q in qs]
    assert METHODS["upft_label_filter"].plan(qs, cfg) == METHODS["rft"].plan(qs, cfg)  # one shared pool
    upft = METHODS["upft"].plan(qs, cfg)
    structure = structure_subset(qs, 0.1, 1)
    assert [r.question for r in upft] == qs and all(r.n == 1 for r in upft)
    assert {r.question.id for r in upft if r.max_new_tokens == 100} == structure
    assert all(r.max_new_tokens == 8 for r in upft if r.question.id not in structure)


def test_structure_subset_is_a_seeded_uniform_draw():
    qs = _questions(100)
    a = structure_subset(qs, 0.1, seed=0)
    assert len(a) == 10 and a == structure_subset(list(reversed(qs)), 0.1, seed=0)
    assert a != structure_subset(qs, 0.1, seed=1)
    assert a != {q.id for q in qs[:10]}  # not the first rows (the authors' code)
    assert len(structure_subset(_questions(25), 0.1, 0)) == 3  # 2.5 rounds up
    assert len(structure_subset(_questions(24), 0.1, 0)) == 2
    assert structure_subset(qs, 0.0, 0) == set() and len(structure_subset(qs, 1.0, 0)) == 100


def test_sft_uses_gold_solutions(tok):
    qs = _questions(3)
    eos = end_of_turn_id(tok)
    examples = METHODS["sft"].build(qs, [], tok, MethodConfig())
    for q, e in zip(qs, examples):
        assert e.prompt_ids == encode_prompt(tok, q.question)
        assert e.response_ids == tok(q.solution, add_special_tokens=False)["input_ids"] + [eos]
        assert e.kind == "gold" and e.question_id == q.id
    with pytest.raises(ValueError, match="reference solutions.*'x'"):
        METHODS["sft"].build([Question("x", "1+1?", "2")], [], tok, MethodConfig())


def test_upft_prefix_and_structure_examples(tok):
    qs = _questions(30)
    k, eos = 4, end_of_turn_id(tok)
    cfg = MethodConfig(prefix_tokens=k, structure_ratio=0.1, max_new_tokens=64, seed=7)
    structure = structure_subset(qs, 0.1, 7)
    text = "Tom starts with 3 apples. 3 + 2 = 5. The answer is \\boxed{5}."
    samples = []
    for q in qs:
        if q.id in structure:
            samples.append(_sample(tok, q, text, max_new=64))
        elif q.id == "q001":  # stopped before k tokens
            samples.append(_sample(tok, q, "Tom", finish="stop", max_new=k))
        else:  # what sampling returns for a k-token request
            ids = tok(text, add_special_tokens=False)["input_ids"][:k]
            samples.append(Sample(q.id, 0, render_prompt(tok, q.question), ids, tok.decode(ids), "length", k, k, 0.0))
    examples = METHODS["upft"].build(qs, samples, tok, cfg)
    assert len(examples) == 30
    by_id = {e.question_id: e for e in examples}
    full_ids = tok(text, add_special_tokens=False)["input_ids"]
    assert {e.question_id for e in examples if e.kind == "structure"} == structure and len(structure) == 3
    for q in qs:
        e = by_id[q.id]
        if q.id in structure:
            assert e.prompt_ids == encode_prompt(tok, q.question)
            assert e.response_ids == full_ids + [eos]
        else:
            assert e.kind == "prefix"
            assert e.prompt_ids == encode_prompt(tok, q.question, instruction=PREFIX_INSTRUCTION)
            assert tok.decode(e.prompt_ids).endswith(q.question + PREFIX_INSTRUCTION + "<|end|><|assistant|>")
            expected = tok("Tom", add_special_tokens=False)["input_ids"] if q.id == "q001" else full_ids[:k]
            assert e.response_ids == expected + [eos]


def test_upft_cuts_full_samples_on_ids_and_checks_the_plan(tok):
    """Prefixes may come from longer samples (cut on stored ids); a capped structure sample is an error."""
    qs = _questions(10)
    cfg = MethodConfig(prefix_tokens=3, structure_ratio=0.0, max_new_tokens=64)
    samples = [_sample(tok, q, "12 + 34 = 46 so the answer is 46") for q in qs]
    for e, s in zip(METHODS["upft"].build(qs, samples, tok, cfg), samples):
        assert e.response_ids == s.token_ids[:3] + [end_of_turn_id(tok)] and len(s.token_ids) > 3
    cfg = MethodConfig(prefix_tokens=3, structure_ratio=0.5, max_new_tokens=64)
    capped = [_sample(tok, q, "12 +", finish="length", max_new=3) for q in qs]
    with pytest.raises(ValueError, match="structure question .* capped at 3 tokens"):
        METHODS["upft"].build(qs, capped, tok, cfg)


def test_sft_self_and_truncated_samples(tok):
    qs = _questions(3)
    eos = end_of_turn_id(tok)
    samples = [_sample(tok, qs[0], "2 + 2 = 4. The answer is \\boxed{4}."),
               _sample(tok, qs[1], "2 + 2 = 4. The answer", finish="length"),
               _sample(tok, qs[2], "no idea"), _sample(tok, qs[2], "ignored second", index=1)]
    examples = METHODS["sft_self"].build(qs, samples, tok, MethodConfig())
    assert [(e.question_id, e.response_ids) for e in examples] == [
        ("q000", samples[0].token_ids + [eos]), ("q002", samples[2].token_ids + [eos])]  # truncated one dropped
    kept = METHODS["sft_self"].build(qs, samples, tok, MethodConfig(keep_truncated=True))
    assert kept[1].question_id == "q001" and kept[1].response_ids == samples[1].token_ids  # no EOS appended
    with pytest.raises(ValueError, match="no sample for question 'q001'"):
        METHODS["sft_self"].build(qs, samples[:1], tok, MethodConfig())


def test_prompts_of_other_settings_are_refused(tok):
    qs = _questions(1)
    boxed = "Please reason step by step, and put your final answer within \\boxed{}."
    samples = [_sample(tok, qs[0], "4", system=boxed)]
    with pytest.raises(ValueError, match="sampling.system and method.system must agree"):
        METHODS["sft_self"].build(qs, samples, tok, MethodConfig())
    assert METHODS["sft_self"].build(qs, samples, tok, MethodConfig(system="qwen_boxed"))
    with pytest.raises(ValueError, match="belongs to no question"):
        METHODS["sft_self"].build(qs, [_sample(tok, Question("zz", "?", "1"), "4")], tok, MethodConfig())


def _rft_pool(tok):
    """q0: wrong, right, right (same text), right (other text), right but truncated; q1: all wrong; q2: right once."""
    qs = [Question("q0", "What is 2 + 3?", "5"), Question("q1", "What is 1 + 1?", "2"),
          Question("q2", "Pick one.", "B", kind="choice")]
    samples = [
        _sample(tok, qs[0], "2 + 3 = 6. The answer is \\boxed{6}.", 0),
        _sample(tok, qs[0], "2 + 3 = 5. The answer is \\boxed{5}.", 1),
        _sample(tok, qs[0], "2 + 3 = 5. The answer is \\boxed{5}. ", 2),
        _sample(tok, qs[0], "Adding gives \\boxed{5}.", 3),
        _sample(tok, qs[0], "So \\boxed{5}", 4, finish="length"),
        _sample(tok, qs[1], "The answer is \\boxed{3}.", 0),
        _sample(tok, qs[1], "", 1, finish="length"),
        _sample(tok, qs[2], "The answer is (A).", 0),
        _sample(tok, qs[2], "The answer is \\boxed{B}.", 1),
    ]
    return qs, samples


def test_rft_keeps_one_verified_response_per_question(tok):
    qs, samples = _rft_pool(tok)
    eos = end_of_turn_id(tok)
    examples = METHODS["rft"].build(qs, samples, tok, MethodConfig())
    assert [(e.question_id, e.response_ids) for e in examples] == [
        ("q0", samples[1].token_ids + [eos]), ("q2", samples[8].token_ids + [eos])]
    assert all(e.kind == "full" and e.prompt_ids == encode_prompt(tok, q.question) for e, q in
               zip(examples, [qs[0], qs[2]]))
    two = METHODS["rft"].build(qs, samples, tok, MethodConfig(rft_keep=2))
    assert [(e.question_id, e.response_ids[:-1]) for e in two] == [
        ("q0", samples[1].token_ids), ("q0", samples[3].token_ids), ("q2", samples[8].token_ids)]  # distinct only


def test_label_filter_applies_upft_to_verified_responses(tok):
    qs, samples = _rft_pool(tok)
    eos = end_of_turn_id(tok)
    cfg = MethodConfig(prefix_tokens=3, structure_ratio=0.0)
    examples = METHODS["upft_label_filter"].build(qs, samples, tok, cfg)
    assert [(e.question_id, e.kind, e.response_ids) for e in examples] == [
        ("q0", "prefix", samples[1].token_ids[:3] + [eos]), ("q2", "prefix", samples[8].token_ids[:3] + [eos])]
    assert examples[0].prompt_ids == encode_prompt(tok, qs[0].question, instruction=PREFIX_INSTRUCTION)
    full = METHODS["upft_label_filter"].build(qs, samples, tok, MethodConfig(structure_ratio=1.0))
    assert [(e.kind, e.response_ids) for e in full] == [
        ("structure", samples[1].token_ids + [eos]), ("structure", samples[8].token_ids + [eos])]


def test_upft_end_to_end_with_real_sampling(tmp_path, tok):
    """plan -> sample_solutions -> build on a random tiny model: prefix rows cost at most k tokens."""
    from transformers import AutoTokenizer

    from upft_bench.sampling import SamplingConfig, sample_solutions, summarise
    from upft_bench.tiny import save_random_model

    model = str(save_random_model(tmp_path / "m", size="test"))
    tokenizer = AutoTokenizer.from_pretrained(model)
    qs = _questions(20)
    cfg = MethodConfig(prefix_tokens=5, structure_ratio=0.1, max_new_tokens=30, seed=0)
    samples = sample_solutions(model, METHODS["upft"].plan(qs, cfg), SamplingConfig(seed=0), tmp_path / "s.jsonl",
                               progress=False)
    structure = structure_subset(qs, 0.1, 0)
    assert max(s.num_tokens for s in samples if s.question_id not in structure) <= 5
    assert summarise(samples)["sampled_tokens"] == sum(s.num_tokens for s in samples)
    examples = METHODS["upft"].build(qs, samples, tokenizer, cfg)
    eos = end_of_turn_id(tokenizer)
    for e in examples:
        s = next(s for s in samples if s.question_id == e.question_id)
        assert e.response_ids == (s.token_ids[:5] if e.kind == "prefix" else s.token_ids) + [eos]


def test_empty_samples_give_no_examples(tok):
    qs = _questions(2)
    empty = Sample(qs[1].id, 0, render_prompt(tok, qs[1].question), [], "", "stop", 1, 4, 0.0)
    samples = [_sample(tok, qs[0], "5 + 2 = 7"), empty]
    cfg = MethodConfig(prefix_tokens=4, structure_ratio=0)
    assert [e.question_id for e in METHODS["upft"].build(qs, samples, tok, cfg)] == ["q000"]
    assert [e.question_id for e in METHODS["sft_self"].build(qs, samples, tok, MethodConfig())] == ["q000"]


def test_upft_k8_cut_splits_a_two_digit_first_result(tok):
    """The mechanism behind UPFT's loss at higher learning rates on the synthetic task (docs/RESULTS.md): with
    digits as single tokens, k=8 ends a prefix inside the first equation's result, so UPFT trains "= 2<end>"
    where the model must write "= 21"; at higher rates the tuned model miscomputes and stops early on plain
    prompts. Built here on a constructed sample; measured on the default's UPFT data, 42% of prefixes cut so."""
    q = _questions(1)[0]
    sample = _sample(tok, q, "15 + 6 = 21 (buys 6 more). 21 - 4 = 17 (uses 4). The answer is \\boxed{17}.")
    cfg = MethodConfig(prefix_tokens=8, structure_ratio=0.0, max_new_tokens=64)
    (example,) = METHODS["upft"].build([q], [sample], tok, cfg)
    eos = end_of_turn_id(tok)
    assert example.response_ids[-1] == eos
    prefix = tok.decode(example.response_ids[:-1])
    assert prefix.startswith("15 + 6 = 2") and not prefix.startswith("15 + 6 = 21"), prefix
