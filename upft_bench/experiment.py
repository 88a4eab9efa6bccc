"""The experiment schema: what `upft-bench compare` runs, as nested dataclasses mirrored by baselines/*.yaml.

    from upft_bench.experiment import load_experiment
    cfg = load_experiment("baselines/smoke.yaml", ["train.lr=1e-3", "methods=[base,upft]"])
    cfg.method.prefix_tokens, cfg.train.lr, cfg.eval.tasks

Unknown keys are errors and each section validates itself (upft_bench.config). One seed and one prompt style
hold for the whole experiment: the sections that take them follow the top level.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from upft_bench import baselines_dir
from upft_bench.config import (
    ConfigError,
    clipped,
    coerce,
    dump_yaml,
    from_dict,
    load_dataclass,
    load_yaml,
    shown,
    to_dict,
)
from upft_bench.methods import METHOD_IDS, MethodConfig
from upft_bench.pretrain import PretrainConfig
from upft_bench.sampling import SamplingConfig
from upft_bench.train import LORA_FIELDS, RESULT_NEUTRAL, TrainConfig

# The sections whose settings may vary per method (a sweep, per_method): they change training, never sampling.
_PER_METHOD_SECTIONS = {"train": TrainConfig, "method": MethodConfig}


# Seeds feed Python's and torch's generators and name result folders (seed-3): integers in [0, MAX_SEED].
MAX_SEED = 2**32 - 1


def seed_error(label: str, seeds: list[int]) -> str | None:
    """What is wrong with a list of seeds (`label` names the key or flag), or None."""
    if not seeds:
        return f"{label}: give one or more distinct seeds; none given"
    bad = [s for s in seeds if isinstance(s, bool) or not isinstance(s, int) or not 0 <= s <= MAX_SEED]
    if bad:
        return f"{label}: {shown(bad[0])} is not a seed; seeds are integers from 0 to {MAX_SEED}"
    twice = [s for i, s in enumerate(seeds) if s in seeds[:i]]
    if twice:
        return f"{label}: give one or more distinct seeds; {twice[0]} is given twice"
    return None


def setting_value(key: str, value, where: str, sections: dict | None = None):
    """`value` converted to the type of the field `key` names (`train.lr` -> float); errors (ConfigError) name
    `where` and key.

    A key must name a field of a sweepable section (`train.lr`, `method.prefix_tokens`); seeds and the prompt
    style are not per-method settings. With `sections` (section name -> its config, e.g. {"train": cfg.train}),
    the section with this value must pass its own checks too (`lr must be > 0`), so a bad value fails here and
    not in the middle of a run.
    """
    section, _, name = str(key).partition(".")
    classes = _PER_METHOD_SECTIONS
    hints = typing.get_type_hints(classes[section]) if section in classes else {}
    if name not in hints or name in ("seed", "system"):
        raise ConfigError(f"{where}: {shown(key)} is not a setting that can vary per method; use train.<field> "
                          f"or method.<field> (not seed or system), e.g. train.lr")
    value = coerce(value, hints[name], f"{where}: {key}")
    if sections is not None:
        try:
            dataclasses.replace(sections[section], **{name: value})
        except (TypeError, ValueError) as err:
            raise ConfigError(f"{where}: {key}={shown(value)}: {err}") from None
    return value


@dataclass
class ModelConfig:
    path: str | None = None  # local checkpoint, Hub id or .gguf file; None: build the tiny offline base model
    gguf_file: str | None = None  # a GGUF file inside the folder `path` (converted once, upft_bench.gguf)
    paper_name: str | None = None  # one of the paper's models, for the "reported" table (default: guessed from path)

    def __post_init__(self):
        if self.gguf_file and not self.path:
            raise ValueError("model.gguf_file names a file inside model.path; set model.path to its folder")


@dataclass
class DataConfig:
    # Question set the methods train on: a name (synth, gsm8k, math12k: upft_bench.data.NAMES), or your own
    # questions: a .jsonl/.csv/.parquet file or a Hub dataset hub:OWNER/NAME[:CONFIG][@SPLIT].
    train: str = "synth"
    train_split: str = "train"
    train_limit: int | None = 500  # number of training questions (None: all)
    # Validation questions for selection (upft_bench.selection): the next val_limit questions of the training set
    # after the first train_limit, so disjoint from training and test. 0: none (a sweep needs some).
    val_limit: int = 0
    data_dir: str | None = None  # local benchmark copies (layout in tasks/README.md); default $UPFT_BENCH_DATA_DIR
    # Columns of your own files (training and eval.tasks files alike): {question: problem, answer: final, ...};
    # keys question, answer, solution, id. Unset: question/problem, answer/expected_answer, solution, id.
    fields: dict[str, str] = field(default_factory=dict)
    allow_overlap: bool = False  # accept test questions that also appear among the training questions (reported)

    def __post_init__(self):
        if self.train_limit is not None and self.train_limit < 0:
            raise ValueError(f"data.train_limit must be >= 0 (or null: all), got {self.train_limit}")
        if self.val_limit < 0:
            raise ValueError(f"data.val_limit must be >= 0 (0: none), got {self.val_limit}")

    def resolved_dir(self) -> str | None:
        """The data directory in use: this setting, else $UPFT_BENCH_DATA_DIR, else None (the Hub)."""
        return self.data_dir or os.environ.get("UPFT_BENCH_DATA_DIR")


@dataclass
class EvalConfig:
    # lm-eval task or group names, or your own test questions (a .jsonl/.csv/.parquet file or hub:OWNER/NAME),
    # each evaluated as the task upft_own_<stem> made for it
    tasks: list[str] = field(default_factory=lambda: ["upft_synth"])
    limit: int | None = None  # questions per task (None: all)
    batch_size: int = 32
    max_gen_toks: int | None = None  # None: each task's own setting
    system: str | None = None  # prompt style (upft_bench.prompts.SYSTEM_PROMPTS), same for sampling
    device: str | None = None  # None: cuda when available, else cpu
    backend: str = "hf"  # lm-eval model backend: hf, or vllm (GPU machines, where installed)
    # k of best-of-k decoding for a method with a verifier (vstar): k samples at sampling.temperature, the one the
    # verifier scores highest answers; reported beside the method's greedy row as <method>@best-of-<k>
    best_of: int = 8

    def __post_init__(self):
        if self.best_of < 1:
            raise ValueError(f"eval.best_of must be >= 1, got {self.best_of}")
        if self.backend not in ("hf", "vllm"):
            raise ValueError(f"eval.backend must be 'hf' or 'vllm', got {shown(self.backend)}")
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"eval.limit must be >= 1 (or null: all questions), got {self.limit}")
        if self.batch_size < 1:
            raise ValueError(f"eval.batch_size must be >= 1, got {self.batch_size}")
        if self.max_gen_toks is not None and self.max_gen_toks < 1:
            raise ValueError(f"eval.max_gen_toks must be >= 1 (or null: each task's own), got {self.max_gen_toks}")


@dataclass
class LaunchConfig:
    num_processes: int = 1  # >1: each method's training runs under `accelerate launch` with this many processes
    # Extra launch flags, e.g. [--config_file, fsdp.yaml]; --multi_gpu is added when they name no distributed mode.
    accelerate_args: list[str] = field(default_factory=list)

    def __post_init__(self):
        if self.num_processes < 1:
            raise ValueError("launch.num_processes must be >= 1")


@dataclass
class ReportConfig:
    reference: str = "rft"  # every other method is compared with it, question by question (paired)
    also_against: list[str] = field(default_factory=lambda: ["base"])  # further references, a verdict table each
    margin: float = 2.0  # equivalence margin in accuracy points: "equivalent" means within ±margin (TOST at 5%)
    # A cross-check only (metrics.json `bootstrap_ci95`): the paired bootstrap over questions and seeds; 0: none.
    # Verdicts follow the fiducial interval of the crossed design (upft_bench.stats), which no resampling decides.
    bootstrap_resamples: int = 10_000

    def __post_init__(self):
        unknown = [str(m) for m in [self.reference, *self.also_against] if m not in METHOD_IDS]
        if unknown:
            raise ValueError(f"report: unknown method(s) {clipped(', '.join(unknown))}; "
                             f"known: {', '.join(METHOD_IDS)}")
        if self.margin <= 0:
            raise ValueError(f"report.margin must be > 0 (accuracy points), got {self.margin}")
        if self.bootstrap_resamples != 0 and self.bootstrap_resamples < 100:
            raise ValueError("report.bootstrap_resamples must be 0 (no cross-check) or >= 100")


@dataclass
class AnalysisConfig:
    """Settings of the prefix analyses (`upft-bench analyze`, or `analysis: true` in a comparison)."""

    ks: list[int] = field(default_factory=lambda: [4, 8, 16, 32])  # prefix lengths in tokens
    samples: int = 16  # full samples per question (M)
    rollouts: int = 4  # continuations from each question's top prefix and from another prefix (R)
    questions: int = 100  # the first questions of the training set
    max_new_tokens: int | None = None  # None: method.max_new_tokens

    def __post_init__(self):
        if not self.ks or min(self.ks) < 1 or self.samples < 2 or self.rollouts < 1 or self.questions < 1:
            raise ValueError("analyze: ks >= 1 (one or more), samples >= 2, rollouts >= 1, questions >= 1")
        self.ks = sorted(set(self.ks))


# A result folder under results/: letters, digits, . _ - (and / for sub-folders), never leaving it.
_FOLDER_NAME = re.compile(r"[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*")


@dataclass
class ExperimentConfig:
    name: str = "default"  # result folder name under results/
    seed: int = 0  # one seed for sampling, example building and training
    seeds: list[int] | None = None  # several seeds in one command: every method per seed (replaces `seed`)
    base_seeds: list[int] | None = None  # also vary the built base model's pretraining seed (model.path null only)
    methods: list[str] = field(default_factory=lambda: list(METHOD_IDS))
    # Settings chosen per method on validation: config key -> values (a grid over several keys), e.g.
    # {train.lr: [5.0e-5, 1.0e-4]}; each method trains every setting and keeps its best (upft_bench.selection).
    sweep: dict[str, list] = field(default_factory=dict)
    per_method: dict[str, dict] = field(default_factory=dict)  # method -> {config key: value}: its own settings
    model: ModelConfig = field(default_factory=ModelConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)  # used only when model.path is None
    data: DataConfig = field(default_factory=DataConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    launch: LaunchConfig = field(default_factory=LaunchConfig)
    report: ReportConfig = field(default_factory=ReportConfig)
    analysis: bool = False  # also run the prefix analyses on the base model (analysis/ in the result folder)
    analyze: AnalysisConfig = field(default_factory=AnalysisConfig)

    def __post_init__(self):
        if not _FOLDER_NAME.fullmatch(self.name) or any(part in (".", "..") for part in self.name.split("/")):
            raise ValueError(f"name: {shown(self.name)} must be a folder name under results/ (letters, digits, "
                             ". _ -), not a path that leaves it")
        for label, values in (("seed", [self.seed]), ("seeds", self.seeds), ("base_seeds", self.base_seeds)):
            problem = seed_error(label, values) if values is not None else None
            if problem:
                raise ValueError(problem)
        if self.seeds:
            self.seed = self.seeds[0]
        if self.base_seeds and self.model.path:
            raise ValueError("base_seeds: only a base model built here (model.path: null) has a pretraining seed")
        # One seed and one prompt style for the whole experiment: sub-configs follow them, and a sub-config
        # that names a different one is a contradiction, not a preference.
        seeded = (("sampling", self.sampling), ("method", self.method), ("train", self.train))
        for _, section in seeded:
            if section.seed is None:
                section.seed = self.seed
        for label, section in seeded:
            if section.seed != self.seed:
                raise ValueError(f"{label}.seed ({section.seed}) differs from the experiment seed ({self.seed}); "
                                 "set only the top-level seed")
        for label, section in (("sampling", self.sampling), ("method", self.method)):
            if section.system is None:
                section.system = self.eval.system
            if section.system != self.eval.system:
                raise ValueError(f"{label}.system ({shown(section.system)}) differs from eval.system "
                                 f"({shown(self.eval.system)}); the prompt must be the same everywhere")
        sections = {name: getattr(self, name) for name in _PER_METHOD_SECTIONS}
        for key, values in self.sweep.items():
            if not isinstance(values, list) or not values:
                raise ValueError(f"sweep: {clipped(key)} needs a list of one or more values, got {shown(values)}")
            self.sweep[key] = [setting_value(key, v, "sweep", sections) for v in values]
        if self.sweep and self.data.val_limit < 1:
            raise ValueError("sweep: set data.val_limit (validation questions carved from the training set); the "
                             "test set is never used to choose settings")
        for name, settings in self.per_method.items():
            if name not in METHOD_IDS or not isinstance(settings, dict):
                raise ValueError(f"per_method: {shown(name)} must be a method id with a mapping of settings")
            self.per_method[name] = {k: setting_value(k, v, f"per_method.{name}", sections)
                                     for k, v in settings.items()}
        unknown = [str(m) for m in self.methods if m not in METHOD_IDS]
        if unknown:
            raise ValueError(f"methods: unknown {clipped(', '.join(unknown))}; known: {', '.join(METHOD_IDS)}")
        if not self.methods:
            raise ValueError("methods: name at least one method")


def load_experiment(path: str | Path | None = None, overrides: list[str] = (),
                    labels: dict | None = None) -> ExperimentConfig:
    """The experiment config from YAML (default: the shipped default.yaml) plus `key=value` overrides; `labels`
    maps an override to the command-line flag its errors name (upft_bench.config.load_dataclass)."""
    if path is None:
        path = baselines_dir() / "default.yaml"
    return load_dataclass(ExperimentConfig, path, overrides, labels)



def sweep_overrides(sweeps: list[str], config, overrides: list[str]) -> list[str]:
    """`--sweep train.lr=1e-4,2e-4` options as config overrides (they replace the YAML's sweep), plus
    data.val_limit=100 when the config holds no validation questions. A malformed option, or a value the section
    refuses (`train.lr=0`), is a ConfigError naming the option."""
    try:  # the config without its own sweep, which these options replace
        cfg = load_experiment(config, [*overrides, "sweep={}"])
    except ConfigError:
        cfg = None  # the config's own error is reported when it is loaded with the sweep
    sections = {name: getattr(cfg, name) if cfg else cls() for name, cls in _PER_METHOD_SECTIONS.items()}
    grid = {}
    for item in sweeps:
        flag = f"--sweep {clipped(item)}"
        key, sep, values = item.partition("=")
        if not sep or not values.strip():
            raise ConfigError(f"{flag}: expected KEY=V1,V2,... e.g. train.lr=1e-4,2e-4")
        raw = [load_yaml(v, flag) for v in values.split(",") if v.strip()]
        if not raw:
            raise ConfigError(f"{flag}: give one or more values, e.g. train.lr=1e-4,2e-4")
        grid[key.strip()] = [setting_value(key.strip(), v, flag, sections) for v in raw]
    extra = [f"sweep={json.dumps(grid)}"]
    if cfg is not None and cfg.data.val_limit < 1:
        extra.append("data.val_limit=100")
    return extra


def runs(cfg: ExperimentConfig) -> list[tuple[str | None, ExperimentConfig]]:
    """The single-seed runs an experiment consists of, as (folder name, config) pairs.

    One seed and no base seeds: [(None, cfg)], a run in the result folder itself. Otherwise one run per seed (and
    per base seed), each in its own sub-folder (`seed-1`, or `base-0-seed-1` with base seeds), whose config is
    the experiment's with that seed: the sections that follow the seed (sampling, method, train) follow it again.
    """
    if not cfg.seeds and not cfg.base_seeds:
        return [(None, cfg)]

    out = []
    for base_seed in cfg.base_seeds or [cfg.pretrain.seed]:
        for seed in cfg.seeds or [cfg.seed]:
            data = to_dict(cfg)
            data.update(seed=seed, seeds=None, base_seeds=None)
            for section in ("sampling", "method", "train"):
                data[section]["seed"] = None
            data["pretrain"]["seed"] = base_seed
            tag = f"base-{base_seed}-seed-{seed}" if cfg.base_seeds else f"seed-{seed}"
            out.append((tag, from_dict(ExperimentConfig, data, where=tag)))
    return out


# Settings that change no result (how often training saves and logs), left out when configs are compared.
_NO_EFFECT = {"train": RESULT_NEUTRAL}


def _comparable(section: str, value, other):
    """A section for comparison: without the settings that change no result, and without keys that are null
    here and absent in `other` (a setting added later, at its default, in a config.yaml written before it)."""
    if not isinstance(value, dict):
        return value
    other = other if isinstance(other, dict) else {}
    unused = set(_NO_EFFECT.get(section, ()))
    if section == "train" and not value.get("lora_rank"):  # without LoRA its settings change nothing
        unused |= set(LORA_FIELDS)
    return {k: v for k, v in value.items() if k not in unused and not (v is None and k not in other)}


def changed_sections(before: dict, cfg: ExperimentConfig) -> list[str]:
    """Top-level sections of a resolved config (as read back from config.yaml) that differ from `cfg`.

    The method list alone may grow or shrink between runs of one experiment, so it never counts; nor do the
    checkpoint and log cadence of training, or a setting added since, at its null default.
    """
    now = yaml.safe_load(dump_yaml(cfg))
    return sorted(k for k in set(before) | set(now) if k != "methods"
                  and _comparable(k, before.get(k), now.get(k)) != _comparable(k, now.get(k), before.get(k)))
