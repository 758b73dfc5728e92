"""Constrained generation (allowed_ids): no disallowed token ever comes out, under sampling with many seeds on a
tiny GPT and greedily on SmolLM2; greedy decoding takes the argmax over the allowed ids computed by hand from the
logits; the mask comes before top-k; stop sequences and length limits still work; allowed_token_ids picks
tokens by their text; bad sets are refused with clear errors."""

from __future__ import annotations

import pytest
import torch

from lmcourse.constrain import allowed_token_ids, made_of
from lmcourse.decoding import DecodingSettings, allow_only, next_token
from lmcourse.gpt import GPT, GPTConfig, generate_text

CHARS = "abcdefghij0123456789 ."


class CharTokenizer:
    """One token per character of CHARS."""

    vocab_size = len(CHARS)

    def encode(self, text: str) -> list[int]:
        return [CHARS.index(c) for c in text]

    def decode(self, ids: list[int]) -> str:
        return "".join(CHARS[i] for i in ids)


@pytest.fixture(scope="module")
def gpt() -> GPT:
    torch.manual_seed(0)
    return GPT(GPTConfig.tiny(vocab_size=len(CHARS), context_length=64)).eval()


DIGITS = allowed_token_ids(CharTokenizer(), made_of("0123456789"))


# --- the rule ------------------------------------------------------------------------------------

def test_allow_only_masks_everything_else():
    logits = torch.randn(3, 10, generator=torch.Generator().manual_seed(0))
    masked = allow_only(logits, [2, 7])
    assert torch.equal(masked[:, [2, 7]], logits[:, [2, 7]])
    assert bool(torch.isneginf(masked[:, [0, 1, 3, 4, 5, 6, 8, 9]]).all())


def test_the_mask_comes_before_top_k_and_never_lets_a_token_through():
    logits = torch.randn(8, 30, generator=torch.Generator().manual_seed(1))
    allowed = [3, 11, 17, 29]
    best = logits[:, allowed].argmax(-1)  # (B,): the most likely allowed token, by hand
    # top_k=1 after the mask keeps the best allowed token; before it, it would keep a disallowed one (and fail)
    top1 = DecodingSettings(temperature=1.0, top_k=1, allowed_ids=set(allowed))
    assert next_token(logits, torch.zeros(8, 1, dtype=torch.long), top1).tolist() == [allowed[i] for i in best]
    greedy = DecodingSettings(temperature=0, allowed_ids=allowed)
    assert next_token(logits, torch.zeros(8, 1, dtype=torch.long), greedy).tolist() == [allowed[i] for i in best]
    hot = DecodingSettings(temperature=5.0, top_p=0.99, repetition_penalty=1.3, allowed_ids=allowed)
    for seed in range(50):
        token = next_token(logits, torch.randint(0, 30, (8, 5)), hot, torch.Generator().manual_seed(seed))
        assert set(token.tolist()) <= set(allowed)


# --- generation on the book's GPT ----------------------------------------------------------------

def test_sampling_on_gpt_never_leaves_the_allowed_set(gpt):
    allowed = set(DIGITS) | {CHARS.index(" ")}
    for seed in range(40):
        rows = gpt.generate(torch.tensor([[0, 1, 2]] * 4), 12, temperature=2.0, top_k=15, seed=seed,
                            allowed_ids=allowed)
        assert all(set(row) <= allowed and len(row) == 12 for row in rows)
    for c in generate_text("abc", model=gpt, tokenizer=CharTokenizer(), max_tokens=10, n=8, temperature=1.5,
                           allowed_ids=DIGITS, seed=3):
        assert c.text.isdigit() and len(c.text) == 10 and c.finish_reason == "length"


def test_greedy_is_the_argmax_over_the_allowed_ids_by_hand(gpt):
    prompt, allowed = [0, 1, 2, 3], [5, 9, 12, 13, 20]
    ids = list(prompt)
    with torch.no_grad():
        for _ in range(10):
            logits = gpt(torch.tensor([ids]))[0, -1]  # (V,)
            ids.append(allowed[int(logits[allowed].argmax())])
    assert gpt.generate(prompt, 10, temperature=0, allowed_ids=allowed) == ids[len(prompt):]
    assert gpt.generate(prompt, 10, temperature=0, allowed_ids=allowed, use_cache=False) == ids[len(prompt):]


def test_stop_sequences_and_length_limits_still_apply(gpt):
    tok = CharTokenizer()
    allowed = allowed_token_ids(tok, made_of("ab "))
    completions = generate_text("abc", model=gpt, tokenizer=tok, max_tokens=4, n=16, temperature=1.5, seed=0,
                                stop=" ", allowed_ids=allowed)
    for c in completions:
        assert set(c.text) <= {"a", "b"} and c.num_tokens <= 4
        assert (c.finish_reason == "stop") == (c.num_tokens == len(c.text) + 1)  # the stop " " is cut off
    assert {c.finish_reason for c in completions} == {"stop", "length"}  # both endings occur
    space = CHARS.index(" ")
    rows = gpt.generate(torch.tensor([[0, 1]] * 16), 4, temperature=1.5, seed=1, allowed_ids=allowed, stop_ids=space)
    assert all(set(row) <= set(allowed) and space not in row[:-1] for row in rows)
    assert {row[-1] == space for row in rows} == {True, False}  # some stopped at the space, some ran to the limit
    assert all(len(row) == 4 for row in rows if row[-1] != space)


# --- allowed_token_ids ---------------------------------------------------------------------------

def test_allowed_token_ids_picks_tokens_by_their_text():
    tok = CharTokenizer()
    assert DIGITS == list(range(10, 20))
    assert allowed_token_ids(tok, str.isalpha) == list(range(10))
    assert allowed_token_ids(tok, {".", " ", "ab"}) == [20, 21]  # "ab" is no single token


def test_bad_allowed_ids_are_refused(gpt):
    with pytest.raises(ValueError, match="allowed_ids is empty"):
        DecodingSettings(allowed_ids=[])
    with pytest.raises(ValueError, match=r"ints >= 0\), got -1"):
        DecodingSettings(allowed_ids=[3, -1])
    with pytest.raises(ValueError, match="got True"):
        DecodingSettings(allowed_ids=[True])
    with pytest.raises(TypeError, match="collection of token ids"):
        DecodingSettings(allowed_ids="0123")
    with pytest.raises(ValueError, match=r"the id 22, but the vocabulary has 22 ids \(0 to 21\)"):
        generate_text("abc", model=gpt, tokenizer=CharTokenizer(), max_tokens=3, allowed_ids=[1, 22])
    with pytest.raises(ValueError, match="the vocabulary has 22 ids"):
        gpt.generate([1, 2], 3, allowed_ids=range(30))
    with pytest.raises(TypeError, match="rule must be"):
        allowed_token_ids(CharTokenizer(), "0123")
    with pytest.raises(ValueError, match="no token of the 22"):
        allowed_token_ids(CharTokenizer(), made_of("xyz"))
    with pytest.raises(ValueError, match="characters must be"):
        made_of("")
    assert DecodingSettings(allowed_ids=torch.tensor([4, 2, 4])).allowed_ids == (2, 4)


# --- SmolLM2 -------------------------------------------------------------------------------------

def test_smollm2_answers_with_digits_only_greedily():
    from tests.test_apps_chatbot import smollm2  # skips this module's SmolLM2 tests without the package

    model, tok = smollm2()
    digits = allowed_token_ids(tok, made_of("0123456789"))
    assert [tok.decode([i]) for i in digits] == list("0123456789")  # SmolLM2 reads numbers digit by digit
    allowed = digits + [tok.eos_id]
    prompt = tok.encode(tok.apply_chat_template([{"role": "user", "content": "In which year did World War II end?"}],
                                                add_generation_prompt=True))
    ids = list(prompt)
    with torch.no_grad():
        for _ in range(5):
            logits = model(torch.tensor([ids]))[0, -1]  # (V,)
            ids.append(allowed[int(logits[allowed].argmax())])
    answer = model.generate(prompt, 5, temperature=0, allowed_ids=allowed, stop_ids=tok.eos_id)
    assert answer == ids[len(prompt):]
    assert tok.decode(answer) == "1945<|im_end|>"  # measured; unconstrained it starts "The end of World War II"
