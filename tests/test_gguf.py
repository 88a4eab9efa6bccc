"""GGUF model files: which paths are GGUF, the conversion cache and its key (the conversion itself: test_smollm2)."""
from __future__ import annotations

import hashlib

import pytest

from upft_bench.gguf import GgufError, gguf_source, resolve_model


def test_which_paths_are_gguf(tmp_path):
    assert gguf_source("HuggingFaceTB/SmolLM2-135M-Instruct") is None
    assert gguf_source(str(tmp_path)) is None
    assert gguf_source(str(tmp_path / "m.Q4_1.GGUF")) == (tmp_path, "m.Q4_1.GGUF")
    assert gguf_source(str(tmp_path), "m.gguf") == (tmp_path, "m.gguf")


def test_other_models_pass_through_and_a_missing_file_is_named(tmp_path):
    said = []
    assert resolve_model("org/model", announce=said.append) == "org/model" and not said
    assert resolve_model(str(tmp_path), announce=said.append) == str(tmp_path) and not said
    with pytest.raises(GgufError, match=rf"^no such GGUF file {tmp_path}/m.gguf$"):
        resolve_model(str(tmp_path / "m.gguf"))


def test_a_converted_file_is_reused_and_an_edited_one_converted_anew(tmp_path, monkeypatch):
    pytest.importorskip("gguf")
    from upft_bench import gguf

    file = tmp_path / "m.gguf"
    file.write_bytes(b"first")
    converted = []
    monkeypatch.setattr(gguf, "_convert", lambda f, out, digest: (converted.append(digest), out.mkdir(parents=True),
                                                                   (out / "gguf_source.json").write_text("{}")))
    said = []
    first = resolve_model(str(file), cache=tmp_path / "cache", announce=said.append)
    assert first == str(tmp_path / "cache" / f"m-{hashlib.sha256(b'first').hexdigest()[:16]}")
    assert len(said) == 1 and "converting" in said[0] and len(converted) == 1
    assert resolve_model(str(file), cache=tmp_path / "cache", announce=said.append) == first and len(said) == 1
    file.write_bytes(b"second")
    assert resolve_model(str(file), cache=tmp_path / "cache") != first and len(converted) == 2
