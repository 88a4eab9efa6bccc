"""Check everything a comparison needs before it writes anything, so a bad input costs seconds, not a folder.

    from upft_bench.preflight import PreflightError, check
    facts = check(cfg)        # raises PreflightError("data.train: ... holds no questions") on the first problem
    facts["train_questions"], facts["context"], facts["tasks"]

Checked, in order: the model (a local folder with a config, a Hub id transformers can resolve, a GGUF file, or
the tiny model built here), the training questions (the file exists, parses, is not empty), the validation questions a
sweep needs, the sampling backend, the experiment tracker's package (train.report_to), and every evaluation task:
its questions load and are not empty, and its generation length fits the model's context. Each problem is one
line naming the config key, the file and, where the data loader says so, the row and field
(`upft_bench.data.DataError` messages).
"""
from __future__ import annotations

import importlib.util
import inspect
import json
from pathlib import Path

from upft_bench import cache_root, selection
from upft_bench.data import DataError, is_own, load_questions, normal_text, source_of
from upft_bench.errors import InputError
from upft_bench.evaluation import OWN_MAX_GEN_TOKS, own_task_name, task_leaves, task_manager
from upft_bench.gguf import GgufError, context_length, gguf_source
from upft_bench.hub import HubTimeout, within_timeout
from upft_bench.methods import METHODS
from upft_bench.tiny import build_model
from upft_bench.train import check_tracker

__all__ = ["PreflightError", "check", "check_model", "check_tasks"]


class PreflightError(InputError):
    """An input the comparison cannot use; the message names the config key and the file, row or field."""


def check(cfg) -> dict:
    """What `cfg` (an ExperimentConfig) will use, after checking it all; raises PreflightError on a problem."""
    facts: dict = {}
    facts["context"] = _model_context(cfg)
    fields = cfg.data.fields
    try:
        train = _train_questions(cfg)
        validation = _validation_questions(cfg)
        facts["train_questions"], facts["validation_questions"] = len(train), len(validation)
        tests: dict[str, list] = {}
        facts["tasks"] = check_tasks(cfg.eval.tasks, cfg.data.resolved_dir(), cfg.eval.limit, cfg.eval.max_gen_toks,
                                     facts["context"], fields=fields, questions=tests)
    except DataError as err:
        raise PreflightError(str(err)) from None
    check_lengths(train + validation, facts["context"], "data.train", source_of(cfg.data.train, cfg.data.train_split,
                                                                                 cfg.data.resolved_dir()))
    facts["overlap"] = overlap(train + validation, tests)
    if facts["overlap"] and not cfg.data.allow_overlap:
        task, (n, total, example) = next(iter(facts["overlap"].items()))
        raise PreflightError(
            f"eval.tasks: {n} of {total} questions of {task} also appear among the training questions "
            f"(data.train {cfg.data.train}, e.g. {example}); test on questions the methods do not train on, or pass "
            "--allow-overlap (data.allow_overlap: true) to run anyway, reported")
    for key, backend in (("sampling.backend", cfg.sampling.backend), ("eval.backend", cfg.eval.backend)):
        if backend == "vllm" and importlib.util.find_spec("vllm") is None:
            raise PreflightError(f"{key}: 'vllm' is not installed here; pip install 'upft-bench[vllm]' on a GPU "
                                 "machine, or use backend hf")
    if any(METHODS[name].trains for name in cfg.methods):
        try:
            check_tracker(cfg.train.report_to)  # its package, before hours of sampling
        except InputError as err:
            raise PreflightError(str(err)) from None
    return facts


def overlap(train: list, tests: dict[str, list]) -> dict[str, tuple[int, int, str]]:
    """Per task whose questions overlap the training (and validation) questions: (overlapping, total, the first
    overlapping question's id). Questions match on their text, case and whitespace aside."""
    seen = {normal_text(q.question, fold_case=True) for q in train}
    out = {}
    for task, questions in tests.items():
        shared = [q for q in questions if normal_text(q.question, fold_case=True) in seen]
        if shared:
            out[task] = (len(shared), len(questions), shared[0].id)
    return out


# A token of any tokenizer in use spans far fewer characters than this, so a text longer than context x this
# cannot fit whatever the tokenizer: refused before anything tokenizes it (a 50 MB question would take minutes).
MAX_CHARS_PER_TOKEN = 32


def check_lengths(questions: list, context: int | None, key: str, where: str) -> None:
    """Refuse a question, answer or solution that cannot fit the model's context, naming its id and field."""
    if not context:
        return
    limit = context * MAX_CHARS_PER_TOKEN
    for q in questions:
        for name in ("question", "answer", "solution"):
            text = getattr(q, name) or ""
            if len(text) > limit:
                raise PreflightError(
                    f"{key}: {where}, question {q.id}: field {name!r} is {len(text):,} characters, more than a "
                    f"{context:,}-token context can hold; shorten or drop it")


def _model_context(cfg) -> int | None:
    """The model's context length in tokens (None when its config does not say)."""
    if not cfg.model.path:
        _check_cache("base-models")
        return inspect.signature(build_model).parameters["max_positions"].default
    return check_model(cfg.model.path, cfg.train.trust_remote_code, gguf_file=cfg.model.gguf_file)


def check_model(path: str, trust_remote_code: bool = False, key: str = "model.path",
                gguf_file: str | None = None) -> int | None:
    """Check that `path` is a model folder, a Hub id transformers resolves, or a GGUF file (a .gguf path, or a
    folder plus `gguf_file`); returns its context length in tokens (None when its config does not say). `key`
    names the setting in the error."""
    if gguf_source(path, gguf_file):
        _check_cache("gguf")  # converted once into the cache
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
        check_model_files(local, key)
    elif path.startswith((".", "/", "~")) or path.count("/") > 1 or "\\" in path:
        raise PreflightError(f"{key}: no such folder {path}")
    # heavy (transformers): loaded on use
    from transformers import AutoConfig

    try:
        config = within_timeout(lambda: AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code),
                                f"{key} {path}")
    except HubTimeout as err:
        raise PreflightError(str(err)) from None
    except Exception as err:  # transformers raises OSError, ValueError or a Hub error, depending on the cause
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise PreflightError(f"{key}: cannot load the config of {path}: {first}") from None
    for key in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def _check_cache(sub: str) -> None:
    """upft-bench's cache folder (`upft_bench.cache_root`) can hold what is built there."""
    folder = cache_root() / sub
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise PreflightError(f"cache: cannot create {folder} ({err.strerror}); set $UPFT_BENCH_CACHE to a writable "
                             "folder") from None


WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "vocab.txt", "spiece.model")


def check_model_files(folder: Path, key: str = "model.path") -> None:
    """A save_pretrained folder holds weights whose headers read whole, and tokenizer files; the error names the
    file. Safetensors headers are read (not the tensors): a truncated file fails here in milliseconds."""
    present = [name for name in WEIGHTS if (folder / name).is_file()]
    if not present:
        raise PreflightError(f"{key}: {folder} has no weights ({' or '.join(WEIGHTS[::2])}, or a sharded index)")
    if not any((folder / name).is_file() for name in TOKENIZER_FILES):
        raise PreflightError(f"{key}: {folder} has no tokenizer files ({', '.join(TOKENIZER_FILES)}); save the "
                             "tokenizer with the model (tokenizer.save_pretrained)")
    shards = sorted(folder.glob("*.safetensors"))
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        try:
            names = set(json.loads(index.read_text())["weight_map"].values())
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
            raise PreflightError(f"{key}: {index} is not a readable shard index ({type(err).__name__})") from None
        missing = sorted(n for n in names if not (folder / n).is_file())
        if missing:
            raise PreflightError(f"{key}: {index} names {missing[0]}, which is not in {folder}")
    # heavy (safetensors, installed with transformers): loaded on use
    from safetensors import safe_open

    for shard in shards:
        try:
            with safe_open(str(shard), "pt"):
                pass
        except Exception as err:  # SafetensorError on a truncated or damaged header
            raise PreflightError(f"{key}: {shard} is damaged or truncated ({' '.join(str(err).split())[:120]}); "
                                 "copy or save the model again") from None


def _train_questions(cfg) -> list:
    if not any(METHODS[name].trains for name in cfg.methods):
        return []
    data_dir = cfg.data.resolved_dir()
    questions = load_questions(cfg.data.train, cfg.data.train_split, data_dir=data_dir, limit=cfg.data.train_limit,
                               fields=cfg.data.fields)
    where = source_of(cfg.data.train, cfg.data.train_split, data_dir)
    if not questions:
        raise PreflightError(f"data.train: {where} holds no questions; the methods have nothing to train on")
    missing = [q.id for q in questions if not q.solution]
    if "sft" in cfg.methods and missing:
        raise PreflightError(f"data.train: {where} has no solution for {len(missing)} of {len(questions)} questions "
                             f"(e.g. {missing[0]}); sft trains on reference solutions: add a solution column "
                             "(data.fields.solution), or leave sft out (--methods)")
    return questions


def _validation_questions(cfg) -> list:
    try:
        return selection.validation_questions(cfg)
    except ValueError as err:
        raise PreflightError(str(err)) from None


def check_tasks(names: list[str], data_dir: str | None, limit: int | None = None, max_gen_toks: int | None = None,
                context: int | None = None, key: str = "eval.tasks", fields: dict | None = None,
                questions: dict | None = None) -> dict:
    """Per leaf task of `names`: its question count and generation length (`max_gen_toks` overrides the task's),
    checked: the task exists, its questions load and are not empty, its generation fits `context` tokens. A name
    may be your own file or hub: dataset (`fields` names its columns): the task made for it is checked.
    `questions`, when given, receives each task's questions. Raises PreflightError, or
    `upft_bench.data.DataError` naming the file, row and field of a malformed row."""
    manager = task_manager()
    out = {}
    for name in names:
        if is_own(name):
            leaf, gen = own_task_name(name), max_gen_toks or OWN_MAX_GEN_TOKS
            _check_generation(leaf, gen, context, key)
            loaded = load_questions(name, "test", limit=limit, fields=fields)
            if not loaded:
                raise PreflightError(f"{key}: {name} holds no questions")
            check_lengths(loaded, context, key, name)
            out[leaf] = {"questions": len(loaded), "max_gen_toks": gen}
            if questions is not None:
                questions[leaf] = loaded
            continue
        if name not in manager.all_tasks:
            raise PreflightError(f"{key}: unknown task {name!r} (`upft-bench tasks` lists them)")
        for leaf in task_leaves(name, manager):
            entry = manager.task_index[leaf]
            meta = entry.cfg.get("metadata", {}) or {}
            qset, split = meta.get("question_set"), meta.get("question_split", "test")
            gen = max_gen_toks or (entry.cfg.get("generation_kwargs") or {}).get("max_gen_toks")
            _check_generation(leaf, gen, context, key)
            if qset is None:  # a task that is not one of ours: lm-eval checks it
                out[leaf] = {"questions": None, "max_gen_toks": gen}
                continue
            synth = {key: None if meta.get(key) is None else int(meta[key]) for key in ("synth_n", "synth_seed")}
            loaded = load_questions(qset, split, data_dir=data_dir, limit=limit, **synth)
            if not loaded:
                raise PreflightError(f"{key}: {leaf} has no questions ({source_of(qset, split, data_dir)} "
                                     "is empty)")
            check_lengths(loaded, context, key, source_of(qset, split, data_dir))
            out[leaf] = {"questions": len(loaded), "max_gen_toks": gen}
            if questions is not None:
                questions[leaf] = loaded
    return out


def _check_generation(task: str, gen: int | None, context: int | None, key: str) -> None:
    if context and gen and gen >= context:
        raise PreflightError(f"{key}: {task} generates up to {gen} tokens, but the model's context is {context}; "
                             f"generate fewer (eval.max_gen_toks, or --max-gen-toks, e.g. {context // 2})")
