"""Diagrams of Chapter 9: three ways to classify a sentence with a pretrained model (9a), and question
answering with retrieval (9b): the question is searched in the passages with BM25, the best passages
go into SmolLM2's prompt within a token budget, and the model answers; closed-book, the question goes
to the model alone."""

from __future__ import annotations

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from lmcourse.diagrams._draw import arrow, box, canvas, legend, note, relabel, title

__all__ = ["draw_rag", "draw_classifiers"]


def draw_rag() -> Figure:
    """Chapter 9b.1: retrieval-augmented answering, left to right, with the closed-book path above."""
    fig, ax = canvas(14, 5.6)
    title(ax, 7, 5.3, "Answering a question with retrieved passages")
    question = box(ax, 1.5, 1.6, "question", "input", w=2.0)
    search = box(ax, 4.6, 1.6, "BM25 search", "other", w=2.3)
    note(ax, 4.6, 0.95, "457 passages of the test\narticles, title + text")
    passages = box(ax, 7.4, 1.6, "top 3 passages\nbest first", "state", w=2.3, h=0.8)
    prompt = box(ax, 10.4, 1.6, "prompt", "input", w=2.0)
    note(ax, 10.4, 0.75, "[1] title: passage ... [3]\nQuestion: ...\nAnswer briefly, using only\n"
                         "the passages above", size=7.5)
    note(ax, 11.55, 1.6, "at most\n1,024 tokens", ha="left")
    model = box(ax, 10.4, 3.1, "SmolLM2-135M-Instruct", "mlp", w=3.2)
    answer = box(ax, 10.4, 4.4, "answer + confidence", "out", w=3.2)
    note(ax, 8.6, 4.4, "greedy, at most 32 tokens; confidence:\nthe geometric mean of its token probabilities",
         ha="right")
    arrow(ax, question.right, search.left)
    arrow(ax, search.right, passages.left)
    arrow(ax, passages.right, prompt.left)
    arrow(ax, prompt.top, model.bottom)
    arrow(ax, model.top, answer.bottom)
    arrow(ax, question.top, (question.x, 3.1), model.left, style="--")
    note(ax, 5.4, 3.35, "closed-book: the question alone")
    legend(ax, ["input", "other", "state", "mlp", "out"])
    relabel(ax, ["question and prompt", "search", "retrieved passages", "language model", "answer"])
    return fig


def _column(ax: Axes, x: float, heading: str, steps: list[tuple[str, str]]) -> None:
    """One way to classify: a heading, then its steps bottom to top, joined by arrows."""
    note(ax, x, 6.5, heading, size=9, color="black", weight="bold")
    boxes = [box(ax, x, 0.6 + 1.15 * k, text, kind, w=3.9, h=0.72, size=8) for k, (text, kind) in enumerate(steps)]
    for lower, upper in zip(boxes, boxes[1:]):
        arrow(ax, lower.top, upper.bottom)


def draw_classifiers() -> Figure:
    """Chapter 9a.2: three ways to classify a sentence with a pretrained model: prompt a chat model and
    read its label words' probabilities (nothing trained), a classifier on a frozen encoder's sentence
    vector (the classifier trained), and fine-tuning (everything trained)."""
    fig, ax = canvas(14, 7.3)
    title(ax, 7, 7.0, "Three ways to classify a sentence with a pretrained model")
    _column(ax, 2.3, "prompting (SmolLM2)", [
        ("sentence", "input"),
        ("question + sentence\nin the chat template", "input"),
        ("SmolLM2, frozen", "other"),
        ("P(first reply token):\nkeep the label words", "state"),
        ("renormalise: label", "out")])
    _column(ax, 7.0, "frozen encoder + classifier", [
        ("sentence", "input"),
        ("MiniLM, frozen", "other"),
        ("mean of the token vectors", "state"),
        ("logistic regression,\ntrained on the fold", "mlp"),
        ("label", "out")])
    _column(ax, 11.7, "fine-tuning", [
        ("sentence", "input"),
        ("MiniLM, trained\non the fold", "mlp"),
        ("pooled [CLS] vector", "state"),
        ("linear head, trained", "mlp"),
        ("label", "out")])
    note(ax, 2.3, 6.0, "nothing trained; solved examples\nmay go into the prompt", size=7.5)
    note(ax, 7.0, 6.0, "23M parameters frozen,\n385 trained", size=7.5)
    note(ax, 11.7, 6.0, "every parameter trained", size=7.5)
    legend(ax, ["input", "other", "state", "mlp", "out"])
    relabel(ax, ["text and prompt", "frozen model", "what is read off", "trained", "label"])
    return fig
