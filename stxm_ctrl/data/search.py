"""Find runs in the catalog by sample, scan type, plan, date, energy, proposal, user, status.

:func:`find_runs` turns a scientist's filters into Tiled queries on the start and stop
documents (``client[uid].metadata["start"]`` / ``["stop"]``), newest run first, and
:func:`format_runs_table` prints what it found as a fixed-width table; ``stxm runs`` is the
two together (:func:`add_runs_arguments`, :func:`runs_command`).

What the server does and what the client does (measured on Tiled 0.2.20 with its SQLite
catalog, the embedded ``stxm serve`` one; 3000 runs: one filtered, sorted page of 50 in
0.06 s, against 4.6 s to fetch every run's metadata and filter here):

- server-side: scan type (``In``, both spellings), plan (``Eq``), since/until
  (``Comparison`` on ``start.time``), the energy overlap (``Comparison`` on the energy keys),
  proposal and user (``Eq``), the stop document's exit status (``Eq``; ``KeyPresent`` for
  runs without one), the order (sort on ``start.time``) and the limit (paging);
- partly server-side: the sample. Tiled's catalog has no ``Regex`` on SQLite (the server
  answers 400 "not supported") and no case-insensitive match; its ``Like`` is SQL ``LIKE``,
  which SQLite compares case-insensitively for ASCII letters only (PostgreSQL not at all),
  with no escape for ``%`` and ``_``. So the server gets a ``LIKE`` pattern that matches at
  least every run the filter wants (``%`` and ``_`` as one-character wildcards, non-ASCII
  characters as ``%``), when a one-request probe shows the server ignores ASCII case; the
  exact case-insensitive substring match is made here;
- server-side in four queries, merged here: the energy fall-back. A run without
  ``energy_min_eV`` / ``energy_max_eV`` covers just its ``energy_eV``; Tiled queries combine
  with AND only (no OR), so the server answers one query per combination of the two keys
  being present or absent (``KeyPresent``), each sorted and paged, and the four are merged
  here, newest first. A key present with a null value counts as present (and then matches
  no energy range).

Every filter is checked again here on each run returned (it costs nothing), so what matches
never depends on a server's quirks. One quirk remains in the order: SQLite sorts metadata
as text, which is numeric order only for unix times of ten digits (Sept 2001 to 2286), as
every run's time is; the runs returned are sorted here by time again.
"""

from __future__ import annotations

import argparse
import difflib
import heapq
import itertools
import math
import re
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, TextIO

__all__ = [
    "EXIT_STATUSES",
    "SCAN_TYPES",
    "SCAN_TYPE_ALIASES",
    "RunSummary",
    "add_runs_arguments",
    "find_runs",
    "format_runs_table",
    "runs_command",
]

SCAN_TYPES = (
    "sample image",
    "sample image stack",
    "point spectrum",
    "line spectrum",
    "osa image",
    "osa focus",
    "sample focus",
    "detector image",
)
"""The ``stxm_scan_type`` values the plans record."""

SCAN_TYPE_ALIASES = {
    "sample point spectrum": "point spectrum",
    "sample line spectrum": "line spectrum",
}
"""NXstxm's spellings of the scan types whose names differ from the project's."""

EXIT_STATUSES = ("success", "abort", "fail", "open")
"""Run statuses to filter by: the stop document's ``exit_status``, or ``open`` (no stop)."""

DEFAULT_LIMIT = 50
MAX_TEXT_CHARS = 1000
"""Longest text filter (sample, scan type, plan, proposal, user), in characters."""
# Largest page asked of the server at once: Tiled 0.2.20 refuses more (422).
_PAGE_SIZE_MAX = 300
# Widest cell of the free-text columns; longer values are cut with "…".
_PLAN_WIDTH = 16
_SCAN_TYPE_WIDTH = 24
_SAMPLE_WIDTH = 24
_NAME_WIDTH = 16
_MISSING = "—"

_OPTIONS = {
    "sample": "--sample",
    "scan_type": "--scan-type",
    "plan_name": "--plan",
    "since": "--since",
    "until": "--until",
    "energy_eV": "--energy",
    "proposal": "--proposal",
    "user": "--user",
    "exit_status": "--status",
    "limit": "--limit",
}

# ISO 8601 extended format: a date, or a date and a time to the hour, minute, second or a
# fraction of one, with an optional UTC offset; "T" or a space between date and time.
_ISO_DATE_TIME = re.compile(
    r"\d{4}-\d{2}-\d{2}"
    r"(?:[T ](?P<hour>\d{2})(?::(?P<minute>\d{2})(?::(?P<second>\d{2})(?P<fraction>[.,]\d+)?)?)?"
    r"(?:Z|[+-]\d{2}(?::?\d{2})?)?)?"
)


@dataclass(frozen=True)
class RunSummary:
    """One run of the catalog as a search lists it.

    Attributes
    ----------
    uid
        The run's uid (its key in the catalog).
    scan_id
        The scan number, or None if the start document has none.
    time
        When the run started, unix time in s (None if unrecorded).
    plan_name
        The plan that made the run ("" if unrecorded).
    scan_type
        ``stxm_scan_type`` ("" if unrecorded).
    sample_name
        The sample, or None.
    energy_min_eV, energy_max_eV
        The energy range the run covers (both ``energy_eV`` for a run that records only
        that), or None.
    proposal_id, user
        Who the run was for, or None (absent or empty).
    exit_status
        ``success``, ``abort`` or ``fail`` from the stop document; ``open`` for a run with
        no stop document (still running, or cut off: ``stxm import-spool`` completes it);
        ``unknown`` for a stop document without one.
    num_points
        Events in the ``primary`` stream by the stop document, or None if not known.
    """

    uid: str
    scan_id: int | None
    time: float | None
    plan_name: str
    scan_type: str
    sample_name: str | None
    energy_min_eV: float | None
    energy_max_eV: float | None
    proposal_id: str | None
    user: str | None
    exit_status: str
    num_points: int | None

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any], uid: str | None = None) -> RunSummary:
        """Summarise a run from its catalog metadata (``{"start": ..., "stop": ...}``).

        Parameters
        ----------
        metadata
            ``client[uid].metadata``: the start document under ``"start"``, the stop
            document (or None, or no key, for a run without one) under ``"stop"``.
        uid
            The run's key, used if the start document has no ``uid``.

        Returns
        -------
        RunSummary
            Missing or malformed values become None (or "" for plan and scan type).
        """
        start = metadata.get("start") or {}
        stop = metadata.get("stop")
        energy = _number(start.get("energy_eV"))
        low = _number(start.get("energy_min_eV"))
        high = _number(start.get("energy_max_eV"))
        low = energy if low is None else low
        high = energy if high is None else high
        if low is None:
            low = high
        if high is None:
            high = low
        if low is not None and high is not None and low > high:
            low, high = high, low
        if isinstance(stop, Mapping):
            status = stop.get("exit_status")
            status = str(status) if status else "unknown"
            events = stop.get("num_events")
            points = events.get("primary") if isinstance(events, Mapping) else None
            num_points = (
                points if isinstance(points, int) and not isinstance(points, bool) else None
            )
        else:
            status, num_points = "open", None
        scan_id = start.get("scan_id")
        return cls(
            uid=str(start.get("uid") or uid or ""),
            scan_id=scan_id
            if isinstance(scan_id, int) and not isinstance(scan_id, bool)
            else None,
            time=_number(start.get("time")),
            plan_name=str(start.get("plan_name") or ""),
            scan_type=str(start.get("stxm_scan_type") or ""),
            sample_name=_text_or_none(start.get("sample_name")),
            energy_min_eV=low,
            energy_max_eV=high,
            proposal_id=_text_or_none(start.get("proposal_id")),
            user=_text_or_none(start.get("user")),
            exit_status=status,
            num_points=num_points,
        )

    @property
    def short_uid(self) -> str:
        """The first 8 characters of the uid (enough to tell runs apart in a listing)."""
        return self.uid[:8]


def _number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _text_or_none(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value)
    return text if text.strip() else None


# -- the filters ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Bound:
    """A time bound: unix time in s, and whether a run at exactly that time is inside."""

    time: float
    inclusive: bool
    text: str


@dataclass(frozen=True)
class _Filters:
    sample: str | None
    scan_type: str | None
    plan_name: str | None
    since: _Bound | None
    until: _Bound | None
    energy: tuple[float, float] | None
    proposal: str | None
    user: str | None
    exit_status: str | None
    limit: int

    def matches(self, run: RunSummary) -> bool:
        """Whether ``run`` passes every filter (the exact semantics; the server prefilters)."""
        if self.sample is not None:
            if run.sample_name is None or self.sample.lower() not in run.sample_name.lower():
                return False
        if self.scan_type is not None and _canonical_scan_type(run.scan_type) != self.scan_type:
            return False
        if self.plan_name is not None and run.plan_name != self.plan_name:
            return False
        if self.since is not None or self.until is not None:
            if run.time is None:
                return False
            if self.since is not None and run.time < self.since.time:
                return False
            if self.until is not None and not (
                run.time <= self.until.time if self.until.inclusive else run.time < self.until.time
            ):
                return False
        if self.energy is not None:
            low, high = self.energy
            if run.energy_min_eV is None or run.energy_max_eV is None:
                return False
            if run.energy_min_eV > high or run.energy_max_eV < low:
                return False
        if self.proposal is not None and run.proposal_id != self.proposal:
            return False
        if self.user is not None and run.user != self.user:
            return False
        if self.exit_status is not None and run.exit_status != self.exit_status:
            return False
        return True


def _param(name: str) -> str:
    return f"{name} ({_OPTIONS[name]})"


def _canonical_scan_type(text: str) -> str:
    normal = " ".join(text.lower().replace("_", " ").replace("-", " ").split())
    return SCAN_TYPE_ALIASES.get(normal, normal)


def _check_scan_type(scan_type: str) -> str:
    canonical = _canonical_scan_type(scan_type)
    if canonical in SCAN_TYPES:
        return canonical
    known = [*SCAN_TYPES, *SCAN_TYPE_ALIASES]
    close = difflib.get_close_matches(canonical, known, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise ValueError(
        f"{_param('scan_type')} {scan_type!r} is not a scan type; {hint}use one of "
        f"{', '.join(map(repr, SCAN_TYPES))} (NXstxm's "
        f"{', '.join(map(repr, SCAN_TYPE_ALIASES))} are accepted too)"
    )


def _check_text(name: str, value: str | None, what: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{_param(name)} must be text ({what}), got {value!r}")
    if not value.strip():
        raise ValueError(f"{_param(name)} is empty; give {what}, or leave the filter out")
    if len(value) > MAX_TEXT_CHARS:
        # The server gets filters in its URL, which httpx and servers cap at a few 10 kB.
        raise ValueError(
            f"{_param(name)} is {len(value)} characters long; at most {MAX_TEXT_CHARS}: give "
            f"{what}"
        )
    return value


_DATE_HELP = (
    "an ISO date or date-time in local time, e.g. '2026-11-26' or '2026-11-26T14:00' "
    "(or a datetime, or a unix time in s)"
)


def _parse_time(name: str, value: datetime | date | float | str, *, end: bool) -> _Bound:
    """A since/until value as a bound; ``end``: the bound is an until (inclusive end).

    A date or date-time string covers the whole of its last unit: until '2026-11-26'
    takes in that day, until '2026-11-26T14:00' the minute from 14:00:00 to 14:00:59.
    """
    if isinstance(value, bool):
        raise ValueError(f"{_param(name)} must be {_DATE_HELP}, got {value!r}")
    if isinstance(value, datetime):  # before date: a datetime is a date too
        return _Bound(value.timestamp(), True, value.isoformat(" ", "seconds"))
    if isinstance(value, date):
        value = value.isoformat()
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ValueError(f"{_param(name)} must be {_DATE_HELP}, got {value!r}")
        return _Bound(float(value), True, f"unix time {value:g}")
    if not isinstance(value, str):
        raise ValueError(f"{_param(name)} must be {_DATE_HELP}, got {value!r}")
    text = value.strip()
    match = _ISO_DATE_TIME.fullmatch(text)
    try:
        if match is None:
            raise ValueError("not ISO 8601")
        moment = datetime.fromisoformat(text.replace(",", "."))
    except ValueError:
        raise ValueError(f"{_param(name)} {value!r} is not a date; give {_DATE_HELP}") from None
    if match["hour"] is None:
        step = timedelta(days=1)
    elif match["minute"] is None:
        step = timedelta(hours=1)
    elif match["second"] is None:
        step = timedelta(minutes=1)
    elif match["fraction"] is None:
        step = timedelta(seconds=1)
    else:
        step = timedelta(0)
    if end and step:
        # The end of the unit, as local wall-clock time (a day across a DST change is 23 or
        # 25 h long); exclusive.
        return _Bound((moment + step).timestamp(), False, text)
    return _Bound(moment.timestamp(), True, text)


def _check_energy(energy_eV: Any) -> tuple[float, float] | None:
    if energy_eV is None:
        return None
    pair_help = "give (lo, hi) in eV, e.g. (700, 720)"
    try:
        low, high = energy_eV
    except (TypeError, ValueError):
        raise ValueError(
            f"{_param('energy_eV')} must be a pair of energies (lo, hi) in eV, got "
            f"{energy_eV!r}; {pair_help}"
        ) from None
    values = []
    for end, value in (("lo", low), ("hi", high)):
        if _number(value) is None:
            raise ValueError(
                f"{_param('energy_eV')}: {end} = {value!r} is not a finite number; {pair_help}"
            )
        values.append(float(value))
    low, high = values
    if low > high:
        raise ValueError(
            f"{_param('energy_eV')} = ({low:g}, {high:g}): lo is above hi; give the range "
            f"low end first, ({high:g}, {low:g})"
        )
    return low, high


def _check_limit(limit: Any) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(
            f"{_param('limit')} must be a whole number of runs >= 1, got {limit!r}; give how "
            f"many runs to list, newest first (default {DEFAULT_LIMIT})"
        )
    return limit


def _check_exit_status(exit_status: str | None) -> str | None:
    if exit_status is None:
        return None
    status = exit_status.strip().lower() if isinstance(exit_status, str) else exit_status
    if status not in EXIT_STATUSES:
        raise ValueError(
            f"{_param('exit_status')} {exit_status!r} is not a run status; use one of "
            f"{', '.join(EXIT_STATUSES)} ('open': no stop document, still running or cut off)"
        )
    return status


def _make_filters(
    *,
    sample: str | None,
    scan_type: str | None,
    plan_name: str | None,
    since: datetime | date | float | str | None,
    until: datetime | date | float | str | None,
    energy_eV: tuple[float, float] | None,
    proposal: str | None,
    user: str | None,
    exit_status: str | None,
    limit: int,
) -> _Filters:
    sample = _check_text("sample", sample, "part of the sample name (any case)")
    scan_type = _check_text("scan_type", scan_type, "a scan type such as 'sample image'")
    since_bound = None if since is None else _parse_time("since", since, end=False)
    until_bound = None if until is None else _parse_time("until", until, end=True)
    if since_bound is not None and until_bound is not None:
        empty = (
            since_bound.time > until_bound.time
            if until_bound.inclusive
            else since_bound.time >= until_bound.time
        )
        if empty:
            raise ValueError(
                f"{_param('since')} {since_bound.text!r} is not before {_param('until')} "
                f"{until_bound.text!r}, so no run can match; swap them or widen the range"
            )
    return _Filters(
        sample=sample,
        scan_type=None if scan_type is None else _check_scan_type(scan_type),
        plan_name=_check_text("plan_name", plan_name, "a plan name such as 'sample_image'"),
        since=since_bound,
        until=until_bound,
        energy=_check_energy(energy_eV),
        proposal=_check_text("proposal", proposal, "the proposal id, exactly"),
        user=_check_text("user", user, "the user name, exactly"),
        exit_status=_check_exit_status(exit_status),
        limit=_check_limit(limit),
    )


# -- the queries ------------------------------------------------------------------------------


def _like_pattern(sample: str) -> str:
    """A SQL LIKE pattern matching (at least) every value containing ``sample``, any case.

    For a server whose LIKE ignores ASCII case (SQLite). ``%`` and ``_`` (wildcards, with no
    escape in Tiled's ``Like``) become ``_``, which matches them among others; a non-ASCII
    character becomes ``%``: SQLite compares those case-sensitively, and a lower-case form
    may have another length.
    """
    chars = []
    for char in sample:
        if char in "%_":
            chars.append("_")
        elif char.isascii():
            chars.append(char)
        elif chars[-1:] != ["%"]:
            chars.append("%")
    return "%" + "".join(chars).strip("%") + "%"


def _like_ignores_ascii_case(runs: Any) -> bool:
    """Whether the server's ``Like`` ignores ASCII case (SQLite: yes; PostgreSQL: no).

    Asks for one run by its key and its uid upper-cased: two small requests.
    """
    from tiled.queries import KeyPresent, KeysFilter, Like

    first = runs.search(KeyPresent("start.uid")).items().head(1)
    if not first:
        return False
    key, run = first[0]
    uid = str(run.metadata["start"]["uid"])
    if uid.upper() == uid.lower():  # no letters to tell
        return False
    probe = runs.search(KeysFilter([key])).search(Like("start.uid", uid.upper()))
    return len(probe) == 1


def _base_queries(filters: _Filters, like_ok: bool) -> list[Any]:
    from tiled.queries import Comparison, Eq, In, KeyPresent, Like

    # Every run has a start document with a uid; this leaves out any other node.
    queries: list[Any] = [KeyPresent("start.uid")]
    if filters.sample is not None and like_ok:
        queries.append(Like("start.sample_name", _like_pattern(filters.sample)))
    if filters.scan_type is not None:
        spellings = [filters.scan_type]
        spellings += [
            alias for alias, name in SCAN_TYPE_ALIASES.items() if name == filters.scan_type
        ]
        queries.append(In("start.stxm_scan_type", spellings))
    if filters.plan_name is not None:
        queries.append(Eq("start.plan_name", filters.plan_name))
    if filters.since is not None:
        queries.append(Comparison("ge", "start.time", filters.since.time))
    if filters.until is not None:
        operator = "le" if filters.until.inclusive else "lt"
        queries.append(Comparison(operator, "start.time", filters.until.time))
    if filters.proposal is not None:
        queries.append(Eq("start.proposal_id", filters.proposal))
    if filters.user is not None:
        queries.append(Eq("start.user", filters.user))
    if filters.exit_status == "open":
        # No stop document; also stop documents without an exit status ("unknown"), which
        # the check here leaves out. "stop." keys: a CatalogOfBlueskyRuns client would
        # prefix a bare "stop" with "start.".
        queries.append(KeyPresent("stop.exit_status", exists=False))
    elif filters.exit_status is not None:
        queries.append(Eq("stop.exit_status", filters.exit_status))
    return queries


def _energy_query_sets(filters: _Filters) -> list[list[Any]]:
    """One list of queries per combination of energy keys present; no OR in Tiled queries."""
    from tiled.queries import Comparison, KeyPresent

    if filters.energy is None:
        return [[]]
    low, high = filters.energy
    sets = []
    for has_min, has_max in itertools.product((True, False), repeat=2):
        min_key = "start.energy_min_eV" if has_min else "start.energy_eV"
        max_key = "start.energy_max_eV" if has_max else "start.energy_eV"
        sets.append(
            [
                KeyPresent("start.energy_min_eV", exists=has_min),
                KeyPresent("start.energy_max_eV", exists=has_max),
                Comparison("le", min_key, high),
                Comparison("ge", max_key, low),
            ]
        )
    return sets


def _summaries(node: Any, page_size: int) -> Iterator[RunSummary]:
    for key, run in node.items().page_size(page_size):
        yield RunSummary.from_metadata(run.metadata, uid=key)


def _newest_first(run: RunSummary) -> float:
    return -(run.time if run.time is not None else -math.inf)


def find_runs(
    client: Any,
    *,
    sample: str | None = None,
    scan_type: str | None = None,
    plan_name: str | None = None,
    since: datetime | date | float | str | None = None,
    until: datetime | date | float | str | None = None,
    energy_eV: tuple[float, float] | None = None,
    proposal: str | None = None,
    user: str | None = None,
    exit_status: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> list[RunSummary]:
    """Runs of the catalog that pass every filter given, newest first.

    Which filters the Tiled server applies and which are applied here: see the module
    docstring. Every argument is checked before the catalog is asked anything.

    Parameters
    ----------
    client
        A Tiled client of the catalog (:func:`stxm_ctrl.data.catalog.connect_catalog`).
    sample
        Part of the sample name, any case: "fe" finds "Fe film" and "FeO". Runs without a
        sample name do not match.
    scan_type
        A scan type, exactly (:data:`SCAN_TYPES`; case, ``_`` and ``-`` do not matter, and
        NXstxm's "sample point spectrum" and "sample line spectrum" are accepted). Runs
        recorded with either spelling match.
    plan_name
        The plan, exactly: "sample_image", "image_stack", "xmcd_stack", "osa_focus", ...
    since, until
        When the run started: a datetime (naive: local time), a unix time in s, or an ISO
        date or date-time string in local time ("2026-11-26", "2026-11-26T14:00",
        "2026-11-26 14:00:30"; with a UTC offset, in that zone). ``since`` includes its
        moment; a string ``until`` includes the whole of its last unit (until "2026-11-26"
        takes in that day, until "2026-11-26T14:00" runs started by 14:00:59), a datetime or
        number ``until`` includes its moment.
    energy_eV
        (lo, hi): runs whose energy range (``energy_min_eV`` to ``energy_max_eV``, or just
        ``energy_eV``) overlaps lo to hi, ends included.
    proposal
        The proposal id, exactly.
    user
        The user, exactly.
    exit_status
        One of :data:`EXIT_STATUSES`: "success", "abort", "fail", or "open" (no stop
        document: still running, or cut off).
    limit
        At most this many runs (>= 1), the newest.

    Returns
    -------
    list of RunSummary
        Newest first (by start time).

    Raises
    ------
    ValueError
        A bad filter: lo above hi, a date that does not parse, since not before until,
        limit < 1, an unknown scan type or status, an empty text filter. The message names
        the parameter (and its ``stxm runs`` option), what is allowed and the fix.
    """
    filters = _make_filters(
        sample=sample,
        scan_type=scan_type,
        plan_name=plan_name,
        since=since,
        until=until,
        energy_eV=energy_eV,
        proposal=proposal,
        user=user,
        exit_status=exit_status,
        limit=limit,
    )
    like_ok = filters.sample is not None and _like_ignores_ascii_case(client)
    base = _base_queries(filters, like_ok)
    page_size = min(filters.limit, _PAGE_SIZE_MAX)
    streams: list[Iterable[RunSummary]] = []
    # -1: newest first (tiled.client.DESCENDING is refused by Tiled 0.2.20's own sort)
    for extra in _energy_query_sets(filters):
        node = client
        for query in [*base, *extra]:
            node = node.search(query)
        streams.append(_summaries(node.sort(("start.time", -1)), page_size))
    merged = heapq.merge(*streams, key=_newest_first) if len(streams) > 1 else streams[0]
    # islice takes at most sys.maxsize; a larger limit means "all", as that one does.
    wanted = min(filters.limit, sys.maxsize)
    found = list(itertools.islice((run for run in merged if filters.matches(run)), wanted))
    return sorted(found, key=_newest_first)


# -- the table --------------------------------------------------------------------------------


def _clean(text: str) -> str:
    """One line of printable text: no newlines, tabs or terminal control sequences."""
    flat = " ".join(text.split())
    return "".join(char if char.isprintable() else "?" for char in flat)


def _truncate(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


def _energy_text(run: RunSummary) -> str:
    if run.energy_min_eV is None or run.energy_max_eV is None:
        return _MISSING

    def fmt(value: float) -> str:
        return f"{value:.2f}".rstrip("0").rstrip(".")

    if run.energy_min_eV == run.energy_max_eV:
        return f"{fmt(run.energy_min_eV)} eV"
    return f"{fmt(run.energy_min_eV)}–{fmt(run.energy_max_eV)} eV"


def _row(run: RunSummary) -> list[str]:
    def text(value: str | None, width: int) -> str:
        return _truncate(_clean(value), width) if value else _MISSING

    started = (
        datetime.fromtimestamp(run.time).strftime("%Y-%m-%d %H:%M")
        if run.time is not None
        else _MISSING
    )
    return [
        str(run.scan_id) if run.scan_id is not None else _MISSING,
        started,
        text(run.plan_name, _PLAN_WIDTH),
        text(run.scan_type, _SCAN_TYPE_WIDTH),
        text(run.sample_name, _SAMPLE_WIDTH),
        _energy_text(run),
        text(run.proposal_id, _NAME_WIDTH),
        text(run.user, _NAME_WIDTH),
        run.exit_status,
        str(run.num_points) if run.num_points is not None else _MISSING,
        text(run.short_uid, 8),
    ]


_HEADER = [
    "scan",
    "started",
    "plan",
    "scan type",
    "sample",
    "energy",
    "proposal",
    "user",
    "status",
    "points",
    "uid",
]
_RIGHT_ALIGNED = {0, 9}


def format_runs_table(runs: Sequence[RunSummary]) -> str:
    """The runs as a fixed-width table for a terminal, one line per run.

    Columns: scan id, start (local time, to the minute), plan, scan type, sample (cut to
    24 characters with "…"), energy ("707 eV" or "690–730 eV"), proposal, user, status,
    points (primary events), uid (first 8 characters); "—" where a run has no value.
    Each column is as wide as its widest cell.

    Parameters
    ----------
    runs
        From :func:`find_runs`.

    Returns
    -------
    str
        The table without a final newline, or "no runs match" if ``runs`` is empty.
    """
    if not runs:
        return "no runs match"
    rows = [_HEADER, *(_row(run) for run in runs)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_HEADER))]
    lines = []
    for row in rows:
        cells = [
            cell.rjust(width) if i in _RIGHT_ALIGNED else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


# -- the command ------------------------------------------------------------------------------


def add_runs_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the filters of ``stxm runs`` to ``parser``.

    The values are checked by :func:`find_runs` (a ``ValueError`` naming the option), not
    by argparse, except that ``--energy`` and ``--limit`` must be numbers.

    Parameters
    ----------
    parser
        The ``runs`` subcommand's parser.
    """
    parser.add_argument(
        "--sample", metavar="S", help="part of the sample name, any case ('fe' finds 'Fe film')"
    )
    parser.add_argument(
        "--scan-type",
        metavar="T",
        help=f"scan type, exactly: {', '.join(repr(t) for t in SCAN_TYPES)}",
    )
    parser.add_argument(
        "--plan", metavar="P", help="plan name, exactly (sample_image, image_stack, ...)"
    )
    parser.add_argument(
        "--since",
        metavar="D",
        help="runs started at or after D, local time: 2026-11-26 or 2026-11-26T14:00",
    )
    parser.add_argument(
        "--until",
        metavar="D",
        help="runs started up to the end of D, local time (2026-11-26: that whole day)",
    )
    parser.add_argument(
        "--energy",
        nargs=2,
        type=float,
        metavar=("LO", "HI"),
        help="runs whose energy range overlaps LO to HI eV",
    )
    parser.add_argument("--proposal", metavar="P", help="proposal id, exactly")
    parser.add_argument("--user", metavar="U", help="user, exactly")
    parser.add_argument(
        "--status",
        metavar="S",
        help=f"run status: {', '.join(EXIT_STATUSES)} (open: no stop document)",
    )
    parser.add_argument(
        "--limit",
        type=int,
        default=DEFAULT_LIMIT,
        metavar="N",
        help=f"list at most N runs, the newest (default {DEFAULT_LIMIT})",
    )


def runs_command(client: Any, args: argparse.Namespace, out: TextIO) -> int:
    """``stxm runs``: find the runs that pass the filters in ``args`` and print the table.

    Parameters
    ----------
    client
        A Tiled client of the catalog.
    args
        Parsed by a parser set up with :func:`add_runs_arguments`.
    out
        Where the table goes; a last line says when more runs match than ``--limit``.

    Returns
    -------
    int
        0.

    Raises
    ------
    ValueError
        A bad filter (from :func:`find_runs`).
    """
    limit = args.limit
    _check_limit(limit)
    runs = find_runs(
        client,
        sample=args.sample,
        scan_type=args.scan_type,
        plan_name=args.plan,
        since=args.since,
        until=args.until,
        energy_eV=None if args.energy is None else (args.energy[0], args.energy[1]),
        proposal=args.proposal,
        user=args.user,
        exit_status=args.status,
        limit=limit + 1,  # one more, to tell whether there are more
    )
    out.write(format_runs_table(runs[:limit]) + "\n")
    if len(runs) > limit:
        out.write(f"(the newest {limit} shown; more runs match: raise --limit to see them)\n")
    return 0
