"""TensorBoard backend: one log folder of event files per lpae run (torch.utils.tensorboard).

Under the log root (default ``OUT/tensorboard``, or ``--track-uri FOLDER``), a study's runs go to
``STUDY/RUN_FOLDER`` (the run's folder name in the study) and the study's report to
``STUDY/report``; an ``lpae train`` run goes to ``OUT_NAME``. ``tensorboard --logdir ROOT`` shows them.

- scalars: history columns under their names at step = epoch (float32, as TensorBoard stores them),
  metrics.json's numbers as ``final/NAME`` at step = the last epoch;
- the settings: an HParams record (the hparams plugin's table), values as strings;
- files: a ``.png`` becomes an image (samples.png), ``.md`` text as is (report.md), ``.json``
  text as a code block (config.json, metrics.json); TensorBoard has no place for other files
  (report.html, history.csv: its scalars are there already);
- a run is written into a staging folder and renamed into place when it ends (lpae.atomic), so an
  interrupted run leaves no half-written log; a run logged anew replaces its folder, and
  ``lpae-run.json`` in it records its key, study folder and stamp.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lpae.atomic import staging_dir, write_json
from lpae.tracking.base import TrackedRun, Tracker

RECORD = "lpae-run.json"
REPORT = "report"


def text_of(path: Path) -> str | None:
    """What TensorBoard's text plugin shows of a file (Markdown), None when it shows none."""
    suffix = path.suffix.lower()
    if suffix == ".md":
        return path.read_text(encoding="utf-8")
    if suffix in (".json", ".toml"):
        return "\n".join("    " + line for line in path.read_text(encoding="utf-8").splitlines())
    return None


def add_file(writer: Any, path: Path, step: int = 0) -> None:
    """A file as TensorBoard shows it (module docstring): an image, a text, or nothing."""
    if path.suffix.lower() == ".png":
        from matplotlib.image import imread

        image = imread(path)  # (H, W) grey or (H, W, 3 or 4) in [0, 1]
        formats = "HW" if image.ndim == 2 else "HWC"
        writer.add_image(path.stem, image[..., :3] if image.ndim == 3 else image, step, dataformats=formats)
        return
    text = text_of(path)
    if text is not None:
        writer.add_text(path.stem, text, step)


class TensorboardRun(TrackedRun):
    def __init__(self, folder: Path, record: dict[str, Any], params: Mapping[str, str]) -> None:
        from torch.utils.tensorboard import SummaryWriter
        from torch.utils.tensorboard.summary import hparams

        self.record = record
        self.staging = contextlib.ExitStack()
        self.tmp = self.staging.enter_context(staging_dir(folder, overwrite=True))
        self.writer = SummaryWriter(log_dir=str(self.tmp))
        self.last = 0
        file_writer = self.writer.file_writer  # set by SummaryWriter's constructor
        if file_writer is not None:
            for summary in hparams(dict(params), {}):  # experiment, session start and end
                file_writer.add_summary(summary)

    def log_epoch(self, epoch: int, metrics: Mapping[str, float]) -> None:
        for name, value in metrics.items():
            self.writer.add_scalar(name, value, epoch)
        self.last = max(self.last, epoch)

    def log_final(self, metrics: Mapping[str, float], step: int) -> None:
        for name, value in metrics.items():
            self.writer.add_scalar(f"final/{name}", value, step)
        self.last = step

    def log_artifact(self, path: Path, folder: str = "") -> None:
        add_file(self.writer, path, self.last)

    def end(self, status: str, stamp: str | None = None) -> None:
        self.writer.close()
        write_json(self.tmp / RECORD, {**self.record, "status": status, "stamp": stamp})
        self.staging.close()  # renames the staging folder into place

    def abort(self) -> None:
        self.writer.close()
        self.staging.__exit__(RuntimeError, RuntimeError("aborted"), None)  # the staging folder goes


class TensorboardTracker(Tracker):
    """A TensorBoard log root (module docstring); ``group`` and ``scope``: the study's name and folder."""

    kind = "tensorboard"

    def __init__(self, root: Path, group: str | None = None, scope: str | None = None) -> None:
        self.root, self.group, self.scope = Path(root), group, scope
        self.base = self.root / group if group is not None else self.root
        self.location = str(self.base)
        self.base.mkdir(parents=True, exist_ok=True)
        self.logged: dict[str, tuple[Path, str | None]] = {}
        for record_file in sorted(self.base.glob(f"*/{RECORD}")):
            try:
                record = json.loads(record_file.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue  # a damaged record: that run is logged anew when the study meets it
            if isinstance(record, dict) and record.get("key") and record.get("scope") == scope:
                self.logged[str(record["key"])] = (record_file.parent, record.get("stamp"))

    def start_run(
        self, name: str, params: Mapping[str, str], tags: Mapping[str, str], key: str | None = None
    ) -> TrackedRun:
        folder = self.base / Path(name).name
        if key is not None:
            self.forget([key])
        record = {"key": key, "scope": self.scope, "name": name, "tags": dict(tags)}
        run = TensorboardRun(folder, record, params)
        if key is not None:
            self.logged[key] = (folder, None)
        return run

    def stamp(self, key: str) -> str | None:
        found = self.logged.get(key)
        if found is None or not (found[0] / RECORD).is_file():
            return None
        record = json.loads((found[0] / RECORD).read_text(encoding="utf-8"))
        return record.get("stamp") if isinstance(record, dict) else None

    def keys(self) -> set[str]:
        return set(self.logged)

    def forget(self, keys: Sequence[str]) -> None:
        for key in keys:
            found = self.logged.pop(key, None)
            if found is not None:
                shutil.rmtree(found[0], ignore_errors=True)

    def log_group(self, files: Sequence[Path]) -> None:
        if self.group is None:
            return
        from torch.utils.tensorboard import SummaryWriter

        with staging_dir(self.base / REPORT, overwrite=True) as tmp:
            writer = SummaryWriter(log_dir=str(tmp))
            for path in files:
                add_file(writer, path)
            writer.close()
