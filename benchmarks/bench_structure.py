"""Structure figures for upft_bench: import graph, import cycles, click use, wide signatures, and how far the config
object travels through the package during a small comparison. Meant to be run before and after a refactor.

    .venv/bin/python benchmarks/bench_structure.py      # from the repo root; about 15-30 s, most of it section 5

Sections 1-4 read the source with `ast` and import nothing from the package; section 5 runs a comparison.

1. Import graph. Modules: every `upft_bench/**/*.py` (`upft_bench/x/__init__.py` is module `upft_bench.x`; the
   `tasks/` and `baselines/` folders, mapped into the package by pyproject, are left out). Import statements:
   `import` and `from ... import` nodes, `from __future__` excluded; one is function-level when it sits anywhere
   inside a def or class body, module-level otherwise (an import under a module-level `if`/`try` is module-level).
   First-party targets: `import upft_bench.x.y` imports `upft_bench.x.y`; `from P import n` imports `P.n` when that
   is a module of the package, else `P` itself (so `from upft_bench import paper` is `upft_bench.paper`, and
   `from upft_bench import cache_root` is the package `upft_bench`, i.e. its `__init__`, one node like any other);
   relative imports are resolved against the importing module's package; a name that is no module of the package
   falls back to its longest prefix that is one. A module importing itself is no edge. The table gives, per module,
   its import statements (all, function-level) and the distinct first-party modules it imports at module level
   and inside functions (one module may count in both columns).
2. Import cycles: the strongly connected components (Tarjan) of the first-party graph with more than one module,
   (a) over module-level imports only (what Python meets at import time), (b) over all imports, function-level
   ones included (the coupling a refactor has to untangle).
3. click: modules with an `import click` / `from click import ...` statement anywhere, and modules with a `raise`
   of a call to an attribute of click (`raise click.UsageError(...)`, also through `import click as c` or a name
   taken with `from click import ...`), with the exception names and counts.
4. Parameters: functions and methods (nested ones included, named by their dotted path) of upft_bench/compare.py
   and upft_bench/train.py with more than 5 parameters: positional-only + positional + keyword-only, without
   `self`/`cls` and without *args/**kwargs; widest first.
5. Config walk: `run_compare(cfg, out)` on baselines/smoke.yaml with `eval.limit=4` and `methods=[base,sft,upft]`
   (fresh temporary output folder and UPFT_BENCH_CACHE, so the base model is built each time and the walk is the
   same every run; HF offline). Under `sys.settrace` and `threading.settrace` (call events only; frames outside
   upft_bench/ are not traced line by line) every call of a function defined in a file under upft_bench/ is kept
   when one of its arguments, as bound at the call event before the body runs (`self` included, elements of
   *args and values of **kwargs too), is the config object itself or one of its dataclass sections (`cfg.model`,
   `cfg.train`, ...), by identity; a copy of a section does not count, and a generator counts when it starts, not
   at each resume. Stays: the number of such calls. Files: how many distinct files they are in. Climbs back up:
   how often the walk (the sequence of those calls' files) moves to a file it has been in before but that is not
   the file of the call just before. Then each file with its stays, most first, and the walk itself with
   consecutive calls in one file merged (`file xN`). Calls in child processes are not seen. The run's own output
   is swallowed (its tail is printed if it fails); when run_compare cannot be found or called with (cfg, out), the
   error is printed and the section skipped.
"""
from __future__ import annotations

import ast
import contextlib
import dataclasses
import dis
import inspect
import io
import os
import shutil
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PKG = "upft_bench"
PKG_DIR = REPO / PKG
PARAM_FILES = ("compare.py", "train.py")
PARAM_LIMIT = 5
CLICK_EXCEPTIONS = ("ClickException", "UsageError", "BadParameter")


# ---------------------------------------------------------------------------------------------------- source model


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_modules() -> dict[str, tuple[Path, ast.Module | None]]:
    """Module name -> (file, parsed tree or None when the file does not parse right now)."""
    modules = {}
    for path in sorted(PKG_DIR.rglob("*.py")):
        if any(part.startswith(".") or part == "__pycache__" for part in path.relative_to(REPO).parts):
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        except SyntaxError:
            tree = None
        modules[module_name(path)] = (path, tree)
    return modules


def walk_with_depth(tree: ast.AST):
    """Every node with whether it lies inside a def/class body (True) or at module level (False)."""
    stack = [(tree, False)]
    while stack:
        node, nested = stack.pop()
        yield node, nested
        inner = nested or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda))
        stack.extend((child, inner) for child in ast.iter_child_nodes(node))


def is_first_party(name: str) -> bool:
    return name == PKG or name.startswith(PKG + ".")


def known_prefix(name: str, known: set[str]) -> str | None:
    """`name` if it is a module of the package, else its longest prefix that is one."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in known:
            return candidate
        parts.pop()
    return None


def import_targets(node: ast.Import | ast.ImportFrom, module: str, is_package: bool, known: set[str]) -> set[str]:
    """The first-party modules one import statement in `module` imports."""
    targets = set()
    if isinstance(node, ast.Import):
        for alias in node.names:
            if is_first_party(alias.name):
                targets.add(known_prefix(alias.name, known))
    else:
        if node.level:
            package = module.split(".") if is_package else module.split(".")[:-1]
            package = package[: len(package) - (node.level - 1)]
            base = ".".join(package + ([node.module] if node.module else []))
        else:
            base = node.module or ""
        if is_first_party(base):
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                targets.add(sub if sub in known else known_prefix(base, known))
    targets.discard(None)
    targets.discard(module)
    return targets


@dataclasses.dataclass
class ModuleImports:
    statements: int = 0
    function_statements: int = 0
    top: set[str] = dataclasses.field(default_factory=set)  # first-party modules imported at module level
    nested: set[str] = dataclasses.field(default_factory=set)  # ... inside def/class bodies


def import_graph(modules) -> dict[str, ModuleImports]:
    known = set(modules)
    graph = {}
    for name, (path, tree) in modules.items():
        info = ModuleImports()
        graph[name] = info
        if tree is None:
            continue
        for node, nested in walk_with_depth(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            if isinstance(node, ast.ImportFrom) and node.module == "__future__":
                continue
            info.statements += 1
            info.function_statements += nested
            targets = import_targets(node, name, path.name == "__init__.py", known)
            (info.nested if nested else info.top).update(targets)
    return graph


def strongly_connected(nodes: list[str], edges: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative; components in no particular order, each sorted."""
    index, low, on_stack, stack, out = {}, {}, set(), [], []
    counter = 0
    for root in nodes:
        if root in index:
            continue
        work = [(root, iter(sorted(edges.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                out.append(sorted(component))
    return out


def cycles(graph: dict[str, ModuleImports], include_nested: bool) -> list[list[str]]:
    edges = {name: info.top | (info.nested if include_nested else set()) for name, info in graph.items()}
    components = [c for c in strongly_connected(sorted(graph), edges) if len(c) > 1]
    return sorted(components, key=lambda c: (-len(c), c))


def click_use(modules) -> tuple[list[str], dict[str, Counter]]:
    importers, raisers = [], {}
    for name, (_, tree) in modules.items():
        if tree is None:
            continue
        module_aliases, name_aliases, imports_click = set(), {}, False
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name == "click" or alias.name.startswith("click."):
                        imports_click = True
                        module_aliases.add(alias.asname if alias.asname and alias.name == "click" else "click")
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                if node.module == "click" or node.module.startswith("click."):
                    imports_click = True
                    name_aliases.update((alias.asname or alias.name, alias.name) for alias in node.names)
        if imports_click:
            importers.append(name)
        found = Counter()
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call)):
                continue
            func = node.exc.func
            if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id in module_aliases:
                found[func.attr] += 1
            elif isinstance(func, ast.Name) and func.id in name_aliases:
                found[name_aliases[func.id]] += 1
        if found:
            raisers[name] = found
    return sorted(importers), raisers


def wide_functions(modules) -> list[tuple[int, str, str]]:
    rows = []

    def visit(node: ast.AST, prefix: str, path: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                args = child.args
                params = [a.arg for a in args.posonlyargs + args.args + args.kwonlyargs]
                count = sum(p not in ("self", "cls") for p in params)
                if count > PARAM_LIMIT:
                    rows.append((count, path, prefix + child.name))
                visit(child, f"{prefix}{child.name}.", path)
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.", path)
            else:
                visit(child, prefix, path)

    for path, tree in modules.values():
        if tree is not None and path.parent == PKG_DIR and path.name in PARAM_FILES:
            visit(tree, "", str(path.relative_to(REPO)))
    return sorted(rows, key=lambda r: (-r[0], r[1], r[2]))


# ------------------------------------------------------------------------------------------------------ config walk

_GENERATOR_FLAGS = inspect.CO_GENERATOR | inspect.CO_COROUTINE | inspect.CO_ASYNC_GENERATOR


class ConfigTracer:
    """Call-event tracer keeping (file, function) for package calls that receive the config or one of its sections."""

    def __init__(self, cfg) -> None:
        self.keep = [cfg] + [getattr(cfg, f.name) for f in dataclasses.fields(cfg)]  # holds them: ids stay unique
        self.ids = {id(cfg)} | {id(v) for v in self.keep[1:] if dataclasses.is_dataclass(v) and not isinstance(v, type)}
        self.prefix = str(PKG_DIR) + os.sep
        self.calls: list[tuple[str, str]] = []
        self._code_seen: dict = {}  # code object -> (relative file, name, argument names, first resume offset)

    def _describe(self, code):
        argc = code.co_argcount + code.co_kwonlyargcount
        names = code.co_varnames[:argc]
        star = code.co_varnames[argc: argc + bool(code.co_flags & inspect.CO_VARARGS)]
        argc += len(star)
        stars = code.co_varnames[argc: argc + bool(code.co_flags & inspect.CO_VARKEYWORDS)]
        start = 0
        if code.co_flags & _GENERATOR_FLAGS:  # a generator's call event fires again at every resume
            start = next((i.offset for i in dis.get_instructions(code) if i.opname == "RESUME"), 0)
        name = getattr(code, "co_qualname", code.co_name)
        rel = os.path.relpath(code.co_filename, REPO)
        info = (rel, name, names, star, stars, start, bool(code.co_flags & _GENERATOR_FLAGS))
        self._code_seen[code] = info
        return info

    def __call__(self, frame, event, arg):
        if event != "call" or not frame.f_code.co_filename.startswith(self.prefix):
            return None
        code = frame.f_code
        info = self._code_seen.get(code) or self._describe(code)
        rel, name, names, star, stars, start, generator = info
        if generator and frame.f_lasti > start:
            return None
        values = frame.f_locals
        ids = self.ids
        hit = any(id(values.get(n)) in ids for n in names)
        if not hit and star:
            hit = any(id(v) in ids for v in values.get(star[0], ()))
        if not hit and stars:
            hit = any(id(v) in ids for v in values.get(stars[0], {}).values())
        if hit:
            self.calls.append((rel, name))
        return None


def find_run_compare(modules):
    """upft_bench.compare.run_compare, else the first `def run_compare` anywhere in the package."""
    import importlib

    owners = ["upft_bench.compare"] + [
        name for name, (_, tree) in modules.items() if name != "upft_bench.compare" and tree is not None
        and any(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == "run_compare" for n in tree.body)
    ]
    for owner in owners:
        try:
            module = importlib.import_module(owner)
        except Exception:  # a module mid-edit: try the next place
            continue
        for member_name, member in inspect.getmembers(module, inspect.isfunction):
            if member_name == "run_compare":
                return owner, member
    raise LookupError("no run_compare function found in the package")


def config_walk(modules, lines: list[str]) -> None:
    scratch = Path(tempfile.mkdtemp(prefix="bench-structure-"))
    os.environ["UPFT_BENCH_CACHE"] = str(scratch / "cache")
    out_dir = scratch / "run"
    captured = io.StringIO()
    tracer = None
    try:
        from upft_bench import baselines_dir
        from upft_bench.experiment import load_experiment

        owner, run_compare = find_run_compare(modules)
        cfg = load_experiment(baselines_dir() / "smoke.yaml", ["eval.limit=4", "methods=[base,sft,upft]"])
        signature = inspect.signature(run_compare)
        signature.bind(cfg, out_dir)  # TypeError when it cannot take (cfg, out) positionally
        lines.append(f"called: {owner}.run_compare{signature}")
        tracer = ConfigTracer(cfg)
        start = time.perf_counter()
        with contextlib.redirect_stdout(captured), contextlib.redirect_stderr(captured):
            threading.settrace(tracer)
            sys.settrace(tracer)
            try:
                run_compare(cfg, out_dir)
            finally:
                sys.settrace(None)
                threading.settrace(None)
        seconds = time.perf_counter() - start
    except Exception as exc:  # the report goes on without this section
        lines.append(f"skipped: {type(exc).__name__}: {exc}")
        tail = captured.getvalue().strip().splitlines()[-8:] + traceback.format_exc().strip().splitlines()[-6:]
        lines.extend("    " + line for line in tail)
        return
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    calls = tracer.calls
    files = [f for f, _ in calls]
    climbs, seen, previous = 0, set(), None
    walk: list[list] = []
    for f in files:
        if f != previous:
            climbs += f in seen
            seen.add(f)
            walk.append([f, 0])
        walk[-1][1] += 1
        previous = f
    lines.append(f"traced run: {seconds:.1f} s (smoke.yaml, eval.limit=4, methods=[base,sft,upft])")
    lines.append("")
    lines.append(f"- stays (package calls receiving cfg or a section): {len(calls)}")
    lines.append(f"- distinct files: {len(seen)}")
    lines.append(f"- climbs back up: {climbs}")
    lines.append("")
    lines.append("stays per file:")
    width = max((len(f) for f in seen), default=0)
    for f, n in Counter(files).most_common():
        functions = Counter(name for g, name in calls if g == f)
        top = ", ".join(f"{fn} x{k}" if k > 1 else fn for fn, k in functions.most_common(4))
        more = f", +{len(functions) - 4} more" if len(functions) > 4 else ""
        lines.append(f"    {f:<{width}}  {n:>4}  ({top}{more})")
    lines.append("")
    lines.append(f"walk ({len(walk)} steps):")
    steps = [f"{Path(f).stem if Path(f).parent == Path(PKG) else f} x{n}" for f, n in walk]
    row = "    "
    for i, step in enumerate(steps):
        piece = step + (" -> " if i < len(steps) - 1 else "")
        if len(row) + len(piece) > 116:
            lines.append(row.rstrip())
            row = "    "
        row += piece
    if row.strip():
        lines.append(row.rstrip())


# ------------------------------------------------------------------------------------------------------------ report


def main() -> None:
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["HF_DATASETS_OFFLINE"] = "1"
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    started = time.perf_counter()
    modules = package_modules()
    graph = import_graph(modules)
    lines = ["# upft_bench structure", ""]
    broken = [name for name, (_, tree) in modules.items() if tree is None]
    if broken:
        lines += [f"(does not parse, counted as empty: {', '.join(broken)})", ""]

    lines += ["## 1. Import graph", ""]
    statements = sum(i.statements for i in graph.values())
    nested = sum(i.function_statements for i in graph.values())
    lines.append(f"- modules: {len(modules)}")
    lines.append(f"- import statements: {statements}, function-level: {nested} (`from __future__` not counted)")
    first_party_edges = sum(len(i.top | i.nested) for i in graph.values())
    lines.append(f"- first-party edges (distinct importer -> imported pairs): {first_party_edges}")
    compare = graph.get("upft_bench.compare")
    if compare is not None:
        both = compare.top | compare.nested
        lines.append(f"- upft_bench.compare imports {len(both)} other first-party modules "
                     f"({len(compare.top)} at module level, {len(compare.nested - compare.top)} only in functions):")
        lines.append("    " + ", ".join(m.removeprefix("upft_bench.") if m != PKG else PKG for m in sorted(both)))
    lines.append("")
    width = max(len(m) for m in graph)
    lines.append(f"    {'module':<{width}}  stmts  in-fn  first-party: module-level  in functions")
    for name, info in graph.items():
        lines.append(f"    {name:<{width}}  {info.statements:>5}  {info.function_statements:>5}  "
                     f"{len(info.top):>26}  {len(info.nested):>12}")
    lines.append("")

    lines += ["## 2. Import cycles", ""]
    for label, include_nested in (("(a) module-level imports only", False), ("(b) all imports", True)):
        found = cycles(graph, include_nested)
        lines.append(f"{label}: {len(found)} cycle(s), {sum(len(c) for c in found)} modules in them")
        lines.extend(f"    {len(c)}: {c}" for c in found)
        lines.append("")

    lines += ["## 3. click", ""]
    importers, raisers = click_use(modules)
    lines.append(f"- modules importing click ({len(importers)}): {', '.join(importers)}")
    lines.append(f"- modules raising click exceptions ({len(raisers)}):")
    for name, found in sorted(raisers.items()):
        lines.append("    " + name + ": " + ", ".join(f"{exc} x{n}" for exc, n in sorted(found.items())))
    total = Counter()
    for found in raisers.values():
        total.update(found)
    named = sum(total[e] for e in CLICK_EXCEPTIONS)
    lines.append(f"- click raises: {sum(total.values())} ({named} of them {'/'.join(CLICK_EXCEPTIONS)})")
    lines.append("")

    lines += [f"## 4. Parameters (> {PARAM_LIMIT}; {' and '.join(PARAM_FILES)})", ""]
    rows = wide_functions(modules)
    lines.append(f"- functions: {len(rows)}")
    lines.extend(f"    {count:>3}  {path}:{name}" for count, path, name in rows)
    lines.append("")

    lines += ["## 5. Config walk", ""]
    config_walk(modules, lines)
    lines += ["", f"(total {time.perf_counter() - started:.1f} s)"]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
