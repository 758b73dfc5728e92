"""What every chapter's exercise tests ask of a checker: the reference passes, a stub reads as not
written yet (with no hint), and every listed wrong answer is caught."""

from lmcourse.exercises import REGISTRY, evaluate


def _stub(*args, **kwargs):
    raise NotImplementedError


def check_exercise_contract(name: str, reference) -> None:
    exercise = REGISTRY[name]
    assert 3 <= len(exercise.cases) <= 6 and all(case.label for case in exercise.cases)
    assert evaluate(name, reference).passed
    stub = str(evaluate(name, _stub))
    assert "Not written yet" in stub and "Hint" not in stub
    assert len(exercise.wrong_answers) >= 3
    caught = [label for label, fn in exercise.wrong_answers.items() if not evaluate(name, fn).passed]
    assert caught == list(exercise.wrong_answers)
