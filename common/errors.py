"""One-line reasons for error messages that must stay on one line."""

from __future__ import annotations


def first_line(exc: BaseException) -> str:
    """The first line of ``exc``'s message, or its type's name if it has none (torch's
    errors append C++ frames; a one-line error names only the reason)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
