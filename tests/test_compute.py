"""FLOPs from token counts: hand-computed numbers for a tiny Llama shape."""
from __future__ import annotations

import json

import pytest

from upft_bench.compute import ModelShape, forward_flops, generation_flops, training_flops

TINY = {
    "hidden_size": 128,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
    "intermediate_size": 344,
    "vocab_size": 640,
}
# Per layer: q, k, v, o are 128x128 each; gate, up, down 128x344 each. LM head 128x640.
TINY_N = 4 * (128 * 128 * 4 + 3 * 128 * 344) + 128 * 640
# 4 * layers * attn_dim: the attention FLOPs per attended key.
TINY_ATTN = 4 * 4 * 128


@pytest.fixture
def shape() -> ModelShape:
    return ModelShape.from_config(TINY)


def test_from_dict(shape):
    assert shape == ModelShape(layers=4, hidden=128, attn_dim=128, kv_dim=128, intermediate=344, vocab=640,
                               matmul_params=TINY_N)
    assert TINY_N == 872_448


def test_from_dict_gqa_and_head_dim():
    gqa = ModelShape.from_config({**TINY, "num_key_value_heads": 2})
    # head_dim 32: k and v shrink to 128x64 each.
    assert gqa.kv_dim == 64 and gqa.attn_dim == 128
    assert gqa.matmul_params == 4 * (128 * 128 + 2 * 128 * 64 + 128 * 128 + 3 * 128 * 344) + 128 * 640

    wide = ModelShape.from_config({**TINY, "num_key_value_heads": 2, "head_dim": 64})
    # q 128x256, k and v 128x128 each, o 256x128.
    assert wide.attn_dim == 256 and wide.kv_dim == 128
    assert wide.matmul_params == 4 * (128 * 256 + 2 * 128 * 128 + 256 * 128 + 3 * 128 * 344) + 128 * 640

    # head_dim None (as some config.json files write it) and a missing num_key_value_heads fall back to defaults.
    defaults = {k: v for k, v in TINY.items() if k != "num_key_value_heads"}
    assert ModelShape.from_config({**defaults, "head_dim": None}).matmul_params == TINY_N


def test_from_transformers_config():
    from transformers import LlamaConfig

    config = LlamaConfig(hidden_size=128, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
                         intermediate_size=344, vocab_size=640)
    got = ModelShape.from_config(config)
    assert (got.layers, got.attn_dim, got.kv_dim) == (4, 128, 64)
    assert got.matmul_params == 4 * (128 * 128 + 2 * 128 * 64 + 128 * 128 + 3 * 128 * 344) + 128 * 640


def test_missing_field():
    broken = {k: v for k, v in TINY.items() if k != "intermediate_size"}
    with pytest.raises(ValueError, match="intermediate_size"):
        ModelShape.from_config(broken)


def test_from_model_dir(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        ModelShape.from_model_dir(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({**TINY, "model_type": "llama"}))
    assert ModelShape.from_model_dir(tmp_path).matmul_params == TINY_N


def test_forward_flops(shape):
    assert forward_flops(shape, 1) == 2 * TINY_N + TINY_ATTN * 1
    assert forward_flops(shape, 3) == 3 * 2 * TINY_N + TINY_ATTN * (1 + 2 + 3)
    assert forward_flops(shape, 2, start=5) == 2 * 2 * TINY_N + TINY_ATTN * (6 + 7)
    assert forward_flops(shape, 0, start=7) == 0
    with pytest.raises(ValueError):
        forward_flops(shape, -1)


def test_generation_flops(shape):
    p, g = 7, 5
    assert generation_flops(shape, p, g) == forward_flops(shape, p + g)
    assert generation_flops(shape, p, g) == 12 * 2 * TINY_N + TINY_ATTN * sum(range(1, 13))
    # Prefill once, then one cached step per generated token: each position computed once.
    stepwise = forward_flops(shape, p) + sum(forward_flops(shape, 1, start=p + i) for i in range(g))
    assert stepwise == generation_flops(shape, p, g)


def test_training_flops(shape):
    a, b = 4, 9
    assert training_flops(shape, [a, b]) == 3 * (forward_flops(shape, a) + forward_flops(shape, b))
    assert training_flops(shape, [1]) == 3 * (2 * TINY_N + TINY_ATTN)
    assert training_flops(shape, []) == 0
    assert training_flops(shape, iter([a, a])) == 2 * training_flops(shape, [a])
