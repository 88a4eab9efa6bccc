"""Careless or hostile inputs that reach past the config: model files, question sizes, a Hub that never answers,
a diverging run, an unwritable HOME. Each fails fast, in one line that names the file, row or field."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from upft_bench.examples import Example
from upft_bench.experiment import load_experiment
from upft_bench.preflight import PreflightError, check, check_model
from upft_bench.tiny import save_random_model
from upft_bench.train import DivergedError, TrainConfig, train


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return save_random_model(tmp_path_factory.mktemp("tiny") / "model", size="test")


def _copy(model: Path, to: Path, leave_out: tuple[str, ...] = ()) -> Path:
    to.mkdir()
    for f in model.iterdir():
        if f.name not in leave_out:
            (to / f.name).write_bytes(f.read_bytes())
    return to


def test_damaged_or_incomplete_model_folders_are_named_before_anything_loads(tiny, tmp_path):
    assert check_model(str(tiny)) > 0
    cut = _copy(Path(tiny), tmp_path / "cut")
    data = (cut / "model.safetensors").read_bytes()
    (cut / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(PreflightError, match=r"^model\.path: .*cut/model\.safetensors is damaged or truncated"):
        check_model(str(cut))
    only_config = tmp_path / "only_config"
    only_config.mkdir()
    (only_config / "config.json").write_text((Path(tiny) / "config.json").read_text())
    with pytest.raises(PreflightError, match=r"only_config has no weights \(model\.safetensors or pytorch_model"):
        check_model(str(only_config))
    no_tokenizer = _copy(Path(tiny), tmp_path / "no_tok", leave_out=("tokenizer.json",))
    with pytest.raises(PreflightError, match=r"no_tok has no tokenizer files"):
        check_model(str(no_tokenizer), key="--model")


def test_a_huge_question_is_refused_by_its_length_before_anything_tokenizes_it(tmp_path):
    path = tmp_path / "huge.jsonl"
    path.write_text(json.dumps({"id": "fine", "question": "1 + 1?", "answer": "2", "solution": "1 + 1 = 2"}) + "\n"
                    + json.dumps({"id": "huge", "question": "x " * 2_000_000, "answer": "1", "solution": "1"}) + "\n")
    cfg = load_experiment("baselines/smoke.yaml", [f"data.train={path}", "methods=[base,upft]"])
    start = time.perf_counter()
    with pytest.raises(PreflightError, match=r"^data\.train: .*huge\.jsonl, question huge: field 'question' is "
                                             r"4,000,000 characters, more than a 1,024-token context can hold"):
        check(cfg)
    assert time.perf_counter() - start < 10
    cfg = load_experiment("baselines/smoke.yaml", [f"eval.tasks=[{path}]"])
    with pytest.raises(PreflightError, match=r"^eval\.tasks: .*huge\.jsonl, question huge"):
        check(cfg)


def _silent_server():
    """A server that accepts connections and never answers (a network that swallows requests)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held = []

    def accept():
        while True:
            try:
                held.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    return server


def test_a_hub_that_never_answers_is_one_line_after_the_timeout(tmp_path):
    server = _silent_server()
    env = {**os.environ, "HF_ENDPOINT": f"http://127.0.0.1:{server.getsockname()[1]}", "HF_HUB_OFFLINE": "0",
           "UPFT_BENCH_HUB_TIMEOUT": "3", "HF_HOME": str(tmp_path / "hf")}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "upft_bench.cli", "eval", "--model", "acme/never-answers"],
                          env=env, capture_output=True, text=True, timeout=120)
    seconds = time.perf_counter() - start
    server.close()
    assert done.returncode != 0
    assert done.stderr.strip().splitlines() == [
        "Error: --model acme/never-answers: the Hugging Face Hub did not answer within 3 s; check the network (or "
        "set HF_HUB_OFFLINE=1 to use the local cache, or $UPFT_BENCH_HUB_TIMEOUT to wait longer)"], done.stderr
    assert seconds < 60


def test_a_diverging_run_stops_with_one_line_and_saves_nothing(tiny, tmp_path):
    examples = [Example(f"q{i}", [5, 6, 7, 8], [9, 10, 11, 12]) for i in range(8)]
    config = TrainConfig(lr=1e30, epochs=1, batch_size=4, micro_batch_size=4, log_every=1, mixed_precision="no")
    with pytest.raises(DivergedError, match=r"^training diverged: .* at step \d of 2 \(lr 1\.00e\+30\); the model "
                                            r"was not saved\. Lower train\.lr"):
        train(str(tiny), examples, config, tmp_path / "out")
    assert not (tmp_path / "out" / "model").exists()


def test_an_unwritable_home_keeps_matplotlib_quiet(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("MPLCONFIGDIR", "XDG_CONFIG_HOME", "XDG_CACHE_HOME")}
    env["HOME"] = "/dev/null"  # a file: nothing can be created under it, whoever runs the test
    done = subprocess.run([sys.executable, "-c", "from upft_bench.quiet import pyplot; pyplot().figure()"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stderr == "", done.stderr


def test_an_unwritable_cache_is_one_line_before_anything_runs(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "UPFT_BENCH_CACHE"}
    env["HOME"] = "/dev/null"
    done = subprocess.run([sys.executable, "-m", "upft_bench.cli", "compare", "baselines/smoke.yaml", "--output",
                           str(tmp_path / "out")], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1 and not (tmp_path / "out").exists()
    assert done.stderr.strip().splitlines() == [
        "Error: cache: cannot create /dev/null/.cache/upft-bench/base-models (Not a directory); set "
        "$UPFT_BENCH_CACHE to a writable folder"], done.stderr
