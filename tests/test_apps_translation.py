"""lmcourse.apps.translation and lmcourse.apps.translators: the grammar's French against sentences
worked by hand, a held-out split that really holds unseen noun-adjective pairs, the natural test
set and its loader, scores equal to sacrebleu's own, and a short real training run."""

from __future__ import annotations

import hashlib
from collections import Counter

import pytest
import sacrebleu
import torch

from lmcourse.apps.translation import (ADJECTIVES, NOUNS, Clause, NounPhrase, english, french, heldout_combinations,
                                       load_natural_pairs, make_corpus)
from lmcourse.apps.translators import (WordVocab, chat_translate, corpus_scores, detokenize, first_line, tokenize,
                                       train_translator, translate, translation_messages, translator_train_config)
from lmcourse.data import data_file
from lmcourse.seq2seq import BOS_ID, EOS_ID, PAD_ID

NP = NounPhrase
HAND_WORKED = [  # (clause, English, French), the French worked out by hand
    (Clause(NP("the", "cat", True, ("small", "black")), "sleep"),
     "The small black cats sleep.", "Les petits chats noirs dorment."),
    (Clause(NP("the", "cow", False, ("small", "black")), "sleep"), "The small black cow sleeps.",
     "La petite vache noire dort."),
    (Clause(NP("a", "mouse", True, ("grey",)), "run"), "Some grey mice run.", "Des souris grises courent."),
    (Clause(NP("a", "sister", True, ("pretty", "happy")), "sing"), "Some pretty happy sisters sing.",
     "De jolies sœurs heureuses chantent."),  # des -> de before an adjective
    (Clause("I", "see", True, NP("a", "cat")), "I do not see a cat.", "Je ne vois pas de chat."),
    (Clause("she", "want", True, NP("a", "egg", True)), "She does not want any eggs.", "Elle ne veut pas d'œufs."),
    (Clause("we", "wait", True), "We do not wait.", "Nous n'attendons pas."),
    (Clause("I", "like", False, NP("the", "orange")), "I like the orange.", "J'aime l'orange."),
    (Clause(NP("the", "man"), "run", place=("near", NP("the", "garden"))), "The man runs near the garden.",
     "L'homme court près du jardin."),
    (Clause(NP("a", "elephant"), "arrive", place=("near", NP("the", "hotel"))), "An elephant arrives near the hotel.",
     "Un éléphant arrive près de l'hôtel."),
    (Clause(NP("this", "bird"), "play", place=("in", NP("my", "school"))), "This bird plays in my school.",
     "Cet oiseau joue dans mon école."),
    (Clause(NP("a", "elephant", False, ("small",)), "eat",
            place=("in front of", NP("my", "school", False, ("small",)))),
     "A small elephant eats in front of my small school.", "Un petit éléphant mange devant ma petite école."),
    (Clause(NP("this", "horse", True, ("white",)), "find", False, NP("the", "ball", True, ("good", "red"))),
     "These white horses find the good red balls.", "Ces chevaux blancs trouvent les bonnes balles rouges."),
    (Clause("you", "buy", True, NP("my", "bicycle", False, ("blue",)), ("behind", NP("the", "house"))),
     "You do not buy my blue bicycle behind the house.", "Vous n'achetez pas mon vélo bleu derrière la maison."),
    (Clause(NP("the", "girl", True, ("young", "tired")), "carry", False, NP("a", "apple", True)),
     "The young tired girls carry some apples.", "Les jeunes filles fatiguées portent des pommes."),
]


@pytest.mark.parametrize("clause, english_text, french_text", HAND_WORKED)
def test_the_grammar_writes_the_hand_worked_sentences(clause, english_text, french_text):
    assert english(clause) == english_text
    assert french(clause) == french_text


def test_the_corpus_is_deterministic_and_pinned():
    train, test = make_corpus()
    assert (len(train), len(test)) == (6000, 500)
    assert make_corpus(50, 20, seed=3) == make_corpus(50, 20, seed=3) != make_corpus(50, 20, seed=4)
    text = "".join(f"{e}\t{f}\n" for e, f in train + test).encode("utf-8")
    assert hashlib.sha256(text).hexdigest() == CORPUS_SHA256  # as in data/README.md


def _combinations_in_text(sentence: str) -> set[tuple[str, str]]:
    """(noun, adjective) pairs read off an English sentence without the grammar's structures: an
    adjective, maybe a second one, then a noun."""
    nouns = {form: key for key, noun in NOUNS.items() for form in (noun.english, noun.english_plural)}
    words = sentence.lower().rstrip(".").split()
    found = set()
    for i, word in enumerate(words):
        j = i + 1
        while word in ADJECTIVES and j < len(words) and words[j] in ADJECTIVES:
            j += 1
        if word in ADJECTIVES and j < len(words) and words[j] in nouns:
            found.add((nouns[words[j]], word))
    return found


def test_the_held_out_sentences_hold_combinations_never_seen_in_training():
    train, test = make_corpus()
    heldout = heldout_combinations()
    seen = set().union(*(_combinations_in_text(e) for e, _ in train))
    assert not seen & heldout
    assert all(_combinations_in_text(e) & heldout for e, _ in test)
    assert not {e for e, _ in train} & {e for e, _ in test}
    train_words = {w for e, _ in train for w in e.lower().rstrip(".").split()}
    assert {a for _, a in heldout} <= train_words  # each word is known; only its pairing is new
    assert {NOUNS[n].english for n, _ in heldout} <= train_words
    assert {NOUNS[n].english_plural for n, _ in heldout if NOUNS[n].kind != "place"} <= train_words  # places: singular
    assert heldout_combinations() == heldout != heldout_combinations(seed=1)


def test_the_natural_set_loads_and_bad_lines_are_refused(tmp_path):
    pairs = load_natural_pairs()
    assert len(pairs) == 60 and Counter(p.kind for p in pairs) == {"everyday": 25, "news": 20, "book": 15}
    assert len({p.english for p in pairs}) == 60
    digest = hashlib.sha256(data_file("mt/natural_en_fr.tsv").read_bytes()).hexdigest()
    assert digest == NATURAL_SHA256  # as in data/README.md
    path = tmp_path / "pairs.tsv"
    path.write_text("kind\tenglish\tfrench\nnews\tIt rains.\tIl pleut.\n", encoding="utf-8")
    assert load_natural_pairs(path) == [("news", "It rains.", "Il pleut.")]
    for text, message in [("kind,english,french\n", "line 1: expected the header"),
                          ("kind\tenglish\tfrench\nnews\tIt rains. Il pleut.\n", "line 2: expected 3 tab-separated"),
                          ("kind\tenglish\tfrench\nnews\tIt rains.\tIl pleut.\npoem\tA.\tB.\n", "line 3: expected 3"),
                          ("kind\tenglish\tfrench\nnews\tIt rains.\t \n", "line 2: expected 3"),
                          ("kind\tenglish\tfrench\n", "holds no sentences")]:
        path.write_text(text, encoding="utf-8")
        with pytest.raises(ValueError, match=message):
            load_natural_pairs(path)
    with pytest.raises(FileNotFoundError, match="no sentence file"):
        load_natural_pairs(tmp_path / "missing.tsv")


def test_scores_are_sacrebleus_and_a_perfect_translation_scores_100():
    references = [p.french for p in load_natural_pairs()[:12]]
    hypotheses = [" ".join(reversed(r.split())) if i % 3 else r for i, r in enumerate(references)]
    scores = corpus_scores(hypotheses, references)
    assert scores.chrf == sacrebleu.CHRF().corpus_score(hypotheses, [references]).score
    assert scores.bleu == sacrebleu.BLEU().corpus_score(hypotheses, [references]).score
    assert scores.sentence_chrf == [sacrebleu.CHRF().sentence_score(h, [r]).score
                                    for h, r in zip(hypotheses, references)]
    assert 0 < scores.bleu < scores.chrf < 100
    perfect = corpus_scores(references, references)
    assert perfect.chrf == pytest.approx(100.0) and perfect.bleu == pytest.approx(100.0)
    assert perfect.sentence_chrf == pytest.approx([100.0] * len(references))
    # sacrebleu's own bootstrap: an interval around the score, the same on every run, narrower for more sentences
    for low, score, high in [(*scores.chrf_interval[:1], scores.chrf, scores.chrf_interval[1]),
                             (*scores.bleu_interval[:1], scores.bleu, scores.bleu_interval[1])]:
        assert low < score < high
    assert corpus_scores(hypotheses, references) == scores
    more = corpus_scores(hypotheses * 8, references * 8)
    assert more.chrf == pytest.approx(scores.chrf)
    assert more.chrf_interval[1] - more.chrf_interval[0] < scores.chrf_interval[1] - scores.chrf_interval[0]
    assert scores.signature.startswith("chrF2|nrefs:1|bs:1000|seed:12345|") and "; BLEU|nrefs:1|bs:1000" in scores.signature
    # near a perfect score sacrebleu's symmetric interval passes 100; the scores' range clips it
    nearly = corpus_scores(references[:-1] + hypotheses[-1:], references)
    assert nearly.chrf_interval[1] == 100.0 and nearly.bleu_interval[1] <= 100.0
    assert nearly.chrf_interval[0] < nearly.chrf < 100.0
    with pytest.raises(ValueError, match="n_bootstrap"):
        corpus_scores(hypotheses, references, n_bootstrap=1)
    with pytest.raises(ValueError, match="one reference per hypothesis"):
        corpus_scores(hypotheses, references[:-1])
    with pytest.raises(TypeError, match="list of str"):
        corpus_scores("Le chat.", "Le chat.")


def test_words_round_trip_and_unknown_words_become_unk():
    train, test = make_corpus(300, 50)
    for sentence in [s for pair in train + test for s in pair]:
        assert detokenize(tokenize(sentence)) == sentence
    vocab = WordVocab.from_texts(s for pair in train for s in pair)
    assert [vocab.stoi[t] for t in ("<pad>", "<s>", "</s>")] == [PAD_ID, BOS_ID, EOS_ID]  # Chapter 4a's ids
    assert vocab.decode(vocab.encode(train[0][1]) + [2, 5]) == train[0][1]  # stops at </s>
    assert vocab.encode("The zebra sleeps.") == [vocab.stoi["the"], WordVocab.UNK_ID, vocab.stoi["sleeps"],
                                                 vocab.stoi["."]]
    with pytest.raises(ValueError, match="distinct"):
        WordVocab(["chat", "chat"])


def test_a_short_training_run_lowers_the_loss():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train, test = make_corpus(400, 20)
        config = translator_train_config(max_steps=60, warmup_steps=5, batch_size=32, lr=1e-2)
        translator = train_translator(train, config, emb_dim=32, hidden_dim=48, attention_dim=32)
        losses = translator.history.train_loss
        assert translator.history.steps == 60 and sum(losses[-5:]) < 0.5 * sum(losses[:5])  # 5.4 -> 1.7
        outputs = translate(translator, [e for e, _ in test] + ["Zebras dance."])
        assert len(outputs) == 21 and all(isinstance(o, str) for o in outputs)
    finally:
        torch.set_num_threads(threads)
    with pytest.raises(ValueError, match="no words"):
        translate(translator, ["  "])


def test_the_prompt_and_the_chat_translation():
    from lmcourse.llama import Llama, LlamaConfig, chat
    from tests.test_sft import byte_chat_tokenizer

    messages = translation_messages("  The cat sleeps. ")
    assert [m["role"] for m in messages] == ["user"] and messages[0]["content"].endswith("\n\nThe cat sleeps.")
    assert "French" in messages[0]["content"]
    assert first_line('"Le chat dort."\n\nThis sentence means that the cat is asleep.') == "Le chat dort."
    torch.manual_seed(0)
    model, tokenizer = Llama(LlamaConfig.tiny(vocab_size=259, context_length=256)).eval(), byte_chat_tokenizer()
    sentences = ["The cat sleeps.", "A dog.", "The old man reads a long book."]
    one_by_one = [first_line(chat(translation_messages(s), model=model, tokenizer=tokenizer, max_tokens=8).text)
                  for s in sentences]
    assert chat_translate(sentences, model=model, tokenizer=tokenizer, max_tokens=8, batch_size=2) == one_by_one
    with pytest.raises(ValueError, match="non-empty"):
        translation_messages(" ")


CORPUS_SHA256 = "f9edeeef45e3fd283707ca9db2f4680cb4bd4f51bfddcfb82dc1cf48e8c49f10"
NATURAL_SHA256 = "a067952cafea21809e40656fa77917a9fafd0d2c295e71a6f36ca467a424040e"
