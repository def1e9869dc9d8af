"""Evaluation of Citeline against gold question-answer sets (`python -m eval`)."""
