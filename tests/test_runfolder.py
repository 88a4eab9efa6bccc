"""The result folder is safe: never another tool's files, one run at a time, no dead folder after a failure, and
no resume on input files that changed since the run started. Fast: no model is trained."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys

import pytest

from upft_bench import baselines_dir
from upft_bench.compare import Phases, open_run_folder, run_compare
from upft_bench.errors import InputError, RunFolderError
from upft_bench.experiment import load_experiment
from upft_bench.runfolder import HEADER, finished_work, input_fingerprints


def _cfg(*overrides: str):
    return load_experiment(baselines_dir() / "smoke.yaml", list(overrides))


def _died_after(out, cfg, *markers: str, resume: bool = False) -> None:
    """A run that wrote `markers` and was then killed (no cleanup ran; the OS freed its lock)."""
    phases = open_run_folder(cfg, out, resume)
    for name in markers:
        phases.mark(name, {"path": "x"})
    phases.lock.close()


def test_another_tools_files_are_never_overwritten(tmp_path):
    out = tmp_path / "theirs"
    out.mkdir()
    (out / "metrics.json").write_text('{"theirs": 1}')
    (out / "compare.md").write_text("their table")
    with pytest.raises(RunFolderError) as err:
        open_run_folder(_cfg(), out, resume=False)
    assert str(err.value) == (f"{out} holds files upft-bench did not write (compare.md, metrics.json): "
                              "choose another --output")
    assert sorted(p.name for p in out.iterdir()) == ["compare.md", "metrics.json"]  # untouched, no lock, no .done
    with pytest.raises(RunFolderError, match="did not write"):
        open_run_folder(_cfg(), out, resume=True)

    empty = tmp_path / "empty"
    empty.mkdir()
    with open_run_folder(_cfg(), empty, resume=False):  # an empty folder is fine
        assert (empty / "config.yaml").read_text().startswith(HEADER + "\n")
    report_only = tmp_path / "report"  # what `upft-bench report --output` writes: upft-bench's own
    report_only.mkdir()
    (report_only / "compare.md").write_text("old table")
    with open_run_folder(_cfg(), report_only, resume=False):
        pass


def test_one_run_per_folder_and_a_killed_holder_frees_it(tmp_path):
    out = tmp_path / "r"
    with open_run_folder(_cfg(), out, resume=False) as phases:
        phases.mark("train-sft", {})
    # runs in sequence in one process never block each other; a several-seed parent and its runs each lock
    with open_run_folder(_cfg(), out, resume=True), open_run_folder(_cfg(), out / "seed-0", resume=False):
        pass
    assert not (out / ".lock").exists()

    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; from upft_bench.runfolder import _lock; "
         "held = _lock(Path(sys.argv[1])); print('locked', flush=True); time.sleep(120)", str(out)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunFolderError) as err:
            open_run_folder(_cfg(), out, resume=True)
        message = str(err.value)
        assert re.fullmatch(rf"{re.escape(str(out))} is in use by another upft-bench run \(pid {holder.pid}, since "
                            r"\d\d:\d\d\); wait for it or choose another --output", message), message
        assert (out / ".done" / "train-sft.json").exists()
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    with open_run_folder(_cfg(), out, resume=True) as phases:  # the OS freed the dead holder's lock
        assert phases.done("train-sft") == {}


def test_a_folder_without_finished_work_is_started_over(tmp_path, capsys):
    out = tmp_path / "r"
    _died_after(out, _cfg(), "base_model")  # e.g. the model turned out unloadable
    assert finished_work(out) == []
    with open_run_folder(_cfg(), out, resume=False) as phases:  # a plain rerun: nothing to keep, so no refusal
        assert phases.done("base_model") is None and phases.elapsed() < 60
    assert f"[output] {out}: no phase of the earlier run had finished; starting it over" in capsys.readouterr().err

    _died_after(out, _cfg(), "base_model")
    fixed = _cfg("train.lr=0.5")  # --resume with the config fixed: accepted, config.yaml rewritten
    with open_run_folder(fixed, out, resume=True) as phases:
        assert phases.done("base_model") is None
    assert "lr: 0.5" in (out / "config.yaml").read_text()


def test_resume_with_another_config_names_the_work_and_the_sections(tmp_path):
    out = tmp_path / "r"
    _died_after(out, _cfg(), "base_model", "sample-abc", "train-sft")
    (out / "samples").mkdir()
    (out / "samples" / "def.jsonl.partial").write_text("")
    with pytest.raises(RunFolderError) as err:
        open_run_folder(_cfg("sampling.temperature=0.5"), out, resume=True)
    assert str(err.value) == (
        f"{out / 'config.yaml'}: --resume with a different config (sections sampling differ), and the folder holds "
        "work done under the old one (sample-abc, train-sft, samples/def.jsonl.partial); resume with the same "
        "config, or start a new --output")
    with pytest.raises(RunFolderError, match="already holds results: pass --resume"):
        open_run_folder(_cfg(), out, resume=False)


def test_resume_with_a_fixed_training_setting_redoes_only_what_depends_on_it(tmp_path, capsys):
    """The fix after a failed training (e.g. a diverging lr): samples and the base model's evaluation are kept,
    the training, validation and evaluation of trained methods are redone, and their checkpoints dropped."""
    out = tmp_path / "r"
    _died_after(out, _cfg(), "base_model", "sample-abc", "eval-base", "train-sft", "val-sft", "eval-sft")
    (out / "methods" / "upft" / "train" / "checkpoints").mkdir(parents=True)
    open_run_folder(_cfg("train.lr=0.5"), out, resume=True).release()
    assert sorted(m.stem for m in (out / ".done").glob("*.json")) == [
        "base_model", "elapsed", "eval-base", "inputs", "sample-abc"]
    assert not (out / "methods" / "upft" / "train" / "checkpoints").exists()
    said = capsys.readouterr().err
    assert "--resume with changed train: redoing eval-sft, train-sft, val-sft; the rest is kept" in said
    assert "lr: 0.5" in (out / "config.yaml").read_text()
    open_run_folder(_cfg("train.lr=0.5", "eval.limit=3"), out, resume=True).release()
    assert sorted(m.stem for m in (out / ".done").glob("*.json")) == ["base_model", "elapsed", "inputs", "sample-abc"]


def _bad_model(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{not json")
    return model


@pytest.mark.parametrize("seeds", [[], ["seeds=[0,1]"]])
def test_a_failed_run_leaves_no_folder_behind(tmp_path, seeds):
    """A run that fails in a folder it made, before any phase finished (here: the model files are bad), removes
    what it wrote, so the next plain run starts clean; with seeds, the parent and the seed's folder both go."""
    out = tmp_path / "r"
    cfg = _cfg(f"model.path={_bad_model(tmp_path)}", *seeds)
    with pytest.raises(InputError, match="cannot load the base model's tokenizer"):
        run_compare(cfg, out)
    assert not out.exists()
    with pytest.raises(InputError, match="cannot load the base model's tokenizer"):  # not refused: fails alike
        run_compare(cfg, out)
    assert not out.exists()

    existing = tmp_path / "mine"  # a folder that was there, empty: emptied again, kept
    existing.mkdir()
    with pytest.raises(InputError):
        run_compare(cfg, existing)
    assert existing.is_dir() and list(existing.iterdir()) == []


def test_a_failure_after_a_finished_phase_keeps_the_folder(tmp_path):
    out = tmp_path / "r"
    with pytest.raises(RuntimeError), open_run_folder(_cfg(), out, resume=False) as phases:
        phases.mark("sample-abc", {})
        raise RuntimeError("killed")
    assert (out / ".done" / "sample-abc.json").exists() and not (out / ".lock").exists()
    with pytest.raises(KeyboardInterrupt), open_run_folder(_cfg(), tmp_path / "ctrl-c", resume=False):
        raise KeyboardInterrupt  # interrupted, not failed: kept for --resume
    assert (tmp_path / "ctrl-c" / "config.yaml").exists()


def _gsm8k(tmp_path):
    root = tmp_path / "data"
    (root / "gsm8k").mkdir(parents=True)
    (root / "gsm8k" / "train.jsonl").write_text(json.dumps({"question": "1+1?", "answer": "so #### 2"}) + "\n")
    (root / "gsm8k" / "test.jsonl").write_text(json.dumps({"question": "2+2?", "answer": "so #### 4"}) + "\n")
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    return root, model


def test_resume_refuses_input_files_changed_since_the_run_started(tmp_path):
    root, model = _gsm8k(tmp_path)
    cfg = _cfg("data.train=gsm8k", f"data.data_dir={root}", "eval.tasks=[upft_gsm8k]", f"model.path={model}")
    train, test = root / "gsm8k" / "train.jsonl", root / "gsm8k" / "test.jsonl"
    prints = input_fingerprints(cfg)
    assert sorted(prints) == [f"data.train: {train}", f"eval.tasks upft_gsm8k: {test}", f"model.path: {model}"]
    assert prints[f"data.train: {train}"].endswith(f", {train.stat().st_size} bytes")

    out = tmp_path / "r"
    _died_after(out, cfg, "base_model", "train-sft")
    assert json.loads((out / ".done" / "inputs.json").read_text()) == prints
    original = train.read_text()
    train.write_text(original.replace("1+1", "1+2"))  # edited in place, same size
    with pytest.raises(RunFolderError) as err:
        open_run_folder(cfg, out, resume=True)
    old, new = prints[f"data.train: {train}"][7:15], input_fingerprints(cfg)[f"data.train: {train}"][7:15]
    assert str(err.value) == (f"{out}: --resume: data.train file {train} changed since the run started "
                              f"(sha256 {old}… -> {new}…); start a new --output, or restore the file")
    train.write_text(original)  # restored: resumes
    with open_run_folder(cfg, out, resume=True):
        pass

    test.write_text(test.read_text() + "\n")
    with pytest.raises(RunFolderError, match=rf"--resume: eval.tasks upft_gsm8k file {re.escape(str(test))} changed"):
        open_run_folder(cfg, out, resume=True)
    test.write_text(test.read_text()[:-1])
    (model / "model.safetensors").write_bytes(b"retrained")
    with pytest.raises(RunFolderError, match=rf"--resume: model.path folder {re.escape(str(model))} changed since "
                                             r"the run started \(files \w{8}… -> \w{8}…\)"):
        open_run_folder(cfg, out, resume=True)

    (model / "model.safetensors").unlink()
    (out / ".done" / "inputs.json").unlink()  # a folder from before inputs.json: resumes, and records them
    train.write_text(original.replace("1+1", "1+3"))
    with open_run_folder(cfg, out, resume=True):
        pass
    assert json.loads((out / ".done" / "inputs.json").read_text()) == input_fingerprints(cfg)


def test_phases_still_import_from_compare():
    assert Phases.ELAPSED == "elapsed"
