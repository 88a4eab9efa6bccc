"""The experiment schema: shipped configs, overrides, one seed and prompt style, resume's config check."""
from __future__ import annotations

import re

import pytest
import yaml

from upft_bench import baselines_dir
from upft_bench.config import ConfigError, dump_yaml
from upft_bench.experiment import changed_sections, load_experiment
from upft_bench.methods import METHOD_IDS


def test_config_overrides_and_errors(tmp_path):
    cfg = load_experiment(None, ["train.lr=1e-3", "methods=[base,upft]", "seed=3"])
    assert cfg.name == "default" and cfg.train.lr == 1e-3 and cfg.methods == ["base", "upft"]
    assert cfg.train.seed == cfg.sampling.seed == cfg.method.seed == 3
    with pytest.raises(ConfigError, match="unknown rft2"):
        load_experiment(None, ["methods=[rft2]"])
    with pytest.raises(ConfigError, match=r"train: unknown key\(s\) lrate"):
        load_experiment(None, ["train.lrate=1"])
    with pytest.raises(ConfigError, match="eval.backend must be 'hf' or 'vllm'"):
        load_experiment(None, ["eval.backend=tgi"])
    with pytest.raises(ConfigError, match="differs from eval.system"):
        load_experiment(None, ["eval.system=qwen_boxed", "sampling.system=none"])


@pytest.mark.parametrize("path", sorted(baselines_dir().glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_loads(path):
    text = path.read_text()
    assert re.search(r"^# upft-bench compare", text, re.M), "configs open with the command that runs them"
    cfg = load_experiment(path)
    assert cfg.methods
    assert cfg.train.trust_remote_code is False


@pytest.mark.parametrize("name, position", [("synth-late-errors", "last"), ("synth-early-errors", "first")])
def test_the_controls_change_only_where_errors_happen(name, position):
    """The control configs are the default with one change in the world, where the base model's mistakes happen,
    and their own learning rates (chosen on validation in that world) for the same methods."""
    from upft_bench.config import to_dict

    default = to_dict(load_experiment(None))
    control = to_dict(load_experiment(baselines_dir() / f"{name}.yaml"))
    assert control.pop("name") == name and default.pop("name") == "default"
    assert default["pretrain"].pop("error_position") == "any"
    assert control["pretrain"].pop("error_position") == position
    assert set(control.pop("per_method")) == set(default.pop("per_method"))
    assert control == default


def test_resume_refuses_a_different_config(tmp_path):
    from upft_bench.compare import check_same_config as _check_same_config

    cfg = load_experiment(baselines_dir() / "smoke.yaml")
    path = tmp_path / "config.yaml"
    path.write_text(dump_yaml(cfg))
    _check_same_config(path, load_experiment(baselines_dir() / "smoke.yaml", ["methods=[base]"]))  # fine
    with pytest.raises(Exception, match="sections train differ"):
        _check_same_config(path, load_experiment(baselines_dir() / "smoke.yaml", ["train.lr=0.5"]))
    before = yaml.safe_load(path.read_text())
    assert changed_sections(before, load_experiment(baselines_dir() / "smoke.yaml", ["seed=4"])) == [
        "method", "sampling", "seed", "train"]


def test_a_folder_written_before_a_setting_existed_still_resumes():
    """A config.yaml without a later null-default key (model.gguf_file) and another checkpoint cadence
    (train.save_every, which changes no result) is the same experiment; a real difference still counts."""
    cfg = load_experiment(baselines_dir() / "smoke.yaml")
    before = yaml.safe_load(dump_yaml(cfg))
    del before["model"]["gguf_file"]
    before["train"].update(save_every=0, log_every=1)
    assert changed_sections(before, cfg) == []
    before["model"]["path"] = "some/model"
    assert changed_sections(before, cfg) == ["model"]


def test_defaults_run_every_method_and_seed_none_follows_the_experiment():
    cfg = load_experiment(None)
    assert cfg.methods == list(METHOD_IDS)
    assert cfg.train.seed == cfg.sampling.seed == cfg.method.seed == cfg.seed == 0
    with pytest.raises(ConfigError, match="train.seed .* differs from the experiment seed"):
        load_experiment(None, ["seed=1", "train.seed=2"])


def test_seeds_make_one_run_each_and_base_seeds_vary_the_pretraining_seed():
    from upft_bench.experiment import runs

    cfg = load_experiment(None)
    assert runs(cfg) == [(None, cfg)]
    plan = runs(load_experiment(None, ["seeds=[3,4]"]))
    assert [tag for tag, _ in plan] == ["seed-3", "seed-4"]
    assert [(c.seed, c.train.seed, c.sampling.seed, c.method.seed, c.seeds) for _, c in plan] == [
        (3, 3, 3, 3, None), (4, 4, 4, 4, None)]
    both = runs(load_experiment(None, ["seeds=[0,1]", "base_seeds=[5,6]"]))
    assert [tag for tag, _ in both] == ["base-5-seed-0", "base-5-seed-1", "base-6-seed-0", "base-6-seed-1"]
    assert [c.pretrain.seed for _, c in both] == [5, 5, 6, 6]
    with pytest.raises(ConfigError, match="base_seeds: only a base model built here"):
        load_experiment(None, ["base_seeds=[1]", "model.path=some/model"])
    with pytest.raises(ConfigError, match="seeds: give one or more distinct seeds"):
        load_experiment(None, ["seeds=[1,1]"])
    with pytest.raises(ConfigError, match="report: unknown method"):
        load_experiment(None, ["report.reference=rtf"])


def test_the_default_run_writes_only_untracked_files():
    """`make compare` writes results/default/: git ignores it, so the README's first command leaves a clean tree;
    the run the README shows is shipped as results/reference/."""
    import shutil
    import subprocess
    from pathlib import Path

    repo = Path(__file__).resolve().parent.parent
    if shutil.which("git") is None or not (repo / ".git").exists():
        pytest.skip("not a git checkout")
    cfg = load_experiment(None)
    assert cfg.name == "default"
    for path in ("results/default/metrics.json", "results/default/compare.md", "results/default/.done/x.json"):
        assert subprocess.run(["git", "check-ignore", "-q", path], cwd=repo).returncode == 0, path
    assert subprocess.run(["git", "check-ignore", "-q", "results/reference/metrics.json"], cwd=repo).returncode == 1
    assert (repo / "results" / "reference" / "metrics.json").exists()
