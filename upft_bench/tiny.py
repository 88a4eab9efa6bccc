"""Tiny Llama-architecture models with a locally trained tokenizer: no Hub, no downloads.

    from upft_bench.tiny import build_tokenizer, build_model, save_random_model
    tok = build_tokenizer(texts)                  # byte-level BPE, one token per digit, chat template
    model = build_model(tok, size="base", seed=0)
    save_random_model("/tmp/tiny", size="test")   # a loadable random checkpoint, for tests

The offline default's base model is pretrained from these pieces by `upft_bench.pretrain`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

USER, ASSISTANT, SYSTEM, END, PAD = "<|user|>", "<|assistant|>", "<|system|>", "<|end|>", "<|pad|>"
SPECIAL_TOKENS = [PAD, END, USER, ASSISTANT, SYSTEM]

# Turns are delimited by role tokens; <|end|> closes every turn and is the EOS the model learns to emit.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>' + message['content'] + '<|end|>' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}"
)

# name -> LlamaConfig fields. "base" is the offline default (about 0.9M parameters);
# "test" is for unit tests (seconds).
SIZES = {
    "base": dict(hidden_size=128, num_hidden_layers=4, num_attention_heads=4, intermediate_size=344),
    "small": dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=172),
    "test": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64),
}

_DEFAULT_TEXTS = [
    "Tom has 3 apples. He buys 5 more apples. How many apples does Tom have now?",
    "Tom starts with 3 apples. 3 + 5 = 8. The answer is \\boxed{8}.",
]


def build_tokenizer(texts: Iterable[str] = (), vocab_size: int = 640):
    """Train a byte-level BPE tokenizer on `texts` (digits always split one per token).

    Byte-level means any string round-trips, so untrained text (a Hub question, odd unicode) still encodes.
    """
    # heavy (tokenizers): loaded on use
    from tokenizers import (
        Tokenizer,
        decoders,
        models,
        pre_tokenizers,
        trainers,
    )
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    # Digits one per token: arithmetic stays learnable and numbers never merge with words.
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    corpus = list(texts) or _DEFAULT_TEXTS
    tok.train_from_iterator(corpus, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token=END, pad_token=PAD, unk_token=None, padding_side="left",
        additional_special_tokens=[USER, ASSISTANT, SYSTEM],
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_model(tokenizer, size: str = "base", seed: int = 0, max_positions: int = 1024):
    """A randomly initialised LlamaForCausalLM sized by `SIZES[size]`, deterministic for `seed`."""
    # heavy (torch): loaded on use
    import torch
    from transformers import (
        LlamaConfig,
        LlamaForCausalLM,
    )

    if size not in SIZES:
        raise ValueError(f"unknown tiny model size {size!r}; known: {', '.join(SIZES)}")
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        max_position_embeddings=max_positions,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **SIZES[size],
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.bos_token_id = None
    return model


def save_model(model, tokenizer, out_dir: str | Path) -> Path:
    """Save weights, tokenizer and chat template so `from_pretrained` and lm-eval's `hf` backend load them."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def save_random_model(out_dir: str | Path, size: str = "test", seed: int = 0, texts: Iterable[str] = ()) -> Path:
    """Build and save a random tiny model (tests and smoke runs)."""
    tok = build_tokenizer(texts)
    return save_model(build_model(tok, size=size, seed=seed), tok, out_dir)
