"""The local-disk spool: where batches wait while the database is unreachable.

One file per batch, JSON lines: a header (``{"spool": 1, "exchanges": n, "traffic": m, "batch":
"<id>"}``), then one line per exchange (its candidate outputs inline), then one per count: a
traffic count, or (marked ``"kind": "routed"``) a count of what a cascade or partial route
served. A file is written under a temporary name, fsynced, then renamed, so a file with the
``.jsonl`` suffix is always complete. :meth:`Spool.drain` writes the files into the database
oldest first and deletes each once stored; the store skips rows it already has, and adds the
counts of a batch id only once (see :meth:`.Store.write`), so a batch written twice (its
commit's answer lost, or a crash between the commit and the file's deletion) is stored once,
counts included. Files written before batches had ids (no ``"batch"`` in the header; the
format number did not change, as older readers ignore the key) are still drained, as
before: their rows once, their counts each time the file is written. A file that cannot be
parsed is renamed to ``*.bad`` (kept for inspection, never retried).

One spool directory belongs to one process at a time.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread

from ..errors import StoreError
from ..records import CandidateOutputRecord, ExchangeRecord, RoutedRecord, TrafficRecord
from .models import dumps_json

if TYPE_CHECKING:
    from .store import Store

__all__ = ["Spool"]

log = logging.getLogger("shadowroute.store")

FORMAT_VERSION = 1
SUFFIX = ".jsonl"

_EXCHANGE_FIELDS = tuple(f.name for f in fields(ExchangeRecord) if f.name != "outputs")
_OUTPUT_FIELDS = tuple(f.name for f in fields(CandidateOutputRecord))
_TRAFFIC_FIELDS = tuple(f.name for f in fields(TrafficRecord))
_ROUTED_FIELDS = tuple(f.name for f in fields(RoutedRecord))
_ROUTED = "routed"


class _Corrupt(Exception):
    """A spool file that cannot be turned back into records."""


@dataclass(slots=True)
class _Batch:
    exchanges: list[ExchangeRecord]
    traffic: list[TrafficRecord | RoutedRecord]
    batch_id: str | None = None
    """``None`` in files written before batches had ids."""


class Spool:
    """Batches on local disk, drained into a :class:`~shadowroute.store.Store` later."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.last_error: StoreError | None = None
        """The error that stopped the last :meth:`drain`; ``None`` when it got through."""
        self._lock = threading.Lock()
        self._files: dict[str, int] = {}  # file name -> exchanges in it
        self._pending = 0
        self._seq = itertools.count()
        self._draining: anyio.Lock | None = None
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            log.warning("cannot create spool directory %s: %s", self.directory, exc)
        for name in self._names():
            self._track(name, self._count(self.directory / name))

    # ------------------------------------------------------------------ counters

    def pending(self) -> int:
        """Exchanges waiting in the spool."""
        return self._pending

    def pending_batches(self) -> int:
        """Spooled batch files waiting (a batch may hold only traffic counts)."""
        return len(self._files)

    def _track(self, name: str, exchanges: int) -> None:
        with self._lock:
            self._files[name] = exchanges
            self._pending += exchanges

    def _forget(self, name: str) -> None:
        with self._lock:
            self._pending -= self._files.pop(name, 0)

    def _names(self) -> list[str]:
        try:
            return sorted(
                entry.name
                for entry in os.scandir(self.directory)
                if entry.name.endswith(SUFFIX) and not entry.name.startswith(".")
            )
        except FileNotFoundError:
            return []
        except OSError as exc:
            log.warning("cannot list spool directory %s: %s", self.directory, exc)
            return []

    @staticmethod
    def _count(path: Path) -> int:
        """Exchanges in a spool file, from its header line (0 when unreadable: drain decides)."""
        try:
            with path.open("rb") as f:
                header = json.loads(f.readline())
            return int(header["exchanges"])
        except (OSError, ValueError, KeyError, TypeError):
            return 0

    # ------------------------------------------------------------------ writing

    def append(
        self, exchanges: Sequence[ExchangeRecord],
        traffic: Sequence[TrafficRecord | RoutedRecord] = (),
        batch_id: str | None = None,
    ) -> None:
        """Write one batch to its own file, durably (blocking: call it from a worker thread).

        ``batch_id`` (see :meth:`.Store.write`) is kept in the header and given back to the
        store when the file is drained. Raises ``OSError`` when the disk cannot take it;
        nothing is counted then.
        """
        if not exchanges and not traffic:
            return
        header: dict[str, Any] = {
            "spool": FORMAT_VERSION, "exchanges": len(exchanges), "traffic": len(traffic)
        }
        if batch_id is not None:
            header["batch"] = batch_id
        lines = [dumps_json(header)]
        lines.extend(dumps_json(_exchange_to_dict(x)) for x in exchanges)
        lines.extend(dumps_json(_traffic_to_dict(t)) for t in traffic)
        data = ("\n".join(lines) + "\n").encode("utf-8")

        name = f"{time.time_ns():020d}-{os.getpid()}-{next(self._seq):08d}{SUFFIX}"
        final = self.directory / name
        temp = self.directory / f".{name}.tmp"
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(temp, final)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        self._fsync_directory()
        self._track(name, len(exchanges))

    def _fsync_directory(self) -> None:
        """Make the rename itself durable (POSIX; a no-op where directories cannot be opened)."""
        try:
            fd = os.open(self.directory, os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(fd)
        except OSError:
            pass
        finally:
            os.close(fd)

    # ------------------------------------------------------------------ draining

    async def drain(self, store: Store, *, max_batches: int | None = None) -> int:
        """Write spooled batches to ``store``, oldest first, deleting each once stored.

        Stops at the first :class:`StoreError` (kept in :attr:`last_error`; that batch and the
        rest stay spooled) or after ``max_batches`` files. A batch the database rejects for its
        content (``StoreError.rejected``) is moved aside to ``*.bad`` instead, so it cannot
        block the rest. Returns the exchanges written (``shadowroute spool replay`` runs this).
        """
        if self._draining is None:
            self._draining = anyio.Lock()
        async with self._draining:
            self.last_error = None
            drained = 0
            names = await anyio.to_thread.run_sync(self._names)
            for index, name in enumerate(names):
                if max_batches is not None and index >= max_batches:
                    break
                path = self.directory / name
                try:
                    batch = await anyio.to_thread.run_sync(_read, path)
                except FileNotFoundError:
                    self._forget(name)
                    continue
                except _Corrupt as exc:
                    await anyio.to_thread.run_sync(self._quarantine, path, exc)
                    continue
                try:
                    await store.write(batch.exchanges, batch.traffic, batch_id=batch.batch_id)
                except StoreError as exc:
                    if exc.rejected:  # would fail forever and block every batch behind it
                        await anyio.to_thread.run_sync(self._quarantine, path, exc)
                        continue
                    self.last_error = exc
                    break
                await anyio.to_thread.run_sync(self._remove, path)
                drained += len(batch.exchanges)
            return drained

    def _remove(self, path: Path) -> None:
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            # Left in place it is written again: harmless (rows are skipped as duplicates,
            # counts by the batch id), except for a file without a batch id (written by an
            # older shadowroute), whose counts would be added twice.
            log.error("stored spool file %s but cannot delete it: %s", path, exc)
        self._forget(path.name)

    def _quarantine(self, path: Path, exc: BaseException) -> None:
        bad = path.with_name(path.name + ".bad")
        try:
            os.replace(path, bad)
        except OSError as move_exc:
            log.error("corrupt spool file %s (%s) cannot be moved aside: %s", path, exc, move_exc)
        else:
            log.warning("unusable spool file moved aside to %s: %s", bad, exc)
        self._forget(path.name)


# ---------------------------------------------------------------------- (de)serialization


def _exchange_to_dict(x: ExchangeRecord) -> dict[str, Any]:
    data = {name: getattr(x, name) for name in _EXCHANGE_FIELDS}
    data["created_at"] = x.created_at.isoformat()
    data["outputs"] = [_output_to_dict(o) for o in x.outputs]
    return data


def _output_to_dict(o: CandidateOutputRecord) -> dict[str, Any]:
    data = {name: getattr(o, name) for name in _OUTPUT_FIELDS}
    data["created_at"] = o.created_at.isoformat()
    return data


def _traffic_to_dict(t: TrafficRecord | RoutedRecord) -> dict[str, Any]:
    if isinstance(t, RoutedRecord):
        data = {"kind": _ROUTED, **{name: getattr(t, name) for name in _ROUTED_FIELDS}}
    else:
        data = {name: getattr(t, name) for name in _TRAFFIC_FIELDS}
    data["day"] = t.day.isoformat()
    return data


def _exchange_from_dict(data: dict[str, Any]) -> ExchangeRecord:
    data["created_at"] = datetime.fromisoformat(data["created_at"])
    data["outputs"] = [_output_from_dict(o) for o in data["outputs"]]
    return ExchangeRecord(**data)


def _output_from_dict(data: dict[str, Any]) -> CandidateOutputRecord:
    data["created_at"] = datetime.fromisoformat(data["created_at"])
    return CandidateOutputRecord(**data)


def _traffic_from_dict(data: dict[str, Any]) -> TrafficRecord | RoutedRecord:
    data["day"] = date.fromisoformat(data["day"])
    if data.pop("kind", None) == _ROUTED:
        return RoutedRecord(**data)
    return TrafficRecord(**data)


def _read(path: Path) -> _Batch:
    """Parse one spool file; :class:`_Corrupt` when it is not a complete batch."""
    raw = path.read_bytes()
    try:
        lines = raw.decode("utf-8").splitlines()
        header = json.loads(lines[0])
        if header.get("spool") != FORMAT_VERSION:
            raise _Corrupt(f"unknown spool format {header.get('spool')!r}")
        n_exchanges, n_traffic = int(header["exchanges"]), int(header["traffic"])
        batch_id = header.get("batch")  # absent from files written before batches had ids
        if batch_id is not None and not (isinstance(batch_id, str) and 0 < len(batch_id) <= 32):
            raise _Corrupt(f"invalid batch id {batch_id!r}")
        if len(lines) != 1 + n_exchanges + n_traffic:
            raise _Corrupt(
                f"header announces {n_exchanges} exchanges and {n_traffic} traffic counts, "
                f"file has {len(lines) - 1} lines"
            )
        exchanges = [_exchange_from_dict(json.loads(line)) for line in lines[1 : 1 + n_exchanges]]
        traffic = [_traffic_from_dict(json.loads(line)) for line in lines[1 + n_exchanges :]]
    except _Corrupt:
        raise
    except (IndexError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise _Corrupt(f"{type(exc).__name__}: {exc}") from exc
    return _Batch(exchanges, traffic, batch_id)
