"""Error classes every layer shares.

:class:`UsageError` marks a refusal of what the user asked for (a bad argument, a bad
configuration): the command line prints its message as one line and exits with status 2,
with no traceback. Anything else that escapes is a fault and keeps its traceback.
"""

from __future__ import annotations

__all__ = ["UsageError"]


class UsageError(ValueError):
    """What was asked cannot be done as asked; the message says why and what to change."""
