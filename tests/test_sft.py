"""lmcourse.sft: the assistant-only mask, truncation, padding and a short run on a tiny Llama."""

import pytest
import torch

from lmcourse.bpe import ByteBPE
from lmcourse.llama import SMOLLM_PATTERN, Llama, LlamaConfig, SmolLM2Tokenizer
from lmcourse.sft import (
    IGNORE_INDEX,
    AnswerTruncatedError,
    encode_example,
    encode_examples,
    example_losses,
    greedy_matches,
    pad_batch,
    render_segments,
    sft_loss,
    token_losses,
    train_sft,
)
from lmcourse.train import TrainConfig

# SmolLM2's template with a shorter default system message.
CHATML = ("{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
          "{{ '<|im_start|>system\nS<|im_end|>\n' }}{% endif %}"
          "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
          "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")
SPECIALS = {"<|endoftext|>": 0, "<|im_start|>": 1, "<|im_end|>": 2}


def byte_chat_tokenizer(template: str = CHATML) -> SmolLM2Tokenizer:
    """SmolLM2's tokenizer class over bytes only (id = byte + 3): one token per character."""
    bpe = ByteBPE.from_vocab({bytes([b]): b + 3 for b in range(256)}, [], special_tokens=SPECIALS,
                             pattern=SMOLLM_PATTERN)
    return SmolLM2Tokenizer(bpe, 259, template, bos_id=1, eos_id=2)


@pytest.fixture(scope="module")
def tok():
    return byte_chat_tokenizer()


def make_model(seed: int = 0) -> Llama:
    torch.manual_seed(seed)
    return Llama(LlamaConfig.tiny(vocab_size=259, context_length=128))


def convo(question: str, answer: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]


def learned(tok, labels):
    return tok.decode([x for x in labels if x != IGNORE_INDEX])


def test_mask_covers_exactly_the_assistant_tokens(tok):
    ids, labels = encode_example(tok, convo("hi", "ok"), max_len=100)
    text = "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\nok<|im_end|>\n"
    assert ids == tok.encode(text) and len(ids) == 36
    # by hand: tokens 32, 33, 34 are "o", "k", <|im_end|>; everything else (the final "\n" too) is masked
    assert [t for t, x in enumerate(labels) if x != IGNORE_INDEX] == [32, 33, 34]
    assert labels[32:35] == [ord("o") + 3, ord("k") + 3, 2] and learned(tok, labels) == "ok<|im_end|>"
    # the unmasked prefix is exactly the prompt that lmcourse.llama.chat feeds the model
    prompt = tok.apply_chat_template(convo("hi", "ok")[:1], add_generation_prompt=True)
    assert ids[:32] == tok.encode(prompt)


def test_every_assistant_turn_is_learned_and_nothing_else(tok):
    messages = convo("a", "xy") + convo("b", "z")
    ids, labels = encode_example(tok, messages, max_len=200)
    assert ids == tok.encode(tok.apply_chat_template(messages))
    assert learned(tok, labels) == "xy<|im_end|>z<|im_end|>"
    assert "".join(text for text, _ in render_segments(tok, messages)) == tok.apply_chat_template(messages)
    with pytest.raises(ValueError, match="must end with an assistant message"):
        encode_example(tok, messages[:-1], max_len=200)


def test_a_limit_that_cuts_the_answer_raises_or_drops(tok):
    ids, labels = encode_example(tok, convo("hi", "ok"), max_len=35)  # only the closing "\n" goes
    assert len(ids) == 35 and learned(tok, labels) == "ok<|im_end|>"
    with pytest.raises(AnswerTruncatedError, match=r"max_len=34 would cut away 1 of the 3 answer tokens"):
        encode_example(tok, convo("hi", "ok"), max_len=34)
    examples = [convo("hi", "ok"), convo("a much longer question", "ok")]
    with pytest.raises(AnswerTruncatedError, match="example 1: max_len=40"):
        encode_examples(tok, examples, max_len=40)
    encoded, dropped = encode_examples(tok, examples, max_len=40, drop_truncated=True)
    assert len(encoded) == 1 and dropped == [1]


def test_pad_batch_pads_on_the_right_with_masked_labels():
    ids, labels = pad_batch([([5, 6], [IGNORE_INDEX, 6]), ([7], [IGNORE_INDEX])], pad_id=9)
    assert ids.tolist() == [[5, 6], [7, 9]] and labels.tolist() == [[IGNORE_INDEX, 6], [IGNORE_INDEX] * 2]
    with pytest.raises(ValueError, match="at least one example"):
        pad_batch([])


def test_masked_positions_contribute_nothing_to_loss_or_gradient(tok):
    model = make_model()
    short, long = encode_example(tok, convo("hi", "ok"), 100), encode_example(tok, convo("hello you", "fine"), 100)
    ids, labels = pad_batch([short, long])

    def loss_and_grads(input_ids):
        model.zero_grad()
        loss = sft_loss(model, input_ids, labels)
        loss.backward()
        return loss.detach(), [p.grad.clone() for p in model.parameters()]

    loss, grads = loss_and_grads(ids)
    changed = ids.clone()
    changed[0, 35:] = 77  # the first row's closing "\n" and its padding: masked and after every labelled token
    loss2, grads2 = loss_and_grads(changed)
    assert torch.equal(loss, loss2) and all(torch.equal(a, b) for a, b in zip(grads, grads2))
    # the gradient reaching the logits is exactly zero wherever the target is masked
    logits = model(ids[:, :-1]).detach().requires_grad_()
    targets = labels[:, 1:]
    picked = torch.nn.functional.cross_entropy(logits.transpose(1, 2), targets, ignore_index=IGNORE_INDEX,
                                               reduction="sum") / (targets != IGNORE_INDEX).sum()
    picked.backward()
    assert torch.isclose(picked, loss)
    assert logits.grad[targets == IGNORE_INDEX].abs().max() == 0
    assert logits.grad[targets != IGNORE_INDEX].abs().max() > 0


def test_loss_is_the_mean_over_labelled_tokens_by_hand(tok):
    model = make_model()
    ids, labels = pad_batch([encode_example(tok, convo("hi", "ok"), 100)])
    with torch.no_grad():
        log_probs = model(ids).log_softmax(-1)[0]  # (T, V)
        positions = [t for t in range(1, ids.shape[1]) if labels[0, t] != IGNORE_INDEX]
        by_hand = -sum(log_probs[t - 1, ids[0, t]] for t in positions) / len(positions)
        assert torch.isclose(sft_loss(model, ids, labels), by_hand, atol=1e-6)
        assert (token_losses(model, ids, labels)[labels[:, 1:] == IGNORE_INDEX] == 0).all()
    with pytest.raises(ValueError, match="no labelled tokens"):
        sft_loss(model, ids, torch.full_like(labels, IGNORE_INDEX))


def test_padding_does_not_change_the_per_example_loss(tok):
    model = make_model()
    encoded = [encode_example(tok, convo(q, a), 100) for q, a in [("hi", "ok"), ("a longer question", "sure, yes")]]
    with torch.no_grad():
        together = example_losses(model, *pad_batch(encoded))
        alone = torch.cat([example_losses(model, *pad_batch([e])) for e in encoded])
        padded_more = example_losses(model, *pad_batch([encoded[0], encoded[1], encoded[1]], pad_id=200))
    assert torch.allclose(together, alone, atol=1e-6) and torch.allclose(padded_more[:2], alone, atol=1e-6)


def test_mean_example_loss_is_the_mean_of_the_examples_losses_in_eval_mode(tok):
    from lmcourse.sft import mean_example_loss
    torch.manual_seed(0)
    model = Llama(LlamaConfig.tiny(vocab_size=259, context_length=128, dropout=0.5))  # eval mode matters here
    model.eval()
    encoded = [encode_example(tok, convo(q, a), 100) for q, a in
               [("hi", "ok"), ("a longer question", "sure, yes"), ("why?", "because"), ("2+2?", "4"), ("x", "y")]]
    with torch.no_grad():
        by_hand = torch.cat([example_losses(model, *pad_batch([e])) for e in encoded]).mean().item()
    model.train()
    with torch.no_grad():
        assert torch.cat([example_losses(model, *pad_batch([e])) for e in encoded]).mean().item() != by_hand  # dropout on
    for batch_size in (1, 2, 8):
        assert mean_example_loss(model, encoded, batch_size=batch_size) == pytest.approx(by_hand, abs=1e-6)
    assert model.training  # back in the mode it was in
    with pytest.raises(ValueError, match="at least one"):
        mean_example_loss(model, [])


def test_a_tiny_llama_learns_the_assistant_tokens(tok):
    pairs = [("colour of the sky?", "blue"), ("colour of grass?", "green"), ("2+2?", "4"), ("cat says?", "meow"),
             ("opposite of up?", "down"), ("first letter?", "a"), ("dog says?", "woof"), ("snow is?", "white")]
    encoded, _ = encode_examples(tok, [convo(q, a) for q, a in pairs], max_len=64)
    model = make_model()
    ids, labels = pad_batch(encoded)
    with torch.no_grad():
        before = float(sft_loss(model, ids, labels))
    config = TrainConfig(lr=1e-2, batch_size=4, max_steps=40, warmup_steps=5, progress=False)
    history = train_sft(model, encoded, config)
    model.eval()
    with torch.no_grad():
        after = float(sft_loss(model, ids, labels))
    assert history.steps == 40 and history.tokens_seen == 20 * sum(len(i) for i, _ in encoded)
    assert after < 0.2 * before, (before, after)
    with pytest.raises(ValueError, match="does not support checkpoint"):
        train_sft(model, encoded, TrainConfig(checkpoint="x.safetensors", progress=False))


def test_greedy_matches_is_true_exactly_when_greedy_decoding_writes_the_answer():
    model = make_model(1).eval()
    examples = []
    for prompt in ([5, 9, 14], [7, 7, 30, 41, 2, 8]):
        reply = model.generate(prompt, 6, temperature=0.0)  # greedy: the model's own answer
        examples.append((prompt + reply, [IGNORE_INDEX] * len(prompt) + reply))
    ids, labels = examples[1]
    wrong_last = (ids[:-1] + [ids[-1] + 1], labels[:-1] + [labels[-1] + 1])  # one answer token changed
    wrong_first = (ids[:6] + [ids[6] + 1] + ids[7:], labels[:6] + [labels[6] + 1] + labels[7:])
    batch = [examples[0], wrong_last, examples[1], wrong_first]
    assert greedy_matches(model, batch, batch_size=4).tolist() == [True, False, True, False]
    # batches of one (no padding) agree with one padded batch
    assert greedy_matches(model, batch, batch_size=1).tolist() == [True, False, True, False]
    # batches are formed shortest first; the answers still come back in the order given
    assert greedy_matches(model, batch[::-1], batch_size=3).tolist() == [False, True, False, True]
    with pytest.raises(ValueError, match="at least one"):
        greedy_matches(model, [])


def test_answer_logits_at_the_labelled_positions_equal_the_full_logits(tok):
    from lmcourse.sft import answer_logits

    class LogitsOnly(torch.nn.Module):  # the same model seen only through model(ids) -> (B, T, V)
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, ids):
            return self.inner(ids)

    model = make_model(2)
    ids, labels = pad_batch([encode_example(tok, convo("hi", "ok"), 100), encode_example(tok, convo("a b", "yes"), 100)])
    fast, targets, rows = answer_logits(model, ids, labels)
    full, targets2, rows2 = answer_logits(LogitsOnly(model), ids, labels)
    assert torch.allclose(fast, full, atol=1e-5) and torch.equal(targets, targets2) and torch.equal(rows, rows2)
    assert fast.shape == (3 + 4, 259) and rows.tolist() == [0] * 3 + [1] * 4  # "ok"+end, "yes"+end
    assert torch.allclose(token_losses(model, ids, labels), token_losses(LogitsOnly(model), ids, labels), atol=1e-5)
