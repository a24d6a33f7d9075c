"""A progress bar for raster scans, fed by the documents."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import IO, Any

from tqdm import tqdm

from stxm_ctrl.timefmt import format_duration

__all__ = ["ScanProgress"]


class ScanProgress:
    """Show points done / total (``num_points`` of the start document) while a run goes.

    Fly scans count lines (``num_lines``); a start document with an ``estimate`` (see
    :mod:`plans.estimates`) shows the duration beside the scan's name, redone by
    ``estimate_s`` (a session's learned costs) when given.

    Parameters
    ----------
    file
        Stream for the bar (stderr by default).
    estimate_s
        Turns a start document's ``estimate`` into seconds.

    """

    def __init__(
        self,
        file: IO[str] | None = None,
        *,
        estimate_s: Callable[[Any], float | None] | None = None,
    ) -> None:
        self.file = file or sys.stderr
        self.estimate_s = estimate_s
        self._bar: tqdm | None = None
        self._primary: set[str] = set()  # descriptor uids of the primary stream

    def __call__(self, name: str, doc: dict) -> None:
        if name == "start":
            self._close()
            label = doc.get("stxm_scan_type") or doc.get("plan_name", "scan")
            fly = doc.get("scan_mode") == "fly"  # one event per line
            recorded = doc.get("estimate") or {}
            estimate = recorded.get("total_s")
            if self.estimate_s is not None:  # redone with what the session has learned
                estimate = self.estimate_s(recorded) or estimate
            if isinstance(estimate, int | float):
                label += f", about {format_duration(float(estimate))}"
            self._bar = tqdm(
                total=doc.get("num_lines") if fly else doc.get("num_points"),
                desc=f"scan {doc.get('scan_id', '')} {label}",
                unit="line" if fly else "pt",
                file=self.file,
                dynamic_ncols=True,
                mininterval=0.5,
            )
        elif name == "descriptor" and doc.get("name") == "primary":
            self._primary.add(doc["uid"])
        elif self._bar is not None and doc.get("descriptor") in self._primary:
            # Only points of the raster count; monitor streams have events of their own.
            if name == "event":
                self._bar.update(1)
            elif name == "event_page":
                self._bar.update(len(doc.get("seq_num", [])))
        elif name == "stop":
            if self._bar is not None:
                self._bar.set_postfix_str(doc.get("exit_status", ""))
            self._close()
            self._primary.clear()

    def _close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
