"""Pipeline: the queue between capture and the mirror, its workers, and the writer they feed.

:class:`Shadow` owns it. The request path runs the primary call, decides sampling and puts a
capture on a bounded queue (dropped and counted when full: never blocking, never raising).
Workers resolve each capture, call the candidates (and the primary again for the noise floor,
or the replaced primary for a reverse shadow), redact, and hand the exchange to the batch
writer. :class:`SyncShadow` runs the same pipeline for sync apps on a background thread.

Modules, one job each: :mod:`.core` (``Shadow``: the request path and the lifecycle),
:mod:`.queue` (the bounded capture queue), :mod:`.workers` (the worker loop, or the remote
forwarder), :mod:`.reverse` (calls to a primary: reverse shadow, noise-floor replay),
:mod:`.traffic` (daily traffic counts), :mod:`.sync` (``SyncShadow``).
"""

from .core import Shadow, ShutdownReport, active_shadow, shadow
from .sync import SyncShadow

__all__ = ["Shadow", "ShutdownReport", "SyncShadow", "active_shadow", "shadow"]
