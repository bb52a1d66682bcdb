"""Relative contrast of L_k distances on the raw data and on latent codes (Aggarwal et al. 2001).

Drawn by lpae.contrast (the distance-concentration module) when it is installed; until then the
section says that it is missing instead of guessing.
"""

from __future__ import annotations

import importlib.util

from lpae.study.report.data import StudyData
from lpae.study.report.page import Section, para


def contrast_available() -> bool:
    return importlib.util.find_spec("lpae.contrast") is not None


def contrast_section(study: StudyData) -> Section:
    section = Section("contrast", "Distance concentration")
    if study.main.empty:
        return section
    if not contrast_available():
        section.add(
            para(
                "Relative-contrast plots of the raw data and of the latent codes need lpae.contrast, "
                "which this installation does not have; this section is left out.",
                "note",
            )
        )
    else:
        section.add(
            para(
                "lpae.contrast is installed but not wired into the report yet: run "
                "`lpae contrast --data SPEC` and `lpae contrast --run RUN_DIR` for relative contrast.",
                "note",
            )
        )
    return section
