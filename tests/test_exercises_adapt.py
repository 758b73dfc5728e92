"""The Chapter 8 checkers' oracles against hand-worked values and independent computations; that
each checker passes a reference written here, reports a stub as unwritten and fails every registered
wrong answer; and, on the chapter's notebook, the same three proofs for its reference solutions."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import lmcourse.exercises.adapt  # noqa: F401  (registers the chapter's checkers)
from lmcourse.exercises import REGISTRY, evaluate
from lmcourse.exercises.progress import _chapter_number
from tests.exercise_contract import check_exercise_contract

NAMES = ["adapt.lora_forward", "adapt.assistant_labels", "adapt.dpo_loss", "adapt.lora_parameters"]


def _oracle(name):
    return REGISTRY[name].oracle


def test_lora_forward_oracle_is_the_formula():
    for case in REGISTRY["adapt.lora_forward"].cases:
        x, weight, bias, A, B, alpha, r = case.args
        expected = x @ weight.T + (alpha / r) * (x @ A.T) @ B.T + (0 if bias is None else bias)
        assert np.allclose(_oracle("adapt.lora_forward")(*case.args), expected.numpy(), atol=1e-12)
    assert any(case.args[2] is None for case in REGISTRY["adapt.lora_forward"].cases)
    assert any(case.args[0].dim() == 3 for case in REGISTRY["adapt.lora_forward"].cases)
    # a case where applying B before A is shape-valid (d_in == d_out == r), so the swap is wrong, not an error
    assert any(case.args[1].shape[0] == case.args[1].shape[1] == case.args[6] for case in REGISTRY["adapt.lora_forward"].cases)


def test_assistant_labels_oracle_on_the_rendered_conversation():
    case = REGISTRY["adapt.assistant_labels"].cases[-1]
    ids, flags = case.args
    labels = _oracle("adapt.assistant_labels")(ids, flags)
    learned = bytes(t - 3 for t, label in zip(ids, labels) if label != -100 and t >= 3).decode()
    assert learned == "Hello.1905"  # both replies' text (their end-of-turn tokens are special ids)
    assert sum(label == 2 for label in labels) == 2  # and each reply's <|im_end|>
    assert _oracle("adapt.assistant_labels")([5, 6], [False, True]) == [-100, 6]


def test_assistant_labels_oracle_equals_encode_example():
    """On the rendered conversation the expected labels are exactly lmcourse.sft.encode_example's."""
    from lmcourse.bpe import ByteBPE
    from lmcourse.llama import SMOLLM_PATTERN, SmolLM2Tokenizer
    from lmcourse.sft import encode_example

    template = ("{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
                "{{ '<|im_start|>system\nS<|im_end|>\n' }}{% endif %}"
                "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
                "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")  # tests/test_sft.py's CHATML
    bpe = ByteBPE.from_vocab({bytes([b]): b + 3 for b in range(256)}, [],
                             special_tokens={"<|endoftext|>": 0, "<|im_start|>": 1, "<|im_end|>": 2},
                             pattern=SMOLLM_PATTERN)
    tok = SmolLM2Tokenizer(bpe, 259, template, bos_id=1, eos_id=2)
    ids, flags = REGISTRY["adapt.assistant_labels"].cases[-1].args
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi?"},
                {"role": "assistant", "content": "Hello."}, {"role": "user", "content": "Year?"},
                {"role": "assistant", "content": "1905"}]
    want_ids, want_labels = encode_example(tok, messages, max_len=200)
    assert ids == want_ids and _oracle("adapt.assistant_labels")(ids, flags) == want_labels


def test_dpo_oracle_by_hand():
    loss = _oracle("adapt.dpo_loss")(torch.tensor([-10.0]), torch.tensor([-25.0]), torch.tensor([-12.0]),
                                     torch.tensor([-20.0]), 0.1)
    assert float(loss) == pytest.approx(math.log(1 + math.exp(-0.7)), abs=1e-6)  # the chapter's exercise 2
    first = REGISTRY["adapt.dpo_loss"].cases[0]
    assert float(_oracle("adapt.dpo_loss")(*first.args)) == pytest.approx(math.log(2))
    pc, pr, rc, rr, beta = REGISTRY["adapt.dpo_loss"].cases[1].args
    by_hand = -F.logsigmoid(beta * ((pc - rc) - (pr - rr))).mean()
    assert np.allclose(_oracle("adapt.dpo_loss")(pc, pr, rc, rr, beta), by_hand.numpy())


def test_lora_parameters_oracle_counts_smollm2():
    assert _oracle("adapt.lora_parameters")([(4, 6)], 2) == 20
    smollm_case = next(c for c in REGISTRY["adapt.lora_parameters"].cases if "30 blocks" in c.label)
    assert _oracle("adapt.lora_parameters")(*smollm_case.args) == 2_165_760  # Chapter 8, Section 8.3


def test_chapter_label():
    assert _chapter_number("adapt") == "8"  # progress() shows the chapter as "8 adapt"


# --- the three proofs, with references written here (independent of the notebook) ------------


def _lora_forward(x, weight, bias, A, B, alpha, r):
    out = torch.nn.functional.linear(x, weight, bias)
    return out + (alpha / r) * torch.nn.functional.linear(torch.nn.functional.linear(x, A), B)


def _assistant_labels(input_ids, is_assistant):
    labels = [-100] * len(input_ids)
    for t, (token, learned) in enumerate(zip(input_ids, is_assistant)):
        if learned:
            labels[t] = token
    return labels


def _dpo_loss(pc, pr, rc, rr, beta):
    margin = beta * (pc - pr) - beta * (rc - rr)
    return F.softplus(-margin).mean()  # -log sigmoid(m) = log(1 + exp(-m))


def _lora_parameters(shapes, r):
    return sum(r * d_in + d_out * r for d_out, d_in in shapes)


REFERENCES = {"adapt.lora_forward": _lora_forward, "adapt.assistant_labels": _assistant_labels,
              "adapt.dpo_loss": _dpo_loss, "adapt.lora_parameters": _lora_parameters}


@pytest.mark.parametrize("name", NAMES)
def test_reference_passes_stub_unwritten_and_every_wrong_answer_fails(name):
    check_exercise_contract(name, REFERENCES[name])


def test_wrong_answers_of_the_brief_are_registered():
    assert {"forgets the alpha / r scale", "scales by alpha, not alpha / r", "applies B before A",
            "ignores the bias"} <= set(REGISTRY["adapt.lora_forward"].wrong_answers)
    assert {"learns the prompt instead", "masks with 0 instead of -100",
            "shifts the labels by one"} <= set(REGISTRY["adapt.assistant_labels"].wrong_answers)
    assert {"forgets the minus sign", "leaves out the reference", "uses -sigmoid instead of -logsigmoid",
            "applies beta to the chosen reply only", "sums over the batch"} <= set(REGISTRY["adapt.dpo_loss"].wrong_answers)
    assert {"counts a full matrix per layer", "counts A only",
            "counts the first layer only"} <= set(REGISTRY["adapt.lora_parameters"].wrong_answers)


def test_in_place_labels_are_reported_as_a_changed_input():
    text = str(evaluate("adapt.assistant_labels", REGISTRY["adapt.assistant_labels"].wrong_answers[
        "overwrites input_ids in place"]))
    assert "changed its input `input_ids`" in text
