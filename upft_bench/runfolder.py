"""The result folder of `upft-bench compare`: claimed before any work, held by one run at a time, checked on
`--resume`, and left clean when a run fails before it made anything.

    from upft_bench.runfolder import open_run_folder
    with open_run_folder(cfg, Path("results/try1"), resume=False) as phases:   # RunFolderError: not ours, in use, ...
        if phases.done("base_model") is None:
            phases.mark("base_model", {"path": base})

What opening checks, before anything is written:
  - the folder is empty, or upft-bench's (its config.yaml, its `.done/` markers, or only the report files that
    `upft-bench report --output` writes); another tool's files are never overwritten;
  - no other upft-bench run holds it (an advisory lock on `.lock`, freed by the OS when its holder dies);
  - its work (finished phases, a partial sample pool, training checkpoints) is never mixed with another
    experiment's: a plain run refuses it, `--resume` needs the same input files (their fingerprints are in
    `.done/inputs.json`) and the same config, except in the sections a fix usually touches (train, method, sweep,
    per_method, eval, report, launch: `REDO`), whose dependent phases are redone while the base model and the
    sample pools are kept. A folder holding no work is simply started over.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import time
from pathlib import Path

import yaml

from upft_bench import data, evaluation
from upft_bench.atomic import file_sha256, write_json, write_text
from upft_bench.config import ConfigError, dump_yaml, from_dict
from upft_bench.console import say
from upft_bench.errors import RunFolderError
from upft_bench.experiment import ExperimentConfig, changed_sections

__all__ = ["HEADER", "Phases", "check_same_config", "check_same_inputs", "config_differences", "finished_work",
           "input_fingerprints", "open_run_folder"]

HEADER = "# upft-bench compare, resolved config"  # the first line of every config.yaml upft-bench writes
LOCK = ".lock"
INPUTS = "inputs"  # .done/inputs.json: the input files' fingerprints when the run started
TRIVIAL = {"base_model", "elapsed", INPUTS}  # markers that hold no result: a folder with only these is redone
REPORT_FILES = {"compare.md", "compare.png", "loss.png"}  # all `upft-bench report --output` writes (no config.yaml)


class Phases:
    """Done-markers under `out/.done/`; a phase counts as finished only once its marker exists.

    Also keeps the run's wall seconds across sessions (`.done/elapsed.json`, written with every marker), so a
    resumed run's total counts the earlier sessions' finished work too, not only the last session's.
    As a context manager (what `open_run_folder` returns): the folder's lock is held until the block ends, and a
    folder this run found empty is emptied again if the run fails before it made anything.
    """

    ELAPSED = "elapsed"

    def __init__(self, out: Path, lock=None, fresh: bool = False, created: bool = False):
        self.out = Path(out)
        self.dir = self.out / ".done"
        self.lock = lock  # the open `.lock` file while this run holds the folder
        self.fresh, self.created = fresh, created  # found empty (or absent), and made here
        self.started = time.time()
        earlier = self.done(self.ELAPSED)
        self.before = float(earlier["seconds"]) if earlier else 0.0

    def done(self, name: str) -> dict | None:
        marker = self.dir / f"{name}.json"
        return json.loads(marker.read_text()) if marker.exists() else None

    def mark(self, name: str, info: dict) -> dict:
        write_json(self.dir / f"{name}.json", info)
        write_json(self.dir / f"{self.ELAPSED}.json", {"seconds": round(self.elapsed(), 2)})
        return info

    def elapsed(self) -> float:
        """Wall seconds of this run: earlier sessions (up to their last marker) plus this one so far."""
        return self.before + time.time() - self.started

    def release(self) -> None:
        """Let other runs have the folder (also what the OS does when this process dies)."""
        if self.lock is not None:
            _unlock(self.out, self.lock)
            self.lock = None

    def __enter__(self) -> Phases:
        return self

    def __exit__(self, kind, err, tb) -> None:
        try:
            if isinstance(err, Exception) and self.fresh and not finished_work(self.out):
                _empty(self.out, remove=self.created)
                say(f"[output] {self.out}: the run failed before any phase finished; removed what it wrote")
        finally:
            self.release()


# ---------------------------------------------------------------------------------------------- opening
def open_run_folder(cfg: ExperimentConfig, out: Path, resume: bool) -> Phases:
    """Claim `out` for this experiment: check it, lock it, write its resolved config.yaml and the inputs'
    fingerprints; returns its Phases (use it as a context, or call `release`). Raises RunFolderError.

    A folder with work (finished phases, partial samples, checkpoints) holds a (possibly interrupted) run: a
    plain run refuses it, `--resume` finishes it only with the same config and input files. A folder without
    work is started over; one with a report is rewritten only when the report is this experiment's.
    """
    out = Path(out)
    inputs = input_fingerprints(cfg)  # before anything is written: a bad input leaves no folder behind
    existed = out.exists()
    fresh = not existed or not _entries(out)
    if not fresh:
        foreign = _foreign(out)
        if foreign:
            shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
            raise RunFolderError(f"{out} holds files upft-bench did not write ({shown}): choose another --output")
    out.mkdir(parents=True, exist_ok=True)
    lock = _lock(out)
    try:
        _claim(cfg, out, resume, inputs)
    except BaseException:
        _unlock(out, lock)
        if fresh:
            _empty(out, remove=not existed)
        raise
    return Phases(out, lock, fresh=fresh, created=not existed)


def _claim(cfg: ExperimentConfig, out: Path, resume: bool, inputs: dict[str, str]) -> None:
    """The checks of a locked folder, then its config.yaml and inputs.json."""
    work = finished_work(out)
    config = out / "config.yaml"
    if work and not resume:
        raise RunFolderError(f"{out} already holds results: pass --resume to finish it, or choose --output")
    if work:
        check_same_inputs(out, inputs)
        changed = config_differences(config, cfg) if config.exists() else []
        if changed and set(changed) <= set(REDO):
            redone = _redo(out, changed)
            say(f"[output] {out}: --resume with changed {', '.join(changed)}: "
                + (f"redoing {_few(redone)}; the rest is kept" if redone else "nothing finished depends on them"))
        elif config.exists():
            check_same_config(config, cfg, work)
    else:
        if config.exists() and any((out / f).exists() for f in ("metrics.json", "compare.md")):
            changed = config_differences(config, cfg)  # a report: rewritten only if it is this experiment's
            if changed:
                raise RunFolderError(f"{out} holds the report of another experiment (sections "
                                     f"{', '.join(changed)} differ): choose another --output, or remove the folder")
        if (out / ".done").exists():
            shutil.rmtree(out / ".done")
            say(f"[output] {out}: no phase of the earlier run had finished; starting it over")
    write_text(config, f"{HEADER}\n{dump_yaml(cfg)}")
    write_json(out / ".done" / f"{INPUTS}.json", inputs)


# Config sections a --resume may change, and the phases (marker name patterns) that depend on them; those are
# redone, the rest (the base model, sample pools: keyed by their requests) kept. Any other change is refused.
_TRAINING = ("train-*", "val-*", "eval-*", "run-*")  # eval-base is kept: the base model does not train
REDO = {"train": _TRAINING, "method": _TRAINING, "sweep": _TRAINING, "per_method": _TRAINING,
        "eval": ("val-*", "eval-*", "run-*"), "report": (), "launch": ()}


def _redo(out: Path, changed: list[str]) -> list[str]:
    """Remove the markers (and training checkpoints) of `out`'s own phases that depend on the `changed` sections;
    returns the phases that will be redone. Seed sub-folders do the same when their run opens them."""
    patterns = {p for section in changed for p in REDO[section]}
    keep_base_eval = "eval" not in changed
    markers = [m for m in sorted((out / ".done").glob("*.json"))
               if any(m.match(p + ".json") for p in patterns) and not (keep_base_eval and m.stem == "eval-base")]
    for marker in markers:
        marker.unlink()
    if "train-*" in patterns:
        for checkpoints in out.glob("methods/**/train/checkpoints"):
            shutil.rmtree(checkpoints, ignore_errors=True)
    return [m.stem for m in markers]


def finished_work(out: Path) -> list[str]:
    """What a rerun must not throw away, relative to `out`: finished phases (markers beyond the trivial ones,
    of the run and of its seed sub-folders), partial sample pools and training checkpoints."""
    out = Path(out)
    if not out.is_dir():
        return []
    markers = [m for pattern in (".done/*.json", "*/.done/*.json") for m in sorted(out.glob(pattern))
               if m.stem not in TRIVIAL]
    work = [str(m.relative_to(out).parent.parent / m.stem) for m in markers]
    work += sorted(str(p.relative_to(out)) for pattern in ("**/samples/*.partial", "**/train/checkpoints")
                   for p in out.glob(pattern))
    return work


def config_differences(path: Path, cfg: ExperimentConfig) -> list[str]:
    """The sections in which the config.yaml at `path` differs from `cfg` (the method list may differ)."""
    try:
        return changed_sections(yaml.safe_load(path.read_text()) or {}, cfg)
    except yaml.YAMLError:
        return ["(unreadable config.yaml)"]


def check_same_config(path: Path, cfg: ExperimentConfig, work: list[str] | None = None) -> None:
    """--resume must not mix two experiments in one folder; the method list alone may grow or shrink.
    `work`: what the folder holds of the earlier config (named in the error)."""
    changed = config_differences(path, cfg)
    if changed:
        held = f", and the folder holds work done under the old one ({_few(work)})" if work else ""
        raise RunFolderError(f"{path}: --resume with a different config (sections {', '.join(changed)} differ){held}; "
                             "resume with the same config, or start a new --output")


# ---------------------------------------------------------------------------------------------- the inputs
def input_fingerprints(cfg: ExperimentConfig) -> dict[str, str]:
    """Fingerprints of the local files a run reads, by label ("data.train: /d/gsm8k/train.jsonl", "eval.tasks
    upft_gsm8k: /d/gsm8k/test.jsonl", "model.path: /m"): a question file's SHA-256 and size, a model folder's
    file names, sizes and times (`upft_bench.evaluation._model_files`). Generated and Hub inputs have none."""
    data_dir = cfg.data.resolved_dir()
    files = {"data.train": data.source_path(cfg.data.train, cfg.data.train_split, data_dir)}
    manager = evaluation.task_manager()
    for name in cfg.eval.tasks:  # a name that is no task of ours (a file of questions) is its own question set
        for leaf in evaluation.task_leaves(name, manager) if name in manager.task_index else [name]:
            entry = manager.task_index.get(leaf)
            meta = (entry.cfg.get("metadata", {}) or {}) if entry is not None else {"question_set": leaf}
            if meta.get("question_set") is not None:
                files[f"eval.tasks {leaf}"] = data.source_path(meta["question_set"],
                                                               meta.get("question_split", "test"), data_dir)
    prints = {f"{what}: {path}": _file_print(path) for what, path in files.items() if path is not None}
    model = evaluation._model_files(cfg.model.path) if cfg.model.path else None
    if model is not None:
        prints[f"model.path: {cfg.model.path}"] = f"files {model}"
    return prints


def check_same_inputs(out: Path, inputs: dict[str, str]) -> None:
    """--resume reads the files the run started with, unchanged (a folder from before inputs.json: no check)."""
    try:
        before = json.loads((out / ".done" / f"{INPUTS}.json").read_text())
    except (OSError, json.JSONDecodeError):
        return
    then, now = _by_key(before), _by_key(inputs)
    for what in sorted(set(then) | set(now)):
        (old_path, old), (new_path, new) = then.get(what, (None, None)), now.get(what, (None, None))
        if old_path == new_path and old != new:
            kind = "folder" if str(old).startswith("files ") else "file"
            raise RunFolderError(f"{out}: --resume: {what} {kind} {new_path} changed since the run started "
                                 f"({_change(old, new)}); start a new --output, or restore the {kind}")
        if old_path != new_path:
            raise RunFolderError(f"{out}: --resume: {what} was read from {old_path or 'no local file'} when the run "
                                 f"started, now from {new_path or 'no local file'}; resume with the same data "
                                 "directory, or start a new --output")


def _by_key(prints: dict[str, str]) -> dict[str, tuple[str, str]]:
    """{"data.train": (path, fingerprint)} from {"data.train: path": fingerprint}."""
    return {label.partition(": ")[0]: (label.partition(": ")[2], value) for label, value in prints.items()}


def _file_print(path: Path) -> str:
    """"sha256 HEX, N bytes" of a file ("missing" when it is not there)."""
    try:
        return f"sha256 {file_sha256(path)}, {Path(path).stat().st_size} bytes"
    except FileNotFoundError:
        return "missing"


def _change(old: str | None, new: str | None) -> str:
    """"sha256 ab12cd34… -> 9f8e7d6c…" from two fingerprints, for messages."""
    def short(value: str | None) -> tuple[str, str]:
        if not value or " " not in value:
            return "", value or "missing"
        kind, digest = value.split(",")[0].split(" ", 1)
        return kind, f"{digest[:8]}…"

    (kind, before), (now_kind, after) = short(old), short(new)
    return f"{kind} {before}".strip() + " -> " + (after if now_kind in (kind, "") else f"{now_kind} {after}")


# ---------------------------------------------------------------------------------------------- the folder
def _entries(out: Path) -> list[str]:
    """The folder's entries, leaving out a lock and the atomic writes' temporaries (upft_bench.atomic)."""
    return sorted(p.name for p in out.iterdir()
                  if p.name != LOCK and not (p.name.startswith(".") and ".tmp" in p.name))


def _foreign(out: Path) -> list[str]:
    """The entries of a non-empty folder that upft-bench did not write (none when the folder is upft-bench's)."""
    entries = _entries(out)
    if (out / ".done").is_dir() or _our_config(out / "config.yaml") or set(entries) <= REPORT_FILES:
        return []
    return entries


def _our_config(path: Path) -> bool:
    """A config.yaml that upft-bench wrote: its header line, or (written by hand) an experiment config."""
    try:
        text = path.read_text()
        if text.startswith(HEADER):
            return True
        from_dict(ExperimentConfig, yaml.safe_load(text) or {})
        return True
    except (OSError, UnicodeDecodeError, yaml.YAMLError, ConfigError, TypeError, ValueError, AttributeError):
        return False


def _empty(out: Path, remove: bool) -> None:
    """Remove what a run wrote into `out`; the folder too when the run made it."""
    if remove:
        shutil.rmtree(out, ignore_errors=True)
        return
    for p in out.iterdir():
        if p.name == LOCK:
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                p.unlink()


def _lock(out: Path):
    """Take `out/.lock` (fcntl.flock, never waiting); the open file holds it. RunFolderError when another run
    holds it; the file names that run (pid, start time) for the message."""
    path = out / LOCK
    while True:
        fh = open(path, "a+", encoding="utf-8")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read()
            fh.close()
            raise RunFolderError(f"{out} is in use by another upft-bench run ({_holder(holder)}); wait for it or "
                                 "choose another --output") from None
        try:  # the holder before us may have removed the file between our open and our lock: lock the one there
            if os.path.samestat(os.fstat(fh.fileno()), os.stat(path)):
                break
        except FileNotFoundError:
            pass
        fh.close()
    fh.seek(0)
    fh.truncate()
    fh.write(json.dumps({"pid": os.getpid(), "started": time.time()}) + "\n")
    fh.flush()
    return fh


def _unlock(out: Path, fh) -> None:
    """Remove the lock file, then let go of it (a run that opened the old file meanwhile retries on a new one)."""
    with contextlib.suppress(FileNotFoundError):
        if os.path.samestat(os.fstat(fh.fileno()), os.stat(out / LOCK)):
            os.unlink(out / LOCK)
    fh.close()


def _holder(text: str) -> str:
    """"pid N, since HH:MM" from a lock file's contents."""
    try:
        info = json.loads(text)
        return f"pid {int(info['pid'])}, since {time.strftime('%H:%M', time.localtime(float(info['started'])))}"
    except (ValueError, KeyError, TypeError):
        return "pid unknown"


def _few(names: list[str], n: int = 4) -> str:
    """The first `n` names, and how many in all when there are more."""
    return ", ".join(names[:n]) + (f", ... ({len(names)} in all)" if len(names) > n else "")
