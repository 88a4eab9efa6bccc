"""Prompts: one builder for training, sampling and evaluation."""
from __future__ import annotations

import pytest

from upft_bench.prompts import (
    PREFIX_INSTRUCTION,
    SYSTEM_PROMPTS,
    chat_messages,
    encode_prompt,
    end_of_turn_id,
    render_prompt,
    stop_token_ids,
    system_prompt,
)
from upft_bench.tiny import build_tokenizer


@pytest.fixture(scope="module")
def tok():
    return build_tokenizer()


def test_prefix_instruction_is_the_authors_verbatim():
    assert PREFIX_INSTRUCTION == (" Please provide the initial step towards resolving the question. This step may "
                                  "serve as a foundation but might not encompass the entire solution.")


def test_chat_messages_and_rendering(tok):
    assert chat_messages("Q?") == [{"role": "user", "content": "Q?"}]
    assert chat_messages("Q?", "S", " I") == [{"role": "system", "content": "S"}, {"role": "user", "content": "Q? I"}]
    assert render_prompt(tok, "What is 2+3?") == "<|user|>What is 2+3?<|end|><|assistant|>"
    with_instruction = render_prompt(tok, "What is 2+3?", instruction=PREFIX_INSTRUCTION)
    assert with_instruction == f"<|user|>What is 2+3?{PREFIX_INSTRUCTION}<|end|><|assistant|>"
    boxed = render_prompt(tok, "Q", system=SYSTEM_PROMPTS["qwen_boxed"])
    assert boxed.startswith("<|system|>Please reason step by step") and boxed.endswith("<|user|>Q<|end|><|assistant|>")


def test_encode_adds_no_special_tokens_beyond_the_template(tok):
    ids = encode_prompt(tok, "What is 2+3?")
    assert tok.decode(ids) == render_prompt(tok, "What is 2+3?")
    assert ids[-1] == tok.convert_tokens_to_ids("<|assistant|>")


def test_without_template_system_and_question_are_joined(tok):
    tok = build_tokenizer()
    tok.chat_template = None
    assert render_prompt(tok, "Q", system="S") == "S\n\nQ"


def test_unknown_style_is_named():
    assert system_prompt(None) is None and system_prompt("none") is None
    with pytest.raises(ValueError, match="unknown prompt style 'qwen'"):
        system_prompt("qwen")


def test_end_of_turn_id(tok):
    import copy

    assert end_of_turn_id(tok) == tok.convert_tokens_to_ids("<|end|>") == tok.eos_token_id
    plain = copy.deepcopy(tok)  # without a chat template: the tokenizer's eos token
    plain.chat_template = None
    assert end_of_turn_id(plain) == tok.eos_token_id



def test_stop_ids_hold_the_end_of_turn_and_eos(tok):
    assert {end_of_turn_id(tok), tok.eos_token_id} <= stop_token_ids(tok)
