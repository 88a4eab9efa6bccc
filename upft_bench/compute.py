"""Compute counted from the tokens a run actually processed: the same number on any machine.

    from upft_bench.compute import ModelShape, generation_flops, training_flops
    shape = ModelShape.from_model_dir("models/qwen2.5-0.5b")          # or ModelShape.from_config(model.config)
    sampling = sum(generation_flops(shape, p, g) for p, g in zip(prompt_lens, generated_lens))
    training = training_flops(shape, [len(ids) for ids in epoch_inputs for _ in range(epochs)])

The formulas (a multiply-add counts as 2 FLOPs; norms, biases, activations and softmax are left out as negligible):

* N, the matrix-multiply weights each token meets (`ModelShape.matmul_params`):
  N = layers * (hidden*attn_dim + 2*hidden*kv_dim + attn_dim*hidden + 3*hidden*intermediate) + hidden*vocab
  (attention q, k, v, o; gated MLP gate, up, down; the LM head). The input embedding is a lookup, not a multiply.
* One position t (0-based) of a forward pass with the keys of earlier positions cached:
  2*N + 4*layers*attn_dim*(t+1)   (scores against t+1 keys and the weighted sum of t+1 values, 2 FLOPs each).
* `forward_flops(shape, P, start=s)`: positions s..s+P-1, i.e.
  2*N*P + 4*layers*attn_dim * sum_{t=s}^{s+P-1} (t+1) = 2*N*P + 4*layers*attn_dim * P*(2*s+P+1)/2.
* `generation_flops(shape, p, g)` = forward_flops(shape, p+g): prefill plus one cached step per generated token,
  each position computed once (the final token's step is counted too: at most one position too many per sample).
* `training_flops(shape, lengths)` = sum of 3 * forward_flops(shape, n): forward + backward (about twice the
  forward) over every input position, prompt positions included, once per sequence per epoch it is trained in.
  (The training core runs the LM head only at loss positions, so the real count is lower; the table uses the
  standard 6N-per-position convention.)
* `training_flops(shape, lengths, trainable=A)`: LoRA, the N base weights frozen and A adapter parameters trained.
  Per position 4*N (forward 2N, gradients with respect to the activations 2N, no weight-gradient matmuls) plus
  6*A (the adapters train fully), plus the attention term three times as above (it has no weights: its backward
  is the activation gradients, twice its forward, with or without LoRA).

A run's phases: `sampling_flops` over a sample pool, `training_flops` over the input positions the training loop
processes (`upft_bench.train.trained_positions`), and the evaluation's per-question prompt and output lengths
(upft_bench.evaluation) with `generation_flops`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

__all__ = ["ModelShape", "forward_flops", "generation_flops", "sampling_flops", "training_flops"]


def _field(config: Any, name: str) -> Any:
    if isinstance(config, dict):
        return config.get(name)
    return getattr(config, name, None)


def _required(config: Any, name: str) -> int:
    value = _field(config, name)
    if value is None:
        raise ValueError(f"model config lacks {name!r}")
    return int(value)


@dataclass(frozen=True)
class ModelShape:
    """The sizes of a decoder-only transformer (Llama/Qwen/Mistral layout) that its FLOPs depend on."""

    layers: int
    hidden: int
    attn_dim: int  # num_attention_heads * head_dim (the query width)
    kv_dim: int  # num_key_value_heads * head_dim
    intermediate: int
    vocab: int
    # N: weights each token is multiplied with, per layer q (hidden x attn_dim), k and v (hidden x kv_dim each),
    # o (attn_dim x hidden), gated MLP (3 x hidden x intermediate); plus the LM head (hidden x vocab).
    matmul_params: int

    @classmethod
    def from_config(cls, config: Any) -> ModelShape:
        """From a transformers `PretrainedConfig` or a plain dict (config.json); a missing field is a ValueError.

        num_key_value_heads defaults to num_attention_heads, head_dim (also when None) to hidden_size // heads.
        """
        hidden = _required(config, "hidden_size")
        layers = _required(config, "num_hidden_layers")
        heads = _required(config, "num_attention_heads")
        intermediate = _required(config, "intermediate_size")
        vocab = _required(config, "vocab_size")
        kv_heads = _field(config, "num_key_value_heads")
        kv_heads = heads if kv_heads is None else int(kv_heads)
        head_dim = _field(config, "head_dim")
        head_dim = hidden // heads if head_dim is None else int(head_dim)
        attn_dim = heads * head_dim
        kv_dim = kv_heads * head_dim
        per_layer = hidden * attn_dim + 2 * hidden * kv_dim + attn_dim * hidden + 3 * hidden * intermediate
        return cls(
            layers=layers,
            hidden=hidden,
            attn_dim=attn_dim,
            kv_dim=kv_dim,
            intermediate=intermediate,
            vocab=vocab,
            matmul_params=layers * per_layer + hidden * vocab,
        )

    @classmethod
    def from_model_dir(cls, path: str | Path) -> ModelShape:
        """From `<path>/config.json` (FileNotFoundError naming the file when it is absent)."""
        config_path = Path(path) / "config.json"
        if not config_path.is_file():
            raise FileNotFoundError(f"no config.json in model directory {str(path)!r} (looked for {config_path})")
        with open(config_path, encoding="utf-8") as fh:
            return cls.from_config(json.load(fh))


def model_shape(path: str | Path | None, config: Any = None) -> ModelShape | None:
    """The one reader of a model's shape for FLOPs: from an already loaded `config`, else `path`'s config.json
    (a folder) or its config through transformers (a Hub id); None for a model whose config is missing or is not
    a decoder this module knows, whose FLOPs are then reported as unknown."""
    try:
        if config is not None:
            return ModelShape.from_config(config)
        if Path(path).is_dir():
            return ModelShape.from_model_dir(path)
        from transformers import AutoConfig  # heavy: only for a Hub id

        return ModelShape.from_config(AutoConfig.from_pretrained(path))
    except (OSError, ValueError):
        return None


def _check_count(name: str, value: int) -> int:
    value = int(value)
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return value


def forward_flops(shape: ModelShape, positions: int, start: int = 0) -> int:
    """One pass over positions start..start+positions-1 of one sequence, earlier keys cached.

    2*N*positions + 4*layers*attn_dim * sum_{t=start}^{start+positions-1} (t+1)
    = 2*N*positions + 4*layers*attn_dim * positions*(2*start+positions+1)/2.
    """
    positions = _check_count("positions", positions)
    start = _check_count("start", start)
    keys_attended = positions * (2 * start + positions + 1) // 2  # always an integer: one factor is even
    return 2 * shape.matmul_params * positions + 4 * shape.layers * shape.attn_dim * keys_attended


def generation_flops(shape: ModelShape, prompt_tokens: int, generated_tokens: int) -> int:
    """Sampling one sequence with a KV cache: forward_flops(shape, prompt_tokens + generated_tokens).

    Prefill of the prompt plus one step per generated token, each position once (the final token's step included).
    """
    prompt_tokens = _check_count("prompt_tokens", prompt_tokens)
    generated_tokens = _check_count("generated_tokens", generated_tokens)
    return forward_flops(shape, prompt_tokens + generated_tokens)


def training_flops(shape: ModelShape, sequence_lengths: Iterable[int], trainable: int | None = None) -> int:
    """Forward + backward over every input position: sum over sequences of 3 * forward_flops(shape, n).

    Pass each example's input length once per epoch it is trained in (prompt positions count: they run through the
    model even though they carry no loss). `trainable`: None for full fine-tuning (6N per position); with frozen
    base weights (LoRA) the number of trained adapter parameters A: 4N + 6A per position, attention as before.
    """
    per_position = 6 * shape.matmul_params
    if trainable is not None:
        per_position = 4 * shape.matmul_params + 6 * _check_count("trainable", trainable)
    total = 0
    for n in sequence_lengths:
        attention = forward_flops(shape, n) - 2 * shape.matmul_params * n
        total += per_position * n + 3 * attention
    return total


# ---------------------------------------------------------------------------------------------- a run's phases
def sampling_flops(shape: ModelShape, samples, tokenizer) -> int:
    """A sample pool's generation FLOPs: per sample its prompt (as the sampler encoded it) plus every generated
    token, stop token included (`num_tokens`), with a KV cache."""
    prompt_len: dict[str, int] = {}
    total = 0
    for s in samples:
        if s.prompt not in prompt_len:
            prompt_len[s.prompt] = len(tokenizer(s.prompt, add_special_tokens=False)["input_ids"])
        total += generation_flops(shape, prompt_len[s.prompt], s.num_tokens)
    return total
