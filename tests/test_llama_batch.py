"""lmcourse.llama.batch: greedy replies to prompts of different lengths, left-padded into one batch,
equal what generate() gives one prompt at a time (a tiny Llama in float64, so the comparison is exact),
and bad input is refused with a message."""

from __future__ import annotations

import pytest
import torch

from lmcourse.gpt import GPT, GPTConfig
from lmcourse.llama import Llama, LlamaConfig, chat, chat_batch, greedy_batch
from tests.test_llama import _Chars  # its V is this file's V (50)

V = 50


def _model(seed: int = 0) -> Llama:
    """A tiny Llama whose weights are large enough (std 0.3, not 0.02) that attention is sharp and a
    token read by mistake (the padding) would change the greedy replies."""
    torch.manual_seed(seed)
    model = Llama(LlamaConfig.tiny(vocab_size=V, context_length=64)).double().eval()
    with torch.no_grad():
        for name, weight in model.named_parameters():
            if weight.dim() == 2:
                weight.normal_(0.0, 0.3)
    return model


def _prompts() -> list[list[int]]:
    g = torch.Generator().manual_seed(3)
    return [torch.randint(1, V, (n,), generator=g).tolist() for n in (5, 1, 12, 7, 12, 3)]


def test_padded_batch_reads_each_prompt_as_alone():
    """Left padding plus the mask: every real position's hidden state is the one the prompt gets alone."""
    from lmcourse.llama.batch import _left_padded

    model, prompts = _model(), _prompts()
    ids, real = _left_padded(prompts, pad_id=7)
    mask = (real[:, None, :] | ~real[:, :, None])[:, None]
    with torch.no_grad():
        padded = model.hidden_states(ids, mask=mask)
        for row, prompt in enumerate(prompts):
            alone = model.hidden_states(torch.tensor([prompt]))[0]
            torch.testing.assert_close(padded[row, -len(prompt):], alone, atol=1e-10, rtol=0)
    assert torch.isfinite(padded).all()  # padding rows read the padding: no empty softmax, no NaN


@pytest.mark.parametrize("batch_size", [1, 2, 16])
def test_greedy_batch_equals_generate_one_by_one(batch_size):
    model, prompts = _model(), _prompts()
    alone = [model.generate(p, 9, temperature=0) for p in prompts]
    assert greedy_batch(model, prompts, 9, batch_size=batch_size) == alone


def test_each_row_stops_at_its_own_stop_id():
    model, prompts = _model(), _prompts()
    alone = [model.generate(p, 9, temperature=0) for p in prompts]
    stop = alone[2][3]  # a token that ends prompt 2's reply early; other rows may run on
    expected = [model.generate(p, 9, temperature=0, stop_ids=[stop]) for p in prompts]
    assert expected[2] == alone[2][:alone[2].index(stop) + 1]
    assert greedy_batch(model, prompts, 9, stop_ids=stop) == expected
    assert model.training is False and greedy_batch(model.train(), prompts[:2], 3) and model.training


def test_chat_batch_equals_chat():
    model, tokenizer = _model(), _Chars()
    conversations = [[{"role": "user", "content": text}] for text in ("good film", "a", "what a long question this is")]
    expected = [chat(c, model=model, tokenizer=tokenizer, max_tokens=8) for c in conversations]
    assert chat_batch(conversations, model=model, tokenizer=tokenizer, max_tokens=8) == expected


def test_bad_input_is_refused_with_a_message():
    model = _model()
    with pytest.raises(ValueError, match="non-empty list of prompts"):
        greedy_batch(model, [], 4)
    with pytest.raises(ValueError, match=r"prompt 1 must be a non-empty list of token ids in \[0, 50\)"):
        greedy_batch(model, [[1, 2], [3, V]], 4)
    with pytest.raises(ValueError, match="prompt 0 must be"):
        greedy_batch(model, [[]], 4)
    with pytest.raises(ValueError, match="context_length=64"):
        greedy_batch(model, [[1] * 60], 5)
    with pytest.raises(ValueError, match="max_new_tokens"):
        greedy_batch(model, [[1]], 0)
    gpt = GPT(GPTConfig.tiny(vocab_size=V))
    with pytest.raises(TypeError, match="rotary positions"):
        greedy_batch(gpt, [[1, 2]], 3)
    with pytest.raises(ValueError, match="non-empty list of conversations"):
        chat_batch([], model=model, tokenizer=_Chars())


def test_allowed_ids_and_scores_match_generate_and_a_forward_pass():
    from lmcourse.llama import greedy_batch_scored

    model, prompts = _model(), _prompts()
    allowed = [3, 8, 21, 40]
    constrained = [model.generate(p, 6, temperature=0, allowed_ids=allowed) for p in prompts]
    scored = greedy_batch_scored(model, prompts, 6, allowed_ids=allowed, batch_size=4)
    assert [tokens for tokens, _ in scored] == constrained
    for prompt, (tokens, logprobs) in zip(prompts, scored):
        with torch.no_grad():  # teacher forcing: the unconstrained log-probability of each chosen token
            logp = torch.log_softmax(model(torch.tensor([prompt + tokens]))[0].double(), dim=-1)
        expected = [logp[len(prompt) - 1 + k, t].item() for k, t in enumerate(tokens)]
        assert logprobs == pytest.approx(expected, abs=1e-9)
    with pytest.raises(ValueError, match="allowed_ids"):
        greedy_batch_scored(model, prompts, 3, allowed_ids=[V])


def test_variants_read_each_prompt_once_and_equal_separate_calls(monkeypatch):
    from lmcourse.batching import similar_length_batches
    from lmcourse.llama import batch as batch_module
    from lmcourse.llama import greedy_batch_variants

    model, prompts = _model(), _prompts()
    variants = [None, [3, 8, 21, 40], [5, 6]]
    separate = [greedy_batch(model, prompts, 7, allowed_ids=v, stop_ids=8, batch_size=4) for v in variants]
    assert separate[0] != separate[1] != separate[2]  # the constraints change the replies
    prefills = []
    real_prefill = batch_module._prefill
    monkeypatch.setattr(batch_module, "_prefill", lambda *args: prefills.append(1) or real_prefill(*args))
    assert greedy_batch_variants(model, prompts, 7, variants, stop_ids=8, batch_size=4) == separate
    batches = len(list(similar_length_batches([len(p) for p in prompts], 4)))
    assert len(prefills) == batches  # each batch of prompts read once for the three variants
    greedy_batch(model, prompts, 7, allowed_ids=variants[1], stop_ids=8, batch_size=4)
    assert len(prefills) == 2 * batches
    with pytest.raises(ValueError, match="variants must be a non-empty list"):
        greedy_batch_variants(model, prompts, 7, [])
    with pytest.raises(ValueError, match="allowed_ids"):
        greedy_batch_variants(model, prompts, 7, [None, [V]])
    with pytest.raises(ValueError, match=r"variants\[0\] must be a list of allowed token ids or None, got 3"):
        greedy_batch_variants(model, prompts, 7, [3, 8, 21])  # one flat list of ids, not a list of variants
