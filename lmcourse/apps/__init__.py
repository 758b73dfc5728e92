"""Chapter 9's applications, built from the models of Chapters 3 to 8: one module per reusable piece.

- :mod:`~lmcourse.apps.passages`: the corpus cut into passages with stable ids, the collection that
  search and retrieval-augmented answering read.
- :mod:`~lmcourse.apps.questions`: questions written for the book whose answers are spans of those
  passages, for search (recall@k, MRR) and question answering.
- :mod:`~lmcourse.apps.retrieval`: exact embedding search, BM25, and the ranking measures.
- :mod:`~lmcourse.apps.prompting`: classification by a chat model's probability of each label word.
- :mod:`~lmcourse.apps.table`: ``data/applications.csv``, one row per task, method and metric.
"""
