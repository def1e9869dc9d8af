"""`python -m eval.train_answerer`: fit the answer scorer on realtimeqa-2024 and write it to rag/models/.

Every question of the training dataset is asked as the app asks it (the product's retrieval,
neighbouring sentences, story copies); each candidate sentence of the passages read is labelled
by whether it holds an accepted answer. A LightGBM model is fitted on the questions before
VALIDATION_FROM (about eight months of weekly quizzes) and judged on the rest; the refusal
threshold is the one that declines at most FALSE_REFUSAL_BUDGET of the validation questions.
Fixed seeds, one thread and a deterministic build: the same data gives the same files, bit for
bit. realtimeqa-2023q1, SQuAD and the seed set play no part here; they are for reporting.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from eval.datasets import VALIDATION_FROM, GoldQuestion, every_nth, iso_date
from eval.metrics import contains_answer, f1
from eval.training import DENSE_SEARCH, QUESTION_STRIDE, REPRODUCIBLE, open_index, training_parser
from rag.answer_features import Candidate
from rag.config import Settings
from rag.fusion_model import MODEL_FILE as FUSION_MODEL_FILE
from rag.fusion_model import MODELS_DIR as FUSION_MODELS_DIR
from rag.lexical import TOKEN, stem

FALSE_REFUSAL_BUDGET = 0.10
ROUNDS = 300
SPAN_RIGHT_F1 = 0.5
MIN_ANSWERING_COVERAGE = 0.3
MONOTONE_UP = frozenset(
    """similarity similarity_gap neighbour_similarity coverage context_coverage coverage_gap title_coverage
    bigrams has_type completed_by_next named_share hand_score document_best_similarity
    document_best_coverage""".split()
)
MONOTONE_DOWN = frozenset("similarity_rank coverage_rank missing_idf missing_idf_own missing_share".split())
SWAP_OFFSET = 7  # the donor of a swapped question's name: the question this many places on
SWAPPED = "~swapped"
TRAIN_ON_SWAPPED = True
PARAMS: dict[str, Any] = {
    "objective": "binary",
    "learning_rate": 0.03,
    "num_leaves": 15,
    "min_data_in_leaf": 40,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    **REPRODUCIBLE,
}


@dataclass(frozen=True)
class QuestionTable:
    """One training question: its candidates' features and labels, and the spans of the
    candidates that hold an answer with theirs."""

    id: str
    date: str  # ISO
    rows: np.ndarray
    labels: np.ndarray  # 1 where the candidate holds an accepted answer
    span_rows: np.ndarray  # spans of the answer-holding candidates, as answer_spans.span_features
    span_f1: np.ndarray  # each span's F1 against the accepted answers
    span_sentence: np.ndarray  # which answer-holding candidate (0, 1, ...) each span comes from
    sentence_f1: np.ndarray  # F1 of each answer-holding candidate's whole text


def split(tables: Sequence[QuestionTable], validation_from: str = VALIDATION_FROM) -> tuple[list, list]:
    """Training questions (before the date) and validation questions (from it)."""
    train = [t for t in tables if t.date < validation_from]
    return train, [t for t in tables if t.date >= validation_from]


def stacked(tables: Sequence[QuestionTable]) -> tuple[np.ndarray, np.ndarray]:
    from rag.answer_features import FEATURES

    rows = [t.rows for t in tables if len(t.rows)]
    if not rows:
        return np.zeros((0, len(FEATURES))), np.zeros(0)
    return np.vstack(rows), np.concatenate([t.labels for t in tables if len(t.rows)])


def _boost(
    rows: np.ndarray, labels: np.ndarray, names: Sequence[str], rounds: int, params: dict[str, Any] | None
) -> Any:
    import lightgbm

    dataset = lightgbm.Dataset(rows, labels, feature_name=list(names), free_raw_data=False)
    return lightgbm.train({**PARAMS, **(params or {})}, dataset, num_boost_round=rounds)


def fit(tables: Sequence[QuestionTable], rounds: int = ROUNDS, params: dict[str, Any] | None = None) -> Any:
    """The sentence scorer fitted on the tables' candidates (deterministic for the same tables).

    A candidate counts as answering when it holds an accepted answer and its context holds at
    least MIN_ANSWERING_COVERAGE of the question's weighted terms (an answer like "Florida"
    occurs in many sentences that answer something else); the scorer may only rise with the
    signals of support in MONOTONE_UP and fall with those in MONOTONE_DOWN."""
    from rag.answer_features import FEATURES

    rows, labels = stacked(tables)
    if len(rows):
        labels = labels * (rows[:, FEATURES.index("context_coverage")] >= MIN_ANSWERING_COVERAGE)
    monotone = [1 if f in MONOTONE_UP else -1 if f in MONOTONE_DOWN else 0 for f in FEATURES]
    return _boost(rows, labels, FEATURES, rounds, {"monotone_constraints": monotone, **(params or {})})


def fit_spans(tables: Sequence[QuestionTable], rounds: int = ROUNDS, params: dict[str, Any] | None = None) -> Any:
    """The span scorer, fitted on the spans of answer-holding sentences (a span is right when
    its F1 against an accepted answer is at least SPAN_RIGHT_F1)."""
    from rag.answer_spans import SPAN_FEATURES

    rows = np.vstack([t.span_rows for t in tables if len(t.span_rows)])
    labels = np.concatenate([t.span_f1 for t in tables if len(t.span_rows)]) >= SPAN_RIGHT_F1
    return _boost(rows, labels.astype(np.float64), SPAN_FEATURES, rounds, params)


def span_choices(booster: Any, tables: Sequence[QuestionTable]) -> list[tuple[float, float, float]]:
    """Per answer-holding sentence: the best span's probability, its F1, and the whole sentence's F1."""
    choices = []
    for table in tables:
        if not len(table.span_rows):
            continue
        probabilities = booster.predict(table.span_rows, num_threads=1)
        for sentence, whole in enumerate(table.sentence_f1):
            members = np.flatnonzero(table.span_sentence == sentence)
            if not len(members):
                continue
            best = members[int(np.argmax(probabilities[members]))]
            choices.append((float(probabilities[best]), float(table.span_f1[best]), float(whole)))
    return choices


def choose_span_threshold(choices: Sequence[tuple[float, float, float]]) -> tuple[float, float]:
    """The span probability above which the span beats the whole sentence on mean F1, and that F1."""
    if not choices:
        return 1.0, 0.0
    candidates = sorted({0.0, *(p for p, _, _ in choices)})

    def mean_f1(threshold: float) -> float:
        return sum(f if p >= threshold else whole for p, f, whole in choices) / len(choices)

    best = max(candidates, key=lambda t: (mean_f1(t), -t))
    return best, mean_f1(best)


def best_probabilities(booster: Any, tables: Sequence[QuestionTable]) -> list[tuple[float, bool, bool]]:
    """Per question: the best candidate's probability, whether that candidate holds an answer,
    and whether any candidate does."""
    found = []
    for table in tables:
        if not len(table.rows):
            found.append((0.0, False, False))
            continue
        probabilities = booster.predict(table.rows, num_threads=1)
        best = int(np.argmax(probabilities))
        found.append((float(probabilities[best]), bool(table.labels[best]), bool(table.labels.any())))
    return found


def choose_threshold(best: Sequence[float], budget: float = FALSE_REFUSAL_BUDGET) -> float:
    """The highest threshold that declines at most `budget` of the questions (all of which
    have an accepted answer): below it the assistant declines."""
    ordered = sorted(best)
    allowed = int(np.floor(budget * len(ordered)))
    if allowed == 0:
        return 0.0
    # Declined are those strictly below the threshold: the allowed-th smallest value is the first kept.
    return float(ordered[allowed])


def figures(booster: Any, tables: Sequence[QuestionTable], threshold: float) -> dict[str, float]:
    """Question-level figures of the scorer alone (the best sentence, before the answerer's rules)."""
    best = best_probabilities(booster, tables)
    n = len(best) or 1
    reachable = [b for b in best if b[2]]
    answered = [b for b in best if b[0] >= threshold]
    return {
        "questions": len(best),
        "answer_in_candidates": round(len(reachable) / n, 4),
        "best_sentence_holds_answer": round(sum(b[1] for b in best) / n, 4),
        "best_sentence_holds_answer_when_reachable": round(sum(b[1] for b in reachable) / (len(reachable) or 1), 4),
        "answered_and_right": round(sum(b[1] for b in answered) / n, 4),
        "declined": round(1 - len(answered) / n, 4),
    }


def _file_hash(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()[:12] if path.exists() else ""


def _key(dataset_fingerprint: str, settings: Settings) -> str:
    from rag.answer_model import feature_code_hash

    key = {
        "dataset": dataset_fingerprint,
        "index": settings.index_shape(),
        "question_embedding_backend": settings.question_embedding_backend,
        "ranker": _file_hash(FUSION_MODELS_DIR / FUSION_MODEL_FILE),  # the retrieval the tables come from
        "retrieval": [
            settings.retrieval,
            settings.top_k,
            settings.fusion_depth,
            settings.fusion_dense_weight,
            settings.fusion_lexical_weight,
            settings.fusion_recency_weight,
            settings.fusion_rrf_constant,
        ],
        "features": feature_code_hash(),
        "dense_search": DENSE_SEARCH,
    }
    return hashlib.sha1(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:12]


_NAME_OR_NUMBER = re.compile(r"\b(?:[A-Z][\w’'-]+|\d[\d,.]*\d|\d)\b")


def swapped(question: str, donor: str, idf: Callable[[str], float]) -> str | None:
    """The question with its rarest name or number (not its first word) replaced by the donor
    question's rarest one: a question about the same story that its articles do not answer
    ("Who beat Luke Humphries ..." for "Who beat Luke Littler ..."). None when either has none."""

    def rarest(text: str, skip: set[str]) -> re.Match[str] | None:
        found = [m for m in _NAME_OR_NUMBER.finditer(text) if m.start() > 0 and stem(m.group(0)) not in skip]
        return max(found, key=lambda m: (idf(stem(m.group(0))), -m.start()), default=None)

    own = rarest(question, set())
    other = rarest(donor, {stem(w) for w in TOKEN.findall(question)})
    if own is None or other is None:
        return None
    return question[: own.start()] + other.group(0) + question[own.end() :]


def collect(
    dataset_path: Path,
    settings: Settings,
    index_dir: Path,
    cache_dir: Path,
    limit: int | None = None,
    stride: int = QUESTION_STRIDE,
) -> list[QuestionTable]:
    """Every question's candidate table, from the cache when the data, index settings and
    feature code are unchanged."""
    from tqdm import tqdm

    from eval.datasets import load_dataset

    dataset = every_nth(load_dataset(dataset_path, settings.corpus_dir, limit), stride)
    cache = cache_dir / f"{dataset.name}-{_key(dataset.fingerprint(), settings)}.npz"
    if cache.exists():
        print(f"features: reusing {cache}")
        return _read_cache(cache)
    assistant = open_index(dataset, settings, index_dir)  # not warm_up: that loads the scorer this makes
    tables = []
    for question in tqdm(dataset.questions, desc="candidates", unit="q", file=sys.stderr, disable=None):
        passages = assistant.passages(question.question)
        table = assistant.answerer.candidate_table(question.question, passages)
        labels = np.array([contains_answer(c.text, question.answers) for c in table.found], dtype=np.float64)
        tables.append(question_table(question, table.found, table.rows, labels))
    # Questions about the same stories that their articles do not answer, all candidates wrong.
    for question, donor in zip(dataset.questions, dataset.questions[SWAP_OFFSET:] + dataset.questions[:SWAP_OFFSET]):
        changed = swapped(question.question, donor.question, assistant.idf)
        if changed is None:
            continue
        table = assistant.answerer.candidate_table(changed, assistant.passages(changed))
        gold = GoldQuestion(question.id + SWAPPED, changed, (), answerable=False, date=question.date)
        tables.append(question_table(gold, table.found, table.rows, np.zeros(len(table.found))))
    cache.parent.mkdir(parents=True, exist_ok=True)
    _write_cache(cache, tables)
    return tables


def question_table(
    question: GoldQuestion, found: Sequence[Candidate], rows: np.ndarray, labels: np.ndarray
) -> QuestionTable:
    """The question's candidates and the spans of those that hold an answer, labelled."""
    from rag.answer_spans import SPAN_FEATURES, candidate_spans, span_features

    span_rows, span_f1, span_sentence, sentence_f1 = [], [], [], []
    for candidate in (c for c, label in zip(found, labels) if label):
        spans = candidate_spans(candidate.text, question.question)
        if not spans:
            continue
        span_rows.append(span_features(question.question, candidate.text, spans))
        span_f1.extend(f1(candidate.text[s:e], question.answers) for s, e in spans)
        span_sentence.extend([len(sentence_f1)] * len(spans))
        sentence_f1.append(f1(candidate.text, question.answers))
    return QuestionTable(
        question.id,
        iso_date(question.date),
        rows,
        labels,
        np.vstack(span_rows) if span_rows else np.zeros((0, len(SPAN_FEATURES))),
        np.array(span_f1, dtype=np.float64),
        np.array(span_sentence, dtype=np.int64),
        np.array(sentence_f1, dtype=np.float64),
    )


# The cache keeps each field of every table end to end; a group's fields share one length per
# table, recorded under the group's name.
_CACHE_GROUPS = (
    ("sizes", ("rows", "labels")),
    ("span_sizes", ("span_rows", "span_f1", "span_sentence")),
    ("sentence_sizes", ("sentence_f1",)),
)


def _write_cache(path: Path, tables: Sequence[QuestionTable]) -> None:
    arrays: dict[str, np.ndarray] = {
        "ids": np.array([t.id for t in tables]),
        "dates": np.array([t.date for t in tables]),
    }
    for sizes, fields in _CACHE_GROUPS:
        arrays[sizes] = np.array([len(getattr(t, fields[0])) for t in tables])
        for name in fields:
            arrays[name] = np.concatenate([getattr(t, name) for t in tables])
    np.savez_compressed(path, **arrays)


def _read_cache(path: Path) -> list[QuestionTable]:
    data = np.load(path)
    tables = []
    offsets = dict.fromkeys((sizes for sizes, _ in _CACHE_GROUPS), 0)
    for i, (question_id, date) in enumerate(zip(data["ids"], data["dates"])):
        parts: dict[str, np.ndarray] = {}
        for sizes, fields in _CACHE_GROUPS:
            start, size = offsets[sizes], int(data[sizes][i])
            for name in fields:
                parts[name] = data[name][start : start + size]
            offsets[sizes] = start + size
        tables.append(QuestionTable(str(question_id), str(date), **parts))
    return tables


def write_model(booster: Any, span_booster: Any, meta: dict[str, Any], folder: Path) -> None:
    """The models' text and their record, written so the same fit gives the same bytes."""
    from rag.answer_model import META_FILE, MODEL_FILE, SPAN_MODEL_FILE
    from rag.model_files import write_model_files

    write_model_files(folder, META_FILE, {MODEL_FILE: booster, SPAN_MODEL_FILE: span_booster}, meta)


def meta_for(settings: Settings, threshold: float, trained_on: dict[str, Any]) -> dict[str, Any]:
    from rag.answer_features import FEATURES
    from rag.answer_model import feature_code_hash
    from rag.answer_spans import SPAN_FEATURES

    return {
        "features": list(FEATURES),
        "span_features": list(SPAN_FEATURES),
        "feature_code": feature_code_hash(),
        "embedding_model": settings.embedding_model,
        "embedding_backend": settings.embedding_backend,
        "question_embedding_backend": settings.question_embedding_backend,
        "threshold": round(threshold, 6),
        "params": PARAMS,
        "rounds": ROUNDS,
        "min_answering_coverage": MIN_ANSWERING_COVERAGE,
        **trained_on,
    }


def main(argv: Sequence[str] | None = None) -> int:
    from rag.answer_model import MODELS_DIR

    parser = training_parser("python -m eval.train_answerer", __doc__.splitlines()[0], MODELS_DIR)
    parser.add_argument(
        "--limit", type=int, default=None, help="first N questions only (a quick trial, not the shipped model)"
    )
    args = parser.parse_args(argv)
    settings = Settings()
    tables = collect(args.dataset, settings, args.index_dir, args.cache_dir, args.limit, args.stride)
    real = [t for t in tables if not t.id.endswith(SWAPPED)]
    train, validation = split(real)
    swapped_train, swapped_validation = split([t for t in tables if t.id.endswith(SWAPPED)])
    booster, span_booster = fit(train + swapped_train if TRAIN_ON_SWAPPED else train), fit_spans(train)
    threshold = choose_threshold([b[0] for b in best_probabilities(booster, validation)])
    span_threshold, span_f1 = choose_span_threshold(span_choices(span_booster, validation))
    scored = {"training": figures(booster, train, threshold), "validation": figures(booster, validation, threshold)}
    scored["validation"]["swapped_declined"] = round(
        sum(p < threshold for p, _, _ in best_probabilities(booster, swapped_validation))
        / (len(swapped_validation) or 1),
        4,
    )
    scored["validation"]["short_answer_f1"] = round(span_f1, 4)
    scored["validation"]["whole_sentence_f1"] = round(
        float(np.mean([whole for _, _, whole in span_choices(span_booster, validation)] or [0.0])), 4
    )
    for part, values in scored.items():
        print(part, json.dumps(values))
    print(f"threshold {threshold:.4f} (declines at most {FALSE_REFUSAL_BUDGET:.0%} of the validation questions)")
    print(f"span threshold {span_threshold:.4f}")
    trained_on = {
        "dataset": args.dataset.name,
        "question_stride": args.stride,
        "validation_from": VALIDATION_FROM,
        "training_questions": len(train),
        "swapped_training_questions": len(swapped_train) if TRAIN_ON_SWAPPED else 0,
        "validation_questions": len(validation),
        "figures": scored,
    }
    meta = meta_for(settings, threshold, trained_on) | {"span_threshold": round(span_threshold, 6)}
    write_model(booster, span_booster, meta, args.out)
    print(f"model: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
