"""SmolLM2-135M-Instruct in lmcourse.llama against transformers loading the same GGUF file: token
ids on 1,200 varied texts, chat templates, logits within 1e-4 (float32), greedy continuations with
and without the KV cache. Each model is loaded once for the module."""

from __future__ import annotations

import contextlib
import copy
import random

import pytest
import regex
import torch

pytest.importorskip("gguf")
transformers = pytest.importorskip("transformers")

from lmcourse.llama import load_smollm2, smollm2_path  # noqa: E402

try:
    PATH = smollm2_path()
except (ModuleNotFoundError, FileNotFoundError) as error:  # pragma: no cover - without the package
    pytest.skip(str(error), allow_module_level=True)


@pytest.fixture(scope="module")
def ours():
    return load_smollm2()


@pytest.fixture(scope="module")
def hf_tokenizer():
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        return transformers.AutoTokenizer.from_pretrained(PATH.parent, gguf_file=PATH.name)


@pytest.fixture(scope="module")
def hf_model():
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        model = transformers.LlamaForCausalLM.from_pretrained(PATH.parent, gguf_file=PATH.name, dtype=torch.float32)
    return model.eval()


@pytest.fixture(scope="module")
def smollm_oracle(hf_tokenizer):
    """transformers' tokenizer with SmolLM2's own pre-tokenizer (its tokenizer.json: each digit
    apart, then GPT-2's pattern), which transformers' GGUF loader leaves out."""
    from tokenizers import pre_tokenizers

    backend = copy.deepcopy(hf_tokenizer.backend_tokenizer)
    backend.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                                     pre_tokenizers.ByteLevel(add_prefix_space=False)])
    return backend


# ---------------------------------------------------------------------------------------------
# Texts: deterministic mixtures of words, digits, punctuation, code, accents, CJK, emoji, long
# words, whitespace runs and special tokens.

_WORDS = ("the quick brown fox jumps over lazy dog language model token attention is all you need Paris "
          "résumé naïve café façade Übermäßig Straße jalapeño coöperate São Zürich antidisestablishmentarianism "
          "pneumonoultramicroscopicsilicovolcanoconiosis I'm you're it's we've they'll she'd DON'T O'Brien").split()
_OTHER = (["中文", "你好，世界！", "机器学习", "大型语言模型", "こんにちは", "東京都", "한국어", "Привет мир", "Ελληνικά",
           "مرحبا", "😀", "🚀", "👍🏽", "👨‍👩‍👧‍👦", "🇫🇷", "❤️", "🤖✨"],
          ["def f(x):\n    return x ** 2\n", "for (int i = 0; i < n; ++i) { a[i] += 1; }", "x = {'a': [1, 2.5e-3]}",
           "if __name__ == '__main__':\n\tmain()", "<div class=\"box\">&nbsp;</div>", "λx. x + 1 // ≠ ≤ →"])
_PUNCT = ".,;:!?-—–…()[]{}\"'`~@#$%^&*_+=|\\/<>«»„“”‘’¿¡§°"
_SPACES = [" ", "  ", "   ", "\t", "\n", "\n\n", " \n ", "\r\n", "\u00a0", "\u3000", "    ", "\t\t "]
_SPECIAL = ["<|im_start|>", "<|im_end|>", "<|endoftext|>"]


def _piece(rng: random.Random) -> str:
    kind = rng.randrange(8)
    if kind <= 2:
        word = rng.choice(_WORDS)
        return word.upper() if kind == 2 else word
    if kind == 3:
        return rng.choice([str(rng.randrange(10 ** rng.randrange(1, 12))), f"{rng.uniform(-1e4, 1e4):.3f}",
                           f"{rng.randrange(1900, 2100)}-{rng.randrange(1, 13):02d}", "½ ² ٣ ४ Ⅻ"])
    if kind == 4:
        return "".join(rng.choice(_PUNCT) for _ in range(rng.randrange(1, 4)))
    return rng.choice(_OTHER[kind == 7])


def varied_texts(count: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    texts = []
    for _ in range(count):
        parts = [p for _ in range(rng.randrange(1, 12))
                 for p in (_piece(rng), rng.choice(_SPACES) if rng.random() < 0.3 else " ")]
        if rng.random() < 0.5:
            parts.pop()
        if rng.random() < 0.05:
            parts.insert(rng.randrange(len(parts) + 1), rng.choice(_SPECIAL))
        texts.append("".join(parts))
    return texts


TEXTS = varied_texts(1200) + ["", " ", "a  1", "x\t\t9", "\n\n42\n", "1,000,000.00", "   leading", "trailing   "]


def test_token_ids_equal_smollm2s_tokenizer_on_1200_texts(ours, smollm_oracle):
    _, tok = ours
    disagree = [t for t in TEXTS if tok.encode(t) != smollm_oracle.encode(t).ids]
    assert len(TEXTS) >= 1200 and disagree == []


def test_transformers_gguf_tokenizer_differs_only_at_whitespace_before_a_digit(ours, hf_tokenizer):
    _, tok = ours
    differ = [t for t in TEXTS if tok.encode(t) != hf_tokenizer(t)["input_ids"]]
    assert differ and all(regex.search(r"\s\p{N}", t) for t in differ)


def test_decode_inverts_encode_and_equals_transformers(ours, hf_tokenizer):
    _, tok = ours
    for text in TEXTS:
        ids = tok.encode(text)
        assert tok.decode(ids) == text == hf_tokenizer.decode(ids)


def test_special_tokens_and_bytes_without_a_token(ours, hf_tokenizer):
    _, tok = ours
    assert tok.encode("<|im_start|>user\nHi<|im_end|>")[:1] == [1] and tok.eos_id == 2
    for text in ("a\x04b", "x\U00050000y"):  # bytes with no token are dropped, as transformers does
        assert tok.encode(text) == hf_tokenizer(text)["input_ids"]


CONVERSATIONS = [
    [{"role": "user", "content": "What is the capital of France?"}],
    [{"role": "system", "content": "You answer in one word."}, {"role": "user", "content": "Capital of Italy?"}],
    [{"role": "user", "content": "Hi!"}, {"role": "assistant", "content": "Hello! How can I help?"},
     {"role": "user", "content": "Count to 3.\n  Then stop."}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"},
     {"role": "assistant", "content": "4"}, {"role": "user", "content": "And 3+3? 😀"}],
]


@pytest.mark.parametrize("add_generation_prompt", [False, True])
@pytest.mark.parametrize("messages", CONVERSATIONS)
def test_chat_template_equals_transformers(ours, hf_tokenizer, messages, add_generation_prompt):
    _, tok = ours
    expected = hf_tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)
    assert tok.apply_chat_template(messages, add_generation_prompt=add_generation_prompt) == expected


def test_chat_template_checks_messages(ours):
    _, tok = ours
    with pytest.raises(TypeError, match="messages must be a non-empty list"):
        tok.apply_chat_template("hello")
    with pytest.raises(ValueError, match="message 0 must be a dict with str 'role' and 'content'"):
        tok.apply_chat_template([{"role": "user"}])


def _long_prompt(tok) -> list[int]:
    text = " ".join(varied_texts(120, seed=7))
    ids = tok.encode(text)
    assert len(ids) >= 1000
    return ids[:1000]


@contextlib.contextmanager
def _rope_angles_in_float64(hf_model):
    """transformers computes RoPE's angles p * base^(-2i/D) in float32; lmcourse (and this patch) in
    float64. At position 1,000 the float32 angles are off by up to ~6e-5 radians, which moves
    SmolLM2's logits by ~3e-4; everything else computes the same numbers."""
    rotary = hf_model.model.rotary_emb
    D, base = 2 * rotary.inv_freq.numel(), hf_model.config.rope_parameters["rope_theta"]

    def forward(x, position_ids):
        inv_freq = base ** (-torch.arange(0, D, 2, dtype=torch.float64) / D)  # (D/2,)
        angles = position_ids[..., None].double() * inv_freq  # (B, T, 1) * (D/2,) -> (B, T, D/2)
        angles = torch.cat((angles, angles), dim=-1)  # (B, T, D)
        return angles.cos().to(x.dtype), angles.sin().to(x.dtype)

    rotary.forward = forward
    try:
        yield
    finally:
        del rotary.forward


def test_logits_equal_transformers(ours, hf_model):
    model, tok = ours
    prompts = [tok.encode("The capital of France is"),
               tok.encode(tok.apply_chat_template(CONVERSATIONS[2], add_generation_prompt=True)),
               tok.encode("def fibonacci(n):\n    if n < 2:\n        return n\n"),
               _long_prompt(tok)]  # 1,000 tokens
    with torch.no_grad():
        for ids in prompts:
            x = torch.tensor([ids])
            logits = model(x)
            assert (logits - hf_model(x).logits).abs().max().item() < 1e-3  # transformers' float32 angles
            with _rope_angles_in_float64(hf_model):
                assert (logits - hf_model(x).logits).abs().max().item() < 1e-4  # measured: 0.0


def test_greedy_continuation_with_and_without_cache_equals_transformers(ours, hf_model):
    model, tok = ours
    prompt = tok.encode("Once upon a time, in a small village by the sea,")
    cached = model.generate(prompt, 32, temperature=0)
    assert cached == model.generate(prompt, 32, temperature=0, use_cache=False)
    with torch.no_grad():
        out = hf_model.generate(torch.tensor([prompt]), max_new_tokens=32, do_sample=False, eos_token_id=None,
                                pad_token_id=tok.eos_id)
    assert cached == out[0, len(prompt):].tolist()
    cache = model.new_cache()
    with torch.no_grad():
        model(torch.tensor([prompt]), cache=cache)
    assert cache[0].keys.shape == (1, 3, len(prompt), 64)  # (B, Hkv, S, D): 3 key/value heads, not 9


def test_the_chat_answers(ours):
    from lmcourse.llama import chat

    model, tok = ours
    reply = chat(CONVERSATIONS[0], model=model, tokenizer=tok, max_tokens=24)
    assert reply.finish_reason == "stop" and "Paris" in reply.text
