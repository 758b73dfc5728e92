"""lmcourse.apps.prompting: the label log-probabilities equal a forward pass by hand, the few-shot examples
are seeded and balanced, it cross-validates like a trained classifier, and bad labels are refused."""

import numpy as np
import pytest
import torch

from lmcourse.apps.prompting import PromptClassifier
from lmcourse.classify import cross_validate, stratified_folds
from lmcourse.llama import Llama, LlamaConfig
from tests.test_sft import byte_chat_tokenizer

CHATML = ("{% for message in messages %}"
          "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
          "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")
TEMPLATE = "Sentiment of: {text}"


@pytest.fixture(scope="module")
def tiny():
    tokenizer = byte_chat_tokenizer(CHATML)
    torch.manual_seed(0)
    return Llama(LlamaConfig.tiny(vocab_size=259, context_length=256)).eval(), tokenizer


def test_label_logprobs_equal_a_forward_pass_by_hand(tiny):
    model, tokenizer = tiny
    clf = PromptClassifier(model, tokenizer, TEMPLATE, ["n", "p"]).fit(["x"], [0])
    prompt = "<|im_start|>user\nSentiment of: great<|im_end|>\n<|im_start|>assistant\n"
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([tokenizer.encode(prompt)]))[0, -1].double(), dim=-1)
    expected = logp[[ord("n") + 3, ord("p") + 3]].numpy()
    np.testing.assert_allclose(clf.label_logprobs(["great"])[0], expected, atol=1e-5)  # the opening is cached
    assert clf.predict(["great"]) == [int(np.argmax(expected))]
    p_label_1 = np.exp(expected[1]) / np.exp(expected).sum()  # renormalised over the two label words
    assert clf.scores(["great"]) == pytest.approx([p_label_1], abs=1e-5)


def test_contextual_calibration_divides_by_the_content_free_distribution(tiny):
    model, tokenizer = tiny
    plain = PromptClassifier(model, tokenizer, TEMPLATE, ["n", "p"]).fit(["x"], [0])
    calibrated = PromptClassifier(model, tokenizer, TEMPLATE, ["n", "p"], calibrate=True).fit(["x"], [0])
    bias = plain.probabilities(["N/A", "", "[MASK]"]).mean(axis=0)  # what the prompt gives with no content
    assert calibrated.bias == pytest.approx(bias)
    texts = ["great", "awful", "so-so"]
    by_hand = plain.probabilities(texts) / bias
    by_hand /= by_hand.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(calibrated.probabilities(texts), by_hand, atol=1e-9)
    assert calibrated.predict(texts) == by_hand.argmax(axis=1).tolist()
    assert calibrated.probabilities(["N/A", "", "[MASK]"]).mean(axis=0) == pytest.approx([0.5, 0.5], abs=0.05)
    assert plain.bias is None


def test_few_shot_examples_are_seeded_balanced_and_shown_as_turns(tiny):
    model, tokenizer = tiny
    texts, labels = [f"t{i}" for i in range(10)], [0, 1] * 5
    clf = PromptClassifier(model, tokenizer, TEMPLATE, ["n", "p"], shots_per_label=2, seed=3).fit(texts, labels)
    again = PromptClassifier(model, tokenizer, TEMPLATE, ["n", "p"], shots_per_label=2, seed=3).fit(texts, labels)
    assert clf.examples == again.examples and sorted(y for _, y in clf.examples) == [0, 0, 1, 1]
    turns = clf.messages("new")
    assert [t["role"] for t in turns] == ["user", "assistant"] * 4 + ["user"]
    assert turns[1]["content"] in ("n", "p") and turns[-1]["content"] == "Sentiment of: new"
    zero = PromptClassifier(model, tokenizer, TEMPLATE, ["n", "p"]).fit(texts, labels)
    assert zero.examples == [] and len(zero.messages("new")) == 1


def test_it_cross_validates_like_a_trained_classifier(tiny):
    model, tokenizer = tiny
    texts, labels = [f"sentence {i}" for i in range(8)], [0, 1] * 4
    result = cross_validate(lambda: PromptClassifier(model, tokenizer, TEMPLATE, ["n", "p"], shots_per_label=1),
                            texts, labels, stratified_folds(labels, k=2))
    assert len(result.predictions) == 8 and set(result.predictions) <= {0, 1}


@pytest.mark.parametrize("kwargs, message", [
    ({"template": "no placeholder"}, "must contain {text}"),
    ({"label_words": ["only"]}, "at least two words"),
    ({"label_words": ["no", "p"]}, "one token each"),
    ({"label_words": ["p", "p"]}, "different tokens"),
    ({"shots_per_label": -1}, "shots_per_label"),
])
def test_bad_settings_are_refused(tiny, kwargs, message):
    model, tokenizer = tiny
    settings = {"template": TEMPLATE, "label_words": ["n", "p"], **kwargs}
    with pytest.raises(ValueError, match=message):
        PromptClassifier(model, tokenizer, **settings)


def test_bad_training_data_is_refused(tiny):
    model, tokenizer = tiny
    clf = PromptClassifier(model, tokenizer, TEMPLATE, ["n", "p"], shots_per_label=3)
    with pytest.raises(ValueError, match="no word"):
        clf.fit(["a", "b"], [0, 2])
    with pytest.raises(ValueError, match="fewer than shots_per_label"):
        clf.fit(["a", "b", "c", "d"], [0, 0, 0, 1])
    with pytest.raises(TypeError, match="list of strings"):
        clf.label_logprobs("one text")
