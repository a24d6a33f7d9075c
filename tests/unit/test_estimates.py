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
    # The default counts as a few points: 900 of today's all but replace it.
    assert costs.step_point_s == pytest.approx(0.018, rel=0.01)
    assert costs.total_s(STEP) == pytest.approx(2.6 + 0.3 + 900 * 0.018, rel=0.01)


def _step_run(learner, uid, points, physics_s, took_s):
    estimate = {
        "mode": "step",
        "counting_s": physics_s,
        "motion_s": 0.0,
        "points": points,
        "frames": 0,
    }
    learner("start", {"uid": uid, "time": 0.0, "estimate": estimate})
    learner("stop", {"run_start": uid, "time": took_s, "exit_status": "success"})


def test_a_run_of_a_few_points_does_not_drag_the_cost_of_a_point():
    # A CI session's step runs, as measured (the last CI that failed on the estimate): a
    # 6-point image that took less than its estimated fixed overhead (0 ms a point by
    # itself), a 40 x 40 image at 17.6 ms a point, then two 30 x 20 images at 18.3 and 19.3.
    # Learned half way each, the 6-point run left the cost at 15 ms and the next estimate
    # of those images 11 % short; weighed by points, within 5 % of either.
    costs = ScanCosts(step_point_s=0.008)
    learner = CostLearner(costs)
    _step_run(learner, "tiny", 6, 0.03, 0.22)
    assert costs.step_point_s > 0.004  # not 0, as a first run setting it outright left it
    for k, (points, per_point_s) in enumerate([(1600, 0.0176), (600, 0.0183), (600, 0.0193)]):
        _step_run(learner, f"s{k}", points, 1.4, 1.4 + costs.step_run_s + points * per_point_s)
    assert costs.step_point_s == pytest.approx(0.0185, rel=0.05)
    assert costs.step_evidence_points <= 1000


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
