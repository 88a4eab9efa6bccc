"""Inputs are checked before anything is written: one-line errors naming the key and file; no folder left behind."""
from __future__ import annotations

import importlib.util
import json

import click
import pytest
from click.testing import CliRunner

from upft_bench import baselines_dir
from upft_bench.cli import main
from upft_bench.config import ConfigError
from upft_bench.evaluation import default_output as _default_output
from upft_bench.experiment import load_experiment
from upft_bench.preflight import PreflightError, check, check_model, check_tasks


def _gsm8k_dir(tmp_path, train_rows: list[dict]):
    root = tmp_path / "data"
    (root / "gsm8k").mkdir(parents=True)
    (root / "gsm8k" / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in train_rows))
    (root / "gsm8k" / "test.jsonl").write_text(json.dumps({"question": "1+1?", "answer": "so #### 2"}) + "\n")
    return root


def test_the_default_passes_and_says_what_it_will_use():
    facts = check(load_experiment(None))
    assert facts["context"] == 1024 and facts["train_questions"] == 300
    assert facts["tasks"] == {"upft_synth": {"questions": 300, "max_gen_toks": 192}}


def test_model_path_problems(tmp_path):
    with pytest.raises(PreflightError, match=r"^model.path: no such folder /nonexistent/model$"):
        check(load_experiment(None, ["model.path=/nonexistent/model"]))
    (tmp_path / "empty").mkdir()
    with pytest.raises(PreflightError, match="has no config.json"):
        check_model(str(tmp_path / "empty"))
    with pytest.raises(PreflightError, match=r"^--model: cannot load the config of nobody/no-such-model"):
        check_model("nobody/no-such-model", key="--model")  # offline in tests: an uncached Hub id


def _gguf(path, context: int):
    gguf = pytest.importorskip("gguf")
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_context_length(context)
    import numpy as np

    writer.add_tensor("token_embd.weight", np.zeros((4, 4), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_gguf_models_are_checked_from_their_header(tmp_path, monkeypatch):
    """A .gguf file (or a folder plus model.gguf_file) is a model: its context comes from the file's header, in
    milliseconds; a missing file, a damaged one or a missing gguf package is one line naming model.path."""
    _gguf(tmp_path / "m.gguf", 128)
    assert check_model(str(tmp_path / "m.gguf")) == 128
    assert check_model(str(tmp_path), gguf_file="m.gguf") == 128
    cfg = load_experiment(None, [f"model.path={tmp_path}", "model.gguf_file=m.gguf"])
    with pytest.raises(PreflightError, match=r"^eval.tasks: upft_synth generates up to 192 tokens"):
        check(cfg)  # the header's 128-token context is what the task lengths are checked against
    with pytest.raises(PreflightError, match=rf"^model.path: no such GGUF file {tmp_path}/other.gguf$"):
        check(load_experiment(None, [f"model.path={tmp_path / 'other.gguf'}"]))
    (tmp_path / "bad.gguf").write_bytes(b"not a gguf file")
    with pytest.raises(PreflightError, match=r"^model.path: cannot read the GGUF header of .*bad.gguf"):
        check_model(str(tmp_path / "bad.gguf"))
    with pytest.raises(ConfigError, match="model.gguf_file names a file inside"):
        load_experiment(None, ["model.gguf_file=m.gguf"])
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "gguf" else real(name, *a))
    with pytest.raises(PreflightError, match=r"needs the gguf package: pip install 'upft-bench\[gguf\]'"):
        check_model(str(tmp_path / "m.gguf"))


def test_empty_and_malformed_training_files(tmp_path):
    root = _gsm8k_dir(tmp_path, [])
    with pytest.raises(PreflightError, match=r"data.train: .*gsm8k/train.jsonl holds no questions"):
        check(load_experiment(None, ["data.train=gsm8k", f"data.data_dir={root}"]))
    root = _gsm8k_dir(tmp_path / "bad", [{"question": "ok?", "answer": "#### 1"}, {"question": "no answer"}])
    with pytest.raises(PreflightError, match=r"train.jsonl.*(row|line) 2"):
        check(load_experiment(None, ["data.train=gsm8k", f"data.data_dir={root}"]))


def test_tasks_unknown_empty_or_too_long_for_the_model(tmp_path):
    with pytest.raises(PreflightError, match=r"^eval.tasks: unknown task 'upft_nope'"):
        check(load_experiment(None, ["eval.tasks=[upft_nope]"]))
    root = _gsm8k_dir(tmp_path, [{"question": "q?", "answer": "#### 1"}])
    with pytest.raises(PreflightError, match=r"upft_gsm8k generates up to 1024 tokens, but the model.s context"):
        check(load_experiment(None, ["eval.tasks=[upft_gsm8k]", f"data.data_dir={root}"]))
    assert check_tasks(["upft_gsm8k"], str(root), max_gen_toks=256, context=1024) == {
        "upft_gsm8k": {"questions": 1, "max_gen_toks": 256}}
    (root / "gsm8k" / "test.jsonl").write_text("")
    with pytest.raises(PreflightError, match=r"^--tasks: upft_gsm8k has no questions \(.*test.jsonl is empty\)"):
        check_tasks(["upft_gsm8k"], str(root), max_gen_toks=256, key="--tasks")


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vllm is installed here")
def test_a_missing_backend_is_named():
    with pytest.raises(PreflightError, match="sampling.backend: 'vllm' is not installed"):
        check(load_experiment(None, ["sampling.backend=vllm"]))
    with pytest.raises(PreflightError, match="eval.backend: 'vllm' is not installed"):
        check(load_experiment(None, ["eval.backend=vllm"]))


def test_a_bad_input_leaves_no_folder_and_the_fixed_command_runs_the_check_again(tmp_path):
    out = tmp_path / "run"
    args = ["compare", str(baselines_dir() / "smoke.yaml"), "--output", str(out)]
    result = CliRunner().invoke(main, args + ["--set", "model.path=/nonexistent/model"])
    assert result.exit_code == 1
    assert result.output.strip() == "Error: model.path: no such folder /nonexistent/model"
    assert not out.exists()
    result = CliRunner().invoke(main, args + ["--set", "eval.tasks=[upft_nope]"])  # same folder: still nothing
    assert result.exit_code == 1 and "unknown task 'upft_nope'" in result.output and not out.exists()


def test_eval_checks_before_loading_and_names_models_apart(tmp_path):
    result = CliRunner().invoke(main, ["eval", "--model", str(tmp_path / "missing")])
    assert result.exit_code == 1 and result.output.strip() == f"Error: --model: no such folder {tmp_path / 'missing'}"
    a = _default_output("results/default/methods/sft/train/model")
    b = _default_output("results/default/methods/rft/train/model")
    assert a != b and a.parent == b.parent and a.name == "default_methods_sft_train_model"
    assert _default_output("Qwen/Qwen2.5-Math-7B").name == "Qwen_Qwen2.5-Math-7B"


@click.command("boom")
def _boom():
    raise RuntimeError("the disk\nis full")


def test_unexpected_errors_are_one_line_unless_debug(monkeypatch):
    import upft_bench.cli as cli

    monkeypatch.setattr(cli, "boom", _boom, raising=False)
    monkeypatch.setitem(cli.COMMANDS, "boom", "upft_bench.cli:boom")
    monkeypatch.delenv(cli.DEBUG_ENV, raising=False)
    result = CliRunner().invoke(main, ["boom"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "Error: RuntimeError: the disk is full  [traceback: upft-bench --debug ... or UPFT_BENCH_DEBUG=1]"]
    result = CliRunner().invoke(main, ["--debug", "boom"])
    assert isinstance(result.exception, RuntimeError)
    monkeypatch.setenv(cli.DEBUG_ENV, "1")
    assert isinstance(CliRunner().invoke(main, ["boom"]).exception, RuntimeError)
