"""English-to-French sentence pairs written by code, for Chapter 9b's machine translation: a small
grammar with a lexicon, so that every French sentence is right by construction, and a held-out set
of new combinations, so that the test measures generalisation rather than memory.

A :class:`Clause` is a subject (a pronoun or a :class:`NounPhrase`), a verb in the present tense,
optionally ``not``, an object and a place (``in the garden``). :func:`english` and :func:`french`
render the same clause in each language. The French rules the grammar follows:

- gender and number agreement of determiners and adjectives (``the small black cats`` ->
  ``les petits chats noirs``; ``the small black cow`` -> ``la petite vache noire``);
- most adjectives after the noun, a few before it (``petit``, ``grand``, ``bon``, ``joli``, ``jeune``);
- the verb agrees with its subject's person and number (``je dors``, ``nous dormons``, ``ils dorment``);
- negation ``ne ... pas`` around the verb, and ``un``, ``une``, ``des`` become ``de`` after it
  (``je ne vois pas de chat``); ``des`` also becomes ``de`` before an adjective (``de petits chats``);
- elision and contraction before a vowel or a mute h (``l'oiseau``, ``j'aime``, ``n'attend``,
  ``cet hôtel``, ``mon école``, ``près du jardin``); in English ``a`` -> ``an`` before a vowel and
  ``some`` -> ``any`` after ``not``.

:func:`make_corpus` samples clauses with a seeded ``random.Random``. A share of the noun-adjective
pairs the lexicon allows (:func:`heldout_combinations`) never appears in a training sentence; every
held-out sentence holds at least one of them, so a model must put together a noun and an adjective
it has only seen apart.

:func:`load_natural_pairs` reads the other test set: 60 natural English sentences (everyday, news-like,
and about this book) with French translations written for the book (``data/mt/natural_en_fr.tsv``),
far outside the grammar, to show what a model trained on it cannot do.

Left out: other tenses, questions, ``they`` (``ils`` or ``elles``: English does not say which),
``you`` as ``tu`` (it is always ``vous``), adjectives with a third form before a vowel
(``beau``/``bel``, ``vieux``/``vieil``), and h aspiré (every h-word here is mute). Meanings are not
checked: a clause may have a blue horse.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from lmcourse._checks import check_float, check_int
from lmcourse.data import data_file

__all__ = ["Noun", "Adjective", "Verb", "NOUNS", "ADJECTIVES", "VERBS", "PRONOUNS", "DETERMINERS",
           "PREPOSITIONS", "NounPhrase", "Clause", "english", "french", "combinations", "random_clause",
           "heldout_combinations", "make_corpus", "NATURAL_FILE", "NATURAL_KINDS", "NaturalPair",
           "load_natural_pairs"]


@dataclass(frozen=True)
class Noun:
    """A noun in both languages: ``kind`` is ``person``, ``animal``, ``thing`` or ``place``."""

    english: str
    english_plural: str
    french: str
    french_plural: str
    gender: str  # "m" or "f"
    kind: str


@dataclass(frozen=True)
class Adjective:
    """An adjective: its French forms (m, f, m plural, f plural), whether it goes before the
    noun in French, and the kinds of noun it describes."""

    english: str
    forms: tuple[str, str, str, str]
    before: bool
    kinds: frozenset[str]


@dataclass(frozen=True)
class Verb:
    """A verb: English base and -s forms, French present for je, il/elle, nous, vous, ils, and
    the kinds of noun it takes as object (none: it takes no object)."""

    english: str
    english_s: str
    french: tuple[str, str, str, str, str]
    objects: frozenset[str]


def _rows(table: str) -> list[list[str]]:
    return [line.split() for line in table.strip().splitlines()]


# english, plural, French, plural, gender, kind
NOUNS: dict[str, Noun] = {row[0]: Noun(*row) for row in _rows("""
    cat       cats       chat      chats      m  animal
    dog       dogs       chien     chiens     m  animal
    bird      birds      oiseau    oiseaux    m  animal
    horse     horses     cheval    chevaux    m  animal
    cow       cows       vache     vaches     f  animal
    mouse     mice       souris    souris     f  animal
    elephant  elephants  éléphant  éléphants  m  animal
    duck      ducks      canard    canards    m  animal
    child     children   enfant    enfants    m  person
    woman     women      femme     femmes     f  person
    man       men        homme     hommes     m  person
    girl      girls      fille     filles     f  person
    boy       boys       garçon    garçons    m  person
    sister    sisters    sœur      sœurs      f  person
    book      books      livre     livres     m  thing
    apple     apples     pomme     pommes     f  thing
    car       cars       voiture   voitures   f  thing
    letter    letters    lettre    lettres    f  thing
    hat       hats       chapeau   chapeaux   m  thing
    ball      balls      balle     balles     f  thing
    cake      cakes      gâteau    gâteaux    m  thing
    flower    flowers    fleur     fleurs     f  thing
    key       keys       clé       clés       f  thing
    orange    oranges    orange    oranges    f  thing
    egg       eggs       œuf       œufs       m  thing
    bicycle   bicycles   vélo      vélos      m  thing
    garden    gardens    jardin    jardins    m  place
    house     houses     maison    maisons    f  place
    park      parks      parc      parcs      m  place
    street    streets    rue       rues       f  place
    school    schools    école     écoles     f  place
    kitchen   kitchens   cuisine   cuisines   f  place
    forest    forests    forêt     forêts     f  place
    hotel     hotels     hôtel     hôtels     m  place
""")}

_KINDS = {"all": frozenset({"animal", "person", "thing", "place"}), "living": frozenset({"animal", "person"}),
          "coloured": frozenset({"animal", "thing"}), "objects": frozenset({"animal", "person", "thing"}),
          "things": frozenset({"thing"}), "none": frozenset()}

# english; French m, f, m plural, f plural; before or after the noun; what it describes (_KINDS)
ADJECTIVES: dict[str, Adjective] = {row[0]: Adjective(row[0], (row[1], row[2], row[3], row[4]), row[5] == "before",
                                                      _KINDS[row[6]]) for row in _rows("""
    small   petit    petite    petits    petites    before  all
    big     grand    grande    grands    grandes    before  all
    good    bon      bonne     bons      bonnes     before  all
    pretty  joli     jolie     jolis     jolies     before  all
    young   jeune    jeune     jeunes    jeunes     before  living
    black   noir     noire     noirs     noires     after   coloured
    white   blanc    blanche   blancs    blanches   after   coloured
    red     rouge    rouge     rouges    rouges     after   coloured
    green   vert     verte     verts     vertes     after   coloured
    blue    bleu     bleue     bleus     bleues     after   coloured
    grey    gris     grise     gris      grises     after   coloured
    happy   heureux  heureuse  heureux   heureuses  after   living
    tired   fatigué  fatiguée  fatigués  fatiguées  after   living
""")}

# english, -s form; French je, il/elle, nous, vous, ils/elles; the objects it takes (_KINDS)
VERBS: dict[str, Verb] = {row[0]: Verb(row[0], row[1], (row[2], row[3], row[4], row[5], row[6]), _KINDS[row[7]])
                          for row in _rows("""
    sleep   sleeps   dors     dort     dormons   dormez   dorment    none
    run     runs     cours    court    courons   courez   courent    none
    sing    sings    chante   chante   chantons  chantez  chantent   none
    wait    waits    attends  attend   attendons attendez attendent  none
    eat     eats     mange    mange    mangeons  mangez   mangent    none
    play    plays    joue     joue     jouons    jouez    jouent     none
    arrive  arrives  arrive   arrive   arrivons  arrivez  arrivent   none
    see     sees     vois     voit     voyons    voyez    voient     objects
    like    likes    aime     aime     aimons    aimez    aiment     objects
    find    finds    trouve   trouve   trouvons  trouvez  trouvent   objects
    want    wants    veux     veut     voulons   voulez   veulent    things
    carry   carries  porte    porte    portons   portez   portent    things
    buy     buys     achète   achète   achetons  achetez  achètent   things
""")}

PERSONS = ("1sg", "3sg", "1pl", "2pl", "3pl")  # the order of Verb.french
PRONOUNS = {"I": ("je", "1sg"), "you": ("vous", "2pl"), "he": ("il", "3sg"), "she": ("elle", "3sg"),
            "we": ("nous", "1pl")}
# English determiner -> French (m, f, plural); "a" is "some" in the plural
DETERMINERS = {"the": ("le", "la", "les"), "a": ("un", "une", "des"), "this": ("ce", "cette", "ces"),
               "my": ("mon", "ma", "mes")}
_ENGLISH_PLURAL = {"a": "some", "this": "these"}  # the other determiners keep their form
PREPOSITIONS = {"in": "dans", "near": "près de", "behind": "derrière", "in front of": "devant"}

_FRENCH_VOWELS = tuple("aeiouyhéèêâîôœ")  # every h-word of the lexicon is mute: l'homme, l'hôtel
_ELIDED = {"le": "l'", "la": "l'", "je": "j'", "ne": "n'", "de": "d'", "ce": "cet", "ma": "mon"}


@dataclass(frozen=True)
class NounPhrase:
    """A determiner (a key of :data:`DETERMINERS`), a noun and up to one adjective of each position,
    all named by their English keys: ``NounPhrase("the", "cat", True, ("small", "black"))``."""

    determiner: str
    noun: str
    plural: bool = False
    adjectives: tuple[str, ...] = ()


@dataclass(frozen=True)
class Clause:
    """One sentence: a subject (a key of :data:`PRONOUNS` or a :class:`NounPhrase`), a verb (a key of
    :data:`VERBS`), whether it is negated, an object and a place ``(preposition, NounPhrase)``."""

    subject: str | NounPhrase
    verb: str
    negated: bool = False
    object: NounPhrase | None = None
    place: tuple[str, NounPhrase] | None = None


def _english_np(phrase: NounPhrase, after_negation: bool = False) -> list[str]:
    noun = NOUNS[phrase.noun]
    determiner = phrase.determiner
    if phrase.plural:
        determiner = _ENGLISH_PLURAL.get(determiner, determiner)
    if determiner == "some" and after_negation:
        determiner = "any"  # does not see any cats
    words = [determiner, *phrase.adjectives, noun.english_plural if phrase.plural else noun.english]
    if determiner == "a" and words[1].startswith(tuple("aeiou")):
        words[0] = "an"
    return words


def _french_np(phrase: NounPhrase, after_negation: bool = False) -> list[str]:
    noun = NOUNS[phrase.noun]
    feminine = noun.gender == "f"
    form = 2 * phrase.plural + feminine  # Adjective.forms: m, f, m plural, f plural
    before = [ADJECTIVES[a].forms[form] for a in phrase.adjectives if ADJECTIVES[a].before]
    after = [ADJECTIVES[a].forms[form] for a in phrase.adjectives if not ADJECTIVES[a].before]
    determiner = DETERMINERS[phrase.determiner][2 if phrase.plural else feminine]
    if phrase.determiner == "a" and (after_negation or (phrase.plural and before)):
        determiner = "de"  # pas de chat; de petits chats
    return [determiner, *before, noun.french_plural if phrase.plural else noun.french, *after]


def _person(subject: str | NounPhrase) -> str:
    if isinstance(subject, NounPhrase):
        return "3pl" if subject.plural else "3sg"
    return PRONOUNS[subject][1]


def english(clause: Clause) -> str:
    """The English sentence, capitalised, with a full stop.

    >>> english(Clause(NounPhrase("a", "elephant"), "see", True, NounPhrase("the", "bird", True)))
    'An elephant does not see the birds.'
    """
    subject = _english_np(clause.subject) if isinstance(clause.subject, NounPhrase) else [clause.subject]
    third_singular = _person(clause.subject) == "3sg"
    verb = VERBS[clause.verb]
    if clause.negated:
        words = [*subject, "does" if third_singular else "do", "not", verb.english]
    else:
        words = [*subject, verb.english_s if third_singular else verb.english]
    if clause.object is not None:
        words += _english_np(clause.object, after_negation=clause.negated)
    if clause.place is not None:
        words += [clause.place[0], *_english_np(clause.place[1])]
    text = " ".join(words)
    return text[0].upper() + text[1:] + "."


def _french_spelling(words: list[str]) -> list[str]:
    """Elide and contract from the right, so each word sees the final form of the next:
    ``de le jardin`` -> ``du jardin``, ``de le arbre`` -> ``de l'arbre``, ``je ne aime`` -> ``je n'aime``."""
    out: list[str] = []
    for word in reversed(words):
        following = out[-1] if out else ""
        if word == "de" and following in ("le", "les"):
            out[-1] = "du" if following == "le" else "des"
            continue
        out.append(_ELIDED.get(word, word) if following.startswith(_FRENCH_VOWELS) else word)
    return out[::-1]


def french(clause: Clause) -> str:
    """The French sentence, capitalised, with a full stop.

    >>> french(Clause(NounPhrase("the", "cat", True, ("small", "black")), "sleep"))
    'Les petits chats noirs dorment.'
    >>> french(Clause("I", "like", True, NounPhrase("a", "egg"), ("near", NounPhrase("the", "garden"))))
    "Je n'aime pas d'œuf près du jardin."
    """
    if isinstance(clause.subject, NounPhrase):
        words = _french_np(clause.subject)
    else:
        words = [PRONOUNS[clause.subject][0]]
    verb = VERBS[clause.verb].french[PERSONS.index(_person(clause.subject))]
    words += ["ne", verb, "pas"] if clause.negated else [verb]
    if clause.object is not None:
        words += _french_np(clause.object, after_negation=clause.negated)
    if clause.place is not None:
        words += [*PREPOSITIONS[clause.place[0]].split(), *_french_np(clause.place[1])]
    text = " ".join(_french_spelling(words)).replace("' ", "'")
    return text[0].upper() + text[1:] + "."


def combinations(clause: Clause) -> set[tuple[str, str]]:
    """The (noun, adjective) pairs the clause puts together.

    >>> sorted(combinations(Clause(NounPhrase("the", "cat", True, ("small", "black")), "sleep")))
    [('cat', 'black'), ('cat', 'small')]
    """
    phrases = [clause.subject, clause.object, clause.place[1] if clause.place else None]
    return {(phrase.noun, a) for phrase in phrases if isinstance(phrase, NounPhrase) for a in phrase.adjectives}


def _random_np(rng: random.Random, kinds: frozenset[str], plural_ok: bool = True) -> NounPhrase:
    noun = rng.choice([n for n in NOUNS.values() if n.kind in kinds])
    adjectives = []
    for before in (True, False):
        allowed = [a.english for a in ADJECTIVES.values() if a.before == before and noun.kind in a.kinds]
        if allowed and rng.random() < 0.4:
            adjectives.append(rng.choice(allowed))
    return NounPhrase(rng.choice(list(DETERMINERS)), noun.english, plural_ok and rng.random() < 0.4,
                      tuple(adjectives))


def random_clause(rng: random.Random) -> Clause:
    """A random clause: a pronoun subject a quarter of the time, negated a quarter of the time, a
    place 40% of the time; each noun phrase has a before-adjective and an after-adjective 40% of the
    time each (where the noun's kind allows one)."""
    subject = rng.choice(list(PRONOUNS)) if rng.random() < 0.25 else _random_np(rng, _KINDS["living"])
    verb = rng.choice(list(VERBS.values()))
    obj = _random_np(rng, verb.objects) if verb.objects else None
    place = ((rng.choice(list(PREPOSITIONS)), _random_np(rng, frozenset({"place"}), plural_ok=False))
             if rng.random() < 0.4 else None)
    return Clause(subject, verb.english, rng.random() < 0.25, obj, place)


def heldout_combinations(share: float = 0.2, seed: int = 0) -> set[tuple[str, str]]:
    """A random `share` (rounded) of the 298 (noun, adjective) pairs the lexicon allows, for the
    held-out set only.

    >>> len(heldout_combinations()), len(heldout_combinations(0.5))
    (60, 149)
    """
    check_float("share", share, 0.0, 1.0, low_open=True)
    allowed = [(n.english, a.english) for n in NOUNS.values() for a in ADJECTIVES.values() if n.kind in a.kinds]
    return set(random.Random(seed).sample(allowed, round(share * len(allowed))))


def make_corpus(n_train: int = 6000, n_test: int = 500, seed: int = 0, share: float = 0.2
                ) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Distinct (English, French) pairs ``(train, test)``. No training sentence holds a pair of
    :func:`heldout_combinations` (`share`, `seed`); every test sentence holds at least one. The same
    arguments give the same pairs.

    >>> train, test = make_corpus(3, 2)
    >>> train[0]
    ('My tired boy eats.', 'Mon garçon fatigué mange.')
    >>> test[0]  # "good apple" is a held-out pair
    ('He likes this good apple.', 'Il aime cette bonne pomme.')
    """
    check_int("n_train", n_train, 1)
    check_int("n_test", n_test, 1)
    heldout = heldout_combinations(share, seed)
    if not heldout:
        raise ValueError(f"share={share} holds out no noun-adjective pair, so no test sentence can be made; "
                         f"use a larger share (0.2 by default)")
    rng = random.Random(seed)
    train: dict[str, str] = {}
    test: dict[str, str] = {}
    while len(train) < n_train or len(test) < n_test:
        clause = random_clause(rng)
        split = test if combinations(clause) & heldout else train
        if len(split) < (n_test if split is test else n_train):
            split.setdefault(english(clause), french(clause))
    return list(train.items()), list(test.items())


NATURAL_FILE = "mt/natural_en_fr.tsv"
NATURAL_KINDS = ("everyday", "news", "book")
_NATURAL_HEADER = "kind\tenglish\tfrench"


class NaturalPair(NamedTuple):
    """A natural sentence and its reference translation; `kind` is one of :data:`NATURAL_KINDS`."""

    kind: str
    english: str
    french: str


def load_natural_pairs(path: str | Path | None = None) -> list[NaturalPair]:
    """The natural test sentences in file order. `path`: a UTF-8 file whose lines are three fields
    separated by tabs, ``kind``, ``english``, ``french``, the first line being those three names
    (default: the book's 60).

    >>> pairs = load_natural_pairs()
    >>> len(pairs), pairs[0].kind, pairs[0].french
    (60, 'everyday', "Pourriez-vous fermer la fenêtre, s'il vous plaît ?")
    """
    path = data_file(NATURAL_FILE) if path is None else Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no sentence file at {path}: expected tab-separated lines kind, english, french")
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines or lines[0] != _NATURAL_HEADER:
        raise ValueError(f"{path}, line 1: expected the header {_NATURAL_HEADER!r}, got {(lines or [''])[0]!r:.80}")
    pairs = []
    for number, line in enumerate(lines[1:], start=2):
        fields = line.split("\t")
        if len(fields) != 3 or fields[0] not in NATURAL_KINDS or not all(f.strip() for f in fields):
            raise ValueError(f"{path}, line {number}: expected 3 tab-separated fields (a kind in {NATURAL_KINDS}, "
                             f"an English sentence, its French translation), got {line!r:.100}")
        pairs.append(NaturalPair(*fields))
    if not pairs:
        raise ValueError(f"{path} holds no sentences")
    return pairs
