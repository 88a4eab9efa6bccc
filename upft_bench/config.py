"""Configs as dataclasses: YAML files and `key=value` overrides into nested dataclasses, and back to YAML.

    from upft_bench.config import load_dataclass, dump_yaml
    from upft_bench.experiment import ExperimentConfig      # the schema of baselines/*.yaml
    cfg = load_dataclass(ExperimentConfig, "baselines/default.yaml", ["train.lr=1e-3", "methods=[base,upft]"])
    print(dump_yaml(cfg))

Unknown keys are errors (a typo must never be a silent no-op); `--set key=value` overrides use YAML syntax
for the value and the dataclass field's type for conversion, and an error a `--set` item causes names it.
Hostile input fails here in one line: YAML is read with a bound on its expanded size (aliases), floats must
be finite, and an error message shows at most `shown(value)` of a value.
"""
from __future__ import annotations

import copy
import dataclasses
import math
import reprlib
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from upft_bench.errors import InputError


class ConfigError(InputError):
    """A config file or override that does not fit the dataclasses; the message names file and key."""


# The most values a YAML document (a config file or a --set value) may expand to, every alias counted as often as
# it is referenced: an alias bomb ("billion laughs") is refused before anything expands or echoes it.
MAX_YAML_VALUES = 100_000

_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 60
_REPR.maxlevel = 3


def shown(value, limit: int = 80) -> str:
    """`repr(value)` for an error message, at most `limit` characters however large the value."""
    try:
        text = _REPR.repr(value)
    except ValueError:  # an int too long to print
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def clipped(text: str, limit: int = 80) -> str:
    """`text` (a key, a flag) for an error message: at most `limit` characters, on one line."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _expanded_size(node, sizes: dict, active: set) -> int:
    """Values `node` expands to, an alias counted each time it is referenced (memoised per node, so cheap);
    a node that contains itself expands without end."""
    key = id(node)
    if key in sizes:
        return sizes[key]
    if key in active:
        return math.inf
    active.add(key)
    if isinstance(node, yaml.MappingNode):
        children = [child for pair in node.value for child in pair]
    elif isinstance(node, yaml.SequenceNode):
        children = node.value
    else:
        children = []
    size = 1 + sum(_expanded_size(child, sizes, active) for child in children)
    active.discard(key)
    sizes[key] = size
    return size


def load_yaml(text: str, where: str):
    """`yaml.safe_load(text)` with its expanded size bounded (MAX_YAML_VALUES); errors are ConfigErrors naming
    `where` (a file or a --set item), on one line."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if _expanded_size(node, {}, set()) > MAX_YAML_VALUES:
            raise ConfigError(f"{where}: the YAML expands to more than {MAX_YAML_VALUES:,} values (aliases?); "
                              "refused")
        return loader.construct_document(node)
    except yaml.YAMLError as err:
        raise ConfigError(f"{where}: not valid YAML{_yaml_where(err)}") from err
    except RecursionError:
        raise ConfigError(f"{where}: the YAML nests too deeply; refused") from None
    except ValueError as err:  # a value YAML reads but Python refuses, e.g. an integer of 5,000 digits
        if isinstance(err, ConfigError):
            raise
        raise ConfigError(f"{where}: not valid YAML: {clipped(err)}") from None
    finally:
        loader.dispose()


def _is_dataclass_type(tp) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def coerce(value: Any, tp, where: str):
    """Convert a YAML value to the annotated type `tp`, or raise ConfigError naming `where`."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return coerce(value, arg, where)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(errors[0] if errors else f"{where}: cannot be {shown(value)}")
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{where}: {shown(value)} is not one of {', '.join(map(repr, args))}")
        return value
    if _is_dataclass_type(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping of {tp.__name__} fields, got {shown(value)}")
        return from_dict(tp, value, where)
    if origin in (list, tuple):
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {shown(value)}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise ConfigError(f"{where}: expected {len(args)} values, got {len(value)}")
            return tuple(coerce(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
        inner = args[0] if args else Any
        items = [coerce(v, inner, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {shown(value)}")
        return dict(value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true/false, got {shown(value)}")
    if tp is int:
        if (isinstance(value, bool) or not isinstance(value, (int, float))
                or (isinstance(value, float) and not math.isfinite(value)) or int(value) != value):
            raise ConfigError(f"{where}: expected an integer, got {shown(value)}")
        return int(value)
    if tp is float:
        number = value
        if isinstance(value, str):  # YAML reads "2e-6" (no dot) as a string
            try:
                number = float(value)
            except ValueError:
                pass
        if isinstance(number, bool) or not isinstance(number, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {shown(value)}")
        try:
            number = float(number)
        except OverflowError:  # an integer beyond any float
            number = math.inf
        if not math.isfinite(number):  # .inf, .nan, 1e999: a NaN loss or an overflow later, never a setting
            raise ConfigError(f"{where}: must be a finite number, got {shown(value)}")
        return number
    if tp is str:
        if isinstance(value, (dict, list)):
            raise ConfigError(f"{where}: expected a string, got {shown(value)}")
        return str(value)
    return value


def _at(where: str, message) -> str:
    """`where: message`, or the message alone where `where` is empty (the top level of an override's check)."""
    return f"{where}: {message}" if where else str(message)


def _unknown_keys(cls, keys, where: str) -> ConfigError:
    names = sorted(f.name for f in dataclasses.fields(cls) if f.init)
    listed = clipped(", ".join(sorted(map(str, keys))))
    return ConfigError(_at(where, f"unknown key(s) {listed}; {cls.__name__} takes: {', '.join(names)}"))


def from_dict(cls, data: dict, where: str = "config"):
    """Build dataclass `cls` from a mapping; unknown keys and bad values raise ConfigError naming `where.key`
    (`where` empty: the key alone)."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = set(data) - names
    if unknown:
        raise _unknown_keys(cls, unknown, where)
    kwargs = {key: coerce(value, hints[key], f"{where}.{key}" if where else key) for key, value in data.items()}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as err:
        raise ConfigError(_at(where, err)) from err


def to_dict(obj) -> Any:
    """A dataclass tree as plain YAML/JSON-able values."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    if isinstance(obj, Path):
        return str(obj)
    return obj


def _section_type(tp):
    """The dataclass an annotation holds (`TrainConfig`, or `TrainConfig | None`), else None."""
    if _is_dataclass_type(tp):
        return tp
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(tp) if _is_dataclass_type(a)]
        return inner[0] if len(inner) == 1 else None
    return None


def _check_override(cls, parts: list[str], value, flag: str) -> None:
    """An override's key must name a field of the schema `cls` and its value must fit the field's type; the
    error names the flag. Below a free-form mapping (`sweep`, `per_method`) the config's own check decides."""
    tp, done = cls, []
    for part in parts:
        section = _section_type(tp)
        if section is None:
            if tp is dict or typing.get_origin(tp) is dict:
                return
            raise ConfigError(f"{flag}: {'.'.join(done)} is not a section")
        hints = typing.get_type_hints(section)
        if part not in {f.name for f in dataclasses.fields(section) if f.init}:
            raise ConfigError(f"{flag}: {_unknown_keys(section, [part], '.'.join(done))}")
        tp = hints[part]
        done.append(part)
    try:
        coerce(value, tp, ".".join(parts))
    except ConfigError as err:
        raise ConfigError(f"{flag}: {err}") from None


def _flag(item: str, labels: dict | None) -> str:
    """How an error names an override: the command-line flag it came from (`labels`), else `--set item`."""
    return clipped((labels or {}).get(item) or f"--set {item}")


def apply_overrides(data: dict, overrides: list[str], cls=None, labels: dict | None = None) -> dict:
    """Apply `a.b=value` overrides (value in YAML syntax) to a nested mapping, in place. With the schema `cls`,
    each key must name one of its fields and each value fit that field's type. Errors name the --set item, or the
    flag `labels` maps the override to (a command's own option that became this override)."""
    for item in overrides:
        flag = _flag(item, labels)
        if "=" not in item:
            raise ConfigError(f"{flag}: expected key=value, e.g. train.lr=1e-4")
        key, raw = item.split("=", 1)
        parts = [p for p in key.strip().split(".") if p]
        if not parts:
            raise ConfigError(f"{flag}: empty key")
        value = load_yaml(raw, flag) if raw.strip() else None
        if cls is not None:
            _check_override(cls, parts, value, flag)
        node = data
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{flag}: {part} is not a section")
        node[parts[-1]] = value
    return data


def read_yaml(path: str | Path) -> dict:
    """A config file as a mapping; an empty file (or one of comments only) is an error, not the default."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise ConfigError(f"{path}: cannot read config: {err.strerror}") from err
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not a text file ({err.reason} at byte {err.start})") from None
    data = load_yaml(text, str(path))
    if data is None:
        raise ConfigError(f"{path}: the config is empty (no settings); run without a config file for the default")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config must be a mapping of sections, got {type(data).__name__}")
    return data


def _yaml_where(err) -> str:
    """' at line L, column C: what is wrong' from a YAML error (1-based, as editors count), on one line."""
    mark = getattr(err, "problem_mark", None)
    problem = " ".join(str(getattr(err, "problem", None) or err).split())
    at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{at}: {problem}"


def _error_of(cls, data: dict, overrides: list[str], where: str) -> str | None:
    """The message building `cls` from `data` plus `overrides` fails with, or None."""
    try:
        from_dict(cls, apply_overrides(copy.deepcopy(data), overrides), where)
    except ConfigError as err:
        return str(err)
    return None


def load_dataclass(cls, path: str | Path | None = None, overrides: list[str] = (), labels: dict | None = None):
    """Read YAML (optional) + overrides into dataclass `cls`; errors name the file and the key, or the override
    that caused them (`--set train.lr=0: train: ...`; `labels`: override -> the flag to name instead)."""
    data = read_yaml(path) if path else {}
    where = str(path) if path else "config"
    overrides = list(overrides)
    given = copy.deepcopy(data) if overrides else data
    apply_overrides(data, overrides, cls, labels)
    try:
        return from_dict(cls, data, where)
    except ConfigError as err:
        if not overrides:
            raise
        # A check across fields (the experiment's seeds, a section's __post_init__): blame the first override
        # with which the error appears, unless the file alone has it.
        message = str(err)
        for count in range(len(overrides) + 1):
            if _error_of(cls, given, overrides[:count], where) == message:
                break
        if count == 0:
            raise
        culprit = _flag(overrides[count - 1], labels)
        raise ConfigError(f"{culprit}: {_error_of(cls, given, overrides[:count], '')}") from err


def dump_yaml(obj) -> str:
    return yaml.safe_dump(to_dict(obj), sort_keys=False, default_flow_style=None, width=110)
