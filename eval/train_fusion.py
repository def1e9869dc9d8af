"""`python -m eval.train_fusion`: fit the learned fusion of dense and BM25 retrieval on realtimeqa-2024.

Every question of the training dataset is searched both ways, `DEPTH` deep; each candidate of
the union is labelled by whether its text holds an accepted answer. A LightGBM ranker
(lambdarank, one query group per question) is fitted on the questions before VALIDATION_FROM
and judged on the rest against reciprocal rank fusion, dense alone and BM25 alone, over the
same candidates. Fixed seeds, one thread and a deterministic build: the same data gives the
same file, bit for bit. realtimeqa-2023q1, SQuAD and the seed set play no part here.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from eval.datasets import VALIDATION_FROM, every_nth, iso_date
from eval.metrics import MRR_K, READING_BUDGET, contains_answer
from eval.training import DENSE_SEARCH, QUESTION_STRIDE, REPRODUCIBLE, open_index, training_parser
from rag.config import Settings
from rag.fusion_features import FUSION_FEATURES

DEPTH = 40  # candidates each side contributes, as Settings.fusion_depth
CACHE_FORMAT = 2  # raised whenever the cached fields change
# Chosen by four-fold cross-validation over the training split's months (the validation split
# took no part): two-leaf trees, an additive model, held up best; deeper trees overfitted.
ROUNDS = 300
PARAMS: dict[str, Any] = {
    "objective": "lambdarank",
    "lambdarank_truncation_level": 20,
    "learning_rate": 0.05,
    "num_leaves": 2,
    "min_data_in_leaf": 100,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    **REPRODUCIBLE,
}
# Columns of FUSION_FEATURES that the fixed fusions below read.
_DENSE_RANK, _LEXICAL_RANK, _DATE_RANK = (
    FUSION_FEATURES.index(name) for name in ("dense_rank", "lexical_rank", "date_rank")
)


@dataclass(frozen=True)
class QuestionCandidates:
    """One question's candidates: their features, whether each holds an accepted answer, each
    one's length in characters (for the reading budget) and whether it comes from one of the
    documents the dataset gives for the question."""

    id: str
    date: str  # ISO
    rows: np.ndarray
    labels: np.ndarray
    lengths: np.ndarray
    # 1 where the candidate comes from one of the question's own documents: kept to measure
    # labels restricted to them (tried and dropped; see the README)
    own_document: np.ndarray
    answer_in_corpus: bool


def split(questions: Sequence[QuestionCandidates]) -> tuple[list[QuestionCandidates], list[QuestionCandidates]]:
    """Training questions (asked before VALIDATION_FROM) and validation questions (from it)."""
    return [q for q in questions if q.date < VALIDATION_FROM], [q for q in questions if q.date >= VALIDATION_FROM]


# ----- rankings and their figures ------------------------------------------------------------------

Scorer = Callable[[np.ndarray], np.ndarray]  # feature rows -> scores, higher first


def rrf_scorer(dense: float, lexical: float, recency: float, constant: int = 60) -> Scorer:
    """Reciprocal rank fusion over the candidates, as rag.retrieval.HybridRetriever computes it."""

    def score(rows: np.ndarray) -> np.ndarray:
        total = np.zeros(len(rows))
        for column, weight in ((_DENSE_RANK, dense), (_LEXICAL_RANK, lexical), (_DATE_RANK, recency)):
            ranks = rows[:, column]
            total += np.where(np.isnan(ranks), 0.0, weight / (constant + np.nan_to_num(ranks)))
        return total

    return score


def side_scorer(column: str) -> Scorer:
    """One side alone: its own order; what it did not find comes last."""
    index = FUSION_FEATURES.index(column)
    return lambda rows: np.where(np.isnan(rows[:, index]), -np.inf, -np.nan_to_num(rows[:, index]))


def model_scorer(booster: Any) -> Scorer:
    return lambda rows: np.asarray(booster.predict(rows, num_threads=1)) if len(rows) else np.zeros(0)


def _order(scores: np.ndarray) -> np.ndarray:
    """Best first; ties keep candidate order (stable), as the retriever's sort does."""
    return np.argsort(-scores, kind="stable")


def figures(questions: Sequence[QuestionCandidates], scorer: Scorer) -> dict[str, float]:
    """answer_hit@4000c (an answer-holding candidate starts within the reading budget), mrr@10
    and hit@5, over the questions whose answer is in the corpus, as the eval counts them."""
    counted = [q for q in questions if q.answer_in_corpus]
    hits, reciprocal, top5 = 0, 0.0, 0
    for question in counted:
        order = _order(scorer(question.rows))
        labels, starts = question.labels[order], np.cumsum(question.lengths[order]) - question.lengths[order]
        positives = np.flatnonzero(labels > 0)
        if len(positives):
            first = int(positives[0])
            hits += bool(starts[first] < READING_BUDGET)
            reciprocal += 1.0 / (first + 1) if first < MRR_K else 0.0
            top5 += first < 5
    n = len(counted) or 1
    return {
        "answer_hit@4000c": round(hits / n, 4),
        "mrr@10": round(reciprocal / n, 4),
        "hit@5": round(top5 / n, 4),
        "questions": len(counted),
    }


# ----- fitting ---------------------------------------------------------------------------------------


def fit(questions: Sequence[QuestionCandidates], rounds: int = ROUNDS, params: dict[str, Any] | None = None) -> Any:
    """A LightGBM ranker over the questions that have an answer-holding candidate (the others
    teach a ranker nothing)."""
    import lightgbm

    used = [q for q in questions if q.labels.any()]
    rows = np.vstack([q.rows for q in used])
    labels = np.concatenate([q.labels for q in used])
    dataset = lightgbm.Dataset(
        rows, labels, group=[len(q.rows) for q in used], feature_name=list(FUSION_FEATURES), free_raw_data=False
    )
    return lightgbm.train({**PARAMS, **(params or {})}, dataset, num_boost_round=rounds)


# ----- collecting ------------------------------------------------------------------------------------


def _key(fingerprint: str, settings: Settings) -> str:
    from rag.fusion_model import feature_code_hash

    shape = json.dumps(
        {
            **settings.index_shape(),
            "question_embedding_backend": settings.question_embedding_backend,
            "depth": DEPTH,
            "cache_format": CACHE_FORMAT,
            "dense_search": DENSE_SEARCH,
        },
        sort_keys=True,
    )
    return hashlib.sha1(f"{fingerprint}|{shape}|{feature_code_hash()}".encode()).hexdigest()[:12]


def _write_cache(path: Path, questions: Sequence[QuestionCandidates]) -> None:
    sizes = np.array([len(q.rows) for q in questions])
    np.savez_compressed(
        path,
        ids=np.array([q.id for q in questions]),
        dates=np.array([q.date for q in questions]),
        in_corpus=np.array([q.answer_in_corpus for q in questions]),
        sizes=sizes,
        rows=np.vstack([q.rows for q in questions]) if questions else np.zeros((0, len(FUSION_FEATURES))),
        labels=np.concatenate([q.labels for q in questions]) if questions else np.zeros(0),
        lengths=np.concatenate([q.lengths for q in questions]) if questions else np.zeros(0),
        own=np.concatenate([q.own_document for q in questions]) if questions else np.zeros(0),
    )


def _read_cache(path: Path) -> list[QuestionCandidates]:
    data = np.load(path)
    bounds = np.concatenate([[0], np.cumsum(data["sizes"])])
    return [
        QuestionCandidates(
            str(data["ids"][i]),
            str(data["dates"][i]),
            data["rows"][bounds[i] : bounds[i + 1]],
            data["labels"][bounds[i] : bounds[i + 1]],
            data["lengths"][bounds[i] : bounds[i + 1]],
            data["own"][bounds[i] : bounds[i + 1]],
            bool(data["in_corpus"][i]),
        )
        for i in range(len(data["sizes"]))
    ]


def collect(
    dataset_path: Path, settings: Settings, index_dir: Path, cache_dir: Path, stride: int = QUESTION_STRIDE
) -> list[QuestionCandidates]:
    """Every question's candidates, from the cache when the data, index settings and feature
    code are unchanged (the index itself is built once and shared with the eval)."""
    from tqdm import tqdm

    from eval.datasets import load_dataset
    from eval.runner import answers_in_corpus
    from rag.fusion_features import features
    from rag.retrieval import LearnedFusionRetriever

    dataset = every_nth(load_dataset(dataset_path, settings.corpus_dir), stride)
    cache = cache_dir / f"fusion-{dataset.name}-{_key(dataset.fingerprint(), settings)}.npz"
    if cache.exists():
        print(f"candidates: reusing {cache}")
        return _read_cache(cache)
    assistant = open_index(dataset, settings, index_dir)
    in_corpus = answers_in_corpus(dataset)
    store = assistant.store
    searcher = LearnedFusionRetriever(store, assistant.embedder, settings.top_k, DEPTH)
    found: list[QuestionCandidates] = []
    for question in tqdm(dataset.questions, desc="candidates", unit="q", file=sys.stderr, disable=None):
        union = searcher.candidates(question.question, DEPTH)
        found.append(
            QuestionCandidates(
                question.id,
                iso_date(question.date),
                features(question.question, union, store.lexical.idf),
                np.array([contains_answer(c.passage.chunk.text, question.answers) for c in union], dtype=np.float64),
                np.array([len(c.passage.chunk.text) for c in union], dtype=np.int64),
                np.array([c.passage.chunk.doc_id in question.doc_ids for c in union], dtype=np.float64),
                question.answerable and in_corpus[question.id],
            )
        )
    cache.parent.mkdir(parents=True, exist_ok=True)
    _write_cache(cache, found)
    return found


def main(argv: Sequence[str] | None = None) -> int:
    from rag.fusion_model import MODELS_DIR, write_model

    parser = training_parser("python -m eval.train_fusion", __doc__.splitlines()[0], MODELS_DIR)
    args = parser.parse_args(argv)
    settings = Settings()
    train, validation = split(collect(args.dataset, settings, args.index_dir, args.cache_dir, args.stride))
    booster = fit(train)
    compared = {
        "learned": model_scorer(booster),
        "rrf": rrf_scorer(settings.fusion_dense_weight, settings.fusion_lexical_weight, settings.fusion_recency_weight),
        "rrf_plain": rrf_scorer(1.0, 1.0, 0.0),
        "dense": side_scorer("dense_rank"),
        "bm25": side_scorer("lexical_rank"),
    }
    scored = {
        part: {name: figures(questions, scorer) for name, scorer in compared.items()}
        for part, questions in (("training", train), ("validation", validation))
    }
    for part, table in scored.items():
        for name, values in table.items():
            print(f"{part:<10} {name:<9} {json.dumps(values)}")
    meta = {
        "dataset": args.dataset.name,
        "embedding_backend": settings.embedding_backend,
        "question_embedding_backend": settings.question_embedding_backend,
        "question_stride": args.stride,
        "validation_from": VALIDATION_FROM,
        "depth": DEPTH,
        "training_questions": len(train),
        "validation_questions": len(validation),
        "params": PARAMS,
        "rounds": ROUNDS,
        "figures": scored,
    }
    write_model(booster, settings.embedding_model, meta, args.out)
    print(f"model: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
