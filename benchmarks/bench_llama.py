"""SmolLM2-135M-Instruct in the book's Llama against ``transformers.LlamaForCausalLM`` loading the
same GGUF file: greedy generation speed with and without the KV cache.

Both models run in float32 on one thread, from the same prompt (SmolLM2's chat template around
"What is the capital of France?"), 128 greedy tokens, no stop token. The two implementations are
timed in alternating rounds (a busy machine slows both alike); the generated ids must be equal.
Prints tokens per second and the ratio to ``transformers``.

Runs in about five minutes on one thread (the uncached runs re-read the sequence at every step).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import torch

from lmcourse.llama import load_smollm2, smollm2_path
from lmcourse.profiling import alternating_median_seconds

NEW_TOKENS = 128
QUESTION = "What is the capital of France?"


def runners() -> tuple[dict[str, Callable[[bool], list[int]]], int]:
    """A greedy generation of NEW_TOKENS tokens by each implementation (with or without the cache),
    and the prompt's length."""
    from transformers import LlamaForCausalLM

    model, tokenizer = load_smollm2()
    path = smollm2_path()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    hf = LlamaForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32).eval()
    prompt = tokenizer.encode(tokenizer.apply_chat_template([{"role": "user", "content": QUESTION}],
                                                            add_generation_prompt=True))

    def ours(use_cache: bool) -> list[int]:
        return model.generate(prompt, NEW_TOKENS, temperature=0, use_cache=use_cache)

    def theirs(use_cache: bool) -> list[int]:
        with torch.no_grad():
            out = hf.generate(torch.tensor([prompt]), max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS,
                              do_sample=False, use_cache=use_cache, eos_token_id=None, pad_token_id=tokenizer.eos_id)
        return out[0, len(prompt):].tolist()

    return {"lmcourse Llama": ours, "LlamaForCausalLM": theirs}, len(prompt)


def main() -> None:
    torch.set_num_threads(1)
    start = time.perf_counter()
    fns, prompt_length = runners()
    rows = []
    for use_cache in (True, False):
        ids = {name: fn(use_cache) for name, fn in fns.items()}
        same = len(set(map(tuple, ids.values()))) == 1
        timed = {name: (lambda fn=fn: fn(use_cache)) for name, fn in fns.items()}
        seconds = alternating_median_seconds(timed, rounds=2 if use_cache else 1, repeats=1)
        rows += [(name, use_cache, NEW_TOKENS / s, same) for name, s in seconds.items()]
    print(f"SmolLM2-135M-Instruct, float32, one thread: {NEW_TOKENS} greedy tokens after a {prompt_length}-token "
          f"chat prompt")
    print(f"{'implementation':>18} {'cache':>6} {'tokens/s':>9} {'vs HF':>6} {'same ids':>9}")
    hf = {cache: speed for name, cache, speed, _ in rows if name == "LlamaForCausalLM"}
    for name, cache, speed, same in rows:
        print(f"{name:>18} {'yes' if cache else 'no':>6} {speed:>9.1f} {speed / hf[cache]:>6.2f} {str(same):>9}")
    print(f"\ntotal {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
