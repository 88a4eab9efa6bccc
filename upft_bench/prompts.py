"""The one place prompts are built, so training, sampling and evaluation see the same string.

    from upft_bench.prompts import chat_messages, render_prompt
    render_prompt(tokenizer, "What is 2+3?")                    # bare question, as evaluated
    render_prompt(tokenizer, q, instruction=PREFIX_INSTRUCTION)  # a UPFT prefix example's prompt
    end_of_turn_id(tokenizer)                                   # what ends an assistant turn (trained, stopped on)

The tokenizer facts that go with a prompt live here too: which token closes an assistant turn, and which ids
end a generation. Sampling stops on them and the methods append the end-of-turn id to every response.
"""
from __future__ import annotations

import json
from pathlib import Path

# Verbatim from the UPFT authors, leading space included (docs/METHODS.md, "UPFT").
PREFIX_INSTRUCTION = (
    " Please provide the initial step towards resolving the question."
    " This step may serve as a foundation but might not encompass the entire solution."
)

# Optional system instructions per prompt style. "none" is the paper's protocol: the bare question.
SYSTEM_PROMPTS: dict[str, str | None] = {
    "none": None,
    "qwen_boxed": "Please reason step by step, and put your final answer within \\boxed{}.",
}


def system_prompt(style: str | None, literal: bool = False) -> str | None:
    """The one resolver of system prompts: the instruction of a prompt style (None, "none", "qwen_boxed"); with
    `literal`, any other string is itself the system text (lm-eval's system_instruction), else a clear error."""
    if style is None:
        return None
    if style in SYSTEM_PROMPTS:
        return SYSTEM_PROMPTS[style]
    if literal:
        return style
    raise ValueError(f"unknown prompt style {style!r}; known: {', '.join(SYSTEM_PROMPTS)}")


def chat_messages(question: str, system: str | None = None, instruction: str = "") -> list[dict]:
    """Chat turns for one question: optional system turn, then the question (+ instruction) as the user turn."""
    messages = []
    if system:
        messages.append({"role": "system", "content": system})
    messages.append({"role": "user", "content": question + instruction})
    return messages


def render_prompt(tokenizer, question: str, system: str | None = None, instruction: str = "") -> str:
    """The prompt string a model sees: its chat template with the generation prompt, or the bare text."""
    messages = chat_messages(question, system, instruction)
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    # No template (a plain base model): system text, a blank line, the question.
    return "\n\n".join(m["content"] for m in messages)


def encode_prompt(tokenizer, question: str, system: str | None = None, instruction: str = "") -> list[int]:
    """Token ids of `render_prompt`; special tokens come from the template, none are added on top."""
    return tokenizer(render_prompt(tokenizer, question, system, instruction), add_special_tokens=False)["input_ids"]


def end_of_turn_id(tokenizer, model_path: str | Path | None = None) -> int:
    """The token that closes an assistant turn: what generation stops on and what builders append.

    Found by rendering a one-turn conversation with the chat template and taking the special token right after
    the assistant's text (tiny: <|end|>, Llama-3: <|eot_id|>, Qwen: <|im_end|>). Without a template, or when that
    token is not special: the generation config's eos_token_id (first of a list), else tokenizer.eos_token_id.
    """
    if getattr(tokenizer, "chat_template", None):
        marker = "Zq7Xv3"
        try:
            text = tokenizer.apply_chat_template(
                [{"role": "user", "content": "hi"}, {"role": "assistant", "content": marker}], tokenize=False
            )
        except Exception:  # noqa: BLE001 - a template that rejects this probe; fall back below
            text = ""
        if marker in text:
            after = text[text.rindex(marker) + len(marker):]
            ids = tokenizer(after, add_special_tokens=False)["input_ids"] if after else []
            if ids and ids[0] in set(tokenizer.all_special_ids) | set(getattr(tokenizer, "added_tokens_decoder", {})):
                return int(ids[0])
    eos = generation_config(model_path or getattr(tokenizer, "name_or_path", None)).get("eos_token_id")
    if isinstance(eos, list) and eos:
        return int(eos[0])
    if isinstance(eos, int):
        return eos
    if tokenizer.eos_token_id is None:
        raise ValueError("cannot tell the end-of-turn token: no chat template, generation config or eos_token")
    return int(tokenizer.eos_token_id)


def stop_token_ids(tokenizer, model_path: str | Path | None = None) -> set[int]:
    """Every id that ends a sample: the end-of-turn id, the tokenizer's EOS, the generation config's EOS ids."""
    ids = {end_of_turn_id(tokenizer, model_path)}
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    eos = generation_config(model_path or getattr(tokenizer, "name_or_path", None)).get("eos_token_id")
    ids.update(int(i) for i in (eos if isinstance(eos, list) else [eos]) if i is not None)
    return ids


def generation_config(model_path) -> dict:
    """The raw generation_config.json of a local folder or cached Hub model ({} when there is none)."""
    if not model_path:
        return {}
    try:
        # heavy (transformers): loaded on use
        from transformers.utils import cached_file

        path = cached_file(str(model_path), "generation_config.json", _raise_exceptions_for_missing_entries=False)
    except Exception:  # noqa: BLE001 - offline and not cached, or not a model id at all
        return {}
    return json.loads(Path(path).read_text()) if path else {}
