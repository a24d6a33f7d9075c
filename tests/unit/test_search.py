"""Finding runs in the catalog: each filter alone and together, order, limit, the table.

One in-process Tiled server (SQLite catalog in a temporary directory) for the module, with
ten runs written by ``bluesky_tiled_plugins.TiledWriter`` from a RunEngine counting an
``ophyd.sim`` detector: a successful run of each scan type, one aborted, one failed, one
left open (no stop document). The runs go in out of time order, so newest-first can only
come from sorting by start time. No IOCs.
"""

from __future__ import annotations

import argparse
import io
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from stxm_ctrl.data import search
from stxm_ctrl.data.search import (
    RunSummary,
    add_runs_arguments,
    find_runs,
    format_runs_table,
    runs_command,
)


def local(*args: int) -> float:
    """Unix time of a local wall-clock time."""
    return datetime(*args).timestamp()  # pyright: ignore[reportArgumentType]


# scan_id: (when, start metadata, points, how it ends). Times are local wall-clock times.
# Left unformatted: a table, one run per entry.
RUNS: dict[int, tuple[float, dict, int, str]] = {
    110: (
        local(2026, 11, 23, 12, 0),
        {"plan_name": "sample_focus", "stxm_scan_type": "sample focus", "sample_name": "Ni grid",
         "energy_eV": 400.0, "energy_min_eV": 395.0, "proposal_id": "P-001", "user": "ann"},
        2, "success",
    ),
    101: (
        local(2026, 11, 24, 9, 15),
        {"plan_name": "sample_image", "stxm_scan_type": "sample image", "sample_name": "Fe film A",
         "energy_eV": 707.0, "proposal_id": "P-001", "user": "ann"},
        3, "success",
    ),
    102: (
        local(2026, 11, 25, 10, 0),
        {"plan_name": "image_stack", "stxm_scan_type": "sample image stack",
         "sample_name": "Fe film B", "energy_eV": 700.0, "energy_min_eV": 690.0,
         "energy_max_eV": 730.0, "proposal_id": "P-001", "user": "ann"},
        4, "success",
    ),
    103: (
        local(2026, 11, 25, 23, 59, 59),
        {"plan_name": "point_spectrum", "stxm_scan_type": "point spectrum",
         "sample_name": "PS-PMMA blend", "energy_eV": 280.0, "energy_min_eV": 280.0,
         "energy_max_eV": 320.0, "proposal_id": "P-002", "user": "bob"},
        5, "success",
    ),
    104: (
        local(2026, 11, 26, 0, 0, 0),
        {"plan_name": "osa_focus", "stxm_scan_type": "osa focus", "energy_eV": 300.0,
         "energy_min_eV": 300.0, "energy_max_eV": 300.0, "proposal_id": "", "user": ""},
        2, "success",
    ),
    105: (
        local(2026, 11, 26, 14, 0, 0),
        {"plan_name": "line_spectrum", "stxm_scan_type": "line spectrum",
         "sample_name": "cell_3 (fixed)", "energy_eV": 520.0, "energy_min_eV": 520.0,
         "energy_max_eV": 560.0, "proposal_id": "P-002", "user": "bob"},
        6, "success",
    ),
    106: (
        local(2026, 11, 26, 14, 0, 40),
        {"plan_name": "xmcd_stack", "stxm_scan_type": "sample image stack",
         "sample_name": "Ölprobe Fe3O4 on Si3N4 membrane", "energy_eV": 700.0,
         "energy_min_eV": 700.0, "energy_max_eV": 720.25, "proposal_id": "P-003",
         "user": "émilie"},
        4, "success",
    ),
    107: (
        local(2026, 11, 27, 8, 30),
        {"plan_name": "sample_image", "stxm_scan_type": "sample image", "sample_name": "FE FILM C",
         "energy_eV": 730.0, "energy_min_eV": 730.0, "energy_max_eV": 730.0,
         "proposal_id": "P-003", "user": "carol"},
        1, "abort",
    ),
    108: (
        local(2026, 11, 27, 9, 0),
        {"plan_name": "detector_image", "stxm_scan_type": "detector image",
         "sample_name": "cellx3", "energy_eV": 710.0},
        1, "fail",
    ),
    # Recorded by another program, with NXstxm's spelling of the scan type; never stopped.
    109: (
        local(2026, 11, 27, 9, 30),
        {"plan_name": "point_spectrum", "stxm_scan_type": "sample point spectrum",
         "sample_name": "cell_3 (fixed)", "energy_eV": 290.0, "energy_min_eV": 290.0,
         "energy_max_eV": 310.0, "proposal_id": "P-002", "user": "bob"},
        3, "open",
    ),
}  # fmt: skip
WRITE_ORDER = [105, 110, 103, 109, 101, 107, 104, 102, 108, 106]
NEWEST_FIRST = sorted(RUNS, key=lambda scan: -RUNS[scan][0])
ALL = set(RUNS)


class PlanError(RuntimeError):
    pass


def _write_runs(client) -> dict[int, str]:
    """Write RUNS with TiledWriter from a RunEngine's documents; their uids by scan id."""
    import bluesky.plan_stubs as bps
    import bluesky.preprocessors as bpp
    from bluesky import RunEngine
    from bluesky.plans import count
    from bluesky.utils import RunEngineInterrupted
    from bluesky_tiled_plugins import TiledWriter
    from ophyd.sim import hw

    from stxm_ctrl.app.session import close_run_engine

    det = hw().det  # a simulated point detector
    writer = TiledWriter(client)
    open_runs: set[str] = set()

    def to_catalog(name: str, doc: dict) -> None:
        if name == "start":
            # A RunEngine stamps the start document with the time now; give it the run's.
            doc = dict(doc)
            doc["time"] = doc.pop("test_time")
            if doc.pop("test_leave_open"):
                open_runs.add(doc["uid"])
        if name == "stop" and doc["run_start"] in open_runs:
            return  # the process died before the run ended
        writer(name, doc)

    RE = RunEngine()
    RE.subscribe(to_catalog)
    uids: dict[int, str] = {}
    try:
        for scan_id in WRITE_ORDER:
            when, md, points, ending = RUNS[scan_id]
            RE.md["scan_id"] = scan_id - 1
            md = {**md, "test_time": when, "test_leave_open": ending == "open"}
            if ending in ("success", "open"):
                (uids[scan_id],) = RE(count([det], num=points, md=md))
            elif ending == "abort":

                def paused(md=md):
                    yield from bps.open_run(md)
                    yield from bps.trigger_and_read([det])
                    yield from bps.checkpoint()
                    yield from bps.pause()
                    yield from bps.trigger_and_read([det])
                    yield from bps.close_run()

                with pytest.raises(RunEngineInterrupted):
                    RE(paused())
                (uids[scan_id],) = RE.abort("the sample drifted out of the field")
            else:

                def failing():
                    yield from bps.trigger_and_read([det])
                    raise PlanError("the shutter did not open")

                with pytest.raises(PlanError):
                    RE(bpp.run_wrapper(failing(), md=md))
                uids[scan_id] = next(
                    key
                    for key, run in client.items()
                    if run.metadata["start"]["scan_id"] == scan_id
                )
    finally:
        close_run_engine(RE)
    return uids


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    """A Tiled server with RUNS in its SQLite catalog, stopped at the end of the module."""
    from tiled.client import from_uri
    from tiled.server import SimpleTiledServer

    server = SimpleTiledServer(directory=tmp_path_factory.mktemp("catalog"))
    try:
        client = from_uri(server.uri)
        uids = _write_runs(client)
        yield SimpleNamespace(client=client, uids=uids)
        client.context.close()
    finally:
        server.close()


@pytest.fixture
def client(catalog):
    return catalog.client


def scans(runs: list[RunSummary]) -> list[int]:
    return [run.scan_id for run in runs]  # pyright: ignore[reportReturnType]


def found(client, **filters) -> set[int]:
    runs = find_runs(client, **filters)
    ids = scans(runs)
    assert ids == sorted(ids, key=lambda scan: -RUNS[scan][0]), "not newest first"
    return set(ids)


# -- what was written ---------------------------------------------------------------------------


def test_every_run_is_listed_newest_first_with_what_its_documents_say(client, catalog):
    runs = find_runs(client)
    assert scans(runs) == NEWEST_FIRST
    by_scan = {run.scan_id: run for run in runs}
    assert by_scan[102] == RunSummary(
        uid=catalog.uids[102],
        scan_id=102,
        time=RUNS[102][0],
        plan_name="image_stack",
        scan_type="sample image stack",
        sample_name="Fe film B",
        energy_min_eV=690.0,
        energy_max_eV=730.0,
        proposal_id="P-001",
        user="ann",
        exit_status="success",
        num_points=4,
    )
    assert (by_scan[101].energy_min_eV, by_scan[101].energy_max_eV) == (707.0, 707.0)
    assert (by_scan[110].energy_min_eV, by_scan[110].energy_max_eV) == (395.0, 400.0)
    assert by_scan[104].sample_name is None
    assert (by_scan[104].proposal_id, by_scan[104].user) == (None, None)
    assert (by_scan[107].exit_status, by_scan[107].num_points) == ("abort", 1)
    assert (by_scan[108].exit_status, by_scan[108].num_points) == ("fail", 1)
    assert (by_scan[109].exit_status, by_scan[109].num_points) == ("open", None)
    assert by_scan[109].short_uid == catalog.uids[109][:8]


def test_the_limit_keeps_the_newest(client):
    assert scans(find_runs(client, limit=3)) == NEWEST_FIRST[:3]
    assert scans(find_runs(client, limit=1)) == [109]
    assert scans(find_runs(client, scan_type="sample image", limit=1)) == [107]
    assert scans(find_runs(client, limit=100)) == NEWEST_FIRST
    assert scans(find_runs(client, limit=1000)) == NEWEST_FIRST  # more than a server page


# -- one filter at a time -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sample", "expected"),
    [
        ("fe", {101, 102, 106, 107}),
        ("FE FILM", {101, 102, 107}),
        ("film a", {101}),
        ("ölprobe", {106}),  # non-ASCII, other case
        ("l_3", {105, 109}),  # "_" is a character, not a wildcard: not "cellx3"
        ("%", set()),
        ("(fixed)", {105, 109}),
        ("zz", set()),
    ],
)
def test_sample_matches_part_of_the_name_in_any_case(client, sample, expected):
    assert found(client, sample=sample) == expected


@pytest.mark.parametrize(
    ("scan_type", "expected"),
    [
        ("sample image", {101, 107}),
        ("sample image stack", {102, 106}),
        ("point spectrum", {103, 109}),
        ("sample point spectrum", {103, 109}),  # NXstxm's spelling
        ("Point_Spectrum", {103, 109}),
        ("line spectrum", {105}),
        ("osa focus", {104}),
        ("sample focus", {110}),
        ("detector image", {108}),
        ("osa image", set()),
    ],
)
def test_scan_type(client, scan_type, expected):
    assert found(client, scan_type=scan_type) == expected


def test_plan_name(client):
    assert found(client, plan_name="sample_image") == {101, 107}
    assert found(client, plan_name="xmcd_stack") == {106}
    assert found(client, plan_name="Sample_Image") == set()  # exact


@pytest.mark.parametrize(
    ("since", "until", "expected"),
    [
        ("2026-11-26", None, {104, 105, 106, 107, 108, 109}),  # from midnight, included
        (None, "2026-11-25", {110, 101, 102, 103}),  # the whole day, 23:59:59 included
        ("2026-11-25", "2026-11-25", {102, 103}),
        (None, "2026-11-26T14:00", {110, 101, 102, 103, 104, 105, 106}),  # the whole minute
        (None, "2026-11-26 14:00:00", {110, 101, 102, 103, 104, 105}),  # that second
        ("2026-11-26T14:00:30", None, {106, 107, 108, 109}),
        ("2026-11-26T14", "2026-11-26T14", {105, 106}),  # the hour
        ("2026-11-26T14:00:40.0", "2026-11-27T08:30:00.000", {106, 107}),  # instants
        (datetime(2026, 11, 26, 14, 0, 40), None, {106, 107, 108, 109}),
        (None, datetime(2026, 11, 26, 14, 0, 0), {110, 101, 102, 103, 104, 105}),  # inclusive
        (local(2026, 11, 27, 8, 30), local(2026, 11, 27, 9, 0), {107, 108}),  # unix times
    ],
)
def test_since_and_until_in_local_time(client, since, until, expected):
    assert found(client, since=since, until=until) == expected


def test_a_date_time_with_an_offset_is_in_that_zone(client):
    since = "2026-11-26T12:00+00:00"
    cut = datetime(2026, 11, 26, 12, tzinfo=UTC).timestamp()
    assert found(client, since=since) == {scan for scan in RUNS if RUNS[scan][0] >= cut}
    assert found(client, since="2026-11-26T12:00Z") == found(client, since=since)


def test_a_date_means_midnight_where_the_catalog_is_read():
    """``since`` dates are local: in UTC-5, 2026-11-26 starts at 05:00 UTC."""
    saved = os.environ.get("TZ")
    try:
        os.environ["TZ"] = "XST+05"  # POSIX: five hours behind UTC
        time.tzset()
        bound = search._parse_time("since", "2026-11-26", end=False)
        end = search._parse_time("until", "2026-11-26T14:00", end=True)
    finally:
        if saved is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = saved
        time.tzset()
    assert bound.time == datetime(2026, 11, 26, 5, tzinfo=UTC).timestamp()
    assert (end.time, end.inclusive) == (
        datetime(2026, 11, 26, 19, 1, tzinfo=UTC).timestamp(),
        False,
    )


@pytest.mark.parametrize(
    ("energy", "expected"),
    [
        ((730.0, 800.0), {102, 107}),  # 690-730 ends at 730; 730 alone
        ((730.01, 800.0), set()),
        ((600.0, 690.0), {102}),  # 690-730 starts at 690
        ((600.0, 689.99), set()),
        ((300.0, 300.0), {103, 104, 109}),  # inside 280-320 and 290-310; 300 alone
        ((705.0, 708.0), {101, 102, 106}),  # 707 (energy_eV only), 690-730, 700-720.25
        ((720.25, 720.25), {102, 106}),
        ((398.0, 399.0), {110}),  # energy_min_eV 395, no energy_max_eV: up to energy_eV 400
        ((321.0, 394.0), set()),
        ((0.0, 2000.0), ALL),
    ],
)
def test_energy_range_overlap(client, energy, expected):
    assert found(client, energy_eV=energy) == expected


def test_proposal_and_user_are_exact(client):
    assert found(client, proposal="P-001") == {110, 101, 102}
    assert found(client, proposal="P-00") == set()
    assert found(client, user="bob") == {103, 105, 109}
    assert found(client, user="Bob") == set()
    assert found(client, user="émilie") == {106}


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("success", {110, 101, 102, 103, 104, 105, 106}),
        ("abort", {107}),
        ("fail", {108}),
        ("open", {109}),
        ("ABORT", {107}),
    ],
)
def test_exit_status(client, status, expected):
    assert found(client, exit_status=status) == expected


# -- together -----------------------------------------------------------------------------------


def test_filters_combine(client):
    assert found(client, sample="fe", since="2026-11-26") == {106, 107}
    assert found(client, sample="fe", since="2026-11-26", exit_status="success") == {106}
    assert found(client, scan_type="sample image", proposal="P-001") == {101}
    assert found(client, user="bob", energy_eV=(300.0, 300.0)) == {103, 109}
    assert found(client, user="bob", energy_eV=(300.0, 300.0), exit_status="open") == {109}
    assert found(client, sample="fe", energy_eV=(720.0, 800.0), until="2026-11-26") == {102, 106}
    assert found(
        client, sample="cell", scan_type="point spectrum", plan_name="point_spectrum"
    ) == {109}
    assert found(client, proposal="P-002", since="2026-11-26", until="2026-11-26") == {105}
    assert scans(find_runs(client, energy_eV=(0.0, 2000.0), limit=2)) == [109, 108]
    assert scans(find_runs(client, sample="fe", energy_eV=(0.0, 2000.0), limit=3)) == [
        107,
        106,
        102,
    ]


# -- where the filtering happens ----------------------------------------------------------------


@pytest.fixture
def fetched(monkeypatch) -> list[str]:
    """The uids of the runs the server sends back, as find_runs reads them."""
    seen: list[str] = []
    from_metadata = RunSummary.from_metadata.__func__  # pyright: ignore[reportFunctionMemberAccess]

    def spy(cls, metadata, uid=None):
        seen.append(uid)
        return from_metadata(cls, metadata, uid)

    monkeypatch.setattr(RunSummary, "from_metadata", classmethod(spy))
    return seen


@pytest.mark.parametrize(
    "filters",
    [
        {"scan_type": "point spectrum"},
        {"plan_name": "sample_image"},
        {"since": "2026-11-26", "until": "2026-11-26T14:00"},
        {"energy_eV": (705.0, 708.0)},
        {"energy_eV": (398.0, 399.0)},
        {"proposal": "P-002"},
        {"user": "ann"},
        {"exit_status": "open"},
        {"exit_status": "abort"},
        {"sample": "fe"},
    ],
)
def test_the_server_sends_only_the_runs_that_match(client, fetched, filters):
    runs = find_runs(client, **filters)
    assert runs
    assert sorted(fetched) == sorted(run.uid for run in runs)


def test_the_limit_is_a_page_the_server_sends(client, fetched):
    assert scans(find_runs(client, limit=2)) == NEWEST_FIRST[:2]
    assert len(fetched) == 2


def test_sample_wildcards_are_checked_here(client, fetched, catalog):
    # SQL LIKE reads "_" as any one character: the server sends "cellx3" too.
    assert found(client, sample="l_3") == {105, 109}
    assert catalog.uids[108] in fetched


def test_the_catalog_like_ignores_ascii_case_on_sqlite(client):
    assert search._like_ignores_ascii_case(client)


def test_sample_is_matched_here_when_the_server_like_minds_case(client, fetched, monkeypatch):
    """A PostgreSQL catalog compares LIKE case-sensitively: the sample is matched here."""
    monkeypatch.setattr(search, "_like_ignores_ascii_case", lambda client: False)
    assert found(client, sample="fe") == {101, 102, 106, 107}
    assert len(fetched) == len(RUNS)


@pytest.mark.parametrize(
    ("sample", "pattern"),
    [
        ("fe", "%fe%"),
        ("l_3", "%l_3%"),
        ("50%", "%50_%"),
        ("ölprobe", "%lprobe%"),
        ("Straße 1", "%Stra%e 1%"),
        ("ü", "%%"),
    ],
)
def test_like_pattern_matches_at_least_what_the_sample_filter_wants(sample, pattern):
    assert search._like_pattern(sample) == pattern


# -- the table ----------------------------------------------------------------------------------


def test_table_of_a_proposal(client, catalog):
    u = catalog.uids
    text = format_runs_table(find_runs(client, proposal="P-002"))
    assert (
        text.splitlines()
        == [
            "scan  started           plan            scan type              sample          energy      proposal  user  status   points  uid",  # noqa: E501
            f" 109  2026-11-27 09:30  point_spectrum  sample point spectrum  cell_3 (fixed)  290–310 eV  P-002     bob   open          —  {u[109][:8]}",  # noqa: E501
            f" 105  2026-11-26 14:00  line_spectrum   line spectrum          cell_3 (fixed)  520–560 eV  P-002     bob   success       6  {u[105][:8]}",  # noqa: E501
            f" 103  2026-11-25 23:59  point_spectrum  point spectrum         PS-PMMA blend   280–320 eV  P-002     bob   success       5  {u[103][:8]}",  # noqa: E501
        ]
    )


def test_table_cuts_long_samples_and_shows_missing_values(client, catalog):
    lines = format_runs_table(
        find_runs(client, since="2026-11-26", until="2026-11-27T08:59")
    ).splitlines()
    assert [line.split()[0] for line in lines] == ["scan", "107", "106", "105", "104"]
    header, r107, r106, _, r104 = lines
    assert r106.startswith(
        " 106  2026-11-26 14:00  xmcd_stack     sample image stack  Ölprobe Fe3O4 on Si3N4…  "
        "700–720.25 eV  P-003     émilie  success       4  "
    )
    assert len(r107) == len(r106) == len(r104)  # fixed width
    assert header.index("sample") == r106.index("Ölprobe")
    assert r107.startswith(" 107  2026-11-27 08:30  sample_image   sample image        FE FILM C")
    assert "  730 eV  " in r107 and "  abort  " in r107
    assert " 104  2026-11-26 00:00  osa_focus      osa focus           —   " in r104
    assert "  300 eV  " in r104
    assert r104.endswith(f"—         —       success       2  {catalog.uids[104][:8]}")


def test_table_of_nothing():
    assert format_runs_table([]) == "no runs match"


def test_table_keeps_one_line_per_run_whatever_the_sample_name():
    run = RunSummary.from_metadata(
        {
            "start": {
                "uid": "abcdef0123",
                "scan_id": 7,
                "time": local(2026, 11, 26, 9, 5),
                "sample_name": "line one\nline two\x1b[31m red",
                "energy_eV": 284.35,
            }
        }
    )
    lines = format_runs_table([run]).splitlines()
    assert len(lines) == 2
    assert "  line one line two?[31m…  " in lines[1]  # no escape sequence reaches the terminal
    assert "  284.35 eV  " in lines[1]
    assert "open" in lines[1] and lines[1].endswith("abcdef01")


# -- bad arguments ------------------------------------------------------------------------------


class NoCatalog:
    """A client that fails the test if it is asked anything."""

    def __getattr__(self, name: str):
        raise AssertionError(f"the catalog was queried ({name}) before the filters were checked")


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        (
            {"energy_eV": (800.0, 700.0)},
            "energy_eV (--energy) = (800, 700): lo is above hi; give the range low end first, "
            "(700, 800)",
        ),
        (
            {"energy_eV": 700.0},
            "energy_eV (--energy) must be a pair of energies (lo, hi) in eV, got 700.0; give "
            "(lo, hi) in eV, e.g. (700, 720)",
        ),
        (
            {"energy_eV": (700.0, float("nan"))},
            "energy_eV (--energy): hi = nan is not a finite number; give (lo, hi) in eV, e.g. "
            "(700, 720)",
        ),
        (
            {"since": "26.11.2026"},
            "since (--since) '26.11.2026' is not a date; give an ISO date or date-time in local "
            "time, e.g. '2026-11-26' or '2026-11-26T14:00' (or a datetime, or a unix time in s)",
        ),
        (
            {"until": "2026-13-01"},
            "until (--until) '2026-13-01' is not a date; give an ISO date or date-time in local "
            "time, e.g. '2026-11-26' or '2026-11-26T14:00' (or a datetime, or a unix time in s)",
        ),
        (
            {"since": "2026-11-27", "until": "2026-11-26"},
            "since (--since) '2026-11-27' is not before until (--until) '2026-11-26', so no run "
            "can match; swap them or widen the range",
        ),
        (
            {"limit": 0},
            "limit (--limit) must be a whole number of runs >= 1, got 0; give how many runs to "
            "list, newest first (default 50)",
        ),
        (
            {"scan_type": "sample imag"},
            "scan_type (--scan-type) 'sample imag' is not a scan type; did you mean 'sample "
            "image'? use one of 'sample image', 'sample image stack', 'point spectrum', "
            "'line spectrum', 'osa image', 'osa focus', 'sample focus', 'detector image' "
            "(NXstxm's 'sample point spectrum', 'sample line spectrum' are accepted too)",
        ),
        (
            {"exit_status": "aborted"},
            "exit_status (--status) 'aborted' is not a run status; use one of success, abort, "
            "fail, open ('open': no stop document, still running or cut off)",
        ),
        (
            {"sample": "  "},
            "sample (--sample) is empty; give part of the sample name (any case), or leave the "
            "filter out",
        ),
        (
            {"user": ""},
            "user (--user) is empty; give the user name, exactly, or leave the filter out",
        ),
    ],
)
def test_bad_filters_are_refused_before_any_query(filters, message):
    with pytest.raises(ValueError) as excinfo:
        find_runs(NoCatalog(), **filters)
    assert str(excinfo.value) == message


@pytest.mark.parametrize("limit", [-1, 2.5, True, "10"])
def test_limit_must_be_a_positive_whole_number(limit):
    with pytest.raises(ValueError, match=r"^limit \(--limit\) must be a whole number"):
        find_runs(NoCatalog(), limit=limit)


# -- the command --------------------------------------------------------------------------------


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="stxm runs")
    add_runs_arguments(parser)
    return parser.parse_args(argv)


def test_runs_arguments_and_their_defaults():
    assert vars(parse()) == {
        "sample": None,
        "scan_type": None,
        "plan": None,
        "since": None,
        "until": None,
        "energy": None,
        "proposal": None,
        "user": None,
        "status": None,
        "limit": 50,
    }
    args = parse(
        "--sample",
        "fe",
        "--scan-type",
        "sample image",
        "--plan",
        "sample_image",
        "--since",
        "2026-11-26",
        "--until",
        "2026-11-27T09:00",
        "--energy",
        "700",
        "720",
        "--proposal",
        "P-003",
        "--user",
        "carol",
        "--status",
        "abort",
        "--limit",
        "5",
    )
    assert args.energy == [700.0, 720.0]
    assert (args.scan_type, args.plan, args.status, args.limit) == (
        "sample image",
        "sample_image",
        "abort",
        5,
    )


def test_runs_command_prints_the_table(client, catalog):
    out = io.StringIO()
    assert runs_command(client, parse("--sample", "fe", "--status", "abort"), out) == 0
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and lines[1].startswith(" 107  2026-11-27 08:30  sample_image")
    assert lines[1].endswith(catalog.uids[107][:8])


def test_runs_command_says_when_more_runs_match_than_the_limit(client):
    out = io.StringIO()
    runs_command(client, parse("--user", "ann", "--limit", "2"), out)
    lines = out.getvalue().splitlines()
    assert [line.split()[0] for line in lines[1:3]] == ["102", "101"]
    assert lines[3:] == ["(the newest 2 shown; more runs match: raise --limit to see them)"]

    out = io.StringIO()
    runs_command(client, parse("--user", "ann", "--limit", "3"), out)
    assert len(out.getvalue().splitlines()) == 4  # header and three runs, no note


def test_runs_command_passes_bad_filters_on(client):
    with pytest.raises(ValueError, match=r"^energy_eV \(--energy\) = \(800, 700\): lo is above"):
        runs_command(client, parse("--energy", "800", "700"), io.StringIO())
    with pytest.raises(ValueError, match=r"^limit \(--limit\) must be a whole number of runs"):
        runs_command(client, parse("--limit", "0"), io.StringIO())
    out = io.StringIO()
    runs_command(client, parse("--sample", "no such sample"), out)
    assert out.getvalue() == "no runs match\n"
