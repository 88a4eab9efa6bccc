"""The tiny base model: corpus examples, cache hits, --force, determinism, the CLI."""
from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch
from click.testing import CliRunner

from upft_bench.commands.pretrain import pretrain_cli
from upft_bench.pretrain import PRESETS, PretrainConfig, build_base_model, build_examples, cache_key
from upft_bench.prompts import PREFIX_INSTRUCTION, encode_prompt
from upft_bench.synthetic import TRUNCATIONS

# The smoke preset cut to a few steps: the tests exercise the machinery, not the model's skill.
TINY = replace(PRESETS["smoke"], steps=4, batch_size=4, micro_batch_size=4, tokenizer_texts=200, eval_questions=0)


def weights(path):
    from safetensors.torch import load_file

    return load_file(str(path / "model.safetensors"))


def test_corpus_examples_mix_truncation_instructions_and_full_solutions():
    config = replace(TINY, corpus_size=2000)
    examples, tok = build_examples(config)
    assert len(examples) == 2000
    eos = tok.eos_token_id
    assert all(e.response_ids[-1] == eos and eos not in e.response_ids[:-1] for e in examples)
    truncated = [e for e in examples if e.kind == "instruction"]
    assert 0.12 < len(truncated) / len(examples) < 0.18
    wordings = [w for ws in TRUNCATIONS.values() for w in ws]
    for e in truncated:
        prompt = tok.decode(e.prompt_ids)
        assert PREFIX_INSTRUCTION not in prompt  # UPFT's instruction is never in the corpus
        assert any(prompt.endswith(w + "<|end|><|assistant|>") for w in wordings)
        assert tok.decode(e.response_ids[:-1]).endswith(".")  # a step boundary, never a k-token cut
    full = [e for e in examples if e.kind != "instruction"]
    assert all("boxed" in tok.decode(e.response_ids) for e in full)
    mean_full = sum(len(e.response_ids) for e in full) / len(full)
    assert mean_full > 2 * sum(len(e.response_ids) for e in truncated) / len(truncated)
    # Plain prompts are exactly what evaluation renders: the bare question, no instruction.
    for e in full[:50]:
        question = tok.decode(e.prompt_ids, skip_special_tokens=True)
        assert e.prompt_ids == encode_prompt(tok, question)
    # Mistakes only at tricky steps (about one step in five, 80% of the time): ~45% of full solutions carry one.
    errors = sum(e.kind == "error" for e in examples) / len(full)
    assert 0.38 < errors < 0.52


def test_config_validation_names_the_field():
    with pytest.raises(ValueError, match="size"):
        PretrainConfig(size="huge")
    with pytest.raises(ValueError, match="instruction_share"):
        PretrainConfig(instruction_share=1.5)
    with pytest.raises(ValueError, match="steps"):
        PretrainConfig(steps=0)
    with pytest.raises(ValueError, match="opening_variety"):
        PretrainConfig(opening_variety=-0.1)
    with pytest.raises(ValueError, match="error_position"):
        PretrainConfig(error_position="late")
    assert PretrainConfig(error_position="last").world().applies(3, 4)
    assert not PretrainConfig(error_position="last").world().applies(0, 4)


def test_cache_key_follows_the_config():
    assert cache_key(TINY) == cache_key(replace(TINY))
    assert cache_key(TINY) != cache_key(replace(TINY, seed=1))
    assert cache_key(TINY) != cache_key(replace(TINY, instruction_share=0.2))


@pytest.mark.slow
def test_build_caches_force_rebuilds_and_is_deterministic(tmp_path, monkeypatch):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    import upft_bench.pretrain as pretrain

    first = build_base_model(TINY, cache_dir=tmp_path / "a")
    info = json.loads((first / "pretrain.json").read_text())
    assert info["train"]["steps"] == TINY.steps and info["corpus"]["examples"] == TINY.n_examples
    model = AutoModelForCausalLM.from_pretrained(first)
    tok = AutoTokenizer.from_pretrained(first)
    assert tok.chat_template and tok.eos_token == "<|end|>"
    out = model.generate(torch.tensor([encode_prompt(tok, "Tom has 3 apples.")]), max_new_tokens=3, do_sample=False)
    assert out.shape[1] > 0
    before = weights(first)

    # Second call: served from the cache, the trainer is never touched.
    def boom(*args, **kwargs):
        raise AssertionError("retrained although the model is cached")

    monkeypatch.setattr("upft_bench.train.train", boom)
    assert build_base_model(TINY, cache_dir=tmp_path / "a") == first
    monkeypatch.undo()

    # force=True rebuilds in place; same seed -> identical weights. Another cache root -> identical too.
    stamp = (first / "pretrain.json").stat().st_mtime_ns
    assert build_base_model(TINY, cache_dir=tmp_path / "a", force=True) == first
    assert (first / "pretrain.json").stat().st_mtime_ns != stamp
    again = weights(first)
    assert before.keys() == again.keys() and all(torch.equal(before[k], again[k]) for k in before)
    assert not [p for p in (tmp_path / "a").iterdir() if p.name.endswith(".tmp")]  # no staging folder left

    other = build_base_model(replace(TINY, seed=1), cache_dir=tmp_path / "a")
    assert other != first
    assert not torch.equal(weights(other)["model.embed_tokens.weight"], before["model.embed_tokens.weight"])
    assert pretrain.read_info(other)["config"]["seed"] == 1


def test_failed_build_leaves_nothing_behind(tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise RuntimeError("killed mid-training")

    monkeypatch.setattr("upft_bench.train.train", fail)
    with pytest.raises(RuntimeError, match="killed"):
        build_base_model(TINY, cache_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_cli_builds_then_reports_cached(tmp_path):
    runner = CliRunner()
    args = ["--preset", "smoke", "--steps", "4", "--set", "batch_size=4", "--set", "micro_batch_size=4",
            "--set", "tokenizer_texts=200", "--eval", "2", "--output", str(tmp_path)]
    first = runner.invoke(pretrain_cli, args)
    assert first.exit_code == 0, first.output
    assert "built:" in first.output and "quick check on 2 synth test questions" in first.output
    second = runner.invoke(pretrain_cli, args)
    assert second.exit_code == 0 and "cached:" in second.output
    assert first.stdout.split()[2] == second.stdout.split()[2]  # "base model: PATH (...)": same path
    bad = runner.invoke(pretrain_cli, ["--set", "error_rate=2", "--output", str(tmp_path)])
    assert bad.exit_code != 0 and "error_rate" in bad.output
    bad = runner.invoke(pretrain_cli, ["--set", "error_position=middle", "--output", str(tmp_path)])
    assert bad.exit_code != 0 and "error_position" in bad.output


def test_code_digest_ignores_comments_and_docstrings_but_not_code():
    from upft_bench.pretrain import code_digest

    source = 'def f(x):\n    """Doc."""\n    return x + 1  # one\n'
    assert code_digest(source) == code_digest('def f(x):\n    # reworded\n    return x + 1\n')
    assert code_digest(source) == code_digest('"""Module doc."""\ndef f(x):\n    """Other doc."""\n    return x + 1\n')
    assert code_digest(source) != code_digest('def f(x):\n    return x + 2\n')
