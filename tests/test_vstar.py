"""V-STaR: the verifier's preference pairs, best-of-k decoding under a verifier, and the method end to end."""
from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from upft_bench import baselines_dir
from upft_bench.best_of import best_index, implicit_reward
from upft_bench.data import Question
from upft_bench.methods import METHODS, MethodConfig, build_rft, build_vstar_pairs, pair_order
from upft_bench.results import TrainSummary, best_of_row, with_verifier
from upft_bench.sampling import Sample
from upft_bench.tiny import save_random_model


class Tokenizer:
    """Just enough of a tokenizer for the method builders: a chat template-free prompt, ids from characters."""

    eos_token_id = 2
    chat_template = None

    def __call__(self, text, add_special_tokens=False):
        return {"input_ids": [5 + ord(c) % 200 for c in text]}

    def convert_tokens_to_ids(self, token):
        return None


def _setup(monkeypatch):
    """Questions whose samples say RIGHT or WRONG; the checker stub judges by that word."""
    import upft_bench.methods as methods
    from upft_bench.prompts import render_prompt

    monkeypatch.setattr(methods, "end_of_turn_id", lambda tok: 2)
    monkeypatch.setattr(methods, "grade_many", lambda cases, timeout=5.0: [text.startswith("RIGHT")
                                                                            for text, _, _ in cases])
    tok = Tokenizer()
    questions = [Question(f"q{i}", f"question {i}", "1") for i in range(4)]
    verdicts = {"q0": "RRWW", "q1": "RRRR", "q2": "WWWW", "q3": "WRWR"}
    samples = []
    for n, q in enumerate(questions):
        for j, v in enumerate(verdicts[q.id]):
            text = f"{'RIGHT' if v == 'R' else 'WRONG'} {q.id} {j}"
            samples.append(Sample(q.id, j, render_prompt(tok, q.question, None), [10 + 10 * n + j] * (3 + j),
                                  text, "stop", 4 + j, 48, 0.0))
    return questions, samples, tok


def test_pairs_stay_within_a_question_and_pair_a_verified_with_a_rejected_sample(monkeypatch):
    questions, samples, tok = _setup(monkeypatch)
    for n_pairs in (1, 2, 4, 9):
        pairs = build_vstar_pairs(questions, samples, tok, MethodConfig(vstar_pairs=n_pairs))
        assert len(pairs) % 2 == 0
        chosen, rejected = pairs[0::2], pairs[1::2]
        assert {e.kind for e in chosen} == {"chosen"} and {e.kind for e in rejected} == {"rejected"}
        text = {tuple(s.token_ids + [2]): s.text for s in samples}
        for c, r in zip(chosen, rejected):
            assert c.question_id == r.question_id and c.prompt_ids == r.prompt_ids
            assert text[tuple(c.response_ids)].startswith("RIGHT") and text[tuple(r.response_ids)].startswith("WRONG")
            assert text[tuple(c.response_ids)].split()[1] == c.question_id == text[tuple(r.response_ids)].split()[1]
        per_question = {q: sum(e.question_id == q for e in chosen) for q in ("q0", "q1", "q2", "q3")}
        # q1 has no wrong sample and q2 no right one: no pair; q0 and q3 have 2 x 2 possible pairs
        assert per_question == {"q0": min(n_pairs, 4), "q1": 0, "q2": 0, "q3": min(n_pairs, 4)}
        assert len({(c.question_id, tuple(c.response_ids), tuple(r.response_ids))
                    for c, r in zip(chosen, rejected)}) == len(chosen)


def test_pair_order_spreads_over_samples_before_repeating():
    assert pair_order(2, 3, 4) == [(0, 0), (0, 1), (1, 0), (0, 2)]
    assert pair_order(0, 3, 2) == [] and pair_order(3, 3, 1) == [(0, 0)]
    assert len(pair_order(3, 4, 100)) == 12


def test_the_tuned_tokens_are_rfts_plus_the_pairs(monkeypatch):
    """The paper's accounting: V-STaR tunes RFT's data and one chosen and one rejected sample per question."""
    from upft_bench.examples import count_tuned_tokens

    questions, samples, tok = _setup(monkeypatch)
    cfg = MethodConfig()
    generator = build_rft(questions, samples, tok, cfg)
    assert generator == METHODS["vstar"].build(questions, samples, tok, cfg)
    pairs = METHODS["vstar"].pairs(questions, samples, tok, cfg)
    gen = TrainSummary(tuned_tokens=count_tuned_tokens(generator), train_flops=100, train_seconds=1.0)
    ver = TrainSummary(tuned_tokens=count_tuned_tokens(pairs), train_flops=50, train_seconds=0.5)
    both = with_verifier(gen, ver)
    assert both.tuned_tokens == count_tuned_tokens(generator) + count_tuned_tokens(pairs)
    assert both.train_flops == 150 and both.train_seconds == 1.5 and both.verifier["tuned_tokens"] == ver.tuned_tokens
    assert with_verifier(gen, TrainSummary(train_flops=None)).train_flops is None
    assert best_of_row("vstar", 8) == "vstar@best-of-8"


def test_the_ranking_does_not_depend_on_beta():
    verifier, reference = [-10.0, -3.0, -7.5, -3.0], [-9.0, -4.0, -2.0, -5.0]
    ranks = [sorted(range(4), key=lambda i: implicit_reward(verifier[i], reference[i], beta))
             for beta in (1e-9, 0.1, 1.0, 50.0)]
    assert all(r == ranks[0] for r in ranks)
    assert best_index([1.0, 3.0, 3.0, -1.0]) == 1  # ties: the earliest


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return str(save_random_model(tmp_path_factory.mktemp("tiny") / "base", size="test", seed=0))


def _request(context, **gen):
    from lm_eval.api.instance import Instance

    return Instance("generate_until", {}, (context, {"until": ["\n\n"], "max_gen_toks": 12, **gen}), 0,
                    metadata=("t", 0, 1))


def test_best_of_k_picks_the_candidate_the_verifier_scores_highest(tiny, monkeypatch):
    """Candidates fixed, a verifier whose log-likelihood rewards a planted word: the planted candidate answers,
    wherever it is among the k."""
    from lm_eval.models.huggingface import HFLM

    from upft_bench.best_of import register

    model = register()(pretrained=tiny, verifier=tiny, reference=tiny, k=4, batch_size=4, device="cpu")
    for planted in range(4):
        texts = [f"candidate {i}" + (" PLANTED" if i == planted else "") for i in range(4)] * 2
        monkeypatch.setattr(HFLM, "generate_until",
                            lambda self, reqs, disable_tqdm=False, texts=texts: texts[:len(reqs)])

        def planted_likelihood(self, reqs, disable_tqdm=False):
            liked = self is model.scorers[0]
            return [(10.0 if liked and "PLANTED" in r.args[1] else -1.0, False) for r in reqs]

        monkeypatch.setattr(HFLM, "loglikelihood", planted_likelihood)
        out = model.generate_until([_request("Q1"), _request("Q2")])
        assert out == [texts[planted]] * 2
        log = model.take_log()
        assert [r["chosen"] for r in log] == [planted, planted] and len(log[0]["candidate_tokens"]) == 4
        assert model.take_log() == []


def test_best_of_1_is_sampling(tiny):
    """k = 1: the one sample, exactly what the generator samples at that temperature with the same seed."""
    from lm_eval.models.huggingface import HFLM

    from upft_bench.best_of import register

    plain = HFLM(pretrained=tiny, batch_size=2, device="cpu")
    best = register()(pretrained=tiny, verifier=tiny, reference=tiny, k=1, temperature=0.7, batch_size=2,
                      device="cpu")
    contexts = ["<|im_start|>user\n12 + 5?<|im_end|>\n", "<|im_start|>user\n3 + 4?<|im_end|>\n"]
    torch.manual_seed(7)
    sampled = plain.generate_until([_request(c, do_sample=True, temperature=0.7) for c in contexts])
    torch.manual_seed(7)
    assert best.generate_until([_request(c) for c in contexts]) == sampled


@pytest.mark.slow
def test_smoke_vstar_runs_resumes_after_a_kill_in_the_verifier_and_its_flops_follow_from_its_files(
        tmp_path, monkeypatch):
    """compare --methods base,rft,vstar on the smoke world, the checker stubbed to judge by the sample's length
    (the smoke model answers nothing right): a kill in the verifier's training, --resume finishes from its
    checkpoint; every FLOPs figure of the vstar rows follows from the saved samples, examples, pairs and the
    best-of-k log; the tuned tokens are RFT's plus the pairs'."""
    from transformers import AutoTokenizer

    import upft_bench.methods
    import upft_bench.train
    from upft_bench.cli import main
    from upft_bench.compute import ModelShape, forward_flops, generation_flops, training_flops
    from upft_bench.evaluation import best_of_flops
    from upft_bench.examples import count_tuned_tokens, read_examples
    from upft_bench.experiment import load_experiment
    from upft_bench.sampling import read_samples
    from upft_bench.train import reference_positions, trained_positions

    monkeypatch.setenv("UPFT_BENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(upft_bench.methods, "grade_many",
                        lambda cases, timeout=5.0: [len(text) % 2 == 0 for text, _, _ in cases])
    out = tmp_path / "run"
    sets = ["method.rft_samples=4", "train.epochs=3", "train.batch_size=4", "train.micro_batch_size=4",
            "train.save_every=2", "eval.limit=4", "eval.best_of=3"]
    args = ["compare", str(baselines_dir() / "smoke.yaml"), "--output", str(out), "--methods", "base,rft,vstar",
            *[x for s in sets for x in ("--set", s)]]
    real = upft_bench.train.lr_at

    def killed_in_the_verifier(step, total, config):
        if config.objective == "dpo" and step == 3:
            raise KeyboardInterrupt
        return real(step, total, config)

    monkeypatch.setattr(upft_bench.train, "lr_at", killed_in_the_verifier)
    first = CliRunner().invoke(main, args)
    assert first.exit_code != 0
    vdir = out / "methods" / "vstar" / "verifier"
    assert [p.name for p in (vdir / "train" / "checkpoints").iterdir()] == ["step-2"]
    monkeypatch.setattr(upft_bench.train, "lr_at", real)
    resumed = CliRunner().invoke(main, args + ["--resume"])
    assert resumed.exit_code == 0, resumed.output + repr(resumed.exception)
    assert json.loads((vdir / "train" / "train_stats.json").read_text())["resumed_from_step"] == 2

    metrics = json.loads((out / "metrics.json").read_text())
    rows = metrics["methods"]
    assert list(rows) == ["base", "rft", "vstar", "vstar@best-of-3"]
    cfg = load_experiment(baselines_dir() / "smoke.yaml", sets)
    shape = ModelShape.from_model_dir(metrics["base_model"])
    tok = AutoTokenizer.from_pretrained(metrics["base_model"])
    generator = read_examples(out / "methods" / "vstar" / "examples.jsonl")
    pairs = read_examples(vdir / "examples.jsonl")
    assert generator == read_examples(out / "methods" / "rft" / "examples.jsonl") and len(pairs) >= 4
    # the same examples under the same settings: RFT's model is V-STaR's generator, not trained twice
    assert rows["vstar"]["model"] == str(out / "methods" / "rft" / "train" / "model")
    assert not (out / "methods" / "vstar" / "train").exists()
    assert "not trained again" in resumed.output or "not trained again" in first.output
    vtrain = load_experiment(baselines_dir() / "smoke.yaml", sets + ["train.objective=dpo"]).train
    expected_train = (training_flops(shape, trained_positions(generator, cfg.train))
                      + training_flops(shape, trained_positions(pairs, vtrain))
                      + sum(forward_flops(shape, n) for n in reference_positions(pairs, vtrain)))
    for name in ("vstar", "vstar@best-of-3"):
        row = rows[name]
        assert row["sample_pool"] == rows["rft"]["sample_pool"] and row["sample_flops"] == rows["rft"]["sample_flops"]
        assert row["tuned_tokens"] == rows["rft"]["tuned_tokens"] + count_tuned_tokens(pairs)
        assert row["train_flops"] == expected_train
        assert row["verifier"]["train_examples"] == len(pairs)
    log = [json.loads(ln) for ln in (out / "methods" / "vstar" / "eval-best-of-3" /
                                     "best_of_upft_synth.jsonl").read_text().splitlines()]
    assert len(log) == 4 and all(len(r["candidate_tokens"]) == 3 for r in log)
    assert rows["vstar@best-of-3"]["eval_flops"] == sum(best_of_flops(shape, log))
    greedy = [json.loads(ln) for ln in (out / "methods" / "vstar" / "eval" / "samples_upft_synth.jsonl")
              .read_text().splitlines()]
    assert rows["vstar"]["eval_flops"] == sum(
        generation_flops(shape, len(tok(s["arguments"][0][0], add_special_tokens=False)["input_ids"]),
                         len(tok(s["filtered_resps"][0], add_special_tokens=False)["input_ids"])) for s in greedy)
    assert rows["vstar@best-of-3"]["eval_flops"] > 3 * rows["vstar"]["eval_flops"] * 0.5
    assert read_samples(out / "samples" / f"{rows['rft']['sample_pool']}.jsonl")
    md = (out / "compare.md").read_text()
    assert "| vstar@best-of-3 " in md


@pytest.mark.slow
def test_a_second_iteration_samples_from_the_first_generator_and_retrains_on_both_pools(tmp_path, monkeypatch):
    import upft_bench.methods
    from upft_bench.cli import main
    from upft_bench.examples import read_examples
    from upft_bench.sampling import read_samples, summarise

    monkeypatch.setenv("UPFT_BENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(upft_bench.methods, "grade_many",
                        lambda cases, timeout=5.0: [len(text) % 2 == 0 for text, _, _ in cases])
    out = tmp_path / "run"
    sets = ["method.rft_samples=3", "method.vstar_iterations=2", "eval.limit=2", "eval.best_of=2"]
    result = CliRunner().invoke(main, ["compare", str(baselines_dir() / "smoke.yaml"), "--output", str(out),
                                       "--methods", "vstar", *[x for s in sets for x in ("--set", s)]])
    assert result.exit_code == 0, result.output + repr(result.exception)
    row = json.loads((out / "metrics.json").read_text())["methods"]["vstar"]
    first = read_samples(out / "samples" / f"{row['sample_pool']}.jsonl")
    second = read_samples(out / "samples" / f"{row['sample_pool']}-train-vstar-iteration-2.jsonl")
    assert len(first) == len(second) == 16 * 3
    assert row["samples"] == len(first) + len(second)
    assert row["sampled_tokens"] == summarise(first)["sampled_tokens"] + summarise(second)["sampled_tokens"]
    one = read_examples(out / "methods" / "vstar" / "examples.jsonl")
    two = read_examples(out / "methods" / "vstar" / "iterations" / "2" / "examples.jsonl")
    assert {(e.question_id, tuple(e.response_ids)) for e in one} <= {(e.question_id, tuple(e.response_ids))
                                                                       for e in two}
    assert row["model"].endswith("iterations/2/train/model") and row["train_examples"] == len(two)
    stats = [json.loads((out / "methods" / "vstar" / d / "train" / "train_stats.json").read_text())
             for d in ("", "iterations/2", "verifier")]
    assert row["tuned_tokens"] == sum(s["tuned_tokens"] for s in stats)
