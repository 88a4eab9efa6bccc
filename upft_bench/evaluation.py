"""Evaluate a model on upft-bench's lm-eval tasks (greedy, bare question in the chat template).

    upft-bench eval --model PATH --tasks upft_synth --limit 8
    upft-bench eval --model Qwen/Qwen2.5-Math-7B-Instruct --tasks upft_paper \
        --system-prompt qwen_boxed --data-dir ../shared/data --device cuda
    upft-bench tasks                  # the tasks, their data and sizes
    lm_eval --include_path "$(upft-bench tasks --path)" --tasks upft_gsm8k \
        --model hf --model_args pretrained=PATH --apply_chat_template     # the same tasks, plain lm-eval

    from upft_bench.evaluation import evaluate
    evaluate("PATH", ["upft_synth"], limit=8)   # {"upft_synth": {"exact_match": ..., "n": 8, ...}}

The prompt is the same string training and sampling use, `upft_bench.prompts.render_prompt(tokenizer, q, system)`:
lm-eval builds [system turn (when a system prompt is given), user turn = the bare question] and renders it with
the tokenizer's chat template and the generation prompt (`apply_chat_template=True`, chosen here exactly when the
tokenizer has a template). Without a template render_prompt joins system text and question with a blank line;
lm-eval concatenates them, so the system instruction is passed with the blank line appended.
With plain lm-eval: `--apply_chat_template --system_instruction "..."` gives the same prompts.

Each task runs in its own `lm_eval.simple_evaluate` call on one loaded model, so `eval_seconds` is per task.
A requested group (upft_paper) adds a row: the unweighted mean of its tasks, as the paper's "Avg." and
lm-eval's own group aggregate (`weight_by_size: false`).
Under `accelerate launch --multi_gpu --num_processes N` (CPU processes over gloo, or GPUs) each process
evaluates a share of the questions and the main one gathers them (`_data_parallel`).
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import os
import re
import tempfile
import time
from pathlib import Path

import yaml
from tabulate import tabulate

from upft_bench import tasks_dir
from upft_bench.atomic import file_sha256, write_lines, write_text
from upft_bench.compute import forward_flops, generation_flops, model_shape
from upft_bench.console import say
from upft_bench.data import HUB_PREFIX, is_own, own_label, resolve_data_dir
from upft_bench.errors import InputError
from upft_bench.prompts import system_prompt
from upft_bench.quiet import lm_eval_quietly
from upft_bench.stats import accuracy_interval

METRICS = ("exact_match", "exact_match_stderr", "extracted", "stated", "n", "correct", "mean_output_tokens",
           "eval_seconds")
# Besides METRICS a single task's row holds its per-question outcomes, in question order, so paired statistics can be
# computed from metrics.json alone: `question_ids` (list) and `outcomes` ("1" correct / "0" not, one per question).


def evaluate(model_path: str, tasks: list[str] | str, limit: int | None = None, batch_size: int = 16,
             data_dir: str | Path | None = None, output_dir: str | Path | None = None, system: str | None = None,
             max_gen_toks: int | None = None, device: str | None = None, backend: str = "hf",
             fields: dict | None = None, best_of: dict | None = None) -> dict:
    """Evaluate `model_path` (local folder or Hub id) on upft tasks/groups; per name a dict of `METRICS`.

    A name may be your own question file (.jsonl/.csv/.parquet) or `hub:OWNER/NAME`: it is evaluated as the task
    `upft_own_<stem>` made for it (`write_own_tasks`, into `output_dir`/tasks), with `fields` naming its columns.

    `system`: a prompt style of `upft_bench.prompts.SYSTEM_PROMPTS` ("qwen_boxed") or the system text itself;
    None / "none": no system turn (the paper's protocol). `max_gen_toks` overrides every task's own length.
    `output_dir` receives the raw lm-eval results (results_<task>.json), the per-sample logs
    (samples_<task>.jsonl) and summary.json (`complete` false until every task has finished), after each
    task; a later call with the same settings reuses the tasks an interrupted one finished.
    Under `accelerate launch` on N processes each process evaluates a share of the questions; the main one
    returns every question's rows and writes the files, the others return {}.

    `best_of`: {"k", "verifier", "reference", "temperature"}: best-of-k decoding with a verifier instead of greedy
    decoding (`upft_bench.best_of`); each task's row then counts the k candidates' generation and their scoring by
    the verifier and the reference in `flops`, and says what it did in `best_of`.
    """
    # heavy (lm_eval): loaded on use
    import lm_eval

    names = [tasks] if isinstance(tasks, str) else list(tasks)
    names = [n.strip() for name in names for n in name.split(",") if n.strip()]
    if not names:
        raise ValueError("no tasks given")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    system_text = system_prompt(system, literal=True)
    root = resolve_data_dir(data_dir)  # a bad path fails here, before the model loads
    out = Path(output_dir) if output_dir is not None else None
    own_dir = (out if out is not None else Path(tempfile.mkdtemp(prefix="upft-own-tasks-"))) / "tasks"
    made = write_own_tasks(names, own_dir, fields) if any(map(is_own, names)) else {}
    names = [made.get(n, n) for n in names]
    manager = task_manager(root, extra_paths=[own_dir] if made else [])
    plan = {name: task_leaves(name, manager) for name in names}
    leaves = list(dict.fromkeys(t for ts in plan.values() for t in ts))

    lm = load_lm(model_path, backend=backend, batch_size=batch_size, device=device, best_of=best_of)
    tokenizer = lm.tokenizer
    shape = model_shape(model_path, getattr(getattr(lm, "model", None), "config", None))
    chat = bool(getattr(tokenizer, "chat_template", None))
    # lm-eval puts the system text in a system turn; without a template it concatenates it with the question.
    instruction = None if system_text is None else system_text if chat else system_text + "\n\n"
    settings = dict(model=model_path, tasks=names, limit=limit, batch_size=batch_size, backend=backend,
                    device=device, processes=lm.world_size, data_dir=str(root) if root else None,
                    system=system_text, max_gen_toks=max_gen_toks, apply_chat_template=chat,
                    system_instruction=instruction, model_files=_model_files(model_path),
                    **({"best_of": {**best_of, "files": [_model_files(best_of["verifier"]),
                                                         _model_files(best_of["reference"])]}} if best_of else {}),
                    **({"own_files": {t: _file_digest(src) for src, t in made.items()}} if made else {}))

    # Tasks an earlier call with these settings finished (it stopped in a later task) are not run again.
    rows, raw, samples = _finished(out, settings, leaves) if out is not None else ({}, {}, {})
    picked: dict[str, list[dict]] = {}  # best-of-k: per task, each question's candidates, scores and pick
    for task in leaves:
        if task in rows:
            continue
        start = time.perf_counter()
        with lm_eval_quietly(task):
            res = lm_eval.simple_evaluate(
                model=lm, tasks=[task], task_manager=manager, limit=limit, log_samples=True,
                apply_chat_template=chat, system_instruction=instruction,
                gen_kwargs={"max_gen_toks": int(max_gen_toks)} if max_gen_toks else None,
            )
        seconds = time.perf_counter() - start
        picks = _best_of_log(lm) if best_of else None  # every process takes part (a gather)
        if res is None:  # not the main process of a multi-process run: lm-eval gathered its share on the main one
            continue
        samples[task] = res.pop("samples")[task]
        raw[task] = res
        rows[task] = _task_row(task, res, samples[task], tokenizer, seconds, shape)
        if picks is not None:
            rows[task].update(_best_of_row(picks, shape, best_of))
            picked[task] = sorted(picks, key=lambda r: r["doc_id"])
        if out is not None and len(rows) < len(leaves):
            write_outputs(out, rows, raw, samples, settings, complete=False)
    if lm.rank != 0:
        return {}
    for name, members in plan.items():
        if name not in rows:
            rows[name] = _group_row([rows[t] for t in members], [samples[t] for t in members])
    rows = {name: rows[name] for name in [*names, *[t for t in leaves if t not in names]]}
    if out is not None:
        for task, picks in picked.items():  # best-of-k: every candidate, its score and the pick, per question
            write_lines(out / f"best_of_{task}.jsonl", (json.dumps(r, ensure_ascii=False) + "\n" for r in picks))
        write_outputs(out, rows, raw, samples, settings)
    return rows


def _best_of_log(lm) -> list[dict]:
    """Every process's best-of-k requests of the task just run (`upft_bench.best_of`), on every process."""
    picks = lm.take_log()
    if lm.world_size > 1:
        # heavy (accelerate): loaded on use
        from accelerate.utils import gather_object

        picks = gather_object(picks)
    return picks


def best_of_flops(shape, picks: list[dict]) -> tuple[int, int]:
    """(generation, scoring) FLOPs of best-of-k requests: each candidate generated after its prompt, and run
    forward once by the verifier and once by the reference over prompt + candidate (an empty one is not
    scored)."""
    generation = scoring = 0
    for r in picks:
        generation += sum(generation_flops(shape, r["prompt_tokens"], g) for g in r["candidate_tokens"])
        scoring += 2 * sum(forward_flops(shape, r["prompt_tokens"] + g) for g in r["candidate_tokens"] if g)
    return generation, scoring


def _best_of_row(picks: list[dict], shape, best_of: dict) -> dict:
    """A best-of-k task row's extra figures: its FLOPs (k generations, and k scorings each by the verifier and
    the reference, per question) and what it did."""
    generation, scoring = best_of_flops(shape, picks) if shape is not None else (None, None)
    return {"flops": None if shape is None else generation + scoring,
            "best_of": {"k": best_of["k"], "temperature": best_of["temperature"],
                        "candidates": sum(len(r["candidate_tokens"]) for r in picks),
                        "candidate_tokens": sum(sum(r["candidate_tokens"]) for r in picks),
                        "generation_flops": generation, "scoring_flops": scoring}}


def _file_digest(source: str) -> str | None:
    """SHA-256 (16 hex digits) of an own question file's content; None for a Hub dataset."""
    return None if source.startswith(HUB_PREFIX) else file_sha256(Path(source).expanduser())[:16]


def _model_files(model_path) -> str | None:
    """A fingerprint of a local model folder's files (names, sizes, modification times): a model retrained in
    the same folder is another model. None for a Hub id."""
    folder = Path(model_path)
    if not folder.is_dir():
        return None
    h = hashlib.sha256()
    for f in sorted(folder.iterdir()):
        if f.is_file():
            st = f.stat()
            h.update(f"{f.name}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


# Settings that may differ between the call that finished a task and the one reusing it.
_REUSE_IGNORES = ("tasks", "processes", "device")


def _finished(out: Path, settings: dict, leaves: list[str]) -> tuple[dict, dict, dict]:
    """Rows, raw results and samples of the tasks in `leaves` that `out` already holds from a call with the
    same settings (model, questions, lengths, prompt, batch size); nothing when the settings differ."""
    try:
        summary = json.loads((out / "summary.json").read_text())
    except (OSError, json.JSONDecodeError):
        return {}, {}, {}
    same = {k: v for k, v in summary.get("settings", {}).items() if k not in _REUSE_IGNORES} == \
        {k: v for k, v in settings.items() if k not in _REUSE_IGNORES}
    rows, raw, samples = {}, {}, {}
    for task in leaves:
        row = summary.get("tasks", {}).get(task)
        if not same or row is None or "outcomes" not in row:
            continue
        try:
            raw[task] = json.loads((out / f"results_{task}.json").read_text())
            samples[task] = [json.loads(line) for line in (out / f"samples_{task}.jsonl").read_text().splitlines()]
        except (OSError, json.JSONDecodeError):
            raw.pop(task, None)
            continue
        rows[task] = row
    if rows and os.environ.get("RANK", "0") == "0":
        say(f"[eval] reusing finished task(s) {', '.join(rows)} from {out}")
    return rows, raw, samples


def task_manager(data_dir: str | Path | None = None, include_defaults: bool = False,
                 extra_paths: list[str | Path] = ()):
    """The one `lm_eval.tasks.TaskManager` builder: upft-bench's tasks (plus the folders `extra_paths`, e.g. tasks
    generated for your own files), reading their questions from `data_dir` (None: $UPFT_BENCH_DATA_DIR, else the
    Hub). `include_defaults=False` skips indexing lm-eval's ~14,700 built-in tasks (about 4 s)."""
    from lm_eval.tasks import TaskManager  # heavy: lm-eval loads only where tasks are needed

    return TaskManager(include_path=[str(tasks_dir()), *map(str, extra_paths)], include_defaults=include_defaults,
                       metadata={"data_dir": str(data_dir)} if data_dir is not None else None)


# ---------------------------------------------------------------------------------------------- your own files
OWN_TASK_PREFIX = "upft_own_"


def _template() -> dict:
    """The shipped task template as data (its `!function` hooks as their dotted names)."""
    class Loader(yaml.SafeLoader):
        pass

    Loader.add_constructor("!function", lambda loader, node: loader.construct_scalar(node))
    return yaml.load((tasks_dir() / "_upft_template.yaml").read_text(), Loader=Loader)


# Generation length of a task made for your own file: the template's (eval.max_gen_toks overrides it).
OWN_MAX_GEN_TOKS = int(_template()["generation_kwargs"]["max_gen_toks"])


def own_task_name(source: str) -> str:
    """The lm-eval task made for an own question file or Hub dataset: `upft_own_<file stem>`."""
    return OWN_TASK_PREFIX + own_label(source)


def task_name(name: str) -> str:
    """The task a name of `eval.tasks` stands for: itself, or the task made for an own file (`own_task_name`)."""
    return own_task_name(name) if is_own(name) else name


def write_own_tasks(names: list[str], folder: str | Path, fields: dict | None = None) -> dict[str, str]:
    """An lm-eval task YAML in `folder` for each own question set among `names` (files or hub: ids); returns
    {source: task name}. Each is the shipped template (same prompt, decoding and checker) with the file's path and
    `fields` in its metadata, so `lm_eval --include_path FOLDER --tasks upft_own_<stem>` reproduces it."""
    own = [n for n in names if is_own(n)]
    made: dict[str, str] = {}
    for source in own:
        name = own_task_name(source)
        clash = next((s for s, t in made.items() if t == name and s != source), None)
        if clash is not None:
            raise InputError(f"eval.tasks: {clash} and {source} would both be the task {name}; rename one file")
        where = source if source.startswith(HUB_PREFIX) else str(Path(source).expanduser().resolve())
        template = (tasks_dir() / "_upft_template.yaml").read_text()
        template = template.replace("\ntag: upft\n", "\ntag: upft_own\n")
        metadata = {"version": 1.0, "question_set": where, "question_split": "test", "fields": dict(fields or {})}
        text = (f"# Made by upft-bench for {source}: the upft_* template with this question set.\n"
                f"#   lm_eval --include_path {Path(folder).resolve()} --tasks {name} --model hf "
                "--model_args pretrained=PATH --apply_chat_template\n"
                f"{template.rstrip()}\n\ntask: {name}\n"
                + yaml.safe_dump({"metadata": metadata}, sort_keys=False, allow_unicode=True))
        write_text(Path(folder) / f"{name}.yaml", text)
        made[source] = name
    return made


def task_leaves(name: str, manager) -> list[str]:
    """The tasks a task, group or tag name stands for, in order (error listing the known names)."""
    # heavy (lm_eval): loaded on use
    from lm_eval.tasks._index import Kind

    entry = manager.task_index.get(name)
    if entry is None:
        known = ", ".join(n for n in manager.all_tasks)
        raise ValueError(f"unknown task {name!r}; upft-bench's tasks: {known}")
    if entry.kind is Kind.GROUP:
        members = entry.cfg["task"]
        return [t for m in (members if isinstance(members, list) else [members]) for t in task_leaves(m, manager)]
    if entry.kind is Kind.TAG:
        return sorted(entry.tags)
    return [name]


def load_lm(model_path: str, backend: str = "hf", batch_size: int = 16, device: str | None = None,
            best_of: dict | None = None):
    """An lm-eval LM for `model_path`: `hf` (transformers) or `vllm`; remote code is never trusted. With `best_of`
    ({"k", "verifier", "reference", "temperature"}) the hf model answers with the best of k samples
    (`upft_bench.best_of`)."""
    # heavy (lm_eval): loaded on use
    from lm_eval.api.registry import get_model

    if backend not in ("hf", "vllm"):
        raise ValueError(f"unknown backend {backend!r}; use 'hf' or 'vllm'")
    if backend == "vllm" and importlib.util.find_spec("vllm") is None:
        raise RuntimeError("backend 'vllm' needs vllm installed: pip install 'upft-bench[vllm]' (GPU machines)")
    if device is None:
        # heavy (torch): loaded on use
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    args = {"pretrained": str(model_path), "trust_remote_code": False}
    if backend == "vllm":
        return get_model("vllm").create_from_arg_obj(args, {"batch_size": batch_size})
    multi = int(os.environ.get("WORLD_SIZE", "1") or 1) > 1
    if multi and not str(device).startswith("cuda"):
        # heavy (accelerate): loaded on use
        from accelerate import Accelerator

        Accelerator(cpu=True)  # the process group of CPU processes (gloo), which lm-eval's own Accelerator joins
    if best_of:
        if backend != "hf":
            raise ValueError("best-of-k decoding runs on the hf backend")
        from upft_bench.best_of import register

        register()
        args |= {"verifier": str(best_of["verifier"]), "reference": str(best_of["reference"]),
                 "k": int(best_of["k"]), "temperature": float(best_of["temperature"])}
    # A fixed batch size: "auto" spends ~20 s probing on CPU.
    lm = get_model("upft_best_of" if best_of else "hf").create_from_arg_obj(args, {"batch_size": batch_size,
                                                                                    "device": device})
    return _data_parallel(lm) if multi else lm


def _data_parallel(lm):
    """Under `accelerate launch` on N processes, each process evaluates its share of the questions and lm-eval
    gathers them on the main one. lm-eval's hf model does this by itself on several GPUs only: elsewhere (CPU
    processes, gloo) it leaves every process evaluating every question, so the split is switched on here."""
    accelerator = getattr(lm, "accelerator", None)
    if accelerator is None or accelerator.num_processes < 2:
        raise RuntimeError(f"this run has WORLD_SIZE={os.environ.get('WORLD_SIZE')} but lm-eval's model is not "
                           "distributed: launch with accelerate launch --multi_gpu (or a --config_file)")
    if lm.world_size == 1:
        lm._rank, lm._world_size = accelerator.process_index, accelerator.num_processes
    return lm


def _task_row(task: str, res: dict, task_samples: list[dict], tokenizer, seconds: float, shape=None) -> dict:
    metrics = res["results"][task]
    outputs = [s["filtered_resps"][0] for s in task_samples]
    for s, text in zip(task_samples, outputs):
        s["output_tokens"] = len(tokenizer(text, add_special_tokens=False)["input_ids"])
        s["prompt_tokens"] = len(tokenizer(s["arguments"][0][0], add_special_tokens=False)["input_ids"])
    counts = [s["output_tokens"] for s in task_samples]
    # Greedy generation of every question: its prompt plus its output (upft_bench.compute; None: shape unknown).
    flops = sum(generation_flops(shape, s["prompt_tokens"], s["output_tokens"]) for s in task_samples) \
        if shape is not None else None
    ordered = sorted(task_samples, key=lambda s: s["doc_id"])
    outcomes = "".join("1" if float(s["exact_match"]) == 1.0 else "0" for s in ordered)
    return {
        "exact_match": float(metrics["exact_match,none"]),
        "exact_match_stderr": _number(metrics.get("exact_match_stderr,none")),
        "extracted": float(metrics["extracted,none"]),
        "stated": float(metrics["stated,none"]),
        "n": len(task_samples),
        "correct": outcomes.count("1"),
        "mean_output_tokens": sum(counts) / len(counts) if counts else 0.0,
        "eval_seconds": round(seconds, 3),
        "flops": flops,
        "question_ids": [str(s["doc"]["id"]) for s in ordered],
        "outcomes": outcomes,
    }


def _group_row(rows: list[dict], member_samples: list[list[dict]]) -> dict:
    """Unweighted mean over tasks (accuracy, extracted); stderr of that mean; tokens per output over all."""
    k = len(rows)
    errs = [r["exact_match_stderr"] for r in rows]
    counts = [s["output_tokens"] for ss in member_samples for s in ss]
    return {
        "exact_match": sum(r["exact_match"] for r in rows) / k,
        "exact_match_stderr": None if None in errs else math.sqrt(sum(e * e for e in errs)) / k,
        "extracted": sum(r["extracted"] for r in rows) / k,
        "stated": sum(r["stated"] for r in rows) / k,
        "n": sum(r["n"] for r in rows),
        "correct": sum(r["correct"] for r in rows),
        "mean_output_tokens": sum(counts) / len(counts) if counts else 0.0,
        "eval_seconds": round(sum(r["eval_seconds"] for r in rows), 3),
        "flops": None if any(r["flops"] is None for r in rows) else sum(r["flops"] for r in rows),
    }


def _number(value) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):  # lm-eval writes "N/A" when it cannot compute a stderr (n = 1)
        return None
    return None if math.isnan(value) else value


# ---------------------------------------------------------------------------------------------- output
def write_outputs(out: Path, rows: dict, raw: dict, samples: dict, settings: dict, complete: bool = True) -> None:
    """results_<task>.json (raw lm-eval), samples_<task>.jsonl, summary.json; each file replaced atomically.
    `complete` False: written after each finished task, so a later task's failure keeps what finished."""
    # heavy (lm_eval): loaded on use
    from lm_eval.utils import handle_non_serializable

    out.mkdir(parents=True, exist_ok=True)
    for task, res in raw.items():
        write_text(out / f"results_{task}.json",
                   json.dumps(res, indent=2, default=handle_non_serializable, ensure_ascii=False))
        write_lines(out / f"samples_{task}.jsonl", (
            json.dumps(s, default=handle_non_serializable, ensure_ascii=False) + "\n" for s in samples[task]))
    write_text(out / "summary.json", json.dumps({"settings": settings, "complete": complete, "tasks": rows},
                                                indent=2))


def format_table(rows: dict) -> str:
    """A Markdown table of `evaluate`'s result."""
    body = []
    for name, r in rows.items():
        ci = accuracy_interval(r)
        acc = f"{100 * r['exact_match']:.1f}" + (f" ({100 * ci[0]:.1f}-{100 * ci[1]:.1f})" if ci else "")
        body.append([name, r["n"], acc,
                     f"{100 * r['extracted']:.1f}", f"{100 * r['stated']:.1f}", f"{r['mean_output_tokens']:.1f}",
                     f"{r['eval_seconds']:.1f}"])
    headers = ["task", "n", "exact_match % (95% CI)", "extracted %", "stated %", "mean_output_tokens", "eval_seconds"]
    return tabulate(body, headers=headers, tablefmt="github")


# ---------------------------------------------------------------------------------------------- commands


def default_output(model: str) -> Path:
    """results/eval/<the model's whole path or Hub id as one name>: two models never share a folder
    (results/default/methods/sft/train/model -> default_methods_sft_train_model)."""
    name = model.rstrip("/\\")
    local = Path(name).expanduser()
    if local.exists():
        resolved = local.resolve()
        try:
            name = str(resolved.relative_to(Path.cwd().resolve()))
        except ValueError:
            name = str(resolved)
    name = re.sub(r"^results[/\\]", "", name)
    slug = re.sub(r"[^A-Za-z0-9.-]+", "_", name).strip("_.") or "model"
    return Path("results") / "eval" / slug
