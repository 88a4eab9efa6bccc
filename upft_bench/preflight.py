"""Check everything a comparison needs before it writes anything, so a bad input costs seconds, not a folder.

    from upft_bench.preflight import PreflightError, check
    facts = check(cfg)        # raises PreflightError("data.train: ... holds no questions") on the first problem
    facts["train_questions"], facts["context"], facts["tasks"]

Checked, in order: the model (a local folder with a config, a Hub id transformers can resolve, a GGUF file, or
the tiny model built here), the training questions (the file exists, parses, is not empty), the validation questions a
sweep needs, the sampling backend, and every evaluation task: its questions load and are not empty, and its
generation length fits the model's context. Each problem is one line naming the config key, the file and,
where the data loader says so, the row and field (`upft_bench.data.DataError` messages).
"""
from __future__ import annotations

import importlib.util
import inspect
from pathlib import Path

from upft_bench import selection
from upft_bench.data import DataError, load_questions, source_of
from upft_bench.errors import InputError
from upft_bench.evaluation import task_leaves, task_manager
from upft_bench.gguf import GgufError, context_length, gguf_source
from upft_bench.methods import METHODS
from upft_bench.tiny import build_model

__all__ = ["PreflightError", "check", "check_model", "check_tasks"]


class PreflightError(InputError):
    """An input the comparison cannot use; the message names the config key and the file, row or field."""


def check(cfg) -> dict:
    """What `cfg` (an ExperimentConfig) will use, after checking it all; raises PreflightError on a problem."""
    facts: dict = {}
    facts["context"] = _model_context(cfg)
    try:
        facts["train_questions"] = _train_questions(cfg)
        facts["validation_questions"] = _validation_questions(cfg)
        facts["tasks"] = check_tasks(cfg.eval.tasks, cfg.data.resolved_dir(), cfg.eval.limit, cfg.eval.max_gen_toks,
                                     facts["context"])
    except DataError as err:
        raise PreflightError(str(err)) from None
    for key, backend in (("sampling.backend", cfg.sampling.backend), ("eval.backend", cfg.eval.backend)):
        if backend == "vllm" and importlib.util.find_spec("vllm") is None:
            raise PreflightError(f"{key}: 'vllm' is not installed here; pip install 'upft-bench[vllm]' on a GPU "
                                 "machine, or use backend hf")
    return facts


def _model_context(cfg) -> int | None:
    """The model's context length in tokens (None when its config does not say)."""
    if not cfg.model.path:
        return inspect.signature(build_model).parameters["max_positions"].default
    return check_model(cfg.model.path, cfg.train.trust_remote_code, gguf_file=cfg.model.gguf_file)


def check_model(path: str, trust_remote_code: bool = False, key: str = "model.path",
                gguf_file: str | None = None) -> int | None:
    """Check that `path` is a model folder, a Hub id transformers resolves, or a GGUF file (a .gguf path, or a
    folder plus `gguf_file`); returns its context length in tokens (None when its config does not say). `key`
    names the setting in the error."""
    if gguf_source(path, gguf_file):
        try:
            return context_length(path, gguf_file)
        except GgufError as err:
            raise PreflightError(f"{key}: {err}") from None
        except Exception as err:  # the gguf reader raises ValueError or struct errors on a damaged file
            raise PreflightError(f"{key}: cannot read the GGUF header of {path}: {err}") from None
    local = Path(path).expanduser()
    if local.exists():
        if not (local / "config.json").is_file():
            raise PreflightError(f"{key}: {path} has no config.json (not a save_pretrained folder)")
    elif path.startswith((".", "/", "~")) or path.count("/") > 1 or "\\" in path:
        raise PreflightError(f"{key}: no such folder {path}")
    # heavy (transformers): loaded on use
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
    except Exception as err:  # transformers raises OSError, ValueError or a Hub error, depending on the cause
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise PreflightError(f"{key}: cannot load the config of {path}: {first}") from None
    for key in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def _train_questions(cfg) -> int:
    if not any(METHODS[name].trains for name in cfg.methods):
        return 0
    data_dir = cfg.data.resolved_dir()
    questions = load_questions(cfg.data.train, cfg.data.train_split, data_dir=data_dir, limit=cfg.data.train_limit)
    if not questions:
        raise PreflightError(f"data.train: {source_of(cfg.data.train, cfg.data.train_split, data_dir)} holds no "
                             "questions; the methods have nothing to train on")
    return len(questions)


def _validation_questions(cfg) -> int:
    try:
        return len(selection.validation_questions(cfg))
    except ValueError as err:
        raise PreflightError(str(err)) from None


def check_tasks(names: list[str], data_dir: str | None, limit: int | None = None, max_gen_toks: int | None = None,
                context: int | None = None, key: str = "eval.tasks") -> dict:
    """Per leaf task of `names`: its question count and generation length (`max_gen_toks` overrides the task's),
    checked: the task exists, its questions load and are not empty, its generation fits `context` tokens.
    Raises PreflightError, or `upft_bench.data.DataError` naming the file, row and field of a malformed row."""
    manager = task_manager()
    out = {}
    for name in names:
        if name not in manager.all_tasks:
            raise PreflightError(f"{key}: unknown task {name!r} (`upft-bench tasks` lists them)")
        for leaf in task_leaves(name, manager):
            entry = manager.task_index[leaf]
            meta = entry.cfg.get("metadata", {}) or {}
            qset, split = meta.get("question_set"), meta.get("question_split", "test")
            gen = max_gen_toks or (entry.cfg.get("generation_kwargs") or {}).get("max_gen_toks")
            if context and gen and gen >= context:
                raise PreflightError(
                    f"{key}: {leaf} generates up to {gen} tokens, but the model's context is {context}; "
                    f"generate fewer (e.g. max_gen_toks {context // 2})")
            if qset is None:  # a task that is not one of ours: lm-eval checks it
                out[leaf] = {"questions": None, "max_gen_toks": gen}
                continue
            synth = {key: None if meta.get(key) is None else int(meta[key]) for key in ("synth_n", "synth_seed")}
            n = len(load_questions(qset, split, data_dir=data_dir, limit=limit, **synth))
            if n == 0:
                raise PreflightError(f"{key}: {leaf} has no questions ({source_of(qset, split, data_dir)} "
                                     "is empty)")
            out[leaf] = {"questions": n, "max_gen_toks": gen}
    return out
