"""The paper's reported numbers (Ji et al. 2025, arXiv 2503.02875; docs/METHODS.md), for the "reported" table.

Accuracy in %, per benchmark, as printed in Tables 1 and 2; token counts in millions (Table 2, PRM-12K).
These are quoted, never measured here: tables label them "reported". `upft-bench report --paper` puts each
reported gain next to the binomial standard error that its benchmark's size implies (one seed each, as reported).
"""
from __future__ import annotations

# model -> reported rows: (method id of upft_bench.methods.METHODS, question set it was tuned on or None,
# accuracies gsm8k, math500, aime24, gpqa, avg)
ACCURACY: dict[str, list[tuple[str, str | None, tuple[float, ...]]]] = {
    "Llama-3.1-8B-Instruct": [
        ("base", None, (82.0, 51.0, 3.3, 8.6, 36.2)),
        ("sft_self", "PRM", (83.8, 48.4, 3.3, 8.6, 36.0)),
        ("upft", "PRM", (85.4, 52.0, 6.7, 9.1, 38.3)),
        ("rft", "PRM", (86.0, 52.0, 6.7, 9.1, 38.5)),
        ("upft_label_filter", "PRM", (85.8, 53.4, 6.7, 9.1, 38.8)),
    ],
    "Qwen2.5-Math-7B-Instruct": [
        ("base", None, (95.2, 84.0, 16.7, 9.6, 51.4)),
        ("sft_self", "PRM", (95.8, 83.4, 13.3, 9.1, 50.4)),
        ("upft", "PRM", (95.5, 85.6, 20.0, 9.6, 52.6)),
        ("rft", "PRM", (95.7, 85.2, 20.0, 9.6, 52.6)),
        ("upft_label_filter", "PRM", (96.0, 85.6, 20.0, 10.1, 52.9)),
    ],
    "DeepSeek-R1-Distill-Qwen-7B": [
        ("base", None, (88.6, 87.0, 40.0, 13.1, 57.2)),
        ("sft_self", "LIMO", (89.7, 87.0, 40.0, 12.1, 57.2)),
        ("upft", "LIMO", (92.0, 89.4, 43.3, 17.7, 60.6)),
        ("rft", "PRM", (90.7, 87.0, 40.0, 11.1, 57.2)),
        ("upft", "PRM", (91.9, 88.4, 40.0, 14.6, 58.7)),
        ("upft_label_filter", "PRM", (92.3, 89.2, 40.0, 13.6, 58.8)),
    ],
}

# The benchmarks of ACCURACY's columns (avg aside) and their test-set sizes (upft_bench.data.SIZES).
BENCHMARKS = ("gsm8k", "math500", "aime24", "gpqa")
BENCHMARK_SIZES = {"gsm8k": 1319, "math500": 500, "aime24": 30, "gpqa": 198}

# model -> method -> (sampled tokens, tuned tokens), millions, PRM-12K questions (Table 2)
COST_MILLIONS: dict[str, dict[str, tuple[float, float]]] = {
    "Llama-3.1-8B-Instruct": {"rft": (36.9, 2.3), "upft": (0.2, 0.2)},
    "Qwen2.5-Math-7B-Instruct": {"rft": (51.7, 3.2), "upft": (0.6, 0.6)},
    "DeepSeek-R1-Distill-Qwen-7B": {"rft": (318.0, 19.9), "upft": (5.0, 5.0)},
}


def paper_model(name_or_path: str | None) -> str | None:
    """The paper's model name matching a Hub id or path (e.g. "Qwen/Qwen2.5-Math-7B-Instruct"), else None."""
    if not name_or_path:
        return None
    tail = str(name_or_path).rstrip("/").split("/")[-1].lower()
    for model in ACCURACY:
        if model.lower() == tail:
            return model
    return None
