"""Reports: report.json, report.md (configurations as columns), PNG plots and questions.jsonl."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from eval.metrics import BUDGET_CURVE, QuestionRecord, budget_curve, hit_curve
from eval.runner import RANK_DEPTH, ConfigurationRun

PLOTS = {
    "answer_hit_at_k.png": "Share of questions with an accepted answer in the top k passages",
    "answer_hit_by_budget.png": "Share with the answer within the first N characters of ranked passages",
    "latency.png": "Latency per question (ms)",
}

# Rows of report.md, in reading order, with what each means (the README has the long form).
METRIC_ROWS: dict[str, str] = {
    "answer_hit@1": "answer in the first passage",
    "answer_hit@5": "answer in the top 5 passages",
    "answer_hit@10": "answer in the top 10 passages",
    "mrr@10": "mean reciprocal rank of the first passage with the answer",
    "answer_hit@4000c": "answer within the first 4,000 characters of ranked passages",
    "doc_hit@5": "a gold document in the top 5",
    "exact_match": "short answer equals an accepted answer (SQuAD 2.0)",
    "f1": "token F1 of the short answer (SQuAD 2.0)",
    "answer_contains": "an accepted answer occurs in the answer",
    "follow_up_accuracy": "answer_contains over follow-up questions (with history)",
    "citation_validity": "every marker resolves to a retrieved passage",
    "citation_precision": "share of citations whose passage has the answer",
    "refusal_accuracy": "unanswerable questions declined",
    "false_refusal_rate": "answerable questions declined",
    "retrieve_ms_p50": "retrieval latency, median",
    "retrieve_ms_p95": "retrieval latency, 95th percentile",
    "answer_ms_p50": "answering latency, median",
    "answer_ms_p95": "answering latency, 95th percentile",
    "total_ms_p50": "question to answer, median",
    "total_ms_p95": "question to answer, 95th percentile",
    "index_chunks": "chunks indexed",
    "ingest_chunks_per_s": "indexing speed (chunks/s, when built)",
}


def _cell(metric: str, value: Any) -> str:
    """Rates to three decimals, times and speeds to one, counts whole."""
    if value is None:
        return "–"
    if isinstance(value, int):
        return f"{value:,}"
    if metric.endswith(("_ms_p50", "_ms_p95", "_per_s")):
        return f"{value:,.1f}"
    return f"{value:.3f}"


def render_markdown(report: Mapping[str, Any]) -> str:
    """report.md: where the figures came from, then one column per configuration."""
    configs: Mapping[str, Mapping[str, Any]] = report["configs"]
    names = list(configs)
    left_out = report["left_out"]
    lines = [
        f"# Evaluation: {report['dataset']}",
        "",
        f"Commit `{report['commit']}`, {report['created']}. {report['questions']} questions"
        + (f" (the first {report['limit']})" if report.get("limit") else "")
        + f" over {report['documents']} documents"
        + (" (only those the questions name)." if report.get("limit") else ".")
        + (
            " Each dated question was asked as of its own day: only the articles published by then were visible."
            if report.get("as_of") == "question"
            else " Every article was visible to every question."
        ),
        "",
        (
            f"Retrieval metrics (answer_hit, mrr) count {report['retrieval_questions']} questions; left out: "
            f"{left_out['unanswerable']} unanswerable by design and {left_out['answer_not_in_corpus']} "
            "whose accepted answers occur nowhere in the documents they may search. doc_hit@5 counts the answerable "
            "questions that name their documents."
        ),
        "",
        "| metric | " + " | ".join(names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    for metric, meaning in METRIC_ROWS.items():
        lines.append(
            f"| {metric} <br><sub>{meaning}</sub> | "
            + " | ".join(_cell(metric, configs[n].get(metric)) for n in names)
            + " |"
        )
    lines += ["", "Configurations (all answer with the same extractive answerer; only retrieval differs):", ""]
    lines += [f"- **{name}**: {report['descriptions'][name]}" for name in names]
    reused = [name for name, index in report["indexes"].items() if index["reused"]]
    if reused:
        lines += ["", f"Indexes reused from an earlier run: {', '.join(reused)}."]
    if report.get("calibration"):
        calibration = report["calibration"]
        lines += [
            "",
            (
                f"Calibrated refusal threshold (citeline): answer_min_score {calibration['answer_min_score']} "
                f"(accuracy {calibration['accuracy_at_threshold']})."
            ),
        ]
    lines += [""] + [f"![{caption}]({name})" for name, caption in PLOTS.items()] + [""]
    return "\n".join(lines)


def _plot(out: Path, runs: Sequence[ConfigurationRun]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ks = list(range(1, RANK_DEPTH + 1))
    curves = [
        ("answer_hit_at_k.png", ks, "k (passages read)", lambda records: hit_curve(records, ks)),
        ("answer_hit_by_budget.png", list(BUDGET_CURVE), "characters of ranked passages read", budget_curve),
    ]
    for filename, xs, xlabel, curve in curves:
        figure, axes = plt.subplots(figsize=(6.4, 4.2))
        for run in runs:
            axes.plot(xs, curve(run.records), marker="o", markersize=3, label=run.name)
        axes.set(xlabel=xlabel, ylabel="answer hit rate", title=PLOTS[filename], ylim=(0, 1))
        axes.title.set_fontsize(10)
        axes.grid(alpha=0.3)
        axes.legend()
        figure.tight_layout()
        figure.savefig(out / filename, dpi=110)
        plt.close(figure)

    figure, axes = plt.subplots(1, 2, figsize=(8.4, 4.2))
    for axis, stage in zip(axes, ("retrieve", "total")):
        axis.boxplot(
            [[_ms(r, stage) for r in run.records] for run in runs],
            tick_labels=[run.name for run in runs],
            showfliers=True,
        )
        axis.set(title=f"{stage} (ms)", yscale="log")
        axis.grid(alpha=0.3, axis="y")
    figure.suptitle(PLOTS["latency.png"], fontsize=10)
    figure.tight_layout()
    figure.savefig(out / "latency.png", dpi=110)
    plt.close(figure)


def _ms(record: QuestionRecord, stage: str) -> float:
    return max(record.timings_ms.get(stage, 0.0), 0.01)  # log scale needs positive values


def write_report(out: Path, report: Mapping[str, Any], runs: Sequence[ConfigurationRun]) -> None:
    """Write every report file into the folder `out`."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (out / "report.md").write_text(render_markdown(report), encoding="utf-8")
    with (out / "questions.jsonl").open("w", encoding="utf-8") as lines:
        for run in runs:
            for item in run.details:
                lines.write(json.dumps(item, ensure_ascii=False) + "\n")
    _plot(out, runs)
