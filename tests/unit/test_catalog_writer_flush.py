"""CatalogWriter pushes the held-back batch of runs without a stop document, when asked."""

from __future__ import annotations

from stxm_ctrl.data.writers import CatalogWriter, spool_file_for

from .test_writers import FakeTiledClient, make_run


class BatchingTiledWriter:
    """Stands in for the catalog's writer: records documents and pushes per run."""

    def __init__(self, fail_push: bool = False) -> None:
        self.seen: list[str] = []
        self.pushed: list[str] = []
        self.fail_push = fail_push

    def __call__(self, name: str, doc: dict) -> None:
        self.seen.append(name)

    def push_pending(self, uid: str) -> int:
        if self.fail_push:
            raise ConnectionError("catalog at http://127.0.0.1:8765 went away")
        self.pushed.append(uid)
        return 1


def open_and_closed_runs() -> tuple[list, str, str]:
    """Documents of a finished run followed by a run cut off before its stop document."""
    finished, cut_off = make_run(2), make_run(3)[:-1]
    return finished + cut_off, finished[0][1]["uid"], cut_off[0][1]["uid"]


def test_flush_with_open_runs_pushes_only_runs_without_a_stop(tmp_path):
    writer = CatalogWriter(FakeTiledClient(), tmp_path)
    writer.writer = BatchingTiledWriter()
    docs, _finished, cut_off = open_and_closed_runs()
    for name, doc in docs:
        writer(name, doc)
    assert writer.flush(timeout_s=10)
    assert writer.writer.pushed == []  # a plain flush leaves batching alone
    assert writer.flush(timeout_s=10, open_runs=True)
    assert writer.writer.pushed == [cut_off]


def test_close_pushes_open_runs_unless_told_not_to(tmp_path):
    for open_runs, expected in ((True, 1), (False, 0)):
        writer = CatalogWriter(FakeTiledClient(), tmp_path)
        writer.writer = BatchingTiledWriter()
        docs, _, _ = open_and_closed_runs()
        for name, doc in docs:
            writer(name, doc)
        assert writer.close(timeout_s=10, open_runs=open_runs)
        assert len(writer.writer.pushed) == expected


def test_a_failing_push_is_reported_once_naming_the_spool(tmp_path):
    messages: list[str] = []
    writer = CatalogWriter(FakeTiledClient(), tmp_path, report=messages.append)
    writer.writer = BatchingTiledWriter(fail_push=True)
    docs, _, cut_off = open_and_closed_runs()
    for name, doc in docs:
        writer(name, doc)
    assert writer.flush(timeout_s=10, open_runs=True)
    assert writer.close(timeout_s=10)  # pushes again: the failed run is not retried
    assert writer.failed_runs == [cut_off]
    assert len(messages) == 1
    assert "ConnectionError" in messages[0]
    assert f"stxm import-spool {spool_file_for(tmp_path, cut_off)}" in messages[0]
