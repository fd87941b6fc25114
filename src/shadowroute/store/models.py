"""The database schema: exchanges, candidate outputs, their scores, daily traffic counts, the
decisions of each report, the route map's history and the candidates retired from shadowing.

One :class:`Base` with a constraint naming convention, so Alembic migrations name every
constraint and index the same way on SQLite and Postgres. JSON columns are ``JSONB`` on Postgres
and ``JSON`` (text) elsewhere; timestamps are timezone-aware UTC on every backend.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    and_,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncAttrs
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import TypeDecorator, TypeEngine

__all__ = [
    "NAMING_CONVENTION",
    "AppliedBatch",
    "Base",
    "CandidateOutput",
    "Exchange",
    "JSONType",
    "JudgeCalibration",
    "ReportRun",
    "Retirement",
    "RouteChange",
    "RoutedDaily",
    "Score",
    "ScorerCalibration",
    "StoredDecision",
    "TrafficDaily",
    "UTCDateTime",
    "clean_text",
    "dumps_json",
    "exchange_of",
    "output_of",
]

NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(column_0_N_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

def clean_text(value: str | None) -> str | None:
    """``value`` made storable everywhere: NUL characters (which Postgres refuses in text and
    JSONB) become U+FFFD, and so do lone surrogates (which no database can encode as UTF-8)."""
    if value is None:
        return None
    if "\x00" in value:
        value = value.replace("\x00", "\ufffd")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            value = value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, set | frozenset):
        return sorted(value, key=repr)
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "replace")
    return str(value)


def _clean_json(value: Any, active: set[int] | None = None) -> Any:
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, int | bool) or value is None:
        return value
    if isinstance(value, dict | list | tuple):
        active = set() if active is None else active
        if id(value) in active:
            return None  # a circular reference
        active.add(id(value))
        try:
            if isinstance(value, dict):
                return {clean_text(str(k)): _clean_json(v, active) for k, v in value.items()}
            return [_clean_json(v, active) for v in value]
        finally:
            active.discard(id(value))
    return _clean_json(_json_default(value), active)


def _dumps(value: Any) -> str:
    return json.dumps(
        value, ensure_ascii=False, allow_nan=False, separators=(",", ":"), default=_json_default
    )


def dumps_json(value: Any) -> str:
    """Serialize a JSON column value (or a spool line) so every backend accepts it.

    Values JSON has no type for are stored as text (datetimes as ISO 8601, anything else as
    ``str()``); NaN and infinities become ``null``; NUL characters and lone surrogates become
    U+FFFD. The fast path is one ``json.dumps``; the cleaning pass only runs when needed.
    """
    try:
        text = _dumps(value)
    except ValueError:  # NaN / Infinity, or a circular reference
        return _dumps(_clean_json(value))
    if "\\u0000" in text:
        return _dumps(_clean_json(value))
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return _dumps(_clean_json(value))
    return text


JSONType: TypeEngine[Any] = JSON().with_variant(JSONB(), "postgresql")
"""``JSONB`` on Postgres, ``JSON`` (stored as text) on SQLite."""
NullableJSON: TypeEngine[Any] = JSON(none_as_null=True).with_variant(
    JSONB(none_as_null=True), "postgresql")
"""As :data:`JSONType`, with Python ``None`` stored as SQL NULL (so ``IS NULL`` finds it)."""


class UTCDateTime(TypeDecorator[datetime]):
    """``DateTime(timezone=True)`` that always hands back an aware UTC ``datetime``.

    SQLite has no time zone type: values are converted to UTC and stored naive, then tagged UTC
    again when read. Naive values passed in are taken to be UTC already.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        tz = value.tzinfo
        if tz is None:
            value = value.replace(tzinfo=UTC)
        elif tz is not UTC:
            value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(AsyncAttrs, DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Exchange(Base):
    """A sampled production call: the request and the primary model's answer."""

    __tablename__ = "exchanges"
    __table_args__ = (
        Index("ix_exchanges_task_type_created_at", "task_type", "created_at"),
        # The scoring job walks a task type's exchanges in id order (keyset pagination).
        Index("ix_exchanges_task_type_id", "task_type", "id"),
        {"postgresql_partition_by": "RANGE (created_at)"},
    )

    # The key holds the capture time: on Postgres the table is partitioned by month of
    # ``created_at`` (:mod:`.partitions`), and a partitioned table's keys hold its partition key.
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True, index=True)
    task_type: Mapped[str] = mapped_column(String)
    primary_model: Mapped[str] = mapped_column(String)
    request: Mapped[dict[str, Any]] = mapped_column(JSONType)
    primary_output: Mapped[str | None] = mapped_column(Text)
    input_tokens: Mapped[int | None] = mapped_column(Integer)
    output_tokens: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[float | None] = mapped_column(Float)
    cost_usd: Mapped[float | None] = mapped_column(Float)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSONType)
    route: Mapped[str] = mapped_column(String, default="shadow", server_default="shadow")
    """``shadow`` (the primary served production) or ``reverse`` (a promoted model served it
    and the primary was called in the background: see ``records.ROUTE_REVERSE``)."""
    not_carried: Mapped[list[str] | None] = mapped_column(NullableJSON, nullable=True)
    """Settings of the primary's request the canonical form could not hold (NULL: none)."""
    source: Mapped[str | None] = mapped_column(String, nullable=True, index=True)
    """Who captured it (``transport``, ``shadow()``, ``sidecar``, ``remote:<name>``,
    ``import:<file>``); NULL for exchanges stored before sources were recorded."""

    outputs: Mapped[list[CandidateOutput]] = relationship(
        primaryjoin="and_(Exchange.id == foreign(CandidateOutput.exchange_id), "
                    "Exchange.created_at == foreign(CandidateOutput.exchange_created_at))",
        viewonly=True,
        order_by="CandidateOutput.model",
    )
    """Read only (no foreign key holds them together: see :class:`CandidateOutput`)."""


class CandidateOutput(Base):
    """A candidate model's answer to an exchange's request, or how the call failed.

    No foreign key to ``exchanges`` (nor from ``scores`` and ``score_queue`` to here): on
    Postgres each key check of a partitioned table is a query of its own, which halved the
    ingest rate (``bench/scale.py``). :meth:`.Store.write` stores an exchange and its outputs
    in one transaction, and ``prune`` deletes the scores, queue rows and outputs of what it
    deletes itself (it never relied on ``ON DELETE CASCADE``)."""

    __tablename__ = "candidate_outputs"
    # The unique constraint's index leads with exchange_id, so it also serves lookups by
    # exchange; a separate index on exchange_id would be redundant.
    __table_args__ = (
        UniqueConstraint("exchange_id", "exchange_created_at", "model"),
        {"postgresql_partition_by": "RANGE (exchange_created_at)"},
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    exchange_id: Mapped[str] = mapped_column(String(32))
    exchange_created_at: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    """The exchange's ``created_at``: the output lives in its exchange's month on Postgres
    (where ``replay`` may add outputs to old exchanges), and goes with it."""
    model: Mapped[str] = mapped_column(String, index=True)
    output: Mapped[str | None] = mapped_column(Text)
    input_tokens: Mapped[int | None] = mapped_column(Integer)
    output_tokens: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[float | None] = mapped_column(Float)
    cost_usd: Mapped[float | None] = mapped_column(Float)
    error_kind: Mapped[str | None] = mapped_column(String)
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    not_carried: Mapped[list[str] | None] = mapped_column(NullableJSON, nullable=True)
    """Settings of the request this candidate's API could not be given (NULL: none)."""
    finish_reason: Mapped[str | None] = mapped_column(String, nullable=True)
    """Why the answer ended (``stop``, ``length``, ``tool_calls``; NULL: unknown or not
    recorded, outputs stored before revision 0010)."""


class TrafficDaily(Base):
    """Production call volume per UTC day, task type and primary model (sampled or not)."""

    __tablename__ = "traffic_daily"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    task_type: Mapped[str] = mapped_column(String, primary_key=True)
    primary_model: Mapped[str] = mapped_column(String, primary_key=True)
    requests: Mapped[int] = mapped_column(Integer, default=0)
    sampled: Mapped[int] = mapped_column(Integer, default=0)
    not_shadowable: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """Sampled calls not mirrored: they depend on state their provider keeps."""


class RoutedDaily(Base):
    """What cascades and partial routes served, per UTC day, task type, the route's model and
    outcome: ``kept`` (the candidate's answer served), ``escalated:<check>`` (the primary's
    served after the check failed), ``primary`` (a partial rule sent the call to the
    primary), ``bypassed:<why>`` (the route could not apply, e.g. a streamed call)."""

    __tablename__ = "routed_daily"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    task_type: Mapped[str] = mapped_column(String, primary_key=True)
    model: Mapped[str] = mapped_column(String, primary_key=True)
    outcome: Mapped[str] = mapped_column(String, primary_key=True)
    calls: Mapped[int] = mapped_column(Integer, default=0)


class AppliedBatch(Base):
    """A batch whose counts were added (``Store.write(..., batch_id=...)``): its id makes a
    replay of the same batch add nothing. No index on ``applied_at``: rows are written with
    every batch and read only by ``prune``, whose scan of this narrow table is cheaper over a
    night than an index maintained on every write."""

    __tablename__ = "applied_batches"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    applied_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Score(Base):
    """One scorer's verdict on one candidate output, at one scorer version.

    The key (output, scorer, version) makes scoring idempotent: a re-run stores nothing twice,
    and a new scorer version (its code or its settings changed) scores everything again beside
    the old rows. ``passed`` is ``None`` when the scorer did not apply (no primary output to
    compare with, an unreadable judge reply): such rows are the "ignored" bucket, not failures.
    """

    __tablename__ = "scores"
    __table_args__ = ({"postgresql_partition_by": "RANGE (exchange_created_at)"},)

    output_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    scorer: Mapped[str] = mapped_column(String, primary_key=True)
    version: Mapped[str] = mapped_column(String, primary_key=True)
    exchange_created_at: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    """The ``created_at`` of the output's exchange (its month's partition on Postgres)."""
    value: Mapped[float | None] = mapped_column(Float)
    """In [0, 1]."""
    passed: Mapped[bool | None] = mapped_column(Boolean)
    details: Mapped[dict[str, Any]] = mapped_column(JSONType)
    cost_usd: Mapped[float] = mapped_column(Float, default=0.0)
    """What producing this score cost (judge calls); 0 for the deterministic scorers."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ReportRun(Base):
    """One ``shadowroute report``: when it ran, over which window, and its money overview."""

    __tablename__ = "reports"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    overview: Mapped[dict[str, Any]] = mapped_column(JSONType)


class StoredDecision(Base):
    """A report's verdict on one task type x model: ``kind`` ``shadow`` is the promotion
    verdict (from shadow pairs), ``drift`` the check of a promoted model (reverse pairs).
    ``shadowroute promote`` is gated on the latest ``shadow`` row of the pair."""

    __tablename__ = "decisions"
    __table_args__ = (Index("ix_decisions_task_type_model_created_at",
                            "task_type", "model", "created_at"),)

    report_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("reports.id", ondelete="CASCADE"), primary_key=True
    )
    task_type: Mapped[str] = mapped_column(String, primary_key=True)
    model: Mapped[str] = mapped_column(String, primary_key=True)
    kind: Mapped[str] = mapped_column(String, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    verdict: Mapped[str] = mapped_column(String)
    reason: Mapped[str] = mapped_column(Text)
    primary_model: Mapped[str | None] = mapped_column(String)
    n: Mapped[int] = mapped_column(Integer)
    passed: Mapped[int] = mapped_column(Integer)
    pass_rate: Mapped[float | None] = mapped_column(Float)
    lower_bound: Mapped[float | None] = mapped_column(Float)
    """The lower bound the verdict used (always-valid when ``[decision] sequential``)."""
    noise_floor: Mapped[float | None] = mapped_column(Float)
    judge_version: Mapped[str | None] = mapped_column(String)
    monthly_savings: Mapped[float | None] = mapped_column(Float)


class RouteChange(Base):
    """One change of the route map: a promotion (``model`` serves ``task_type`` from now on) or
    a demotion (back to the primary). The current map is the latest change per task type; the
    evidence is copied in, so it outlives the report it came from."""

    __tablename__ = "route_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    task_type: Mapped[str] = mapped_column(String, index=True)
    action: Mapped[str] = mapped_column(String)
    """``promote`` or ``demote``."""
    model: Mapped[str] = mapped_column(String)
    """The model that serves the task type after this change (the primary after a demotion)."""
    primary_model: Mapped[str] = mapped_column(String)
    actor: Mapped[str] = mapped_column(String)
    reason: Mapped[str | None] = mapped_column(Text)
    forced: Mapped[bool] = mapped_column(Boolean, default=False)
    report_id: Mapped[str | None] = mapped_column(String(32))
    evidence: Mapped[dict[str, Any]] = mapped_column(JSONType)


class Retirement(Base):
    """A candidate of a task type retired from shadowing by hand (``shadowroute retire``), or
    brought back (``shadowroute resume``). The current state of a pair is its latest row; a
    retirement holds only while the task's primary is ``primary_model`` (the one the latest
    report compared the candidate with), so a new primary resumes it by itself."""

    __tablename__ = "retirements"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    task_type: Mapped[str] = mapped_column(String, index=True)
    model: Mapped[str] = mapped_column(String)
    action: Mapped[str] = mapped_column(String)
    """``retire`` or ``resume``."""
    primary_model: Mapped[str | None] = mapped_column(String)
    """The primary the candidate was retired against (on a resume: of the retirement it ends)."""
    actor: Mapped[str] = mapped_column(String)
    reason: Mapped[str | None] = mapped_column(Text)


class JudgeCalibration(Base):
    """One ``shadowroute calibrate-judge`` run: how often the judge agreed with human labels.

    ``agreement`` leaves the judge's ties out (agreements / pairs the judge decided); ``kappa``
    is Cohen's kappa over the same pairs; both are ``None`` when the judge decided none.
    ``per_category`` maps each category (and ``"all"``) to its counts and rates; ``details``
    holds the run's judge calls, cost and the pairs left out (unreadable, unavailable).
    The report shows the latest row of the configured judge model.
    """

    __tablename__ = "judge_calibrations"
    __table_args__ = (Index("ix_judge_calibrations_judge_model_created_at",
                            "judge_model", "created_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    judge_model: Mapped[str] = mapped_column(String)
    """The ``[models]`` key of the judge (``[judge] model``)."""
    judge_version: Mapped[str] = mapped_column(String)
    """The judge scorer's version for the default rubric (see ``scoring.plan``)."""
    dataset: Mapped[str] = mapped_column(String)
    n: Mapped[int] = mapped_column(Integer)
    ties: Mapped[int] = mapped_column(Integer)
    agreement: Mapped[float | None] = mapped_column(Float)
    kappa: Mapped[float | None] = mapped_column(Float)
    per_category: Mapped[dict[str, Any]] = mapped_column(JSONType)
    details: Mapped[dict[str, Any]] = mapped_column(JSONType)


class ScorerCalibration(Base):
    """How far one scorer of a task type agrees with labels (``shadowroute calibrate``).

    Keyed by (task type, scorer, scorer version, created_at): one row per scorer and run (the
    rows of one run share ``run_id`` and ``created_at``). ``n`` counts the labelled outputs the
    scorer applied to; ``precision``, ``recall``, ``accuracy`` and ``kappa`` are those of "the
    scorer passes" against "the answer is acceptable" with the scorer as configured (its stored
    ``passed``, at ``threshold``), the ``best_*`` columns those at ``best_threshold``, the
    threshold of the sweep that agrees best by ``criterion``. Rates are ``None`` when undefined
    (nothing to divide by). ``label_source`` is ``file`` (``--labels``) or ``outcomes`` (the
    exchanges' ``metadata.outcomes``); ``sweep`` holds the metrics per threshold shown,
    ``details`` the counts behind them. The report shows the latest row of each current
    (task type, scorer, version).
    """

    __tablename__ = "scorer_calibrations"

    task_type: Mapped[str] = mapped_column(String, primary_key=True)
    scorer: Mapped[str] = mapped_column(String, primary_key=True)
    scorer_version: Mapped[str] = mapped_column(String, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    run_id: Mapped[str] = mapped_column(String(32))
    label_source: Mapped[str] = mapped_column(String)
    n: Mapped[int] = mapped_column(Integer)
    threshold: Mapped[float | None] = mapped_column(Float)
    """The configured threshold (``None`` for a scorer without one, e.g. ``correctness``)."""
    precision: Mapped[float | None] = mapped_column(Float)
    recall: Mapped[float | None] = mapped_column(Float)
    accuracy: Mapped[float | None] = mapped_column(Float)
    kappa: Mapped[float | None] = mapped_column(Float)
    criterion: Mapped[str] = mapped_column(String)
    """How ``best_threshold`` was chosen (``max kappa``)."""
    best_threshold: Mapped[float | None] = mapped_column(Float)
    best_precision: Mapped[float | None] = mapped_column(Float)
    best_recall: Mapped[float | None] = mapped_column(Float)
    best_accuracy: Mapped[float | None] = mapped_column(Float)
    best_kappa: Mapped[float | None] = mapped_column(Float)
    sweep: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    details: Mapped[dict[str, Any]] = mapped_column(JSONType)


class EvidenceCounts:
    """The decision counts of :mod:`shadowroute.store.queries.evidence` (``COUNTS``), as
    columns: what ``evidence_archive`` and ``evidence_rollup`` hold per key."""

    complete: Mapped[int] = mapped_column(Integer, default=0)
    counted: Mapped[int] = mapped_column(Integer, default=0)
    passed: Mapped[int] = mapped_column(Integer, default=0)
    judged: Mapped[int] = mapped_column(Integer, default=0)
    flipped: Mapped[int] = mapped_column(Integer, default=0)
    flipped_passed: Mapped[int] = mapped_column(Integer, default=0)
    pairs: Mapped[int] = mapped_column(Integer, default=0)
    pairs_both_failed: Mapped[int] = mapped_column(Integer, default=0)
    pairs_candidate_failed: Mapped[int] = mapped_column(Integer, default=0)
    pairs_replay_failed: Mapped[int] = mapped_column(Integer, default=0)
    schema_checked: Mapped[int] = mapped_column(Integer, default=0)
    schema_invalid: Mapped[int] = mapped_column(Integer, default=0)


class EvidenceArchive(EvidenceCounts, Base):
    """The decision counts of exchanges ``prune`` deleted, so that no decision loses
    evidence (see :mod:`shadowroute.store.queries.evidence`): added up per task type, model
    (``""``: the task's own schema checks of its primary), route and digest of the scorer
    versions the counts were taken under."""

    __tablename__ = "evidence_archive"

    task_type: Mapped[str] = mapped_column(String, primary_key=True)
    model: Mapped[str] = mapped_column(String, primary_key=True)
    route: Mapped[str] = mapped_column(String, primary_key=True)
    keys_digest: Mapped[str] = mapped_column(String(16), primary_key=True)


def exchange_of(outputs: Any = None, exchanges: Any = None) -> ColumnElement[bool]:
    """The join of candidate outputs (or a selectable with ``exchange_id`` and
    ``exchange_created_at``) to their exchanges, on the exchange's whole key: on Postgres the
    time lets the planner read one month's partition per exchange instead of every month's."""
    o = CandidateOutput.__table__ if outputs is None else outputs
    x = Exchange.__table__ if exchanges is None else exchanges
    return and_(x.c.id == o.c.exchange_id, x.c.created_at == o.c.exchange_created_at)


def output_of(scores: Any = None, outputs: Any = None) -> ColumnElement[bool]:
    """The join of scores to their candidate outputs, on the output's whole key."""
    s = Score.__table__ if scores is None else scores
    o = CandidateOutput.__table__ if outputs is None else outputs
    return and_(o.c.id == s.c.output_id, o.c.exchange_created_at == s.c.exchange_created_at)
