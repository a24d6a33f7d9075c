"""Render a sample image to a PNG with pyqtgraph (works without a display)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

from stxm_ctrl.data.images import StxmImage

__all__ = ["save_image_png", "save_spectrum_png"]

_WIDTH_PX = 820
_HEIGHT_PX = 720


def _qt_app():
    """The process's QApplication: the existing one (a live view's), or an offscreen one.

    Nothing in the process environment is changed: without a screen the platform is chosen
    with Qt's own ``-platform offscreen`` argument, so a live Qt view started later in the
    same process is not forced offscreen.
    """
    import pyqtgraph as pg
    from pyqtgraph.Qt import QtCore, QtWidgets

    app = QtWidgets.QApplication.instance()
    if app is not None:
        return app
    argv = ["stxm_ctrl"]
    screen = os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    if not (screen or os.environ.get("QT_QPA_PLATFORM")):
        argv += ["-platform", "offscreen"]

    def quiet(
        mode: QtCore.QtMsgType, context: QtCore.QMessageLogContext, message: str | None
    ) -> None:
        # Offscreen Qt complains about a missing XDG_RUNTIME_DIR and then manages.
        if message is None or "XDG_RUNTIME_DIR" in message:
            return
        if previous is not None:
            previous(mode, context, message)
        else:
            print(message, file=sys.stderr)

    previous = QtCore.qInstallMessageHandler(None)
    QtCore.qInstallMessageHandler(quiet)
    try:
        app = QtWidgets.QApplication(argv)
    finally:
        QtCore.qInstallMessageHandler(previous)
    # pyqtgraph keeps the process's application alive (its own mkQApp holds it).
    held = pg.mkQApp()
    assert held is app
    return app


def _add_colour_scale(window, colormap, low: float, high: float, label: str = "counts") -> None:
    """A grey-scale bar with a numbered counts axis, right of the image.

    Drawn as a small plot of its own: pyqtgraph's ColorBarItem leaves its tick values
    out when rendered offscreen.
    """
    import pyqtgraph as pg
    from pyqtgraph.Qt import QtCore

    scale = window.addPlot()
    gradient = pg.ImageItem(np.linspace(low, high, 256)[:, None], axisOrder="row-major")
    gradient.setColorMap(colormap)
    gradient.setLevels((low, high))
    gradient.setRect(QtCore.QRectF(0.0, low, 1.0, high - low))
    scale.addItem(gradient)
    scale.hideAxis("bottom")
    scale.hideAxis("left")
    scale.showAxis("right")
    scale.setLabel("right", label)
    scale.getAxis("right").enableAutoSIPrefix(False)  # asymmetry 0.04, not 40 (x0.001)
    scale.setMouseEnabled(x=False, y=False)
    scale.getViewBox().setRange(xRange=(0, 1), yRange=(low, high), padding=0)
    window.ci.layout.setColumnFixedWidth(1, 80)


def save_image_png(
    image: StxmImage, path: Path, title: str = "", scale_label: str = "counts"
) -> Path:
    """Save ``image`` as a PNG: counts in grey levels, axes in um, a colour bar, y up.

    Parameters
    ----------
    image
        The image to draw; unmeasured pixels (NaN) are drawn black.
    path
        Output file (parent directories are created).
    title
        Plot title (default: scan id, scan type and uid).
    scale_label
        What the grey levels are (an XMCD asymmetry map drawn as an image: "asymmetry").

    Returns
    -------
    Path
        The file written.
    """
    _qt_app()
    import pyqtgraph as pg
    from pyqtgraph.exporters import ImageExporter
    from pyqtgraph.Qt import QtCore

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    counts = np.nan_to_num(
        image.counts, nan=np.nanmin(image.counts) if np.isfinite(image.counts).any() else 0.0
    )
    ny, nx = counts.shape
    dx = (image.x_um[-1] - image.x_um[0]) / (nx - 1) if nx > 1 else 1.0
    dy = (image.y_um[-1] - image.y_um[0]) / (ny - 1) if ny > 1 else 1.0

    window = pg.GraphicsLayoutWidget(size=(_WIDTH_PX, _HEIGHT_PX))
    window.setBackground("w")
    start = image.start
    title = title or (
        f"scan {start.get('scan_id', '?')}: {start.get('stxm_scan_type', '')}, "
        f"{nx}x{ny} px, dwell {image.dwell_s * 1e3:g} ms, uid {image.uid[:8]}"
    )
    plot = window.addPlot(title=title)
    # The axes the raster moved (sample, detector or OSA stage, or ZP z in a focus scan).
    x_label = str(start.get("x_field", "sample_x")).replace("_", " ")
    y_label = str(start.get("y_field", "sample_y")).replace("_", " ")
    plot.setLabel("bottom", x_label, units="µm")
    plot.setLabel("left", y_label, units="µm")
    for side in ("bottom", "left"):  # um throughout, never "kµm"
        plot.getAxis(side).enableAutoSIPrefix(False)
    # Square pixels for pictures of a plane; a focus scan's axes are not comparable.
    plot.setAspectLocked("focus" not in str(start.get("stxm_scan_type", "")))
    plot.getViewBox().setDefaultPadding(0.01)
    item = pg.ImageItem(counts, axisOrder="row-major")
    item.setRect(QtCore.QRectF(image.x_um[0] - dx / 2, image.y_um[0] - dy / 2, dx * nx, dy * ny))
    plot.addItem(item)
    low, high = (float(v) for v in np.percentile(counts, [0.5, 99.5]))
    if high <= low:
        high = low + 1.0
    colormap = pg.colormap.get("CET-L1")
    assert colormap is not None  # shipped with pyqtgraph
    item.setColorMap(colormap)
    item.setLevels((low, high))
    _add_colour_scale(window, colormap, low, high, scale_label)
    window.show()  # lay out at full size (offscreen when there is no display)
    _qt_app().processEvents()
    exporter = ImageExporter(window.scene())
    exporter.parameters()["width"] = _WIDTH_PX
    exporter.export(str(path))
    window.close()
    return path


def save_spectrum_png(
    energies_eV: np.ndarray,
    values: np.ndarray,
    path: Path,
    *,
    title: str = "",
    y_label: str = "optical density",
    errors: np.ndarray | None = None,
    edges_eV: dict[str, float] | None = None,
) -> Path:
    """Save a spectrum (values against energy) as a PNG, with error bars and edge marks.

    Parameters
    ----------
    energies_eV, values
        The spectrum.
    path
        Output file (parent directories are created).
    title, y_label
        Plot title and y-axis label.
    errors
        One standard deviation per point, drawn as error bars.
    edges_eV
        Vertical marks with labels, e.g. ``{"Fe L3": 706.8}``.
    """
    _qt_app()
    import pyqtgraph as pg
    from pyqtgraph.exporters import ImageExporter

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    window = pg.GraphicsLayoutWidget(size=(_WIDTH_PX, _HEIGHT_PX * 2 // 3))
    window.setBackground("w")
    plot = window.addPlot(title=title)
    plot.setLabel("bottom", "photon energy", units="eV")
    plot.setLabel("left", y_label)
    for side in ("bottom", "left"):
        plot.getAxis(side).enableAutoSIPrefix(False)
    x = np.asarray(energies_eV, dtype=float)
    y = np.asarray(values, dtype=float)
    plot.plot(x, y, pen=pg.mkPen("k", width=2), symbol="o", symbolSize=4, symbolBrush="k")
    if errors is not None:
        plot.addItem(pg.ErrorBarItem(x=x, y=y, height=2 * np.asarray(errors), pen="k"))
    for name, energy in (edges_eV or {}).items():
        line = pg.InfiniteLine(
            pos=energy,
            angle=90,
            pen=pg.mkPen("r", style=2),
            label=name,
            labelOpts={"color": "r", "position": 0.9},
        )
        plot.addItem(line)
    window.show()
    _qt_app().processEvents()
    exporter = ImageExporter(window.scene())
    exporter.parameters()["width"] = _WIDTH_PX
    exporter.export(str(path))
    window.close()
    return path
