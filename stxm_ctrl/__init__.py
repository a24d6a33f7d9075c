"""stxm_ctrl: control and acquisition for scanning transmission x-ray microscopes.

The core package holds what everything else stands on: configuration, pure physics, the
data path to the catalog, and, at the top, the session and the ``stxm`` command line.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
