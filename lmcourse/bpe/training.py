"""Learning BPE merges: the most frequent pair, merged in every chunk that holds it (Chapter 6, GPT).

Pairs are counted over the *distinct* chunks of the text, each weighted by how often it occurs.
After a merge only the counts of the pairs beside each merged place change, and only those are
updated (never a full recount), so 1 MB trains in seconds. The most frequent pair wins; ties go to
the smallest pair of ids (left id first, then right id). Two merges could spell the same bytes
(``"t" + "he"`` and ``"th" + "e"``); as in ``tokenizers``, the later one reuses the earlier one's id.
"""

from __future__ import annotations

import heapq
from collections import defaultdict

from lmcourse.bpe.merging import Pair

__all__ = ["learn_merges"]


class _PairIndex:
    """Weighted pair counts over the distinct chunks (`words`), which chunks hold each pair, and a
    heap of ``(-count, pair)``. Heap entries may be stale; :meth:`best` re-checks them."""

    def __init__(self, words: list[list[int]], freqs: list[int]) -> None:
        self.words, self.freqs = words, freqs
        self.counts: dict[Pair, int] = defaultdict(int)
        self.where: dict[Pair, set[int]] = defaultdict(set)  # may list chunks that lost the pair
        for w, (word, freq) in enumerate(zip(words, freqs)):
            for pair in zip(word, word[1:]):
                self.counts[pair] += freq
                self.where[pair].add(w)
        self.heap = [(-count, pair) for pair, count in self.counts.items()]
        heapq.heapify(self.heap)

    def best(self) -> Pair | None:
        """The most frequent pair (ties: smallest ids), or None when no pair is left.

        A pair's count only falls, except for pairs with the newest id, which :meth:`merge` pushes
        afresh; so the first entry popped whose stored count is still right is the true maximum."""
        while self.heap:
            stored, pair = heapq.heappop(self.heap)
            count = self.counts.get(pair, 0)
            if count > 0 and count == -stored:
                return pair
            if count > 0:  # stale: put it back with its current count
                heapq.heappush(self.heap, (-count, pair))
        return None

    def merge(self, pair: Pair, new_id: int) -> None:
        """Merge `pair` = (a, b) into `new_id` in every chunk that holds it, as :func:`merge` does.

        Only the pairs around each merged place change: a left neighbour x turns (x, a) into
        (x, new), a right neighbour y turns (b, y) into (new, y). Where two places are adjacent
        (a b a b), the (new, a) added by the first is taken back by the second, leaving (new, new).
        """
        a, b = pair
        new_pairs: set[Pair] = set()

        def move(old: Pair, new: Pair, freq: int, w: int) -> None:
            self.counts[old] -= freq
            self.counts[new] += freq
            self.where[new].add(w)
            new_pairs.add(new)

        for w in self.where.pop(pair):
            word, freq = self.words[w], self.freqs[w]
            out, i, n = [], 0, len(word)
            while i < n:
                if word[i] == a and i + 1 < n and word[i + 1] == b:
                    if out:
                        move((out[-1], a), (out[-1], new_id), freq, w)
                    if i + 2 < n:
                        move((b, word[i + 2]), (new_id, word[i + 2]), freq, w)
                    out.append(new_id)
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            self.words[w] = out
        del self.counts[pair]
        for p in new_pairs:
            if self.counts[p] > 0:
                heapq.heappush(self.heap, (-self.counts[p], p))


def learn_merges(words: list[list[int]], freqs: list[int], vocab: list[bytes], target: int,
                  progress: bool) -> list[Pair]:
    """Merge pairs until `vocab` (extended in place) holds `target` byte strings or no pair is left."""
    from tqdm.auto import tqdm

    token_id = {token: i for i, token in enumerate(vocab)}
    index = _PairIndex(words, freqs)
    merges: list[Pair] = []
    with tqdm(total=target - len(vocab), disable=not progress, desc="BPE merges", unit="token") as bar:
        while len(vocab) < target and (pair := index.best()) is not None:
            token = vocab[pair[0]] + vocab[pair[1]]
            if token not in token_id:  # else an earlier merge spelled the same bytes: reuse its id
                token_id[token] = len(vocab)
                vocab.append(token)
                bar.update(1)
            index.merge(pair, token_id[token])
            merges.append(pair)
    return merges
