"""pyqtgraph views of the data: PNG snapshots now, live views later."""
