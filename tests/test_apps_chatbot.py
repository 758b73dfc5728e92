"""lmcourse.apps.chatbot: the oldest exchanges are dropped first and only as many as needed (counted with
SmolLM2's real tokenizer), streamed pieces join up to the reply and never break a character, a greedy reply
is lmcourse.llama.chat's, and scripted conversations with SmolLM2-135M remember a fact until the exchange
that held it is dropped. SmolLM2 is loaded once per test session (:func:`smollm2`, shared with
tests/test_constrained.py)."""

from __future__ import annotations

import functools

import pytest
import torch

from lmcourse.apps.chatbot import ChatSession, TextStream, send_together
from lmcourse.llama import Llama, LlamaConfig, chat, load_smollm2, smollm2_path
from tests.test_sft import byte_chat_tokenizer

try:
    smollm2_path()
except (ModuleNotFoundError, FileNotFoundError) as error:  # pragma: no cover - without the package
    pytest.skip(str(error), allow_module_level=True)


@functools.cache
def smollm2() -> tuple[Llama, object]:
    """SmolLM2-135M-Instruct and its tokenizer, loaded once per process (~8 s); tests must not change them."""
    return load_smollm2()


@pytest.fixture(scope="module")
def tokenizer():
    return smollm2()[1]


@pytest.fixture(scope="module")
def tiny_llama():
    """A random Llama over SmolLM2's vocabulary: fast replies of a few tokens, for the bookkeeping tests."""
    torch.manual_seed(0)
    return Llama(LlamaConfig.tiny(vocab_size=49152, context_length=512)).eval()


def user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


# --- several sessions in one batch --------------------------------------------------------------

def test_sessions_sent_together_reply_and_forget_as_each_alone(tiny_llama, tokenizer):
    scripts = [["Hi.", "What is two plus two?", "And three plus three?"],
               ["The secret word is banana. Please remember it for later.", "Name a colour.", "What was the word?"],
               ["A much longer opening message, so that the prompts differ in length and need padding.", "Yes.", "No."]]

    def sessions() -> list[ChatSession]:  # budgets from roomy to tight: the last two forget as they go
        return [ChatSession(tiny_llama, tokenizer, context_tokens=budget, max_reply_tokens=6) for budget in (400, 60, 70)]

    alone, together = sessions(), sessions()
    for turn in range(3):
        expected = [session.send(script[turn]) for session, script in zip(alone, scripts)]
        assert send_together(together, [script[turn] for script in scripts]) == expected
    assert [s.history for s in together] == [s.history for s in alone]
    assert [s.dropped for s in together] == [s.dropped for s in alone] and alone[1].num_dropped >= 1


def test_sending_together_refuses_what_it_cannot_batch_and_changes_nothing(tiny_llama, tokenizer):
    a, b = (ChatSession(tiny_llama, tokenizer, context_tokens=40, max_reply_tokens=4) for _ in range(2))
    a.send("Hello there.")
    before = (list(a.history), list(b.history))
    with pytest.raises(ValueError, match="one message per session, got 2 sessions and 1 messages"):
        send_together([a, b], ["Hi."])
    with pytest.raises(ValueError, match=r"sessions\[1\] has another model, tokenizer or max_reply_tokens"):
        send_together([a, ChatSession(tiny_llama, tokenizer, context_tokens=40, max_reply_tokens=5)], ["Hi.", "Hi."])
    with pytest.raises(ValueError, match=r"sessions\[1\] samples"):
        send_together([a, ChatSession(tiny_llama, tokenizer, context_tokens=40, max_reply_tokens=4, temperature=1.0)],
                      ["Hi.", "Hi."])
    with pytest.raises(ValueError, match=r"sessions\[1\] samples or penalises repetition"):
        send_together([a, ChatSession(tiny_llama, tokenizer, context_tokens=40, max_reply_tokens=4,
                                      repetition_penalty=1.3)], ["Hi.", "Hi."])
    with pytest.raises(TypeError, match=r"sessions\[0\] is a str"):
        send_together(["a session"], ["Hi."])
    with pytest.raises(ValueError, match="a session appears twice"):
        send_together([a, a], ["Hi.", "Hi again."])
    with pytest.raises(ValueError, match="only 36 fit"):  # the second message cannot fit: neither session changes
        send_together([a, b], ["Hi.", "word " * 60])
    assert (a.history, b.history) == before and not a.dropped
    greedy = ChatSession(tiny_llama, tokenizer, context_tokens=40, max_reply_tokens=4, temperature=0.0, seed=3)
    assert len(send_together([b, greedy], ["Hi.", "Hi."])) == 2  # temperature 0 is greedy: accepted


# --- memory: what is dropped --------------------------------------------------------------------

def test_oldest_exchanges_are_dropped_first_and_only_as_many_as_needed(tiny_llama, tokenizer):
    system, budget = "You are terse.", 70
    session = ChatSession(tiny_llama, tokenizer, system=system, context_tokens=budget + 6, max_reply_tokens=6)
    questions = [f"Question number {k}: what is {k} plus {k}?" for k in range(8)]
    exchanges = []
    for q in questions:
        session.send(q)
        exchanges.append(session.history[-2:])
        asked = session.messages[:-1]  # what the model read: the conversation up to the new question
        assert asked[0] == {"role": "system", "content": system}  # the system prompt is never dropped
        assert asked[-1] == user(q)  # nor the new question
        assert session.count_tokens(asked) <= budget
        kept = len(session.history) // 2
        assert session.history == [m for ex in exchanges[-kept:] for m in ex]  # the newest exchanges, in order
        assert session.dropped == [m for ex in exchanges[:-kept] for m in ex]  # the oldest ones, in order
        assert session.num_dropped == len(exchanges) - kept
        if session.num_dropped:  # one more exchange would not have fitted: no more was dropped than needed
            assert session.count_tokens([asked[0], *session.dropped[-2:], *asked[1:]]) > budget
    assert session.num_dropped >= 4  # the budget is small enough that dropping happened many times
    assert session.num_tokens == session.count_tokens(session.messages)
    session.reset()
    assert (session.history, session.dropped, session.num_tokens) == ([], [], session.count_tokens(session.messages))


def test_a_message_that_cannot_fit_is_refused_with_the_sizes(tiny_llama, tokenizer):
    session = ChatSession(tiny_llama, tokenizer, context_tokens=48, max_reply_tokens=8)
    session.send("Hi.")
    before = list(session.history)
    with pytest.raises(ValueError, match=r"take \d+ tokens, but only 40 fit .*raise context_tokens"):
        session.send("word " * 40)
    assert session.history == before and session.dropped == []  # nothing was forgotten for nothing
    long_system = ChatSession(tiny_llama, tokenizer, system="Be brief. " * 20, context_tokens=48, max_reply_tokens=8)
    with pytest.raises(ValueError, match="system prompt"):
        long_system.send("Hi.")


def test_bad_settings_are_refused(tiny_llama, tokenizer):
    with pytest.raises(ValueError, match="context_tokens must be an int >= 9"):
        ChatSession(tiny_llama, tokenizer, context_tokens=8, max_reply_tokens=8)
    with pytest.raises(ValueError, match="context_length=512"):
        ChatSession(tiny_llama, tokenizer, context_tokens=1024)
    with pytest.raises(TypeError, match="unknown decoding arguments"):
        ChatSession(tiny_llama, tokenizer, context_tokens=64, max_reply_tokens=8, temprature=0.5)
    with pytest.raises(ValueError, match="user_text"):
        ChatSession(tiny_llama, tokenizer, context_tokens=64, max_reply_tokens=8).send("  ")


# --- streaming ----------------------------------------------------------------------------------

def test_text_stream_holds_back_split_characters(tokenizer):
    ids = tokenizer.encode("naïve café, 你好世界, emoji 🙂🚀 and ok")
    assert any(tokenizer.decode(ids[:k]).endswith("\ufffd") for k in range(1, len(ids)))  # some character is split
    stream = TextStream(tokenizer)
    pieces = [stream.push(i) for i in ids] + [stream.flush()]
    assert "".join(pieces) == tokenizer.decode(ids)
    assert not any("\ufffd" in p for p in pieces)


@pytest.mark.parametrize("seed", range(4))
def test_streamed_pieces_join_up_to_the_sampled_reply(seed):
    """A random model over single bytes writes invalid UTF-8 and stops anywhere: the pieces still join up."""
    tokenizer = byte_chat_tokenizer()
    torch.manual_seed(seed)
    model = Llama(LlamaConfig.tiny(vocab_size=259, context_length=256)).eval()
    session = ChatSession(model, tokenizer, context_tokens=256, max_reply_tokens=24, temperature=1.0, seed=seed)
    for text in ["héllo 你好", "and again"]:
        pieces: list[str] = []
        reply = session.send(text, on_token=pieces.append)
        assert "".join(pieces) == reply and all(pieces)


def test_generate_streams_each_id_as_it_is_chosen():
    torch.manual_seed(0)
    model = Llama(LlamaConfig.tiny(vocab_size=20)).eval()
    streamed: list[int] = []
    ids = model.generate([1, 2, 3], 8, temperature=1.0, stop_ids=[5], on_token=streamed.append)
    assert streamed == ids
    with pytest.raises(ValueError, match="on_token streams the ids of one prompt"):
        model.generate(torch.tensor([[1, 2], [3, 4]]), 3, on_token=streamed.append)


# --- SmolLM2 in conversation --------------------------------------------------------------------

def converse(turns: list[str], context_tokens: int) -> tuple[ChatSession, list[str]]:
    model, tokenizer = smollm2()
    session = ChatSession(model, tokenizer, context_tokens=context_tokens, max_reply_tokens=16)
    return session, [session.send(t) for t in turns]


def test_a_streamed_greedy_reply_is_chats_reply():
    model, tokenizer = smollm2()
    session = ChatSession(model, tokenizer, system="Answer in one short sentence.", context_tokens=256,
                          max_reply_tokens=16)
    session.send("The secret word is banana.")
    pieces: list[str] = []
    reply = session.send("What is the secret word?", on_token=pieces.append)
    assert "".join(pieces) == reply
    assert chat(session.messages[:-1], model=model, tokenizer=tokenizer, max_tokens=16).text == reply
    assert "banana" in reply  # measured: 'The secret word is banana.'


@pytest.mark.parametrize("turns, fact", [
    # Measured (greedy, replies of at most 16 tokens): the first reply is "This is a classic example of a
    # password-cracking algorithm. It's a", the second "The password is 4172.".
    (["The password is 4172.", "What is the password?"], "4172"),
    # Measured: "I'm glad to have you, Ada. I'm here to help you with", then "I'm glad to have you, Ada. I'm glad
    # to have you.". Plainer versions fail: after "My name is Ada and my favourite colour is green.", "What is my
    # name?" gets "My name is Elena, and I'm delighted to have you here. I" (the model names itself).
    (["My name is Ada. Please remember it.", "Tell me my name."], "Ada"),
])
def test_a_fact_is_remembered_until_its_exchange_is_dropped(turns, fact):
    session, replies = converse(turns, context_tokens=512)
    assert session.num_dropped == 0 and fact in replies[-1]
    # Budget 64 - 16 = 48 tokens: the first exchange (71 or more tokens with the question) must go.
    # Measured: "The password is: 1234567890ABC" and "I'm called to be your new friend, a loyal and loyal one. I".
    session, replies = converse(turns, context_tokens=64)
    assert session.dropped[0] == user(turns[0]) and session.num_dropped == 1
    assert fact not in replies[-1]


def test_forgetting_the_first_of_three_exchanges():
    turns = ["The secret word is banana.", "What is the capital of France?", "What is the secret word?"]
    session, replies = converse(turns, context_tokens=80)  # room for two exchanges and a question, not three
    # Measured: "The secret word is banana.", "The capital of France is Paris.", 'The secret word is "SMO".'
    assert "Paris" in replies[1]
    assert [m["content"] for m in session.dropped] == [turns[0], replies[0]]
    assert [m["content"] for m in session.history[::2]] == turns[1:]
    assert "banana" not in replies[2]
