"""Studies: grids of data sets x criteria x models x seeds, a crash-safe results store, local and
Ray execution, and a report that answers "which L_p loss for my data?" (docs/study.md)."""

from lpae.study.grid import PRESETS, Grid, PlannedRun, load_grid, parse_grid, run_key
from lpae.study.runner import StudyResult, run_study, stored_grid
from lpae.study.store import Store
from lpae.study.table import export_table, study_table

__all__ = [
    "PRESETS",
    "Grid",
    "PlannedRun",
    "Store",
    "StudyResult",
    "export_table",
    "load_grid",
    "parse_grid",
    "run_key",
    "run_study",
    "stored_grid",
    "study_table",
]
