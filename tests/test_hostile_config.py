"""Careless or hostile config input fails at config time, in one line that names the file or flag and the key.

Every CLI case here must fail while the config loads: `run_compare` and the preflight check are replaced by a
stub that fails the test, so nothing is sampled, trained or written.
"""
from __future__ import annotations

import json
import math
import time

import pytest
from click.testing import CliRunner

from upft_bench import baselines_dir
from upft_bench.config import MAX_YAML_VALUES, ConfigError, load_dataclass, read_yaml, shown
from upft_bench.experiment import ExperimentConfig, load_experiment, sweep_overrides
from upft_bench.methods import MethodConfig
from upft_bench.sampling import SamplingConfig
from upft_bench.train import TrainConfig

SMOKE = str(baselines_dir() / "smoke.yaml")


@pytest.fixture
def cli(monkeypatch, tmp_path):
    """`upft-bench ARGS` through click, returning (exit code, output); a config that gets past loading fails."""
    import upft_bench.commands.compare as command
    from upft_bench.cli import main

    def accepted(cfg, *args, **kwargs):
        raise AssertionError(f"config accepted: {cfg.name}")

    monkeypatch.setattr(command, "check", accepted)
    monkeypatch.setattr(command, "run_compare", accepted)
    monkeypatch.chdir(tmp_path)

    def invoke(*args: str) -> tuple[int, str]:
        result = CliRunner().invoke(main, list(args))
        return result.exit_code, result.output

    return invoke


def one_line_error(code: int, output: str) -> str:
    """The message of a failed command, checked to be one line without a traceback."""
    assert code != 0, output
    assert "Traceback" not in output and "AssertionError" not in output, output
    lines = output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), output
    return lines[0][len("Error: "):]


def bomb(levels: int = 9) -> list[str]:
    """The lines of a "billion laughs" list: 9**levels strings from a few hundred bytes of YAML."""
    lines = ["  - &l0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"  - &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, levels)]
    return lines


def block_bomb(levels: int = 9) -> str:
    """The same bomb in block style, without a comma (a --sweep value is cut at commas)."""
    parts = ["l0: &l0\n" + "- x\n" * 9]
    parts += [f"l{i}: &l{i}\n" + f"- *l{i - 1}\n" * 9 for i in range(1, levels)]
    return "".join(parts)


# 1
def test_an_empty_config_file_is_refused_not_run_as_the_default(tmp_path):
    for text in ("", "# only a comment\n\n# and another\n", "---\n"):
        path = tmp_path / "empty.yaml"
        path.write_text(text)
        with pytest.raises(ConfigError) as err:
            load_experiment(path)
        assert str(err.value) == (f"{path}: the config is empty (no settings); run without a config file for "
                                  "the default")


# 2
@pytest.mark.parametrize("text", [".inf", "-.inf", ".nan", ".NaN", "1e999", "inf"])
def test_non_finite_floats_are_refused_in_files_and_overrides(tmp_path, text):
    path = tmp_path / "c.yaml"
    path.write_text(f"train:\n  lr: {text}\n")
    with pytest.raises(ConfigError, match=r"c.yaml.train.lr: must be a finite number, got "):
        load_experiment(path)
    with pytest.raises(ConfigError, match=rf"^--set train.lr={text}: train.lr: must be a finite number, got "):
        load_experiment(SMOKE, [f"train.lr={text}"])
    for key in ("sampling.temperature", "report.margin", "train.adam_eps", "method.structure_ratio"):
        with pytest.raises(ConfigError, match=rf"{key}: must be a finite number"):
            load_experiment(SMOKE, [f"{key}={text}"])
    with pytest.raises(ConfigError, match=r"seed: expected an integer"):
        load_experiment(SMOKE, [f"seed={text}"])  # an integer field: no OverflowError from int(inf)


def test_sections_refuse_values_outside_their_range():
    with pytest.raises(ValueError, match="lr must be > 0"):
        TrainConfig(lr=math.inf)
    with pytest.raises(ValueError, match="temperature must be >= 0"):
        SamplingConfig(temperature=math.inf)
    for section, kwargs in ((TrainConfig, {"seed": -1}), (SamplingConfig, {"seed": -1}), (MethodConfig, {"seed": -1})):
        with pytest.raises(ValueError, match="seed must be >= 0"):
            section(**kwargs)


# 3
def test_a_yaml_alias_bomb_is_refused_before_it_expands(tmp_path):
    path = tmp_path / "bomb.yaml"
    path.write_text("name: bomb\nmethods:\n" + "\n".join(bomb()) + "\n")
    expected = f"{path}: the YAML expands to more than {MAX_YAML_VALUES:,} values (aliases?); refused"
    with pytest.raises(ConfigError) as err:
        read_yaml(path)
    assert str(err.value) == expected
    start = time.monotonic()
    with pytest.raises(ConfigError, match="aliases"):
        load_experiment(path)
    assert time.monotonic() - start < 2
    inline = "{" + ", ".join(f"k{i}: {line.strip()[2:]}" for i, line in enumerate(bomb())) + "}"
    start = time.monotonic()
    with pytest.raises(ConfigError, match=r"^--set methods=\{k0: &l0 .*: the YAML expands to more than"):
        load_experiment(SMOKE, [f"methods={inline}"])
    with pytest.raises(ConfigError, match=r"^--sweep train.lr=l0: &l0 .*: the YAML expands to more than"):
        sweep_overrides([f"train.lr={block_bomb()}"], SMOKE, [])
    assert time.monotonic() - start < 2


def test_a_recursive_alias_or_deep_nesting_is_refused(tmp_path):
    path = tmp_path / "loop.yaml"
    path.write_text("methods: &a [base, *a]\n")
    with pytest.raises(ConfigError, match="loop.yaml: the YAML expands to more than"):
        load_experiment(path)
    path.write_text("methods: " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(ConfigError, match="loop.yaml: the YAML nests too deeply; refused"):
        load_experiment(path)


def test_error_messages_show_at_most_a_few_dozen_characters_of_a_value(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text("methods: [[" + ", ".join(map(str, range(50_000))) + "]]\n")
    with pytest.raises(ConfigError, match=r"big.yaml.methods\[0\]: expected a string, got \[0, 1, ") as err:
        load_experiment(path)
    assert len(str(err.value)) < 300
    with pytest.raises(ConfigError) as err:
        load_experiment(SMOKE, ["eval.backend=" + "x" * 100_000])
    assert "eval.backend must be 'hf' or 'vllm'" in str(err.value) and len(str(err.value)) < 400
    with pytest.raises(ConfigError) as err:
        load_experiment(SMOKE, [f"train.{'y' * 100_000}=1"])
    assert len(str(err.value)) < 800
    assert len(shown("z" * 10**6)) <= 80 and shown(math.inf) == "inf"


# 4
@pytest.mark.parametrize("name", ["../../escaped", "/tmp/x", "", ".", "a/../../b", "runs/..", "a//b", "a b",
                                  "~/x", "a\\..\\b"])
def test_the_experiment_name_cannot_leave_results(tmp_path, name):
    path = tmp_path / "c.yaml"
    path.write_text(f"name: {json.dumps(name)}\n")
    with pytest.raises(ConfigError) as err:
        load_experiment(path)
    assert str(err.value) == (f"{path}: name: {name!r} must be a folder name under results/ (letters, digits, "
                              ". _ -), not a path that leaves it")
    for ok in ("default", "runs/lr-1e-4", "qwen2.5_math.v2", ".hidden"):
        assert load_experiment(SMOKE, [f"name={ok}"]).name == ok


# 5
def test_override_errors_name_the_flag_not_the_config_file(cli, tmp_path):
    message = one_line_error(*cli("compare", SMOKE, "--set", "train.lrr=1"))
    assert message.startswith("--set train.lrr=1: train: unknown key(s) lrr; TrainConfig takes: adam_betas, ")
    assert "smoke.yaml" not in message
    message = one_line_error(*cli("compare", SMOKE, "--set", "train.lr=fast"))
    assert message == "--set train.lr=fast: train.lr: expected a number, got 'fast'"
    message = one_line_error(*cli("compare", SMOKE, "--set", "train.lr=0"))
    assert message == "--set train.lr=0: train: TrainConfig: lr must be > 0"
    message = one_line_error(*cli("compare", SMOKE, "--set", "methods=[base,foo]"))
    assert message.startswith("--set methods=[base,foo]: methods: unknown foo; known: base, ")
    message = one_line_error(*cli("compare", SMOKE, "--methods", "base,foo"))
    assert message == "--methods: unknown method 'foo'; known: base, sft, sft_self, rft, upft, upft_label_filter, vstar"
    message = one_line_error(*cli("compare", SMOKE, "--base-seeds", "1", "--set", "model.path=some/model"))
    assert message.startswith("--base-seeds 1: base_seeds: only a base model built here")
    # a key of the file is still named with the file, also when an override is given
    path = tmp_path / "mine.yaml"
    path.write_text(open(SMOKE).read().replace("  lr: 1.0e-3\n", "  lrr: 1.0e-3\n"))
    with pytest.raises(ConfigError, match=r"^\S*mine.yaml.train: unknown key\(s\) lrr; TrainConfig takes"):
        load_dataclass(ExperimentConfig, path, ["train.epochs=2"])
    message = one_line_error(*cli("compare", str(path), "--methods", "base"))
    assert message.startswith(f"{path}.train: unknown key(s) lrr")


# 6
@pytest.mark.parametrize("value", [",", "", " , ,"])
def test_an_empty_method_list_names_the_flag(cli, value):
    message = one_line_error(*cli("compare", SMOKE, "--methods", value))
    assert message == "--methods: name at least one method (e.g. --methods base,upft)"


# 7
def test_swept_values_are_checked_at_config_time(cli, tmp_path):
    message = one_line_error(*cli("compare", SMOKE, "--sweep", "train.lr=0,1e-3", "--output", str(tmp_path / "o")))
    assert message == "--sweep train.lr=0,1e-3: train.lr=0.0: TrainConfig: lr must be > 0"
    assert not (tmp_path / "o").exists()
    message = one_line_error(*cli("compare", SMOKE, "--sweep", "method.structure_ratio=0.1,2"))
    assert message == ("--sweep method.structure_ratio=0.1,2: method.structure_ratio=2.0: method.structure_ratio "
                       "must be in [0, 1], got 2.0")
    message = one_line_error(*cli("compare", SMOKE, "--sweep", "train.lr=fast"))
    assert message == "--sweep train.lr=fast: train.lr: expected a number, got 'fast'"
    message = one_line_error(*cli("compare", SMOKE, "--sweep", "train.lrr=1,2"))
    assert message.startswith("--sweep train.lrr=1,2: 'train.lrr' is not a setting that can vary per method")
    path = tmp_path / "sweep.yaml"
    path.write_text("data: {val_limit: 10}\nsweep:\n  train.lr: [0, 1.0e-3]\nper_method:\n  upft: {train.epochs: 0}\n")
    with pytest.raises(ConfigError, match=r"sweep.yaml: sweep: train.lr=0.0: TrainConfig: lr must be > 0$"):
        load_experiment(path)
    path.write_text("per_method:\n  upft: {train.epochs: 0}\n")
    with pytest.raises(ConfigError, match=r"sweep.yaml: per_method.upft: train.epochs=0: TrainConfig: epochs must"):
        load_experiment(path)


# 8
@pytest.mark.parametrize("flag, value, needle", [
    ("--seeds", "-1", "--seeds: -1 is not a seed"),
    ("--seeds", "0,-2", "--seeds: -2 is not a seed"),
    ("--seeds", "1.5", "--seeds: '1.5' is not a seed"),
    ("--seeds", "1,1", "--seeds: give one or more distinct seeds; 1 is given twice"),
    ("--seeds", ",", "--seeds: give one or more distinct seeds; none given"),
    ("--base-seeds", "-1", "--base-seeds: -1 is not a seed"),
    ("--base-seeds", "99999999999", "--base-seeds: 99999999999 is not a seed"),
])
def test_seeds_are_integers_from_zero(cli, flag, value, needle):
    assert one_line_error(*cli("compare", SMOKE, flag, value)).startswith(needle)


@pytest.mark.parametrize("text, needle", [
    ("seed: -1", "seed: -1 is not a seed"), ("seeds: [0, -1]", "seeds: -1 is not a seed"),
    ("base_seeds: [-3]", "base_seeds: -3 is not a seed"),
])
def test_seeds_in_a_file_are_integers_from_zero(tmp_path, text, needle):
    path = tmp_path / "seeds.yaml"
    path.write_text(text + "\n")
    with pytest.raises(ConfigError, match=f"seeds.yaml: {needle}"):
        load_experiment(path)


# 9
@pytest.mark.parametrize("override, needle", [
    ("data.train_limit=-1", "data.train_limit must be >= 0"),
    ("data.val_limit=-1", "data.val_limit must be >= 0"),
    ("eval.limit=0", "eval.limit must be >= 1"),
    ("eval.batch_size=0", "eval.batch_size must be >= 1"),
    ("eval.max_gen_toks=0", "eval.max_gen_toks must be >= 1"),
])
def test_data_and_eval_limits_name_their_key(tmp_path, override, needle):
    key, value = override.split("=")
    section, name = key.split(".")
    path = tmp_path / "limits.yaml"
    path.write_text(f"{section}:\n  {name}: {value}\n")
    with pytest.raises(ConfigError, match=rf"limits.yaml.{section}: {needle}"):
        load_experiment(path)
    with pytest.raises(ConfigError, match=rf"^--set {override}: {section}: {needle}"):
        load_experiment(SMOKE, [override])


# 10
@pytest.mark.parametrize("value", ["0", "-1", "inf", "nan", "601"])
def test_the_grade_timeout_is_a_finite_number_of_seconds(cli, value):
    message = one_line_error(*cli("grade", "1", "1", "--timeout", value))
    assert message.startswith("--timeout: must be seconds in (0, 600], got ")


@pytest.mark.parametrize("value, needle", [(".inf", "method.grade_timeout: must be a finite number, got inf"),
                                           ("0", "method.grade_timeout must be seconds in (0, 600], got 0.0"),
                                           ("1000", "method.grade_timeout must be seconds in (0, 600], got 1000.0")])
def test_the_method_grade_timeout_is_bounded(tmp_path, value, needle):
    path = tmp_path / "timeout.yaml"
    path.write_text(f"method:\n  grade_timeout: {value}\n")
    with pytest.raises(ConfigError, match=needle.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        load_experiment(path)


def test_valid_flags_still_make_the_same_config(monkeypatch, tmp_path):
    """Checked flags become the overrides they always were: the config a valid command runs is unchanged."""
    import upft_bench.commands.compare as command
    from upft_bench.cli import main

    seen = []
    monkeypatch.setattr(command, "check", seen.append)
    monkeypatch.setattr(command, "run_compare", lambda *a, **k: (_ for _ in ()).throw(SystemExit(0)))
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["compare", SMOKE, "--methods", " base, upft", "--seeds", "0,1",
                                       "--sweep", "train.lr=1e-4,2e-4", "--data-dir", "data: here",
                                       "--set", "train.epochs=2"])
    assert result.exit_code == 0, result.output
    cfg = seen[0]
    assert cfg == load_experiment(SMOKE, ["methods=[base,upft]", "seeds=[0,1]", "train.epochs=2",
                                          "sweep={train.lr: [1.0e-4, 2.0e-4]}", "data.val_limit=100",
                                          "data.data_dir='data: here'"])
    assert cfg.sweep == {"train.lr": [1e-4, 2e-4]} and cfg.data.data_dir == "data: here"
