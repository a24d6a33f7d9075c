"""Scan ids keep counting across sessions on the same data directory."""

from __future__ import annotations

from bluesky.plans import count
from ophyd.sim import det

from stxm_ctrl.scan_ids import ScanIdFile


def test_scan_ids_continue_in_a_new_session(tmp_path, make_run_engine):
    path = tmp_path / "last_scan_id"
    ids = []
    for _session in range(2):
        RE = make_run_engine({}, scan_id_source=ScanIdFile(path))
        RE.subscribe(lambda name, doc: ids.append(doc["scan_id"]) if name == "start" else None)
        RE(count([det]))
        RE(count([det]))
    assert ids == [1, 2, 3, 4]
    assert path.read_text() == "4\n"


def test_an_explicit_scan_id_moves_the_counter_on(tmp_path):
    source = ScanIdFile(tmp_path / "last_scan_id")
    assert source({"scan_id": 41}) == 42
    assert source({}) == 43


def test_unreadable_file_starts_again_rather_than_failing_a_scan(tmp_path):
    path = tmp_path / "last_scan_id"
    path.write_text("not a number")
    assert ScanIdFile(path)({}) == 1


def _allocate(path: str, n: int, out) -> None:
    source = ScanIdFile(__import__("pathlib").Path(path))
    out.put([source({}) for _ in range(n)])


def test_two_processes_never_get_the_same_scan_number(tmp_path):
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    path = str(tmp_path / "last_scan_id")
    workers = [context.Process(target=_allocate, args=(path, 200, out)) for _ in range(2)]
    for worker in workers:
        worker.start()
    ids = out.get(timeout=60) + out.get(timeout=60)
    for worker in workers:
        worker.join(30)
    assert sorted(ids) == list(range(1, 401))  # each number handed out exactly once
