"""Shared fixtures: a simulated beamline on free loopback ports, a catalog, a session.

pyepics reads the Channel Access address list once per process, so one IOC fleet serves
the whole test session; tests that kill or fault an IOC restart it before they finish.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import tomllib
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import pytest

from stxm_ctrl.config import BeamlineConfig, load_config
from stxm_ctrl.physics.instrument import InstrumentModel

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def free_port_overrides(data_dir: Path, instruments=None) -> dict:
    """Configuration overrides: every server on its own free loopback port.

    Every simulated IOC of the registry (or of ``instruments``) gets a port, so an
    instrument added to the registry is covered with no edit here.
    """
    from sim_iocs.fleet import free_port_overrides as private_beamline

    overrides = private_beamline(data_dir, instruments)
    overrides["sim"] |= {
        "random_seed": 12345,
        # The sample sits off the stages' nominal zero, so a focus scan has to find it.
        "optics": {"sample_z_offset_um": 2.0},
        # A tenfold EPU gap speed: the motor-record conformance suite moves the gap tens of
        # mm and back in every test (20 s each at the real 2 mm/s).
        "beamline": {"epu_gap_speed_mm_per_s": 20.0},
    }
    return overrides


def wait_for(condition, timeout_s: float, what: str) -> None:
    """Poll ``condition()`` every 50 ms; fail the test with ``what`` after ``timeout_s``."""
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    pytest.fail(f"{what} within {timeout_s} s")


_LIVE_PVS: list = []


def lasting_pv(name: str, **kwargs):
    """A pyepics ``PV`` of its own that is never garbage-collected during the tests.

    pyepics' ``PV.__del__`` clears the PV's subscription from whichever thread runs the
    garbage collector; when that races a monitor arriving for it, libca crashes the process
    (seen: SIGSEGV in a catalog-writer thread). Not ``epics.get_pv``: that shares the PV
    with ophyd's signals, and clearing its callbacks would silence theirs too.
    """
    import epics

    pv = epics.PV(name, **kwargs)
    _LIVE_PVS.append(pv)
    return pv


class IocFreezer:
    """Freeze one simulated IOC (SIGSTOP: it keeps its sockets but stops answering, as a hung
    IOC does) and thaw it (SIGCONT). Thaw in a ``finally``; thawing twice is harmless."""

    def __init__(self, fleet, name: str) -> None:
        self.pid = fleet.pids()[name]
        self.frozen_at: float | None = None

    def freeze(self) -> None:
        import signal

        os.kill(self.pid, signal.SIGSTOP)
        self.frozen_at = time.monotonic()

    def thaw(self) -> None:
        import signal

        os.kill(self.pid, signal.SIGCONT)


def ioc_ports(config: BeamlineConfig) -> list[int]:
    """The configured port of every simulated IOC."""
    return [ioc.port for ioc in config.sim.iocs.values()]


def config_toml(overrides: dict) -> str:
    """Nested overrides as the text of a TOML configuration file (for the CLI)."""
    lines: list[str] = []

    def table(path: tuple[str, ...], values: dict) -> None:
        scalars = {k: v for k, v in values.items() if not isinstance(v, dict)}
        if scalars or not values:
            lines.append(f"[{'.'.join(path)}]")
            for key, value in scalars.items():
                lines.append(f"{key} = {json.dumps(value)}")
        for key, value in values.items():
            if isinstance(value, dict):
                table((*path, key), value)

    for section, values in overrides.items():
        table((section,), values)
    text = "\n".join(lines) + "\n"
    tomllib.loads(text)
    return text


@pytest.fixture(scope="session")
def sim_config(tmp_path_factory: pytest.TempPathFactory) -> BeamlineConfig:
    """Default configuration on free ports with a temporary data directory."""
    return load_config(overrides=free_port_overrides(tmp_path_factory.mktemp("data")))


@pytest.fixture(scope="session")
def sim_fleet(sim_config: BeamlineConfig) -> Iterator:
    """The simulated IOC fleet (subprocesses), with this process's CA client pointed at it."""
    from sim_iocs.fleet import SimFleet
    from stxm_ctrl.epics_env import apply_ca_client_environment

    fleet = SimFleet(sim_config)
    fleet.start()
    apply_ca_client_environment(sim_config)
    yield fleet
    fleet.stop()


@pytest.fixture(scope="session")
def catalog_server(sim_config: BeamlineConfig) -> Iterator:
    """The embedded Tiled server on a free port, stopped by pid at the end."""
    from stxm_ctrl.data.catalog import start_catalog_server

    server = start_catalog_server(sim_config)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def session(sim_config: BeamlineConfig, sim_fleet, catalog_server) -> Iterator:
    """A session (RunEngine, devices, catalog) on the simulated beamline."""
    from stxm_ctrl.app.session import build_session

    s = build_session(sim_config, progress=False)
    yield s
    s.close()


@pytest.fixture(scope="session")
def devices(sim_config: BeamlineConfig, sim_fleet):
    """Connected devices of the simulated beamline (no RunEngine)."""
    from devices import build_devices

    devs = build_devices(sim_config)
    devs.wait_for_connection(10.0)
    return devs


def expected_counts(config: BeamlineConfig, image, ring_current_mA, samples: int = 8):
    """Mean counts the simulator draws from at each pixel's measured position.

    A step pixel counts at one place for ``dwell_s``. A fly pixel counts while the beam
    crosses it (motion blur within a pixel is real), for the time the interferometer's
    clock gave it: the truth is the rate averaged over ``samples`` positions across the
    pixel's width, times the pixel's own dwell.
    """
    at_s = float(image.start["time"])  # the beam drifts < 1 nm during one image
    if image.pixel_dwell_s is None:
        rate = expected_rate_at(
            config, image.x_readback_um, image.y_readback_um, ring_current_mA, at_s=at_s
        )
        return rate * image.dwell_s
    step = float(np.diff(image.x_um).mean()) if image.x_um.size > 1 else 0.0
    offsets = (np.arange(samples) + 0.5) / samples - 0.5
    rates = [
        expected_rate_at(config, image.x_readback_um + o * step, image.y_readback_um,
                         ring_current_mA, at_s=at_s)
        for o in offsets
    ]  # fmt: skip
    return np.mean(rates, axis=0) * image.pixel_dwell_s


_MODELS: dict[int, tuple[BeamlineConfig, InstrumentModel]] = {}


def truth_model(config: BeamlineConfig) -> InstrumentModel:
    """The instrument model the simulator counts with, evaluated exactly (no grids)."""
    if id(config) not in _MODELS:  # the config is kept with it: its id stays its own
        _MODELS[id(config)] = (config, InstrumentModel(config, feature_maps=False))
    return _MODELS[id(config)][1]


def expected_rate_at(
    config: BeamlineConfig,
    x_um,
    y_um,
    ring_current_mA,
    *,
    optics=None,
    gap_mm: float | None = None,
    polarization: str | None = None,
    at_s: float | None = None,
) -> np.ndarray:
    """Mean detected count rate with the beam at stage position(s) (x, y): the ground truth.

    The optics, EPU gap and polarisation default to the simulator's start (aligned, in
    focus, tuned, circular left); ``optics`` is a
    :class:`stxm_ctrl.physics.beam_path.OpticsPositions` (``truth_model(config)
    .optics_positions(energy, readings)`` from motor readings). The x-ray beam drifts
    (``[sim.beam] drift_*_um_per_h`` from the fleet's start): ``at_s`` (wall clock, default
    now) is when the rate was measured; 30 nm/h is 10 nm after a 20-minute test session,
    which next to the test pattern's sharp edges is 10 % of a line's counts.
    """
    model = truth_model(config)
    start_optics, start_gap, start_polarization = model.start_state()
    drift_x, drift_y = beam_drift_um(config, time.time() if at_s is None else at_s)
    return model.detected_rate_Hz(
        np.asarray(x_um) + drift_x,
        np.asarray(y_um) + drift_y,
        optics or start_optics,
        ring_current_mA=ring_current_mA,
        gap_mm=start_gap if gap_mm is None else gap_mm,
        polarization=polarization or start_polarization,
    )


def beam_drift_um(config: BeamlineConfig, at_s: float) -> tuple[float, float]:
    """Where the simulated x-ray beam has drifted (x, y) by wall-clock time ``at_s``.

    The drift runs from the world's epoch (the fleet's start, a monotonic clock time read
    from the world's clock block); no world yet (no fleet): no drift.
    """
    from sim_iocs.world import CLOCK, World

    world = World(config.sim_dir / "world")
    if not world.path_of(CLOCK).exists():
        return 0.0, 0.0
    hours = (at_s - time.time() + time.monotonic() - world.epoch_s) / 3600.0
    beam = config.sim.beam
    return beam.drift_x_um_per_h * hours, beam.drift_y_um_per_h * hours


def poisson_limited_correlation(expected: np.ndarray) -> float:
    """Correlation a perfect measurement reaches when Poisson noise is all that differs.

    For m = t + n with Var(n_i) = t_i, corr(m, t) = sd(t) / sqrt(Var(t) + mean(t)).
    """
    return float(np.std(expected) / np.sqrt(np.var(expected) + np.mean(expected)))


@pytest.fixture
def image_matches_ground_truth(sim_config: BeamlineConfig):
    """Assert an image agrees with the simulator's ground truth at its photon statistics.

    The threshold is the Poisson-limited correlation minus 0.02: ring decay between
    top-ups (< 0.5 %), the beam drift within one image (< 1 nm; ``expected_counts`` places
    the beam where it had drifted to) and stage readback rounding cost far less than that,
    while a mirrored, shifted or scrambled image falls well below.
    """

    def check(image, ring_current_mA) -> float:
        assert image.complete
        expected = expected_counts(sim_config, image, ring_current_mA)
        measured = image.counts
        corr = float(np.corrcoef(measured.ravel(), expected.ravel())[0, 1])
        limit = poisson_limited_correlation(expected) - 0.02
        assert corr > limit, f"correlation {corr:.4f} <= {limit:.4f}"
        # The same threshold rejects the image mirrored left-right.
        mirrored = float(np.corrcoef(measured[:, ::-1].ravel(), expected.ravel())[0, 1])
        assert mirrored < limit - 0.1, f"mirrored image correlates too well: {mirrored:.4f}"
        return corr

    return check


# -- child processes started by tests --------------------------------------------------------
#
# How the tests were launched must not change what a test sees: `nohup uv run pytest &` (a
# nightly job) starts pytest with SIGINT and SIGHUP ignored, and ignored signals are
# inherited. A test that stands for a terminal's Ctrl-C or a closed terminal starts its child
# with the dispositions a terminal gives it; one that stands for a background job, with
# those of `nohup cmd &`.

#: A command typed at an interactive terminal: every stop signal at its default.
TERMINAL_SIGNALS: Mapping[int, Callable | int] = {
    signal.SIGINT: signal.SIG_DFL,
    signal.SIGTERM: signal.SIG_DFL,
    signal.SIGHUP: signal.SIG_DFL,
}
#: `nohup cmd &` from a script: the shell ignores SIGINT for a background job, nohup SIGHUP.
NOHUP_BACKGROUND_SIGNALS: Mapping[int, Callable | int] = {
    signal.SIGINT: signal.SIG_IGN,
    signal.SIGTERM: signal.SIG_DFL,
    signal.SIGHUP: signal.SIG_IGN,
}


def with_signal_dispositions(dispositions: Mapping[int, Callable | int]) -> Callable[[], None]:
    """A ``preexec_fn`` giving the child exactly these signal dispositions."""

    def preexec() -> None:
        for signum, disposition in dispositions.items():
            signal.signal(signum, disposition)

    return preexec


class Children:
    """Processes a test starts; every one still running at teardown is killed by its pid.

    Whatever the test's outcome: a test that fails mid-way must leave no process behind to
    hold ports or to be reported ("subprocess N is still running") in a later test.
    """

    def __init__(self) -> None:
        self.started: list[subprocess.Popen] = []

    def start(
        self,
        argv: Sequence[str],
        *,
        output: Path | None = None,
        signals: Mapping[int, Callable | int] = TERMINAL_SIGNALS,
        **popen: object,
    ) -> subprocess.Popen:
        """Start ``argv`` in a session of its own (as a terminal's job: a signal sent to it
        reaches it alone), stdin closed, stdout and stderr to ``output`` if given."""
        popen.setdefault("stdin", subprocess.DEVNULL)
        if output is not None:
            with output.open("w") as out:  # the child writes to its own copy
                process = subprocess.Popen(
                    argv,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    preexec_fn=with_signal_dispositions(signals),
                    **popen,  # type: ignore[arg-type]
                )
        else:
            process = subprocess.Popen(
                argv,
                start_new_session=True,
                preexec_fn=with_signal_dispositions(signals),
                **popen,  # type: ignore[arg-type]
            )
        self.started.append(process)
        return process

    def stop_all(self) -> None:
        """SIGKILL (by pid) every child still running, and reap them all."""
        for process in self.started:
            if process.poll() is None:
                try:
                    os.kill(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            process.wait()
            for stream in (process.stdin, process.stdout, process.stderr):
                if stream is not None:
                    stream.close()


@pytest.fixture
def children() -> Iterator[Children]:
    """Start processes for a test (:class:`Children`); all stopped by pid at teardown."""
    started = Children()
    try:
        yield started
    finally:
        started.stop_all()


_INTEGRATION_DIR = Path(__file__).parent / "integration"


#: Files that take longest (seconds summed over their tests in a full run on four workers,
#: 2026-12-07, two cores shared with other jobs), started first: the workers (pytest-xdist,
#: ``--dist loadfile``) take files in this order, so the last files to start are short ones
#: and no worker is left with a long file while the others idle. Unlisted files follow in
#: their usual order, integration before unit.
LONGEST_FILES_FIRST = (
    "integration/test_fly_image.py",  # 402 s
    "integration/test_optics_alignment.py",  # 357 s
    "integration/test_spectromicroscopy.py",  # 303 s
    "integration/test_demo_interrupted.py",  # 277 s
    "integration/test_conformance_motor.py",  # 264 s (274 short tests)
    "integration/test_foreground_commands.py",  # 202 s
    "integration/test_nexus_files.py",  # 157 s
    "integration/test_measured_state.py",  # 124 s
    "integration/test_demo.py",  # 118 s
    "integration/test_moves_end.py",  # 113 s
    "integration/test_catalog_of_runs.py",  # 84 s
    "integration/test_sample_stage.py",  # 75 s
    "integration/test_demo_killed.py",  # 71 s
    "integration/test_catalog_start.py",  # 62 s
    "integration/test_optics_iocs.py",  # 51 s
    "integration/test_sample_image.py",  # 40 s
    "integration/test_catalog_secrets.py",  # 37 s
    "integration/test_conformance_alarms.py",  # 33 s
    "integration/test_repeater_libca.py",  # 27 s
    "integration/test_spool_import.py",  # 25 s
    "unit/test_search.py",  # 19 s
    "unit/test_sample_pattern.py",  # 13 s
    "unit/test_spool_durability.py",  # 12 s
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test under tests/integration ``ioc`` (``-m "not ioc"``: unit tests only),
    and, on pytest-xdist workers, put the files of :data:`LONGEST_FILES_FIRST` first (a
    file's tests keep their order). One process keeps the plain order, the one CI runs."""
    tests_dir = Path(__file__).parent
    for item in items:
        if _INTEGRATION_DIR in Path(item.fspath).parents:
            item.add_marker(pytest.mark.ioc)
    if not hasattr(config, "workerinput"):
        return

    def rank(item: pytest.Item) -> tuple[int, int]:
        path = Path(item.fspath)
        name = path.relative_to(tests_dir).as_posix() if tests_dir in path.parents else ""
        if name in LONGEST_FILES_FIRST:
            return 0, LONGEST_FILES_FIRST.index(name)
        return 1, 0 if _INTEGRATION_DIR in path.parents else 1

    items.sort(key=rank)  # stable: tests of one file stay in order


@pytest.fixture
def make_run_engine():
    """RunEngine factory whose RunEngines' event loops are closed after the test."""
    from bluesky import RunEngine

    from stxm_ctrl.app.session import close_run_engine

    made: list = []

    def make(*args, **kwargs):
        RE = RunEngine(*args, **kwargs)
        made.append(RE)
        return RE

    yield make
    for RE in made:
        close_run_engine(RE)


# -- the reliability table (docs/reference/reliability.md) ----------------------------------
#
# Tests of faults and bad input record what a user sees, how long it took to end and what
# was kept; `pytest --reliability-table=PATH` writes them, with each test's outcome, as the
# Markdown table the docs carry. The table is generated from these results, never by hand.

#: The name of a test's user property that carries one row of the table. Rows travel with
#: the test's report: under pytest-xdist a worker's reports reach the controller, which alone
#: writes the table, so the table holds every worker's rows once.
RELIABILITY_PROPERTY = "reliability row"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--reliability-table",
        default=None,
        help="write the reliability table (Markdown) of this run's fault tests to this file",
    )


@pytest.fixture
def reliability(request: pytest.FixtureRequest):
    """Record one row: ``reliability(fault=..., seen=..., ended_s=..., kept=...)``."""

    def record(*, fault: str, seen: str, ended_s: float | None, kept: str) -> None:
        row = {"fault": fault, "seen": " ".join(seen.split()), "ended_s": ended_s, "kept": kept}
        request.node.user_properties.append((RELIABILITY_PROPERTY, row))

    return record


class ReliabilityTable:
    """Collects the rows of every test's call report and writes the table at the end."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows: list[dict] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "call":  # later reports repeat the same properties
            return
        for name, row in report.user_properties:
            if name == RELIABILITY_PROPERTY:
                self.rows.append({**row, "test": report.nodeid, "outcome": report.outcome})

    def pytest_sessionfinish(self) -> None:
        if self.rows:
            self.path.write_text(reliability_markdown(self.rows))


def pytest_configure(config: pytest.Config) -> None:
    path = config.getoption("--reliability-table")
    if path and not hasattr(config, "workerinput"):  # not in a pytest-xdist worker
        config.pluginmanager.register(ReliabilityTable(Path(path)), "reliability-table")


def reliability_markdown(rows: list[dict]) -> str:
    """The reliability table of ``rows`` (one per test), as docs/reference carries it."""
    import datetime
    import platform
    import re

    def cell(text: str) -> str:
        text = re.sub(r"/tmp/pytest-of-[^/]+/pytest-\d+/(?:popen-gw\d+/)?[^/\s]+", "<tmp>", text)
        text = re.sub(
            r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "<uid>", text
        )
        return text.replace("|", "\\|").replace("\n", " ")

    rows = sorted(rows, key=lambda row: (row["fault"], row["test"]))
    lines = [
        "# Reliability: faults and bad input, what the user sees, what is kept",
        "",
        "Generated by the tests (`uv run pytest --reliability-table="
        "docs/reference/reliability.md`), from the run of "
        f"{datetime.date.today().isoformat()} on {platform.node() or 'this machine'} "
        f"({platform.python_implementation()} {platform.python_version()}); do not edit by "
        "hand. Each row is one test: the fault it causes, the message the user sees (as "
        "asserted), the time from the fault to the end of the command or run, and what "
        "is kept. A row whose test failed says so.",
        "",
        "| fault or bad input | what the user sees | time to end | what is kept | test |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        ended = "—" if row["ended_s"] is None else f"{row['ended_s']:.1f} s"
        status = "" if row.get("outcome", "passed") == "passed" else f" (**{row['outcome']}**)"
        test = row["test"].split("::")[-1].split("[")[0]
        lines.append(
            f"| {cell(row['fault'])} | {cell(row['seen'])} | {ended} | {cell(row['kept'])} | "
            f"`{cell(test)}`{status} |"
        )
    return "\n".join(lines) + "\n"
