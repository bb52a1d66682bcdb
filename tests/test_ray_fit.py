"""CPU requests of Ray tasks fitted to a cluster (lpae.study.on_ray), and the check that stops a study
whose tasks no node can take any more. Pure functions: no Ray needed."""

from __future__ import annotations

import pytest

from lpae.study import on_ray
from lpae.study.on_ray import check_feasible, node_cpus, task_cpus


def test_a_local_cluster_of_workers_x_threads_gives_each_task_its_threads() -> None:
    assert task_cpus([2.0], workers=1, threads=None) == 2.0  # the 2-core machine, --workers 1
    assert task_cpus([2.0], workers=2, threads=None) == 1.0
    assert task_cpus([4.0], workers=2, threads=2) == 2.0


def test_fewer_cpus_than_workers_gives_fractional_requests_that_all_fit() -> None:
    assert task_cpus([1.0], workers=2, threads=None) == 0.5
    share = task_cpus([3.0], workers=7, threads=None)
    assert share == pytest.approx(0.4285)
    assert 7 * share <= 3.0  # seven tasks at once


def test_a_request_never_exceeds_the_largest_node() -> None:
    assert task_cpus([1.0, 1.0], workers=1, threads=None) == 1.0  # 2 CPUs, but on two nodes


def test_an_impossible_request_is_refused_in_one_line() -> None:
    refusal = r"--threads 4: .* largest node of the Ray cluster has 2; pass --threads 2"
    with pytest.raises(ValueError, match=refusal):
        task_cpus([2.0, 1.0], workers=1, threads=4)
    with pytest.raises(ValueError, match="no CPUs"):
        task_cpus([0.0], workers=1, threads=None)
    with pytest.raises(ValueError, match="no CPUs"):
        task_cpus([], workers=1, threads=1)


def test_dead_nodes_do_not_count() -> None:
    nodes = [{"Alive": True, "Resources": {"CPU": 2.0}}, {"Alive": False, "Resources": {"CPU": 8.0}}]
    assert node_cpus(nodes) == [2.0]
    assert node_cpus([{"Alive": True, "Resources": {}}]) == [0.0]


def test_tasks_no_node_can_take_stop_the_study_after_a_grace_time(monkeypatch: pytest.MonkeyPatch) -> None:
    assert check_feasible([2.0], 2.0, None) is None
    assert check_feasible([2.0], 2.0, 123.0) is None  # a node came back: the clock starts again
    since = check_feasible([1.0], 2.0, None)
    assert since is not None
    assert check_feasible([1.0], 2.0, since) == since  # still within the grace time
    monkeypatch.setattr(on_ray, "INFEASIBLE_SECONDS", 0.0)
    with pytest.raises(ValueError, match=r"no alive node of the Ray cluster has the 2 CPUs .* --resume"):
        check_feasible([1.0], 2.0, since)
