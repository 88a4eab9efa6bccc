"""Config loading: YAML mirrors dataclasses, unknown keys fail, overrides convert types, shipped configs load."""
from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from upft_bench.config import ConfigError, apply_overrides, dump_yaml, from_dict, load_dataclass, read_yaml


@dataclass
class Inner:
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.95)
    limit: int | None = None
    flag: bool = False


@dataclass
class Outer:
    name: str = "x"
    methods: list[str] = field(default_factory=lambda: ["a"])
    inner: Inner = field(default_factory=Inner)


def test_overrides_convert_types():
    data = apply_overrides({"inner": {"lr": "2e-6"}}, ["methods=[b,c]", "inner.limit=5", "inner.betas=[0.8, 0.9]",
                                                       "inner.flag=true", "name=run1"])
    cfg = from_dict(Outer, data)
    assert cfg == Outer(name="run1", methods=["b", "c"], inner=Inner(lr=2e-6, betas=(0.8, 0.9), limit=5, flag=True))


def test_comma_list_and_null():
    cfg = from_dict(Outer, apply_overrides({}, ["methods=b,c", "inner.limit=null"]))
    assert cfg.methods == ["b", "c"] and cfg.inner.limit is None


@pytest.mark.parametrize(
    "data, needle",
    [
        ({"inenr": {}}, "unknown key(s) inenr"),
        ({"inner": {"lrr": 1}}, "config.inner: unknown key(s) lrr"),
        ({"inner": {"lr": "fast"}}, "config.inner.lr: expected a number"),
        ({"inner": {"limit": 2.5}}, "config.inner.limit"),
        ({"inner": {"flag": "yes please"}}, "config.inner.flag: expected true/false"),
        ({"inner": {"betas": [0.9]}}, "config.inner.betas: expected 2 values"),
        ({"inner": 3}, "config.inner: expected a mapping"),
    ],
)
def test_bad_values_name_the_key(data, needle):
    with pytest.raises(ConfigError) as err:
        from_dict(Outer, data)
    assert needle in str(err.value)


def test_yaml_file_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("inner: {lr: [1, 2\n")
    with pytest.raises(ConfigError, match="bad.yaml: not valid YAML at line 2, column 1: ") as err:
        read_yaml(bad)
    assert "\n" not in str(err.value) and "<unicode string>" not in str(err.value)
    typo = tmp_path / "typo.yaml"
    typo.write_text("inner:\n  lrate: 0.1\n")
    with pytest.raises(ConfigError, match=r"typo.yaml.inner: unknown key\(s\) lrate"):
        load_dataclass(Outer, typo)
    with pytest.raises(ConfigError, match="expected key=value"):
        load_dataclass(Outer, None, ["inner.lr"])


def test_dump_round_trips(tmp_path):
    cfg = Outer(name="r", methods=["a", "b"], inner=Inner(lr=0.5, limit=3))
    path = tmp_path / "c.yaml"
    path.write_text(dump_yaml(cfg))
    assert load_dataclass(Outer, path) == cfg
