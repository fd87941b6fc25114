"""The money of a policy: mean known costs and the monthly saving at a task type's volume.

Unknown is not zero: a cost the provider did not report is left out of the means, and a
saving that needs an unknown figure is ``None``.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["DAYS_PER_MONTH", "mean_known", "monthly_saving"]

DAYS_PER_MONTH = 30


def mean_known(values: Iterable[float | None]) -> float | None:
    """The mean of the known values (``None`` when none is known)."""
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


def monthly_saving(primary: float | None, served: float | None,
                   requests_per_day: float | None) -> float | None:
    """What serving a request at ``served`` instead of ``primary`` (both per request) saves a
    month at ``requests_per_day``."""
    if primary is None or served is None or requests_per_day is None:
        return None
    return (primary - served) * requests_per_day * DAYS_PER_MONTH
