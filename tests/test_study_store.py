"""The results store: rows keyed by run, statuses, transactions, persistence across connections."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from lpae.study.store import Outcome, Store


def planned(n: int) -> list[tuple[str, str, int, str]]:
    return [(f"id{i}", f'{{"run": {i}}}', i, f"runs/r{i}") for i in range(n)]


def test_plan_inserts_pending_rows_once(tmp_path: Path) -> None:
    with Store(tmp_path) as store:
        assert store.plan(planned(3)) == 3
        assert store.plan(planned(4)) == 1  # only the new one
        rows = store.rows()
        assert [r.run_id for r in rows] == ["id0", "id1", "id2", "id3"]
        assert {r.status for r in rows} == {"pending"}
        assert rows[2].spec == {"run": 2} and rows[2].run_dir == "runs/r2"
        assert store.counts()["pending"] == 4


def test_record_and_reopen(tmp_path: Path) -> None:
    with Store(tmp_path) as store:
        store.plan(planned(3))
        store.mark_running(["id0", "id1"])
        store.record(
            [
                Outcome("id0", "done", {"recon_l2": 0.5, "nan_metric": float("nan")}, "", 10.0, 12.5),
                Outcome("id1", "diverged", {"status": "diverged"}, "non-finite loss", 10.0, 11.0),
            ]
        )
    with Store(tmp_path, create=False) as store:
        rows = {r.run_id: r for r in store.rows()}
        assert rows["id0"].status == "done" and rows["id0"].metrics["recon_l2"] == 0.5
        assert rows["id0"].seconds == pytest.approx(2.5) and rows["id0"].attempts == 1
        assert rows["id1"].status == "diverged" and rows["id1"].error == "non-finite loss"
        assert rows["id2"].status == "pending" and rows["id2"].metrics == {}
        assert store.counts() == {"pending": 1, "running": 0, "done": 1, "diverged": 1, "failed": 0}


def test_a_failed_write_leaves_no_partial_rows(tmp_path: Path) -> None:
    with Store(tmp_path) as store:
        store.plan(planned(2))
        with pytest.raises(ValueError, match="status 'running'"):
            store.record([Outcome("id0", "done", {"a": 1}), Outcome("id1", "running")])
        with pytest.raises(sqlite3.IntegrityError), store.transaction() as cursor:
            cursor.execute("UPDATE runs SET status = 'done' WHERE run_id = 'id0'")
            cursor.execute("UPDATE runs SET status = 'bogus' WHERE run_id = 'id1'")  # CHECK fails
        assert {r.status for r in store.rows()} == {"pending"}  # the first update was rolled back too


def test_meta_round_trip_and_missing_store(tmp_path: Path) -> None:
    with Store(tmp_path) as store:
        store.set_meta({"grid": "seeds = [0]", "name": "x"})
        store.set_meta({"name": "y"})
        assert (
            store.meta("grid") == "seeds = [0]" and store.meta("name") == "y" and store.meta("nope") is None
        )
    with pytest.raises(ValueError, match="not a study folder"):
        Store(tmp_path / "elsewhere", create=False)
