"""The offline default's base model: a tiny Llama pretrained here on the synthetic corpus, cached.

    upft-bench pretrain                       # build (or reuse) the default base model, print path and a quick check
    upft-bench pretrain --preset smoke        # seconds: the tests' and CI's model
    upft-bench pretrain --steps 2000 --seed 1 --force --eval 300

    from upft_bench.pretrain import PretrainConfig, build_base_model
    path = build_base_model(PretrainConfig())   # ~/.cache/upft-bench/base-models/<key>, from_pretrained-loadable

Recipe: train a byte-level BPE tokenizer on corpus text (`upft_bench.tiny`), build a randomly initialised
Llama of `size`, and train it with the same loop as every fine-tuning method (`upft_bench.train.train`) on
`upft_bench.synthetic.generate_corpus`: full solutions (mistakes only at the question's tricky steps, as the
config's world says, so the model errs systematically, like a real one, not at random) and "question + an
instruction asking for part of the solution -> that part, then EOS" examples (only the first equation or only
the first two), so the model knows that an instruction can ask for less than a whole solution, as an
instruction-tuned model does. UPFT's own prefix instruction and its k-token cut are never in the corpus: UPFT's
training format is as new to this base model as to a real one (see `upft_bench.synthetic`).

The budget is a fixed number of optimizer steps, not a time limit: on a shared CPU a time budget silently
gives a weaker model. The cache key is a hash of the config and of the code that produces the model, so a
changed recipe never reuses a stale model; the folder is written under a temporary name and renamed.
"""
from __future__ import annotations

import ast
import hashlib
import importlib
import json
import shutil
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from tqdm import tqdm

from upft_bench import cache_root
from upft_bench import train as training
from upft_bench.atomic import replace_dir, temp_path, write_json
from upft_bench.console import say
from upft_bench.data import load_questions
from upft_bench.examples import Example
from upft_bench.grading import extract_answer, is_correct
from upft_bench.prompts import PREFIX_INSTRUCTION, render_prompt
from upft_bench.synthetic import TRUNCATIONS, World, generate_corpus
from upft_bench.tiny import SIZES, build_model, build_tokenizer
from upft_bench.train import TrainConfig

# Modules whose code decides the weights: a change to any of them changes the cache key.
_RECIPE_MODULES = ("synthetic", "pretrain", "tiny", "prompts", "examples", "train")


@dataclass
class PretrainConfig:
    """How the tiny base model is built; every field is part of the cache key."""

    size: str = "base"  # upft_bench.tiny.SIZES: "base" (~0.9M params), "small", "test"
    seed: int = 0  # corpus, initial weights and data order
    # Measured (the default world, AMD EPYC, 2 idle cores): ~0.23 s/step, about 4 minutes in all. After 1000 steps
    # the model computes almost every equation right and errs where the world says (seed 0: 46.0% greedy test
    # accuracy, 90% of its first errors on a tricky step); how well it tracks which sentence it is at differs
    # from build to build (docs/RESULTS.md).
    steps: int = 1000  # optimizer steps (the budget: fixed, never a time limit)
    batch_size: int = 32  # examples per optimizer step
    micro_batch_size: int = 32  # examples per forward pass
    corpus_size: int = 0  # distinct corpus examples (0: steps * batch_size, i.e. one pass, no repeats)
    lr: float = 4e-3  # peak learning rate
    warmup_ratio: float = 0.05
    schedule: str = "cosine"  # "cosine" or "constant" after warmup
    min_lr_ratio: float = 0.1  # cosine floor, as a fraction of lr
    # fp32: at hidden size 128 bf16 autocast cost ~3x more CPU time per step than fp32 here (casts dominate
    # the tiny matmuls); it pays off only for bigger models (~10M parameters and up).
    mixed_precision: str = "no"  # "no" (fp32), "bf16" (autocast) or "auto" (bf16 where the CPU has it)
    vocab_size: int = 640  # BPE vocabulary (digits are always one token each)
    tokenizer_texts: int = 4000  # corpus items the tokenizer is trained on
    # The world (upft_bench.synthetic.World): how the base model errs, with known ground truth.
    error_rate: float = 0.8  # chance of the mistake at a tricky step the position allows (> 0.5: greedy makes it)
    error_position: str = "any"  # where mistakes happen: "any" step, only the "first" or only the "last" step
    opening_variety: float = 0.3  # chance of another wording of the first step: lower prefix agreement
    # Items whose instruction asks for part of a solution (synthetic.TRUNCATIONS; never UPFT's instruction).
    instruction_share: float = 0.15  # share of "question + truncation instruction -> that part + EOS" examples
    problem_steps: tuple[int, int] = (2, 6)  # arithmetic steps per problem (min, max)
    max_start: int = 20  # largest start amount
    max_operand: int = 9  # largest add/subtract operand
    eval_questions: int = 300  # synthetic test questions for the quick check stored with the model (0: none)

    def __post_init__(self):
        self.problem_steps = tuple(int(v) for v in self.problem_steps)
        checks = [
            (self.size in SIZES, f"size must be one of {', '.join(SIZES)}, got {self.size!r}"),
            (self.steps >= 1, "steps must be >= 1"),
            (self.batch_size >= 1 and self.micro_batch_size >= 1, "batch_size and micro_batch_size must be >= 1"),
            (self.corpus_size >= 0, "corpus_size must be >= 0"),
            (self.lr > 0, "lr must be > 0"),
            (self.schedule in ("cosine", "constant"), "schedule must be 'cosine' or 'constant'"),
            (len(self.problem_steps) == 2 and 1 <= self.problem_steps[0] <= self.problem_steps[1],
             "problem_steps must be (min, max) with 1 <= min <= max"),
            (self.vocab_size >= 300, "vocab_size must be >= 300 (256 bytes + special tokens + merges)"),
            (self.tokenizer_texts >= 1, "tokenizer_texts must be >= 1"),
            (self.eval_questions >= 0, "eval_questions must be >= 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"PretrainConfig: {message}")
        try:
            self.world()
        except ValueError as err:
            raise ValueError(f"PretrainConfig: {err}") from None

    def world(self) -> World:
        """The synthetic world these fields describe."""
        return World(error_rate=self.error_rate, error_position=self.error_position,
                     opening_variety=self.opening_variety, instruction_share=self.instruction_share)

    @property
    def n_examples(self) -> int:
        return self.corpus_size or self.steps * self.batch_size


# Named starting points; `--set`/CLI options override single fields.
PRESETS = {
    "default": PretrainConfig(),
    # Tests and CI (same fields as baselines/smoke.yaml, so both share one cached model): seconds; the model
    # writes the solution format but solves nothing.
    "smoke": PretrainConfig(size="test", steps=30, batch_size=16, micro_batch_size=16, eval_questions=0),
}




def default_cache_dir() -> Path:
    """Where base models live: $UPFT_BENCH_CACHE/base-models, else ~/.cache/upft-bench/base-models."""
    return cache_root() / "base-models"


def cache_key(config: PretrainConfig) -> str:
    """Hash of the config, the recipe's code and the library versions that shape the weights.

    The code is hashed as its syntax tree without docstrings (`code_digest`): a corrected comment or docstring
    keeps the cached model, any change to what the code does builds a new one.
    """
    # heavy (torch): loaded on use
    import torch
    import transformers

    h = hashlib.sha256(json.dumps(asdict(config), sort_keys=True).encode())
    for name in _RECIPE_MODULES:
        module = importlib.import_module(f"upft_bench.{name}")
        h.update(code_digest(Path(module.__file__).read_text()).encode())
    h.update(f"torch {torch.__version__} transformers {transformers.__version__}".encode())
    return f"{config.size}-s{config.seed}-{config.steps}st-{h.hexdigest()[:12]}"


def code_digest(source: str) -> str:
    """Digest of what Python source does: its syntax tree with docstrings removed (comments are not in it)."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return hashlib.sha256(ast.dump(tree, include_attributes=False).encode()).hexdigest()


def build_examples(config: PretrainConfig, tokenizer=None):
    """The corpus as training `Example`s (and the tokenizer, trained on corpus text when not given)."""
    lo, hi = config.problem_steps
    corpus = generate_corpus(config.n_examples, config.seed, world=config.world(), min_steps=lo, max_steps=hi,
                             max_start=config.max_start, max_operand=config.max_operand)
    if tokenizer is None:
        sample = corpus[: config.tokenizer_texts]
        instructions = [text for wordings in TRUNCATIONS.values() for text in wordings]
        tokenizer = build_tokenizer([c.question for c in sample] + [c.solution for c in sample] + instructions,
                                    vocab_size=config.vocab_size)
    eos = tokenizer.eos_token_id
    solutions = tokenizer([c.solution for c in corpus], add_special_tokens=False)["input_ids"]
    # = encode_prompt per item, tokenized in one batch call (several times faster on 48k prompts).
    prompts = tokenizer([render_prompt(tokenizer, c.question, instruction=c.instruction) for c in corpus],
                        add_special_tokens=False)["input_ids"]
    examples = []
    for i, (item, prompt, response) in enumerate(zip(corpus, prompts, solutions)):
        kind = "instruction" if item.part else "error" if item.errors else "full"
        examples.append(Example(f"corpus-{i}", prompt, response + [eos], kind))
    return examples, tokenizer


def train_config(config: PretrainConfig):
    """The `TrainConfig` the shared loop runs for this pretraining config."""
    return TrainConfig(lr=config.lr, epochs=1, max_steps=config.steps, batch_size=config.batch_size,
                       micro_batch_size=config.micro_batch_size, warmup_ratio=config.warmup_ratio,
                       schedule=config.schedule, min_lr_ratio=config.min_lr_ratio, weight_decay=0.0,
                       max_length=512, mixed_precision=config.mixed_precision, seed=config.seed,
                       log_every=max(1, min(50, config.steps // 20)), save_every=0)


def build_base_model(config: PretrainConfig | None = None, cache_dir: str | Path | None = None,
                     force: bool = False) -> Path:
    """Path of the pretrained base model for `config`: reused from the cache, or built and cached.

    The folder holds the model and tokenizer (from_pretrained / lm-eval `hf` loadable) plus `pretrain.json`
    (config, cache key, train stats, quick check). `force=True` rebuilds even when a cached copy exists.
    """
    # heavy (torch): loaded on use
    import torch

    config = config or PretrainConfig()
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    key = cache_key(config)
    final = root / key
    if (final / "pretrain.json").exists() and not force:
        return final

    checking = f", then a quick check on {config.eval_questions} test questions" if config.eval_questions else ""
    say(f"[pretrain] no cached base model for this config: building the {config.size!r} model once "
         f"(a synthetic corpus, {config.steps} training steps{checking}; the bars show the time left), then "
         f"cached in {final}")
    root.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(final)  # hidden, per process: two builders of one key never share a folder
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        t0 = time.perf_counter()
        examples, tokenizer = build_examples(config)
        corpus_seconds = time.perf_counter() - t0
        model = build_model(tokenizer, size=config.size, seed=config.seed)
        stats = training.train(model, examples, train_config(config), tmp / "run", tokenizer=tokenizer)
        model_dir = tmp / "run" / "model"
        check = measure_base(model_dir, config.eval_questions, progress=True) if config.eval_questions else {}
        kinds = {k: sum(e.kind == k for e in examples) for k in ("full", "error", "instruction")}
        info = {
            "key": key,
            "config": asdict(config),
            "parameters": sum(p.numel() for p in model.parameters()),
            "vocab_size": len(tokenizer),
            "corpus": {"examples": len(examples), **kinds, "seconds": round(corpus_seconds, 2)},
            "train": {k: stats[k] for k in ("steps", "train_seconds", "tokens_per_second", "tuned_tokens",
                                            "final_loss", "hardware")},
            "loss_curve": stats["loss_curve"],
            "check": check,
            "seconds": round(time.perf_counter() - t0, 2),
            "torch_threads": torch.get_num_threads(),
        }
        write_json(model_dir / "pretrain.json", info)
        replace_dir(model_dir, final)  # --force: the new model replaces the old one only once it is complete
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def read_info(model_dir: str | Path) -> dict:
    """The `pretrain.json` stored with a built base model."""
    path = Path(model_dir) / "pretrain.json"
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: not a base model built by upft-bench pretrain ({err})") from err


def greedy(model, tokenizer, prompts: list[str], max_new_tokens: int, batch_size: int = 100,
           bar=None) -> list[list[int]]:
    """Greedy continuations (token ids, cut after the first EOS) of rendered prompts, batched, left-padded;
    `bar` (a tqdm bar) advances by each batch's prompts."""
    # heavy (torch): loaded on use
    import torch

    eos = tokenizer.eos_token_id
    tokenizer.padding_side = "left"
    outputs = []
    for start in range(0, len(prompts), batch_size):
        enc = tokenizer(prompts[start:start + batch_size], return_tensors="pt", padding=True,
                        add_special_tokens=False)
        with torch.no_grad():
            out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                                 eos_token_id=eos, pad_token_id=tokenizer.pad_token_id)
        for row in out[:, enc["input_ids"].shape[1]:].tolist():
            outputs.append(row[: row.index(eos) + 1] if eos in row else row)
        if bar is not None:
            bar.update(len(enc["input_ids"]))
    return outputs


def measure_base(model_dir: str | Path, n: int = 300, max_new_tokens: int = 192, progress: bool = False) -> dict:
    """Quick check on the first `n` synthetic test questions (the upft_synth task's set).

    Plain prompts: greedy accuracy, share of outputs with an extracted answer, mean output tokens, accuracy
    by number of steps. UPFT's prefix instruction, which the corpus never holds: mean output tokens and the share
    that wrote a whole solution anyway (what UPFT starts from: an instruction this model has never seen).
    """
    # heavy (torch): loaded on use
    import torch
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
    )

    questions = load_questions("synth", "test", limit=n)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    t0 = time.perf_counter()
    with tqdm(total=2 * len(questions), desc="quick check", unit="prompt", disable=not progress) as bar:
        plain = greedy(model, tokenizer, [render_prompt(tokenizer, q.question) for q in questions], max_new_tokens,
                       bar=bar)
        prefixed = greedy(model, tokenizer, [render_prompt(tokenizer, q.question, instruction=PREFIX_INSTRUCTION)
                                             for q in questions], max_new_tokens, bar=bar)
    seconds = time.perf_counter() - t0
    texts = tokenizer.batch_decode(plain, skip_special_tokens=True)
    prefix_texts = tokenizer.batch_decode(prefixed, skip_special_tokens=True)
    correct = [is_correct(t, q.answer) for t, q in zip(texts, questions)]
    by_steps: dict[str, list[bool]] = {}
    for ok, q in zip(correct, questions):
        by_steps.setdefault(str(q.meta.get("steps")), []).append(ok)
    return {
        "questions": len(questions),
        "accuracy": sum(correct) / len(correct),
        "extracted": sum(extract_answer(t) is not None for t in texts) / len(texts),
        "mean_tokens": statistics.mean(len(o) for o in plain),
        "prefix_mean_tokens": statistics.mean(len(o) for o in prefixed),
        # Share that ignored the instruction and wrote a whole solution (the extractor's last-number fallback
        # would "find" an answer in almost any prefix, so look for the final boxed answer instead).
        "prefix_full": sum("\\boxed" in t for t in prefix_texts) / len(prefix_texts),
        "accuracy_by_steps": {k: round(sum(v) / len(v), 4) for k, v in sorted(by_steps.items())},
        "seconds": round(seconds, 2),
        "example": texts[0] if texts else "",
        "prefix_example": prefix_texts[0] if prefix_texts else "",
    }
