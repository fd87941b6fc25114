"""The sections of ``shadowroute.toml``: one strict pydantic model per table.

``[models.X]``, ``[tasks.X]`` (with their scorers), ``[judge]``, ``[decision]``, ``[routes]``,
``[mirror]``, ``[store]``, ``[redaction]`` and ``[sidecar]``. Unknown keys are errors.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .hooks import ScorerKeyError, check_plugin_table, import_hook

__all__ = [
    "SCORER_NAMES",
    "DecisionConfig",
    "JudgeConfig",
    "MirrorConfig",
    "ModelConfig",
    "RedactionConfig",
    "RedactionPattern",
    "RoutesConfig",
    "ScorerConfig",
    "SidecarConfig",
    "StoreConfig",
    "TaskConfig",
    "TaskRule",
]

class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class ModelConfig(_Strict):
    """A model shadowroute can call: a candidate, a primary replay, or later a judge."""

    name: str = ""
    model: str = ""
    """Model id sent upstream; defaults to the table key."""
    base_url: str
    """As the provider's SDK takes it: ``https://api.openai.com/v1``, ``https://api.anthropic.com``."""
    api: Literal["openai", "anthropic", "responses"] = "openai"
    """The API the model is called in: ``openai`` (chat completions), ``anthropic`` (Messages)
    or ``responses`` (the OpenAI Responses API)."""
    api_key_env: str | None = None
    """Environment variable holding the model's API key (the key itself is never in the file,
    the database or the logs)."""
    input_price: float = Field(0.0, ge=0)
    """USD per 1M input tokens."""
    output_price: float = Field(0.0, ge=0)
    """USD per 1M output tokens."""
    max_concurrency: int = Field(8, ge=1)
    """Calls in flight to this model at once."""
    timeout_s: float = Field(30.0, gt=0)
    """Timeout of one whole call, in seconds."""
    max_retries: int = Field(2, ge=0)
    """Retries on timeouts, connection errors, 429 and 5xx."""

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        return (input_tokens * self.input_price + output_tokens * self.output_price) / 1_000_000

    def api_key(self) -> str | None:
        return os.environ.get(self.api_key_env) if self.api_key_env else None


SCORER_NAMES = ("schema", "exact", "label", "similarity", "extract", "judge", "correctness")
"""The built-in scorers a task type can use (see :mod:`shadowroute.scoring`); any other name is
a scorer plugin (:mod:`shadowroute.scoring.plugins`)."""

_SCORER_OPTIONS = {
    "schema": {"threshold"},
    "exact": {"threshold", "labels", "case_sensitive"},
    "label": {"threshold", "labels", "case_sensitive"},
    "similarity": {"threshold", "method"},
    "extract": {
        "pattern", "json_pointer", "choices", "abs_tolerance", "rel_tolerance", "case_sensitive",
    },
    "judge": {"threshold", "rubric", "when"},
    "correctness": {"tolerance"},
}


class ScorerConfig(_Strict):
    """One scorer of a task type: ``[tasks.X.scorers.similarity] method = "ratio"``.

    Every option is optional; which ones a scorer takes is checked against its name. A table
    whose key is no built-in scorer is a plugin (``plugin`` and ``options`` only; see
    docs/scorer-plugins.md).
    """

    threshold: float | None = Field(None, ge=0.0, le=1.0)
    """A score at or above it passes (defaults: schema/exact 1.0, similarity 0.8, judge 0.5)."""
    method: str | None = None
    """similarity: ratio (default), token_set_ratio, token_sort_ratio, partial_ratio, WRatio."""
    labels: tuple[str, ...] | None = None
    """exact/label: the allowed labels; an answer outside them fails."""
    case_sensitive: bool = False
    """exact/label/extract: compare (and, for extract, find choices) with case."""
    pattern: str | None = None
    """extract: a regular expression; the answer is its first group in the last match
    (default: the final number of the output)."""
    json_pointer: str | None = None
    """extract: an RFC 6901 pointer (``/answer``) into outputs that are JSON."""
    choices: tuple[str, ...] | None = None
    """extract: a closed set of answers (``["A", "B", "C", "D"]``); the last one found counts."""
    abs_tolerance: float | None = Field(None, ge=0.0, allow_inf_nan=False)
    """extract: two numbers this close (absolutely) agree (default 0)."""
    rel_tolerance: float | None = Field(None, ge=0.0, allow_inf_nan=False)
    """extract: two numbers this close relative to the larger one agree (default 0)."""
    rubric: str | None = None
    """judge: what "better" means for this task type (default: ``[judge] rubric``)."""
    when: Literal["needed", "always"] | None = None
    """judge: ``needed`` asks the judge only where the cheaper scorers leave the pair open;
    ``always`` asks it on every pair (default: ``[judge] when``)."""
    tolerance: float | None = Field(None, ge=0.0)
    """correctness: with recorded grades, the candidate passes when its grade is at least the
    primary's minus this (default 0)."""
    plugin: str | None = None
    """A scorer plugin: ``"package.module:factory"``, or the name of an installed
    ``shadowroute.scorers`` entry point (default: the table's key)."""
    options: dict[str, Any] | None = None
    """A plugin's own options (``options = {kinds = ["email"]}``), checked against the ones it
    declares."""

    @field_validator("pattern")
    @classmethod
    def _pattern_compiles(cls, value: str | None) -> str | None:
        if value is not None:
            if not value:
                raise ValueError("must be a non-empty regular expression")
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"invalid regular expression {value!r}: {exc}") from None
        return value

    @field_validator("json_pointer")
    @classmethod
    def _is_json_pointer(cls, value: str | None) -> str | None:
        if value and (not value.startswith("/") or re.search(r"~(?![01])", value)):
            raise ValueError(
                f"{value!r} is not a JSON pointer (RFC 6901: empty, or '/' then keys or "
                "indexes separated by '/', with '~0' for '~' and '~1' for '/')"
            )
        return value

    @field_validator("choices")
    @classmethod
    def _non_empty_choices(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is not None and (not value or not all(c.strip() for c in value)):
            raise ValueError("must be a non-empty list of non-empty strings")
        return value


DEFAULT_DAILY_BUDGET_USD = 10.0
"""The default ``[tasks.X] daily_budget_usd``."""


class TaskConfig(_Strict):
    """A task type: which candidates shadow it, how much of its traffic is sampled, and how
    their answers are scored."""

    name: str = ""
    candidates: tuple[str, ...] = ()
    """The cheaper models (``[models]`` keys) this task type's sampled calls are mirrored to."""
    sample_rate: float = Field(0.1, ge=0.0, le=1.0)
    """Share (0..1) of the task type's production calls mirrored to the candidates."""
    json_schema: Path | None = None
    """Path to a JSON Schema file, relative to the config file."""
    daily_budget_usd: float = Field(DEFAULT_DAILY_BUDGET_USD, ge=0)
    """Cap on candidate spend (candidates and noise-floor replays) per UTC day for this task:
    a safe default, so that nobody who can reach the capture path can spend without limit;
    ``inf`` for no cap."""
    noise_floor_rate: float = Field(0.1, ge=0.0, le=1.0)
    """Share of sampled exchanges on which the primary is called again (stored as the candidate
    ``primary@replay``), to measure how much the primary disagrees with itself. Needs the
    primary declared under ``[models]``."""
    scorers: dict[str, ScorerConfig] = {}
    """Scorer name -> options; a list of names is accepted too. Empty: the defaults of
    :meth:`Config.scorers_for`. A name that is no built-in scorer is a scorer plugin: an
    installed ``shadowroute.scorers`` entry point of that name, or the table's ``plugin``."""
    required_quality: float | None = Field(None, gt=0.0, le=1.0)
    """Overrides ``[decision] required_quality`` for this task type."""
    margin: float | None = Field(None, ge=0.0, lt=1.0)
    """Overrides ``[decision] margin`` for this task type."""
    min_samples: int | None = Field(None, ge=1)
    """Overrides ``[decision] min_samples`` for this task type."""
    reverse_shadow_rate: float | None = Field(None, ge=0.0, le=1.0)
    """Overrides ``[routes] reverse_shadow_rate`` for this task type once it is promoted."""
    route_features: tuple[str, ...] = ()
    """Metadata fields a per-request rule (PARTIAL) may read besides the request itself
    (:mod:`shadowroute.routing.features`): numbers, yes/no, or text values (one feature per
    value). Only fields known before the call belong here."""

    @field_validator("scorers", mode="before")
    @classmethod
    def _scorer_list(cls, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return {str(name): {} for name in value}
        return value

    @field_validator("scorers")
    @classmethod
    def _known_scorers(cls, value: dict[str, ScorerConfig]) -> dict[str, ScorerConfig]:
        for name, options in value.items():
            if name not in _SCORER_OPTIONS:
                others = sorted(key for key in options.model_fields_set - {"plugin", "options"}
                                if key != "case_sensitive" or options.case_sensitive)
                check_plugin_table(name, options.plugin, options.options, others, SCORER_NAMES)
                continue
            if options.plugin is not None or options.options is not None:
                raise ScorerKeyError(
                    name, f"{name!r} is a built-in scorer: it takes no 'plugin' or 'options' "
                    "(give a plugin a table of its own, e.g. [tasks.X.scorers.my_check])"
                )
            given = {key for key in options.model_fields_set if key != "case_sensitive"}
            if options.case_sensitive:
                given.add("case_sensitive")
            wrong = sorted(given - _SCORER_OPTIONS[name])
            if wrong:
                raise ValueError(
                    f"scorer {name!r} takes no option {wrong[0]!r} "
                    f"(it takes: {', '.join(sorted(_SCORER_OPTIONS[name]))})"
                )
        return value


class JudgeConfig(_Strict):
    """The LLM judge: any declared model (OpenAI-compatible or Anthropic) that is neither a
    candidate nor the primary of the exchanges it judges."""

    model: str
    """A key of ``[models]``."""
    rubric: str | None = None
    """Default rubric for every task type (built-in default when unset)."""
    budget_usd: float | None = Field(None, ge=0)
    """Spend cap of one ``shadowroute score`` run on judge calls; ``None`` means no cap."""
    concurrency: int = Field(8, ge=1)
    """Judge calls in flight at once (the model's own ``max_concurrency`` also applies)."""
    when: Literal["needed", "always"] = "needed"
    """``needed``: no judge call on a pair a cheaper scorer already decided -- one failed (the
    pair fails whatever the judge says), or ``exact``, ``label`` or ``extract`` found the same
    answer as the primary's (the judge would say "same") -- its judge score is then stored as
    not applicable, with the deciding scorer. ``always``: the judge is asked on every pair (a
    task whose policy needs both). Per task: ``scorers.judge = { when = "always" }``."""
    max_tokens: int = Field(200, ge=16)
    """Output token limit of one judge call."""
    threshold: float = Field(0.5, ge=0.0, le=1.0)
    """Judge value: 1 candidate better, 0.5 same (or a verdict that flips with the order),
    0 worse. At or above the threshold passes: by default "same" passes, "worse" fails."""
    min_agreement: float = Field(0.75, ge=0.0, le=1.0)
    """``shadowroute calibrate-judge``: below this agreement with human labels (ties left
    out) the report warns that the judge's verdicts are not to be trusted."""


class DecisionConfig(_Strict):
    """How ``shadowroute report`` decides whether a candidate can take over a task type.

    A candidate output *passes* when every scorer that applies to it passed. PROMOTE needs both
    criteria met at the given confidence: the pass rate's lower bound reaches
    ``required_quality``, and the candidate fails at most ``margin`` more often than the primary
    disagrees with itself (its noise floor, from ``primary@replay``)."""

    confidence: float = Field(0.95, gt=0.5, lt=1.0)
    """Family-wise confidence of the report: the chance that any report, on any night, shows a
    wrong PROMOTE for any of its task types x candidates is at most ``1 - confidence``. Each of
    the report's K decisions runs at ``(1 - confidence) / K``."""
    bound: Literal["wilson", "clopper-pearson"] = "wilson"
    """The fixed-sample bound shown for the current look."""
    sequential: bool = True
    """Decide with always-valid bounds (a confidence sequence) so that re-running the report
    every night on growing data never inflates the chance of a wrong PROMOTE. Turn off only for
    a one-off evaluation of a fixed dataset."""
    required_quality: float = Field(0.95, gt=0.0, le=1.0)
    """Minimum pass rate (candidate output judged as good as the primary's)."""
    margin: float = Field(0.02, ge=0.0, lt=1.0)
    """Non-inferiority margin: how much more often than the primary's noise floor the
    candidate may fail."""
    min_samples: int = Field(100, ge=1)
    """Scored outputs a candidate needs before any verdict other than NEED MORE DATA."""
    config_problem_rate: float = Field(0.1, gt=0.0, le=1.0)
    """A task type whose primary fails its own JSON schema this often (shown by the rate's
    always-valid lower bound, not by the observed rate) is a CONFIG PROBLEM."""
    unscored_count_as_failures: bool = True
    """An output on which no scorer applied counts as a failure for the quality criterion
    (left out of non-inferiority). Turn off to leave such outputs out of the pass rate."""
    max_judge_flip_rate: float = Field(0.1, gt=0.0, le=1.0)
    """A flipped judge verdict (it changes when the two answers swap places) counts as a
    failure; when the share of flipped verdicts is shown to exceed this (or
    ``1 - required_quality``, when lower: beyond it no candidate could reach the bar), the
    judge gives no verdict (CONFIG PROBLEM: calibrate it or change it)."""
    evaluation_replay_rate: float = Field(0.5, ge=0.0, le=1.0)
    """Share of sampled exchanges replayed on the primary while a candidate of the task type
    is under evaluation and the noise floor is the less certain of the two rates compared
    (the task's ``noise_floor_rate`` otherwise): non-inferiority is decided in weeks instead
    of months, at the cost of that many more primary calls on sampled traffic."""
    maintenance_rate: float = Field(0.1, ge=0.0, le=1.0)
    """A candidate whose verdict is settled (PROMOTE, or HOLD: shown to miss a criterion, more
    data would not change it) is still called on this share of its task's sampled calls, drawn
    independently of the request, until something changes: a new primary, the task's settings
    (scorers, bar, candidates), or the next report's verdict. 1 keeps every candidate at the
    full sample rate."""
    allocation_floor: float = Field(0.25, ge=0.0, le=1.0)
    """An undecided candidate with ``min_samples`` outputs is called on a share of its task's
    sampled calls that follows its chance of passing both bars (the posterior probability,
    :mod:`shadowroute.decision.allocation`): all of them from a 50% chance up, in proportion
    below it, never fewer than this share. The draw is independent of the request, so the
    verdicts stay valid. 1 keeps every undecided candidate at the full sample rate."""


class RoutesConfig(_Strict):
    """The route map: which task types are served by a promoted model instead of the primary.

    ``shadowroute promote`` / ``demote`` record every change in the database and export the
    current map to ``file``, which the library :class:`~shadowroute.Router` and the sidecar read
    (and re-read when it changes)."""

    file: Path = Path("routes.yaml")
    """Relative to the config file."""
    reverse_shadow_rate: float = Field(0.05, ge=0.0, le=1.0)
    """Share of a promoted task type's requests also sent, in the background, to the primary it
    replaced (the reverse shadow): scored like any pair, they show drift in the next report."""
    reload_interval_s: float = Field(1.0, ge=0.0)
    """How often a running Router or sidecar checks the file for changes."""
    drift_false_alarm: float = Field(0.01, gt=0.0, lt=1.0)
    """Chance that the drift check ever recommends demoting a promoted model that still meets
    the bar, within ``drift_horizon_days`` of its promotion (a change detector that restarts,
    so a drop is caught as fast a year after the promotion as a week after it)."""
    drift_horizon_days: int = Field(365, ge=1)
    """The horizon of ``drift_false_alarm``: days after a promotion."""


class MirrorConfig(_Strict):
    queue_size: int = Field(2000, ge=1)
    """Captures waiting for mirroring; when full, new captures are dropped and counted."""
    workers: int = Field(32, ge=1)
    """Background tasks calling candidates and writing captures."""
    shutdown_deadline_s: float = Field(10.0, ge=0)
    """At shutdown, how long queued captures may still be drained (the rest is dropped and
    counted)."""
    retry_backoff_s: float = Field(0.5, ge=0)
    """First wait before a failed candidate call is retried."""
    retry_backoff_max_s: float = Field(30.0, ge=0)
    """Longest wait between retries (the wait doubles)."""
    circuit_failures: int = Field(5, ge=1)
    """Consecutive failures that open a candidate's circuit."""
    circuit_reset_s: float = Field(30.0, gt=0)
    """How long an open circuit waits before letting one trial call through."""


class StoreConfig(_Strict):
    batch_size: int = Field(500, ge=1)
    """Exchanges per database write."""
    flush_interval_s: float = Field(0.25, gt=0)
    """A batch is written after this long even when not full."""
    spool_dir: Path = Path(".shadowroute/spool")
    """Where batches go while the database is unreachable; replayed when it returns."""
    retry_interval_s: float = Field(5.0, gt=0)
    """How often the spool is replayed while it is not empty."""


class RedactionPattern(_Strict):
    """A user rule of ``[redaction] patterns``: matches become ``[REDACTED:<name>]``."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    """Replaces a match as ``[REDACTED:<name>]``."""
    regex: str
    """A Python regular expression."""

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"invalid regular expression {value!r}: {exc}") from None
        return value


class RetentionConfig(_Strict):
    """What ``shadowroute nightly`` deletes after each run (``prune``, decision counts kept)."""

    keep_days: int | None = Field(None, ge=1)
    """Exchanges, traffic and reports older than this many days go; ``None``: nothing."""


class NotifyConfig(_Strict):
    """Where ``shadowroute nightly`` says that a verdict changed."""

    webhook_url_env: str | None = None
    """The environment variable holding a webhook URL (Slack-compatible: the payload has a
    ``text`` field); the URL itself never sits in the file."""
    timeout_s: float = Field(10.0, gt=0)
    """Timeout of one webhook POST, in seconds."""
    retries: int = Field(3, ge=0, le=10)
    """Further attempts after a failed POST, with backoff (0.5 s, doubling)."""


class RedactionConfig(_Strict):
    """What is replaced before an exchange is stored (see :mod:`shadowroute.store.redaction`)."""

    redactors: tuple[Literal["api_key", "email", "phone", "card"], ...] = ("api_key",)
    """Built-in detectors; the default only removes API-key-like strings."""
    patterns: tuple[RedactionPattern, ...] = ()
    """Your own rules: ``[{name = "ticket", regex = "TCK-\\d+"}]``."""
    hook: str | None = None
    """``"package.module:function"``, a ``str -> str`` applied to every stored string."""

    @field_validator("hook")
    @classmethod
    def _importable(cls, value: str | None) -> str | None:
        if value is not None:
            import_hook(value)  # ValueError with the reason
        return value


class TaskRule(_Strict):
    """How the sidecar names the task type of a call without an ``X-Shadowroute-Task`` header.

    Every condition given must match: ``model`` is a glob on the request's model
    (``"gpt-4o-mini*"``), ``metadata`` compares fields of the request's ``metadata`` object.
    """

    task: str
    """The task type of a call this rule matches."""
    model: str | None = None
    """Glob on the request's ``model`` (e.g. ``gpt-4o-mini*``); any model when absent."""
    metadata: dict[str, str] = {}
    """Fields the request's ``metadata`` object must hold, with these values."""


class SidecarConfig(_Strict):
    upstream: str | None = None
    """Where OpenAI-style calls go (chat completions, Responses, every other path but
    Anthropic's): ``https://api.openai.com``; paths are forwarded as they come. Upstreams come
    from here (or ``--upstream``) only, never from a request."""
    anthropic_upstream: str | None = None
    """Where Anthropic calls go (``/v1/messages...``, or any call with ``anthropic-version``):
    ``https://api.anthropic.com``. Without it they are answered with an error and not
    forwarded, so an Anthropic key never reaches the OpenAI host. A gateway that serves both
    APIs is given as both."""
    rules: tuple[TaskRule, ...] = ()
    """Task type of calls without the ``X-Shadowroute-Task`` header: the first matching rule
    wins."""
    default_task: str = "default"
    """Task type of a call no header or rule names."""
    max_body_bytes: int = Field(16 * 1024 * 1024, ge=1024)
    """The capture limit: chat calls with bodies up to this size are captured and mirrored;
    larger ones are relayed to the upstream as they stream in, never held in memory, and not
    captured (``shadowroute_not_captured{reason="too_large"}``). ``/v1/captures`` refuses
    larger bodies with 413."""
    max_request_bytes: int | None = Field(None, ge=1024)
    """An abuse ceiling: requests larger than this are refused with 413 in the API's error
    shape. Off by default: the upstream's own limit applies, as it would without the
    sidecar."""
    ingest_token_env: str | None = None
    """The environment variable holding the bearer token ``POST /v1/captures`` requires (the
    apps' ``remote_token_env`` sends it). Without it, captures are only accepted on a loopback
    bind: ``serve`` refuses a non-loopback ``--host`` with captures on and no token."""
    metrics_token_env: str | None = None
    """The environment variable holding a bearer token ``GET /metrics`` requires (Prometheus:
    ``authorization: {credentials_file: ...}``); none: open to whoever reaches the port."""
    captures: bool = True
    """Serve ``POST /v1/captures`` (remote mode's apps send their captures there)."""
    captures_per_minute: int = Field(6000, ge=1)
    """Captures one client (by address) may send per minute; more get 429 and are counted, so
    one misbehaving app cannot spend the day's budget for everyone."""
    upstream_timeout_s: float = Field(600.0, gt=0)
    """Timeout of a relayed call to the upstream, in seconds."""
    mirror_process: Literal["idle", "normal", "off"] = "idle"
    """Where sampled calls are mirrored and stored: ``idle``, a child process at the idle
    scheduling class (Linux; elsewhere the lowest priority), which uses only CPU the relay
    leaves, so shadowing cannot slow the primary's calls; ``normal``, a child process at
    normal priority; ``off``, in the sidecar's own process. The sidecar hands each sampled
    call over unparsed; ``/metrics``, ``/healthz`` and the shutdown ledger cover both
    processes."""
    max_connections: int = Field(0, ge=0)
    """Connections to the upstreams at once; 0: no limit (the process's file limit is the
    limit). Calls over it wait for a connection: ``shadowroute_upstream_pool_waiting`` and
    ``shadowroute_upstream_pool_wait_seconds`` in ``/metrics`` show it."""

    @field_validator("upstream", "anthropic_upstream")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/") if value else value


