"""Latent usefulness (kNN accuracy under L_k distances, linear probe) and anomaly detection.

kNN and probe accuracies are compared with the same classifiers on the raw features
(``raw_knn_acc_*``, ``raw_probe_acc``), the baseline a code has to beat. Anomaly figures come
from one-class runs (trained on ``normal_classes`` only) and rank criteria by AUROC of their own
per-sample loss and of the calibrated NLL.
"""

from __future__ import annotations

import pandas as pd

from lpae.study.report import plots
from lpae.study.report.data import StudyData, has_value
from lpae.study.report.leaderboards import leaderboard_part
from lpae.study.report.metric_info import ANOMALY_METRICS, LATENT_METRICS
from lpae.study.report.page import Section, heading, image, para, table
from lpae.study.report.stats import summarize


def latent_section(study: StudyData) -> Section:
    section = Section("latent", "Latent codes: kNN and linear probe")
    for title, frame in study.groups(study.main):
        metrics = [m for m in LATENT_METRICS if study.has(m, frame)]
        if not metrics:
            continue
        rows = []
        for criterion, runs in frame.groupby("criterion", sort=False):
            rows.append(
                [criterion, *[summarize(pd.to_numeric(runs[m], errors="coerce")).mean for m in metrics]]
            )
        raw = [f"raw_{m}" for m in metrics]
        if any(study.has(r, frame) for r in raw):
            rows.append(
                [
                    "raw features",
                    *[
                        summarize(pd.to_numeric(frame[r], errors="coerce")).mean
                        if r in frame
                        else float("nan")
                        for r in raw
                    ],
                ]
            )
        section.add(heading(title))
        section.add(table(["criterion (mean over seeds)", *metrics], rows))
        if "probe_acc" in metrics:
            summaries = {
                str(c): summarize(pd.to_numeric(r["probe_acc"], errors="coerce"))
                for c, r in frame.groupby("criterion", sort=False)
            }
            reference = (
                summarize(pd.to_numeric(frame["raw_probe_acc"], errors="coerce")).mean
                if study.has("raw_probe_acc", frame)
                else None
            )
            uri = plots.intervals(summaries, "linear-probe accuracy", title, reference, "raw features")
            section.add(image(uri, f"probe accuracy for {title}"))
    if section:
        section.parts.insert(
            0,
            para(
                "Classification accuracy from the latent codes of the test split (k-nearest neighbours "
                "under L0.5, L1 and L2 distances; logistic regression), beside the same classifiers on "
                "the raw features."
            ),
        )
    return section


def anomaly_section(study: StudyData) -> Section:
    section = Section("anomaly", "Anomaly detection (one-class runs)")
    frame = study.one_class
    if frame.empty or "normal_classes" not in frame:
        return section
    for (data, model, classes), runs in frame[has_value(frame["normal_classes"])].groupby(
        ["data", "model_label", "normal_classes"], sort=False
    ):
        parts = [leaderboard_part(runs, m) for m in ANOMALY_METRICS if study.has(m, runs)]
        parts = [p for p in parts if p is not None]
        if parts:
            several = study.table["model_label"].nunique() > 1
            section.add(heading(f"{data}{' · ' + model if several else ''}, normal classes {classes}"))
            if study.has("anomaly_base_rate", runs):
                rate = pd.to_numeric(runs["anomaly_base_rate"], errors="coerce").mean()
                section.add(
                    para(
                        f"Anomalies are {rate:.1%} of the test rows: a random score has AUROC 0.5 and "
                        f"AUPRC {rate:.3f}.",
                        "note",
                    )
                )
            for part in parts:
                section.add(part)
    if section:
        section.parts.insert(
            0,
            para(
                "Trained and validated on the normal classes only; scored on the test split, anomalies "
                "being the rows of other classes, subsampled (seeded) to the run's anomaly rate "
                "(anomaly_rate, 10% by default)."
            ),
        )
    return section
