"""A live view of a study: runs done, running, diverged and failed, with elapsed time and ETA.

Drawn with rich; on a console that is not a terminal rich prints only the final state, so logs
stay clean. For the Ray executor "running" counts every submitted unit that has not come back.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from lpae.study.store import Outcome


class StudyProgress:
    """Receives the study's events; a no-op base for callers who want no display."""

    def start(self, total: int, already_finished: int) -> None:
        pass

    def submitted(self, n_runs: int) -> None:
        pass

    def finished(self, outcomes: Sequence[Outcome]) -> None:
        pass

    def stop(self) -> None:
        pass


class RichProgress(StudyProgress):
    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.counts = {"running": 0, "done": 0, "diverged": 0, "failed": 0}
        self.progress = Progress(
            TextColumn("[bold]study"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            TextColumn("elapsed"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=self.console,
        )
        self.task: Any = None

    def status(self) -> str:
        c = self.counts
        failed = f"[red]failed {c['failed']}[/red]" if c["failed"] else "failed 0"
        return f"running {c['running']}  done {c['done']}  diverged {c['diverged']}  {failed}"

    def start(self, total: int, already_finished: int) -> None:
        # Runs finished before a resume count as done but not toward the speed estimate.
        self.total = total
        self.progress.start()
        self.task = self.progress.add_task("study", total=total - already_finished, status=self.status())
        self.skipped = already_finished

    def submitted(self, n_runs: int) -> None:
        self.counts["running"] += n_runs
        self.progress.update(self.task, status=self.status())

    def finished(self, outcomes: Sequence[Outcome]) -> None:
        self.counts["running"] = max(0, self.counts["running"] - len(outcomes))
        for outcome in outcomes:
            self.counts[outcome.status] += 1
        self.progress.update(self.task, advance=len(outcomes), status=self.status())

    def stop(self) -> None:
        self.progress.stop()
