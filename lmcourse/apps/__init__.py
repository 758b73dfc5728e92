"""Chapter 9's applications, built from the models of Chapters 3 to 8: one module per reusable piece.

- :mod:`~lmcourse.apps.passages`: the corpus cut into passages with stable ids, the collection that
  search and retrieval-augmented answering read.
- :mod:`~lmcourse.apps.questions`: questions written for the book whose answers are spans of those
  passages, for search (recall@k, MRR) and question answering.
- :mod:`~lmcourse.apps.retrieval`: exact embedding search, BM25, and the ranking measures.
- :mod:`~lmcourse.apps.rag`: retrieval-augmented answering in a token budget, with SQuAD-style scoring.
- :mod:`~lmcourse.apps.prompting`: classification by a chat model's probability of each label word.
- :mod:`~lmcourse.apps.spam`: the SMS Spam Collection, its split, and what a filter's errors cost.
- :mod:`~lmcourse.apps.summarise`: lead-as-reference summary pairs, extractive and prompted summaries,
  ROUGE, and names and numbers a summary has that its source lacks.
- :mod:`~lmcourse.apps.translation` and :mod:`~lmcourse.apps.translators`: an English-French grammar
  with held-out combinations and 60 hand-written sentences; a seq2seq translator, a prompt, chrF and BLEU.
- :mod:`~lmcourse.apps.recommend`: simulated reading histories, popularity and similarity recommenders, hit rate@k.
- :mod:`~lmcourse.apps.chatbot`: a chat session whose memory is bounded by a token budget, with streaming.
- :mod:`~lmcourse.apps.table`: ``data/applications.csv``, one row per task, method and metric.
"""
