"""Interval arithmetic for everything a run does every N env steps or updates."""


def next_multiple(value: int, every: int) -> int:
    """The first multiple of ``every`` above ``value``."""
    return (value // every + 1) * every


def crossed(before: int, after: int, every: int) -> bool:
    """Whether counting from ``before`` to ``after`` passed a multiple of ``every``."""
    return after // every > before // every
