"""A live view of a study: runs done, running, diverged and failed, with elapsed time and ETA.

Drawn with rich on a terminal (:class:`RichProgress`, compact enough for 80 columns); elsewhere
(a log, a pipe) as plain lines at a sensible rate (:class:`LineProgress`, lpae.plain_progress),
which :func:`progress_for` chooses. For the Ray executor "running" counts every submitted unit
that has not come back.
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

from lpae.plain_progress import LineRate, clock
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
            BarColumn(bar_width=10),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            TextColumn("left"),
            TimeRemainingColumn(),
            console=self.console,
        )
        self.task: Any = None

    def status(self) -> str:
        c = self.counts
        failed = f"[red]failed {c['failed']}[/red]" if c["failed"] else "failed 0"
        return f"running {c['running']} diverged {c['diverged']} {failed}"

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


class LineProgress(StudyProgress):
    """The same events as plain lines: 'study: 40 of 180 runs (done 40, diverged 0, failed 0),
    running 2, 0:21 elapsed, about 1:15 left'."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.counts = {"running": 0, "done": 0, "diverged": 0, "failed": 0}
        self.rate = LineRate(1)
        self.finished_now = 0

    def start(self, total: int, already_finished: int) -> None:
        self.total, self.skipped = total, already_finished
        self.rate = LineRate(total - already_finished)
        if already_finished:
            self.console.print(
                f"study: {already_finished} of {total} runs finished before, {total - already_finished} to go"
            )

    def submitted(self, n_runs: int) -> None:
        self.counts["running"] += n_runs

    def finished(self, outcomes: Sequence[Outcome]) -> None:
        self.counts["running"] = max(0, self.counts["running"] - len(outcomes))
        for outcome in outcomes:
            self.counts[outcome.status] += 1
        self.finished_now += len(outcomes)
        if self.rate.due(self.finished_now):
            c, left = self.counts, clock(self.rate.remaining(self.finished_now))
            self.console.print(
                f"study: {self.skipped + self.finished_now} of {self.total} runs (done {c['done']}, "
                f"diverged {c['diverged']}, failed {c['failed']}), running {c['running']}, "
                f"{clock(self.rate.elapsed)} elapsed, about {left} left",
                highlight=False,
                soft_wrap=True,
            )


def progress_for(console: Console | None = None) -> StudyProgress:
    """A rich bar on a terminal, plain lines elsewhere."""
    console = console or Console(stderr=True)
    return RichProgress(console) if console.is_terminal else LineProgress(console)
