"""Best-of-k decoding with a verifier, as an lm-eval model: `upft_best_of` (V-STaR's test-time decoding).

    upft-bench eval --model GENERATOR --best-of 8 --verifier VERIFIER --reference BASE --tasks upft_synth
    python -m upft_bench.best_of --model upft_best_of \
        --model_args pretrained=GENERATOR,verifier=VERIFIER,reference=BASE,k=8,temperature=0.6 \
        --include_path "$(upft-bench tasks --path)" --tasks upft_synth --apply_chat_template

`python -m upft_bench.best_of` is lm-eval's own command line with this model registered (lm-eval finds models
only once they are imported). For every generation request the generator samples k candidates (the task's stop
strings and length, `do_sample` at `temperature`), the verifier and its reference each score every candidate
(lm-eval's `loglikelihood` of the candidate's text after the same rendered prompt), and the candidate with the
highest log-ratio log p_verifier - log p_reference (DPO's implicit reward, up to its positive factor beta, which
does not change the order) is the answer; ties go to the earliest candidate. k = 1 returns the one sample.

What it cost is kept per request (prompt tokens, each candidate's tokens) for `upft_bench.evaluation` to count:
k generations plus k scorings by the verifier and k by the reference.
"""
from __future__ import annotations

import sys

MODEL_NAME = "upft_best_of"


def register():
    """The lm-eval model class, registered as `upft_best_of` (once)."""
    # heavy (lm_eval, transformers through HFLM): loaded on use
    from lm_eval.api.instance import Instance
    from lm_eval.api.registry import model_registry, register_model
    from lm_eval.models.huggingface import HFLM

    if MODEL_NAME in model_registry:
        return model_registry.get(MODEL_NAME)

    @register_model(MODEL_NAME)
    class BestOfK(HFLM):
        """An HFLM generator that answers each request with the best of `k` samples under a verifier."""

        def __init__(self, pretrained, verifier=None, reference=None, k: int = 8, temperature: float = 0.6,
                     **kwargs):
            if not verifier or not reference:
                raise ValueError(f"{MODEL_NAME}: model_args need verifier=PATH and reference=PATH (the verifier's "
                                 "DPO reference, the model it was trained from)")
            super().__init__(pretrained=pretrained, **kwargs)
            self.k, self.temperature = int(k), float(temperature)
            if self.k < 1 or not 0 < self.temperature:
                raise ValueError(f"{MODEL_NAME}: k must be >= 1 and temperature > 0, got k={k}, "
                                 f"temperature={temperature}")
            shared = {name: kwargs[name] for name in ("batch_size", "device", "dtype", "trust_remote_code")
                      if name in kwargs}
            self.scorers = [HFLM(pretrained=verifier, **shared), HFLM(pretrained=reference, **shared)]
            self.requests_log: list[dict] = []  # per request: its tokens, candidates' tokens and scores, the pick

        def generate_until(self, requests, disable_tqdm: bool = False):
            k = self.k
            expanded = []
            for req in requests:
                context, gen_kwargs = req.args
                sampled = {**gen_kwargs, "do_sample": True, "temperature": self.temperature}
                expanded += [Instance("generate_until", req.doc, (context, sampled), req.idx)] * k
            texts = super().generate_until(expanded, disable_tqdm)
            contexts = [req.args[0] for req in expanded]
            scores = best_of_scores(self.scorers, contexts, texts)
            chosen = []
            for r, req in enumerate(requests):
                group = list(range(r * k, (r + 1) * k))
                pick = best_index([scores[i] for i in group])
                chosen.append(texts[group[pick]])
                self.requests_log.append({
                    "doc_id": req.doc_id, "prompt_tokens": len(self.tok_encode(req.args[0])),
                    "candidate_tokens": [len(self.tok_encode(texts[i])) if texts[i] else 0 for i in group],
                    "scores": [scores[i] for i in group], "chosen": pick,
                    "candidates": [texts[i] for i in group]})
            return chosen

        def take_log(self) -> list[dict]:
            """The requests answered since the last call (this process's share), then forgotten."""
            out, self.requests_log = self.requests_log, []
            return out

    return BestOfK


def best_index(scores: list[float]) -> int:
    """The candidate with the highest score; the earliest among equal ones."""
    return max(range(len(scores)), key=lambda i: (scores[i], -i))


def implicit_reward(verifier_logp: float, reference_logp: float, beta: float = 1.0) -> float:
    """DPO's implicit reward of a candidate, beta * (log p_verifier - log p_reference): with beta > 0 its order
    over candidates is the log-ratio's, which is what best-of-k ranks by."""
    return beta * (verifier_logp - reference_logp)


def best_of_scores(scorers, contexts: list[str], texts: list[str]) -> list[float]:
    """log p_verifier(text | context) - log p_reference(text | context) per candidate (`scorers`: the verifier's
    and the reference's lm-eval models); an empty candidate scores -inf (there is nothing to judge)."""
    # heavy (lm_eval): loaded on use
    from lm_eval.api.instance import Instance

    scored = [i for i, text in enumerate(texts) if text]
    requests = [Instance("loglikelihood", {}, (contexts[i], texts[i]), i) for i in scored]
    verifier, reference = ([ll for ll, _ in lm.loglikelihood(requests, disable_tqdm=True)] if requests else []
                           for lm in scorers)
    scores = [float("-inf")] * len(texts)
    for i, v, r in zip(scored, verifier, reference):
        scores[i] = implicit_reward(v, r)
    return scores


def main(argv: list[str] | None = None) -> None:
    """lm-eval's command line with `upft_best_of` registered."""
    # heavy (lm_eval): loaded on use
    from lm_eval.__main__ import cli_evaluate

    register()
    sys.argv = [sys.argv[0], *(sys.argv[1:] if argv is None else argv)]
    cli_evaluate()


if __name__ == "__main__":
    main()
