"""Scan-time estimates: what the control system costs is learned from the runs made."""

from __future__ import annotations

import pytest

from plans.estimates import CostLearner, ScanCosts
from stxm_ctrl.timefmt import format_duration

STEP = {"mode": "step", "counting_s": 0.9, "motion_s": 1.7, "points": 900, "frames": 0}
FLY = {"mode": "fly", "counting_s": 65.5, "motion_s": 2.7, "points": 65536, "frames": 1}


def test_a_recorded_estimate_is_redone_with_the_sessions_costs():
    costs = ScanCosts(step_point_s=0.01, step_run_s=0.3, fly_frame_s=0.05, fly_run_s=0.2)
    assert costs.total_s(STEP) == pytest.approx(0.9 + 1.7 + 0.3 + 9.0)
    assert costs.total_s(FLY) == pytest.approx(65.5 + 2.7 + 0.2 + 0.05)
    assert costs.total_s(None) is None and costs.total_s({"mode": "step"}) is None


def test_runs_teach_the_step_cost_per_point_and_the_fly_cost_per_run():
    costs = ScanCosts()
    learner = CostLearner(costs)
    for k in range(6):  # step runs that each took 12.5 s: 9.6 s of control for 900 points
        learner("start", {"uid": f"s{k}", "time": 100.0, "estimate": STEP})
        learner("stop", {"run_start": f"s{k}", "time": 112.5, "exit_status": "success"})
    assert costs.step_point_s == pytest.approx((12.5 - 2.6 - costs.step_run_s) / 900, rel=0.05)
    learner("start", {"uid": "f", "time": 0.0, "estimate": FLY})
    learner("stop", {"run_start": "f", "time": 69.0, "exit_status": "success"})
    assert costs.fly_run_s == pytest.approx(69.0 - 68.2 - 0.06)  # the first fly run sets it
    learner("start", {"uid": "g", "time": 0.0, "estimate": FLY})
    learner("stop", {"run_start": "g", "time": 70.0, "exit_status": "success"})
    assert costs.fly_run_s == pytest.approx(((69.0 - 68.26) + (70.0 - 68.26)) / 2)
    assert (costs.learned_runs, costs.learned_step_runs, costs.learned_fly_runs) == (8, 6, 2)


def test_a_sessions_first_run_replaces_a_default_measured_on_another_day():
    costs = ScanCosts(step_point_s=0.008)
    learner = CostLearner(costs)
    learner("start", {"uid": "s", "time": 100.0, "estimate": STEP})  # 18 ms a point today
    learner(
        "stop",
        {"run_start": "s", "time": 100.0 + 2.6 + 0.3 + 900 * 0.018, "exit_status": "success"},
    )
    assert costs.step_point_s == pytest.approx(0.018)
    assert costs.total_s(STEP) == pytest.approx(2.6 + 0.3 + 900 * 0.018)


def test_failed_and_unestimated_runs_teach_nothing():
    costs = ScanCosts()
    learner = CostLearner(costs)
    learner("start", {"uid": "a", "time": 0.0, "estimate": STEP})
    learner("stop", {"run_start": "a", "time": 500.0, "exit_status": "abort"})
    learner("start", {"uid": "b", "time": 0.0})
    learner("stop", {"run_start": "b", "time": 5.0, "exit_status": "success"})
    assert costs == ScanCosts()


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.84, "0.8 s"), (42.4, "42 s"), (185, "3 min 05 s"), (3725, "1 h 02 min")],
)
def test_durations_read_as_people_say_them(seconds, text):
    assert format_duration(seconds) == text
