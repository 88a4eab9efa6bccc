"""Helpers shared by the training tests (tests/test_train.py, tests/test_train_log.py): examples and a config."""
from __future__ import annotations

import random

from upft_bench.examples import Example
from upft_bench.train import TrainConfig


def make_examples(n: int, seed: int = 0, vocab: int = 300) -> list[Example]:
    """Varied prompt and response lengths (2..40 response tokens), ids from the ordinary vocabulary."""
    rng = random.Random(seed)
    return [
        Example(f"q{i}", [rng.randrange(5, vocab) for _ in range(rng.randint(3, 12))],
                [rng.randrange(5, vocab) for _ in range(rng.choice([2, 3, 8, 20, 40]))])
        for i in range(n)
    ]


def fp32(**kw) -> TrainConfig:
    """A small fp32 config: batch 8 in one micro-batch, no warmup, a loss point every step."""
    defaults = dict(lr=1e-3, batch_size=8, micro_batch_size=8, warmup_ratio=0.0, mixed_precision="no", log_every=1)
    return TrainConfig(**(defaults | kw))


def make_pairs(n: int, seed: int = 0, vocab: int = 300) -> list[Example]:
    """n preference pairs: consecutive (chosen, rejected) examples sharing a question and prompt, responses of
    different lengths."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        prompt = [rng.randrange(5, vocab) for _ in range(rng.randint(3, 12))]
        for kind in ("chosen", "rejected"):
            out.append(Example(f"q{i}", prompt, [rng.randrange(5, vocab) for _ in range(rng.choice([2, 5, 9, 17]))],
                               kind))
    return out
