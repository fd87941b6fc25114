"""Operations: ``shadowroute nightly``, the job that scores, decides, reports, checks the
route map and retains in one run, says what changed since the last one and tells someone
(:mod:`.nightly`, :mod:`.changes`, :mod:`.notify`, :mod:`.index`)."""

from .changes import Change, changes_between
from .nightly import EXIT_ATTENTION, EXIT_ERROR, EXIT_LOCKED, EXIT_OK, NightlyResult, run_nightly

__all__ = [
    "EXIT_ATTENTION",
    "EXIT_ERROR",
    "EXIT_LOCKED",
    "EXIT_OK",
    "Change",
    "NightlyResult",
    "changes_between",
    "run_nightly",
]
