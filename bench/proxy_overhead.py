"""What the sidecar (``shadowroute serve``) costs a caller, next to LiteLLM's proxy as an anchor.

Every path calls the same fake OpenAI-compatible upstream (``frontier``, latency scaled to 0 by
default so the proxies' own cost is what shows), on loopback, in one run:

  direct              the load generator calls the fake upstream itself (the baseline)
  minimal python relay   aiohttp server + aiohttp client on uvloop relaying bytes, nothing
                      parsed: the floor of a Python proxy, the sidecar's target
  sidecar pass        ``shadowroute serve``, task sample rate 0 (forward only)
  sidecar shadow X%   the same, every task sampled at X and mirrored to ``small`` and ``tiny``
                      (two candidates on a second fake upstream, run at the idle scheduling
                      class: in production the candidates are another provider's machines,
                      not this machine's CPU), through the sidecar's mirror process
                      (``--mirror-process``: idle as shipped, normal, or off: in process)
  portkey gateway     the Portkey OSS gateway (Node), ``x-portkey-custom-host`` at the upstream
                      (installed with npm into ``.bench-portkey`` on first use; skipped without
                      node/npm)
  litellm proxy       ``litellm --config`` with ``openai/frontier`` at the same upstream

For each path (after an unrecorded warm-up before every measurement):
1. one client, back to back, for ``--serial-seconds``: the unloaded added latency;
2. open loop: ``--rate`` requests/s for ``--seconds`` (sent on schedule whatever the earlier
   calls are doing); p50/p99 and the added p50/p99 against ``direct`` measured in this run;
   a path that cannot complete that rate is flagged (its figures are then mostly queueing);
3. closed loop: N clients each sending back to back, for each N in ``--concurrency``; the
   highest requests/s is the plateau ("max RPS"), with p50/p99 at that N.
Requests are the fake server's sample chat bodies with ``"model": "frontier"`` and the same
``Authorization`` header on every path.

    python bench/proxy_overhead.py [--rate 100] [--seconds 10] [--concurrency 16,32,64]
                                   [--sample-rates 0.1,1] [--no-litellm] [--no-portkey]

Every server runs in its own process, and so does the load generator (aiohttp over uvloop, one
pooled session, the same client for every path), so none shares a GIL with another; on a 2-core
machine they still share the CPU, which is part of what "max RPS" means here. CPU time per
request of the proxy (the sidecar's mirror process included) and of the upstreams is read from
/proc during the closed loop.

LiteLLM lives in its own virtualenv (``.venv-litellm`` next to this repo's ``.venv``, or
``--litellm-venv``), created with ``pip install 'litellm[proxy]'`` on first use; if that fails
the LiteLLM rows are skipped with the reason. It runs with a master key (it refuses to start
without one), no database, the local model cost map and its log level at ERROR.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _portkey import portkey_argv, portkey_entry, portkey_headers, portkey_version
from _util import free_port, pct  # bench/ is on sys.path when a script runs

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_LITELLM_VENV = ROOT / ".venv-litellm"
DEFAULT_PORTKEY_DIR = ROOT / ".bench-portkey"
CHAT_PATH = "/v1/chat/completions"
REQUEST_TIMEOUT_S = 10.0
FOREIGN_WARN_CORES = 0.15  # CPU used by other processes above which a run is called disturbed


# ---------------------------------------------------------------------------- processes




def http(
    method: str,
    url: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 5.0,
) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@dataclass
class Server:
    """One server in its own process; its output goes to a log file shown if it fails."""

    name: str
    argv: list[str]
    ready_url: str
    log: Path
    cwd: Path
    env: dict[str, str] | None = None
    process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float) -> None:
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                if http("GET", self.ready_url, timeout=1.0)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(
            f"{self.name} did not start within {timeout:g}s; its log:\n{self.tail()}"
        )

    def tail(self, lines: int = 25) -> str:
        try:
            text = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join("    " + line for line in text[-lines:])

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGINT)  # uvicorn shuts down gracefully on SIGINT/SIGTERM
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None


def cpu_seconds(pid: int | list[int] | None) -> float | None:
    """utime + stime of ``pid`` (or of each pid of a list) and of its live child processes
    (the sidecar's mirror process), from Linux /proc; None when it cannot be read."""
    if pid is None:
        return None
    total = 0.0
    for one in pid if isinstance(pid, list) else [pid]:
        try:
            fields = Path(f"/proc/{one}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            children = Path(f"/proc/{one}/task/{one}/children").read_text().split()
        except (OSError, ValueError, IndexError):
            return None
        for child in children:
            total += cpu_seconds(int(child)) or 0.0
    return total


def system_busy_seconds() -> float | None:
    """CPU time all CPUs spent busy since boot (Linux /proc/stat), or None."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    return (sum(values[:8]) - idle) / os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------------------- load generator
# Runs in its own process (``proxy_overhead.py _load SPEC_JSON``) and prints one JSON object.




ERROR_SAMPLES: dict[str, str] = {}  # first error body (or message) per kind, for the report


async def _post(session: Any, url: str, body: bytes, headers: dict[str, str]) -> int:
    async with session.post(url, data=body, headers=headers) as response:
        content = await response.read()
        if response.status != 200:
            ERROR_SAMPLES.setdefault(
                f"HTTP {response.status}", content[:300].decode(errors="replace")
            )
        return int(response.status)


async def _closed(
    session: Any,
    spec: dict[str, Any],
    bodies: list[bytes],
    concurrency: int,
    seconds: float,
    record: bool,
) -> dict[str, Any]:
    import asyncio

    url, headers = spec["url"], spec["headers"]
    latencies: list[float] = []
    errors: dict[str, int] = {}
    done = 0
    begin = time.perf_counter()
    end = begin + seconds
    hard_cap = int(spec.get("max_requests", 500_000))

    async def worker(k: int) -> None:
        nonlocal done
        i = k
        while time.perf_counter() < end and done < hard_cap:
            body = bodies[i % len(bodies)]
            i += concurrency
            t0 = time.perf_counter()
            try:
                status = await _post(session, url, body, headers)
            except Exception as exc:  # noqa: BLE001 - every failure is counted, by kind
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                ERROR_SAMPLES.setdefault(type(exc).__name__, repr(exc)[:300])
                await asyncio.sleep(0.01)
                continue
            t1 = time.perf_counter()
            done += 1
            if status != 200:
                errors[f"HTTP {status}"] = errors.get(f"HTTP {status}", 0) + 1
            elif record and t1 <= end:
                latencies.append((t1 - t0) * 1000)

    await asyncio.wait_for(
        asyncio.gather(*(worker(k) for k in range(concurrency))), seconds + REQUEST_TIMEOUT_S + 5
    )
    elapsed = time.perf_counter() - begin
    return {
        "ok": len(latencies),
        "done": done,
        "elapsed": elapsed,
        "errors": errors,
        "rps": len(latencies) / seconds,
        "p50": pct(latencies, 0.5),
        "p99": pct(latencies, 0.99),
    }


async def _open(session: Any, spec: dict[str, Any], bodies: list[bytes]) -> dict[str, Any]:
    """Send request i at start + i/rate whatever the earlier ones are doing; latency is from
    the moment each request is handed to the client, and the lag behind schedule is kept."""
    import asyncio

    url, headers = spec["url"], spec["headers"]
    rate, total = float(spec["rate"]), int(spec["rate"] * spec["seconds"])
    latencies: list[float] = []
    lags: list[float] = []
    errors: dict[str, int] = {}

    async def one(i: int) -> None:
        t0 = time.perf_counter()
        lags.append((t0 - (start + i / rate)) * 1000)
        try:
            status = await _post(session, url, bodies[i % len(bodies)], headers)
        except Exception as exc:  # noqa: BLE001
            errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
            ERROR_SAMPLES.setdefault(type(exc).__name__, repr(exc)[:300])
            return
        if status != 200:
            errors[f"HTTP {status}"] = errors.get(f"HTTP {status}", 0) + 1
        else:
            now = time.perf_counter()
            latencies.append((now - t0) * 1000)
            last[0] = max(last[0], now)

    tasks = []
    start = time.perf_counter() + 0.01
    last = [start]
    for i in range(total):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(one(i)))
    _, pending = await asyncio.wait(tasks, timeout=REQUEST_TIMEOUT_S + 5)
    for task in pending:
        task.cancel()
    if pending:
        errors["unfinished"] = len(pending)
    return {
        "ok": len(latencies),
        "achieved": len(latencies) / max(last[0] - start, 1e-9),
        "sent": total,
        "errors": errors,
        "p50": pct(latencies, 0.5),
        "p99": pct(latencies, 0.99),
        "lag_p99": pct(lags, 0.99),
        "lag_max": max(lags, default=0.0),
    }


async def _load(spec: dict[str, Any]) -> dict[str, Any]:
    import aiohttp

    bodies = [
        json.dumps(b, separators=(",", ":")).encode()
        for b in json.loads(Path(spec["bodies"]).read_text())
    ]
    limit = max(int(spec.get("concurrency", 0)), 256)
    connector = aiohttp.TCPConnector(limit=limit, keepalive_timeout=3.0)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    async with aiohttp.ClientSession(
        connector=connector, timeout=timeout, auto_decompress=False
    ) as session:
        # warm-up (not recorded): opens the connections, lets the servers fill their caches
        warm = int(spec.get("concurrency") or 4)
        warmed = await _closed(session, spec, bodies, warm, float(spec["warmup"]), record=False)
        if spec["mode"] == "open":
            result = await _open(session, spec, bodies)
        else:
            result = await _closed(session, spec, bodies, warm, float(spec["seconds"]), record=True)
        result["error_samples"] = ERROR_SAMPLES
        result["warm_done"] = warmed["done"]
        result["warm_errors"] = warmed["errors"]
        return result


def load_main(raw: str) -> None:
    spec = json.loads(raw)
    try:
        import uvloop

        run = uvloop.run
    except ImportError:
        import asyncio

        run = asyncio.run
    result = run(_load(spec))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result["cpu_s"] = usage.ru_utime + usage.ru_stime
    print(json.dumps(result))


# ---------------------------------------------------------------------------- fake upstream


def upstream_main(port: int, latency_scale: float, idle: bool = False) -> None:
    """The fake upstream; ``idle``: at the idle scheduling class (the candidates' upstream,
    which in production is another provider's machine, not this one's CPU)."""
    from shadowroute.fakellm import default_settings, run

    if idle:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))

    run(
        default_settings(latency_scale=latency_scale),
        host="127.0.0.1",
        port=port,
        log_level="warning",
    )


# ---------------------------------------------------------------------------- minimal relay


def relay_main(port: int, upstream: str) -> None:
    """The floor of a Python proxy: an aiohttp server relaying every request's bytes to the
    upstream with an aiohttp client on uvloop, the response streamed back; nothing parsed,
    nothing captured. The sidecar's overhead is read against it."""
    import asyncio

    import aiohttp
    from aiohttp import web

    hop = {"connection", "keep-alive", "transfer-encoding", "host", "content-length"}

    async def handle(request: web.Request) -> web.StreamResponse:
        session: aiohttp.ClientSession = request.app["session"]
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in hop}
        async with session.request(request.method, upstream + request.path_qs, data=body,
                                   headers=headers, auto_decompress=False) as answer:
            response = web.StreamResponse(status=answer.status, headers={
                k: v for k, v in answer.headers.items() if k.lower() not in hop})
            await response.prepare(request)
            async for chunk in answer.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response

    async def session_ctx(app: web.Application):  # type: ignore[no-untyped-def]
        app["session"] = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0), skip_auto_headers=("User-Agent",))
        yield
        await app["session"].close()

    try:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
    app = web.Application()
    app.cleanup_ctx.append(session_ctx)
    app.router.add_route("*", "/{tail:.*}", handle)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


# ---------------------------------------------------------------------------- LiteLLM


def litellm_binary(venv: Path, install: bool) -> tuple[Path | None, str]:
    """The ``litellm`` executable in ``venv``, installing it there on first use."""
    binary = venv / "bin" / "litellm"
    if binary.exists():
        return binary, ""
    how = f"{sys.executable} -m venv {venv} && {venv}/bin/pip install 'litellm[proxy]'"
    if not install:
        return None, f"no LiteLLM at {venv}; install it with: {how}"
    print(
        f"LiteLLM is not installed at {venv}; installing it (first use only, a few minutes):\n  {how}",
        flush=True,
    )
    log = venv / "bench-install.log"
    try:
        venv.mkdir(parents=True, exist_ok=True)
        with log.open("wb") as out:
            subprocess.run(
                [sys.executable, "-m", "venv", str(venv)], check=True, stdout=out, stderr=out
            )
            subprocess.run(
                [str(venv / "bin" / "pip"), "install", "--quiet", "litellm[proxy]"],
                check=True,
                stdout=out,
                stderr=out,
                timeout=1200,
            )
    except (OSError, subprocess.SubprocessError) as exc:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-5:]) if log.exists() else ""
        return None, f"installing LiteLLM failed ({exc}); by hand: {how}\n{tail}"
    if not binary.exists():
        return None, f"pip finished but {binary} is missing; see {log}"
    return binary, ""


def litellm_version(venv: Path) -> str:
    try:
        out = subprocess.run(
            [
                str(venv / "bin" / "python"),
                "-c",
                "import importlib.metadata as m; print(m.version('litellm'))",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        return out.stdout.strip() or "?"
    except (OSError, subprocess.SubprocessError):
        return "?"


def litellm_server(binary: Path, upstream: str, port: int, key: str, tmp: Path) -> Server:
    cfg = tmp / "litellm.yaml"
    cfg.write_text(
        "model_list:\n"
        "  - model_name: frontier\n"
        "    litellm_params:\n"
        "      model: openai/frontier\n"
        f"      api_base: {upstream}/v1\n"
        "      api_key: fake\n"
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "DIRECT_URL", "REDIS_HOST", "REDIS_URL"}
    }
    env.update(
        {
            "LITELLM_MASTER_KEY": key,  # it refuses to start without one
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no cost-map download at start
            "LITELLM_LOG": "ERROR",  # also turns uvicorn's access log off
            "HF_HUB_OFFLINE": "1",
            "NO_DOCKER": "1",
        }
    )
    cwd = tmp / "litellm"
    cwd.mkdir(exist_ok=True)
    return Server(
        "litellm proxy",
        [str(binary), "--config", str(cfg), "--host", "127.0.0.1", "--port", str(port)],
        f"http://127.0.0.1:{port}/health/liveliness",
        tmp / "litellm.log",
        cwd,
        env,
    )


# ---------------------------------------------------------------------------- sidecar


def sidecar_server(upstream: str, port: int, sample_rate: float, tmp: Path, tag: str,
                   candidates: str, mirror_process: str) -> Server:
    work = tmp / f"sidecar-{tag}"
    work.mkdir()
    (work / "shadowroute.toml").write_text(
        f'database_url = "sqlite+aiosqlite:///{work / "bench.db"}"\n'
        "default_sample_rate = 0.0\n"
        "[sidecar]\n"
        f'mirror_process = "{mirror_process}"\n'
        "[store]\n"
        f'spool_dir = "{work / "spool"}"\n'
        "[models.small]\n"
        f'base_url = "{candidates}/v1"\n'
        "[models.tiny]\n"
        f'base_url = "{candidates}/v1"\n'
        "[tasks.default]\n"
        'candidates = ["small", "tiny"]\n'
        f"sample_rate = {sample_rate}\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHADOWROUTE_")}
    return Server(
        f"sidecar ({tag})",
        [
            sys.executable,
            "-m",
            "shadowroute",
            "serve",
            "--config",
            str(work / "shadowroute.toml"),
            "--upstream",
            upstream,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        f"http://127.0.0.1:{port}/healthz",
        work / "serve.log",
        work,
        env,
    )


def sidecar_counters(base: str) -> dict[str, float]:
    try:
        status, body = http("GET", base + "/metrics")
    except OSError:
        return {}
    if status != 200:
        return {}
    out: dict[str, float] = {}
    for line in body.decode().splitlines():
        if line.startswith("shadowroute_") and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            if "_total{" in name or name.endswith(("_total", "queue_depth", "spool_pending")):
                try:
                    out[name.removeprefix("shadowroute_")] = float(value)
                except ValueError:
                    pass
    return out


def settled_counters(base: str, limit_s: float = 5.0) -> dict[str, float]:
    """The sidecar's counters once every sampled capture is stored, spooled or dropped (bounded)."""
    deadline = time.monotonic() + limit_s
    while True:
        counters = sidecar_counters(base)
        accounted = sum(
            v
            for k, v in counters.items()
            if k.startswith(("stored_exchanges_total", "spooled_exchanges_total", "dropped_total"))
        )
        if accounted >= counters.get("sampled_total", 0) or time.monotonic() > deadline:
            return counters
        time.sleep(0.25)


def wait_sidecar_idle(base: str, limit_s: float = 15.0) -> float:
    """Wait (bounded) for the sidecar's mirror queue to drain; returns the seconds waited."""
    began = time.monotonic()
    while time.monotonic() - began < limit_s:
        try:
            _, body = http("GET", base + "/healthz")
            if json.loads(body).get("queue_depth", 0) == 0:
                break
        except (OSError, ValueError):
            break
        time.sleep(0.2)
    return time.monotonic() - began


# ---------------------------------------------------------------------------- orchestration


@dataclass
class PathResult:
    name: str
    open: dict[str, Any] | None = None
    serial: dict[str, Any] | None = None
    closed: dict[int, dict[str, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    skipped: str = ""
    foreign: float | None = None

    def best(self) -> tuple[int, dict[str, Any]] | None:
        if not self.closed:
            return None
        return max(self.closed.items(), key=lambda kv: kv[1]["rps"])


def accounted_load(
    spec: dict[str, Any], proxy_pid: int | None, upstream_pid: int | list[int] | None
) -> dict[str, Any]:
    """``run_load`` plus CPU time: the proxy's and the upstream's, and how much CPU processes
    other than this benchmark's used meanwhile (``foreign_cores``: another job on the machine
    disturbs the figures)."""
    own0 = resource.getrusage(resource.RUSAGE_SELF)
    sys0, proxy0, up0 = system_busy_seconds(), cpu_seconds(proxy_pid), cpu_seconds(upstream_pid)
    began = time.monotonic()
    got = run_load(spec)
    wall = time.monotonic() - began
    sys1, proxy1, up1 = system_busy_seconds(), cpu_seconds(proxy_pid), cpu_seconds(upstream_pid)
    own1 = resource.getrusage(resource.RUSAGE_SELF)
    own = (own1.ru_utime + own1.ru_stime) - (own0.ru_utime + own0.ru_stime)
    proxy = proxy1 - proxy0 if proxy0 is not None and proxy1 is not None else None
    up = up1 - up0 if up0 is not None and up1 is not None else None
    if proxy is not None:
        got["proxy_cpu_ms"] = proxy * 1000
    if up is not None:
        got["upstream_cpu_ms"] = up * 1000
    if sys0 is not None and sys1 is not None and up is not None:
        ours = (proxy or 0.0) + up + got.get("cpu_s", 0.0) + own
        got["foreign_cores"] = max(0.0, (sys1 - sys0) - ours) / wall
    return got


def run_load(spec: dict[str, Any]) -> dict[str, Any]:
    budget = float(spec["warmup"]) + float(spec["seconds"]) + REQUEST_TIMEOUT_S + 30
    out = subprocess.run(
        [sys.executable, __file__, "_load", json.dumps(spec)],
        capture_output=True,
        text=True,
        timeout=budget,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"load generator failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def check_path(url: str, headers: dict[str, str], body: dict[str, Any]) -> None:
    status, raw = http(
        "POST",
        url,
        json.dumps(body).encode(),
        {"content-type": "application/json", **headers},
        timeout=30,
    )
    try:
        choices = json.loads(raw).get("choices")
    except ValueError:
        choices = None
    if status != 200 or not choices:
        raise RuntimeError(f"a chat completion through {url} answered {status}: {raw[:300]!r}")


def measure(
    result: PathResult,
    url: str,
    args: argparse.Namespace,
    common: dict[str, Any],
    proxy_pid: int | None,
    upstream_pid: int | list[int] | None,
    between: Any = None,
) -> None:
    base = {**common, "url": url, "warmup": args.warmup}
    print(f"  {result.name}: 1 client x {args.serial_seconds:g}s ...", flush=True)
    spec = {**base, "mode": "closed", "concurrency": 1, "seconds": args.serial_seconds}
    result.serial = accounted_load(spec, proxy_pid, upstream_pid)
    if between is not None:
        between()
    print(f"  {result.name}: open loop {args.rate:g} req/s x {args.seconds:g}s ...", flush=True)
    spec = {**base, "mode": "open", "rate": args.rate, "seconds": args.seconds}
    result.open = accounted_load(spec, proxy_pid, upstream_pid)
    for concurrency in args.concurrency:
        if between is not None:
            between()
        print(
            f"  {result.name}: closed loop {concurrency} clients x {args.closed_seconds:g}s ...",
            flush=True,
        )
        spec = {
            **base,
            "mode": "closed",
            "concurrency": concurrency,
            "seconds": args.closed_seconds,
        }
        got = accounted_load(spec, proxy_pid, upstream_pid)
        result.closed[concurrency] = got
        if got["errors"]:
            result.notes.append(f"errors at {concurrency} clients: {got['errors']}")
    for label, got in (("1-client", result.serial), ("open-loop", result.open)):
        if got and got["errors"]:
            result.notes.append(f"errors in the {label} run: {got['errors']}")
    warm = {n: c["warm_errors"] for n, c in result.closed.items() if c.get("warm_errors")}
    if warm:
        result.notes.append(f"errors during warm-ups (not counted): {warm}")
    runs = [("1-client", result.serial), ("open-loop", result.open)]
    runs += [(f"{n} clients", c) for n, c in result.closed.items()]
    samples: dict[str, str] = {}
    for _, got in runs:
        for kind, text in (got or {}).get("error_samples", {}).items():
            samples.setdefault(kind, text)
    for kind, text in samples.items():
        result.notes.append(f"first {kind}: {' '.join(text.split())}")
    busy = [(label, got["foreign_cores"]) for label, got in runs if got and "foreign_cores" in got]
    if busy:
        label, worst = max(busy, key=lambda kv: kv[1])
        result.foreign = worst
        if worst > FOREIGN_WARN_CORES:
            result.notes.append(
                f"other processes on this machine used {worst:.2f} CPUs during the {label} run: "
                "its figures are disturbed; rerun on a quiet machine"
            )


def fmt(value: float | None, spec: str = ".2f", signed: bool = False) -> str:
    if value is None or math.isnan(value):
        return "-"
    return format(value, ("+" if signed else "") + spec)


def overloaded_at(r: PathResult, rate: float) -> bool:
    """The open loop ran at over 80% of the path's capacity (or could not complete the rate)."""
    best = r.best()
    if r.open is None:
        return False
    return r.open["achieved"] < 0.95 * rate or (best is not None and rate > 0.8 * best[1]["rps"])


def report(
    results: list[PathResult], args: argparse.Namespace, client: str, litellm_info: str
) -> None:
    direct = next((r for r in results if r.name == "direct" and r.open and r.serial), None)

    def added(r: PathResult, run: str, key: str) -> float | None:
        if direct is None or r is direct or getattr(r, run) is None:
            return None
        return float(getattr(r, run)[key] - getattr(direct, run)[key])

    print()
    print(
        f"== proxy overhead on loopback: open loop {args.rate:g} req/s x {args.seconds:g}s; "
        f"1 client x {args.serial_seconds:g}s; max RPS = best of "
        f"{','.join(map(str, args.concurrency))} closed-loop clients x {args.closed_seconds:g}s =="
    )
    print(
        f"upstream: fake-llm 'frontier', latency_scale={args.upstream_latency_scale:g}; client: {client}; "
        f"{os.cpu_count()} CPUs; latencies in ms, '+' = added vs direct in this run\n"
        f"sidecar: [sidecar] mirror_process = {args.mirror_process}; candidates' upstream at "
        f"the {args.candidates_priority} scheduling class"
    )
    top = (
        f"{'':<20} | {f'open loop {args.rate:g} req/s':^35} | {'1 client':^13} | "
        f"{'closed loop at max RPS':^29}"
    )
    head = (
        f"{'path':<20} | {'p50':>7} {'p99':>7} {'+p50':>9} {'+p99':>9} | {'p50':>5} {'+p50':>7} | "
        f"{'max RPS':>7} {'@N':>3} {'p50':>7} {'p99':>8}"
    )
    overloaded: list[str] = []
    print(top)
    print(head)
    print("-" * len(head))
    for r in results:
        if r.skipped:
            print(f"{r.name:<20} | skipped: {r.skipped.splitlines()[0]}")
            continue
        o, q = r.open or {}, r.serial or {}
        best = r.best()
        n, b = best if best else (None, {})
        saturated = overloaded_at(r, args.rate)
        if saturated:
            overloaded.append(
                f"{r.name} completed {o['achieved']:.0f} req/s, max {b.get('rps', 0):.0f}"
            )
        label = r.name + (" *" if saturated else "")
        print(
            f"{label:<20} | {fmt(o.get('p50')):>7} {fmt(o.get('p99')):>7} "
            f"{fmt(added(r, 'open', 'p50'), signed=True):>9} {fmt(added(r, 'open', 'p99'), signed=True):>9} | "
            f"{fmt(q.get('p50')):>5} {fmt(added(r, 'serial', 'p50'), signed=True):>7} | "
            f"{fmt(b.get('rps'), ',.0f'):>7} {n if n else '-':>3} {fmt(b.get('p50'), '.1f'):>7} "
            f"{fmt(b.get('p99'), '.1f'):>8}"
        )
    relay = next((r for r in results if r.name == "minimal python relay" and r.serial
                  and not r.skipped), None)
    for r in results:
        if relay is None or r is relay or r is direct or r.skipped or not r.serial:
            continue
        mine, floor = added(r, "serial", "p50"), added(relay, "serial", "p50")
        mine_open, floor_open = added(r, "open", "p50"), added(relay, "open", "p50")
        rps, floor_rps = (r.best() or (0, {}))[1].get("rps"), (relay.best() or (0, {}))[1].get("rps")
        parts = []
        # A ratio to an added latency at or below zero (a disturbed baseline) means nothing.
        if mine is not None and floor is not None:
            parts.append(f"added p50 (1 client) {mine / floor:.2f}x the relay's" if floor > 0
                         else f"added p50 (1 client): no ratio, the relay's is {floor:+.2f} ms")
        if mine_open is not None and floor_open is not None:
            parts.append(f"added p50 (open loop) {mine_open / floor_open:.2f}x" if floor_open > 0
                         else f"added p50 (open loop): no ratio, the relay's is {floor_open:+.2f} ms")
        if rps and floor_rps:
            parts.append(f"max RPS {rps / floor_rps:.0%} of the relay's")
        if parts:
            print(f"vs the minimal relay: {r.name}: " + "; ".join(parts))
    if overloaded:
        print(
            f"* {args.rate:g} req/s is more than 80% of what it can do here ({'; '.join(overloaded)}): "
            "its open-loop latencies are mostly queueing; see the 1-client column, or lower --rate"
        )
    print()
    print(
        "closed loop by clients: RPS, p50/p99 ms, CPU ms per request (proxy/upstream, over warm-up + run)"
    )
    for r in results:
        if r.skipped or not r.closed:
            continue
        cells = []
        for n, c in r.closed.items():
            requests = c["done"] + c.get("warm_done", 0)
            proxy, up = c.get("proxy_cpu_ms"), c.get("upstream_cpu_ms")
            cpu = ""
            if requests and up is not None:
                cpu = f" cpu {fmt(proxy / requests if proxy is not None else None)}/{fmt(up / requests)}"
            cells.append(f"{n}: {c['rps']:,.0f} {fmt(c['p50'], '.1f')}/{fmt(c['p99'], '.1f')}{cpu}")
        print(f"  {r.name:<20} " + " | ".join(cells))

    print()
    if direct is not None:
        print(
            f"open-loop sends behind schedule (direct): p99 {fmt(direct.open['lag_p99'])} ms, "
            f"max {fmt(direct.open['lag_max'])} ms; latency is timed from each actual send"
        )
    foreign = [f"{r.name} {r.foreign:.2f}" for r in results if r.foreign is not None]
    if foreign:
        print(
            "CPUs used by other processes during the runs (worst run per path; > "
            f"{FOREIGN_WARN_CORES:g} = disturbed): " + ", ".join(foreign)
        )
    for r in results:
        for note in r.notes:
            print(f"note: {r.name}: {note}")
    if litellm_info:
        print(f"peers: {litellm_info}")

    litellm = next((r for r in results if r.name == "litellm proxy" and r.open), None)
    sidecar = next((r for r in results if r.name == "sidecar pass" and r.open), None)
    if litellm and sidecar and direct:
        parts = []
        for label, run, key in (
            ("1-client p50", "serial", "p50"),
            (f"{args.rate:g}/s p50", "open", "p50"),
            (f"{args.rate:g}/s p99", "open", "p99"),
        ):
            mine, theirs = added(sidecar, run, key), added(litellm, run, key)
            if mine is None or theirs is None:
                continue
            verdict = "met" if mine < theirs / 2 else "NOT met"
            if run == "open" and overloaded_at(litellm, args.rate):
                verdict += " (LiteLLM overloaded)"
            parts.append(f"{label} {mine:+.2f} vs {theirs:+.2f} ms {verdict}")
        print("aim, sidecar (pass) adds < half of LiteLLM's overhead: " + "; ".join(parts))
    print_hot_path_aims(results, added)


def print_hot_path_aims(results: list[PathResult],
                        added: Callable[[PathResult, str, str], float | None]) -> None:
    """The sidecar's hot-path aims, each met or NOT met in this run: added p50 (1 client) at
    most 1.3x the minimal relay's, added p99 (open loop) at most 2 ms, requests/s at 16
    clients at least 70% of the relay's; with every call mirrored to two candidates, the
    primary's p50 (1 client, and open loop) at most 10% above pass-through's."""
    by_name = {r.name: r for r in results if not r.skipped}
    relay, sidecar = by_name.get("minimal python relay"), by_name.get("sidecar pass")
    shadow = by_name.get("sidecar shadow 100%")
    if relay is None or sidecar is None:
        return
    parts = []

    def aim(label: str, value: float | None, limit: float, unit: str, at_most: bool = True) -> None:
        if value is None:
            return
        met = value <= limit if at_most else value >= limit
        parts.append(f"{label} {value:{unit}} (aim {'<=' if at_most else '>='} "
                     f"{limit:{unit}}) {'met' if met else 'NOT met'}")

    mine, floor = added(sidecar, "serial", "p50"), added(relay, "serial", "p50")
    if mine is not None and floor is not None and floor > 0:
        aim("added p50 (1 client) x relay", mine / floor, 1.3, ".2f")
    aim("added p99 (open loop) ms", added(sidecar, "open", "p99"), 2.0, ".2f")
    rps, floor_rps = sidecar.closed.get(16, {}).get("rps"), relay.closed.get(16, {}).get("rps")
    if rps and floor_rps:
        aim("RPS @16 clients / relay's", rps / floor_rps, 0.70, ".0%", at_most=False)
    if shadow is not None:
        for label, run in (("1 client", "serial"), ("open loop", "open")):
            full = (getattr(shadow, run) or {}).get("p50")
            base = (getattr(sidecar, run) or {}).get("p50")
            if full and base:
                aim(f"shadow 100% p50 ({label}) / pass", full / base, 1.10, ".2f")
    print("aims, sidecar hot path: " + "; ".join(parts))


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--rate", type=float, default=100.0, help="open loop: requests/s (default 100)"
    )
    parser.add_argument(
        "--seconds", type=float, default=10.0, help="open loop: seconds per path (default 10)"
    )
    parser.add_argument(
        "--concurrency",
        default="16,32,64",
        help="closed loop: client counts, comma-separated (default 16,32,64)",
    )
    parser.add_argument(
        "--closed-seconds",
        type=float,
        default=3.0,
        help="closed loop: measured seconds per client count (default 3)",
    )
    parser.add_argument(
        "--serial-seconds",
        type=float,
        default=3.0,
        help="one client, back to back: measured seconds (default 3)",
    )
    parser.add_argument(
        "--warmup",
        type=float,
        default=1.0,
        help="unrecorded warm-up before every measurement (default 1s)",
    )
    parser.add_argument(
        "--sample-rates",
        default="0.1,1",
        help="sidecar runs with shadowing on, besides pass-through (default 0.1,1; '' for none)",
    )
    parser.add_argument(
        "--upstream-latency-scale",
        type=float,
        default=0.0,
        help="fake upstream latency multiplier (0 = immediate, 1 = ~40 ms 'frontier')",
    )
    parser.add_argument(
        "--no-sidecar", action="store_true", help="skip the shadowroute sidecar rows"
    )
    parser.add_argument(
        "--mirror-process", choices=("idle", "normal", "off"), default="idle",
        help="the sidecar's [sidecar] mirror_process (default idle, as shipped)")
    parser.add_argument(
        "--candidates-priority", choices=("idle", "normal"), default="idle",
        help="scheduling class of the candidates' fake upstream (default idle: in production "
             "the candidates run on other machines; normal: they compete for this one)")
    parser.add_argument("--no-litellm", action="store_true", help="skip the LiteLLM rows")
    parser.add_argument("--no-portkey", action="store_true", help="skip the Portkey row")
    parser.add_argument("--portkey-dir", type=Path, default=DEFAULT_PORTKEY_DIR,
                        help="where the Portkey gateway is installed with npm on first use")
    parser.add_argument(
        "--no-install",
        action="store_true",
        help="do not create the LiteLLM virtualenv if it is missing",
    )
    parser.add_argument(
        "--litellm-venv",
        type=Path,
        default=DEFAULT_LITELLM_VENV,
        help=f"virtualenv holding litellm[proxy] (default {DEFAULT_LITELLM_VENV})",
    )
    args = parser.parse_args(argv)
    args.concurrency = [int(x) for x in args.concurrency.split(",") if x.strip()]
    args.sample_rates = [float(x) for x in args.sample_rates.split(",") if x.strip()]
    if args.rate <= 0 or args.seconds <= 0 or args.rate * args.seconds > 100_000:
        parser.error("--rate x --seconds must be positive and at most 100,000 requests")
    if not args.concurrency or any(not 1 <= c <= 512 for c in args.concurrency):
        parser.error("--concurrency: client counts between 1 and 512")
    if not 0 < args.closed_seconds <= 60 or not 0 < args.serial_seconds <= 60 or args.seconds > 120:
        parser.error(
            "--closed-seconds at most 60 and --seconds at most 120 (every load is bounded)"
        )
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    try:
        import aiohttp  # the load generator's client
    except ImportError:
        print(
            f"this benchmark's load generator needs aiohttp: {sys.executable} -m pip install aiohttp",
            file=sys.stderr,
        )
        return 2
    try:
        import uvloop

        loop = f"uvloop {uvloop.__version__}"
    except ImportError:
        loop = "asyncio"
    client = f"aiohttp {aiohttp.__version__} on {loop}, one pooled session, separate process"

    binary: Path | None = None
    why = ""
    if not args.no_litellm:  # installs on first use, before anything is measured
        binary, why = litellm_binary(args.litellm_venv, install=not args.no_install)
    portkey: Path | None = None
    portkey_why = ""
    if not args.no_portkey:
        portkey, portkey_why = portkey_entry(args.portkey_dir, install=not args.no_install)

    from shadowroute.fakellm import sample_requests

    key = "sk-bench-" + secrets.token_hex(16)
    headers = {"content-type": "application/json", "authorization": f"Bearer {key}"}
    bodies = [{"model": "frontier", **item.request} for item in sample_requests(200, seed=1)]
    results: list[PathResult] = []
    litellm_info = portkey_info = ""
    servers: list[Server] = []
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="sr-proxy-bench-") as tmp_dir:
        tmp = Path(tmp_dir)
        (tmp / "bodies.json").write_text(json.dumps(bodies))
        common = {"headers": headers, "bodies": str(tmp / "bodies.json")}
        try:
            up_port = free_port()
            upstream = Server(
                "fake upstream",
                [
                    sys.executable,
                    __file__,
                    "_upstream",
                    str(up_port),
                    str(args.upstream_latency_scale),
                ],
                f"http://127.0.0.1:{up_port}/v1/models",
                tmp / "upstream.log",
                tmp,
            )
            servers.append(upstream)
            upstream.start(30)
            up_base = f"http://127.0.0.1:{up_port}"
            check_path(up_base + CHAT_PATH, headers, bodies[0])
            cand_port = free_port()
            cand_upstream = Server(
                "candidates' fake upstream",
                [sys.executable, __file__, "_upstream", str(cand_port),
                 str(args.upstream_latency_scale), args.candidates_priority],
                f"http://127.0.0.1:{cand_port}/v1/models", tmp / "candidates.log", tmp)
            servers.append(cand_upstream)
            cand_upstream.start(30)
            cand_base = f"http://127.0.0.1:{cand_port}"

            direct = PathResult("direct")
            results.append(direct)
            measure(direct, up_base + CHAT_PATH, args, common, None, upstream.pid)

            relay = PathResult("minimal python relay")
            results.append(relay)
            relay_port = free_port()
            relay_server = Server(
                "minimal python relay",
                [sys.executable, __file__, "_relay", str(relay_port), up_base],
                f"http://127.0.0.1:{relay_port}/v1/models", tmp / "relay.log", tmp)
            servers.append(relay_server)
            try:
                relay_server.start(30)
                measure(relay, f"http://127.0.0.1:{relay_port}{CHAT_PATH}", args, common,
                        relay_server.pid, upstream.pid)
            except (RuntimeError, subprocess.SubprocessError) as exc:
                relay.skipped = f"the relay failed: {exc}; log:\n{relay_server.tail()}"
                print(f"  minimal python relay: {relay.skipped}", flush=True)
            relay_server.stop()
            servers.remove(relay_server)

            if not args.no_sidecar:
                for rate in [0.0, *args.sample_rates]:
                    name = "sidecar pass" if rate == 0 else f"sidecar shadow {rate * 100:g}%"
                    result = PathResult(name)
                    results.append(result)
                    port = free_port()
                    sidecar = sidecar_server(up_base, port, rate, tmp, f"{rate:g}",
                                             cand_base, args.mirror_process)
                    servers.append(sidecar)
                    base = f"http://127.0.0.1:{port}"
                    try:
                        sidecar.start(30)
                        check_path(base + CHAT_PATH, headers, bodies[0])
                    except RuntimeError as exc:
                        result.skipped = f"the sidecar failed: {exc}"
                        print(f"  {name}: skipped: {exc}", flush=True)
                        sidecar.stop()
                        continue
                    waits: list[float] = []

                    def between(base: str = base, waits: list[float] = waits) -> None:
                        waits.append(wait_sidecar_idle(base))

                    try:
                        measure(
                            result,
                            base + CHAT_PATH,
                            args,
                            common,
                            sidecar.pid,
                            [upstream.pid, cand_upstream.pid],
                            between if rate > 0 else None,
                        )
                    except (RuntimeError, subprocess.SubprocessError) as exc:
                        result.skipped = f"a load run failed: {exc}; server log:\n{sidecar.tail()}"
                        print(f"  {name}: {result.skipped}", flush=True)
                    waits.append(wait_sidecar_idle(base))
                    counters = settled_counters(base)
                    if rate > 0:
                        keys = (
                            "captured_total",
                            "sampled_total",
                            "mirrored_total",
                            "stored_exchanges_total",
                            'dropped_total{reason="queue_full"}',
                            "spooled_exchanges_total",
                            "capture_errors_total",
                            "store_errors_total",
                        )
                        shown = ", ".join(
                            f"{k.removesuffix('_total')}={counters.get(k, 0):,.0f}" for k in keys
                        )
                        result.notes.append(
                            f"{shown}; waited {sum(waits):.1f}s in all for the mirror queue "
                            "to drain between loads"
                        )
                    sidecar.stop()
                    servers.remove(sidecar)

            def peer(name: str, server: Server | None, why: str, base: str, start_s: float,
                     headers: dict[str, str], info: Callable[[], str]) -> str:
                """A peer proxy's row: skipped with ``why`` when it is not installed; else
                started, checked with one chat completion, measured and stopped. Its line for
                the report's "peers" ('' when it did not serve)."""
                result = PathResult(name)
                results.append(result)
                if server is None:
                    result.skipped = why
                    print(f"  {name}: skipped: {why}", flush=True)
                    return ""
                servers.append(server)
                chat = base + CHAT_PATH
                line = ""
                try:
                    server.start(start_s)
                    check_path(chat, headers, bodies[0])
                except RuntimeError as exc:
                    result.skipped = f"{name} failed to serve: {exc}"
                    print(f"  {name}: skipped: {exc}", flush=True)
                else:
                    line = info()
                    try:
                        measure(result, chat, args, {**common, "headers": headers}, server.pid,
                                upstream.pid)
                    except (RuntimeError, subprocess.SubprocessError) as exc:
                        result.skipped = f"a load run failed: {exc}; log:\n{server.tail()}"
                        print(f"  {name}: {result.skipped}", flush=True)
                server.stop()
                servers.remove(server)
                return line

            if not args.no_portkey:
                port = free_port()
                gateway = None if portkey is None else Server(
                    "portkey gateway", portkey_argv(portkey, port), f"http://127.0.0.1:{port}/",
                    tmp / "portkey.log", tmp)
                portkey_info = peer(
                    "portkey gateway", gateway, portkey_why, f"http://127.0.0.1:{port}", 60,
                    {**headers, **portkey_headers(up_base)},
                    lambda: (f"@portkey-ai/gateway {portkey_version(args.portkey_dir)} from "
                             f"{args.portkey_dir} (node, --headless)"))
            if not args.no_litellm:
                port = free_port()
                proxy = None if binary is None else litellm_server(binary, up_base, port, key, tmp)
                litellm_info = peer(
                    "litellm proxy", proxy, why, f"http://127.0.0.1:{port}", 120, headers,
                    lambda: (f"litellm {litellm_version(args.litellm_venv)} from "
                             f"{args.litellm_venv}, 1 uvicorn worker, master key, no database, "
                             "LITELLM_LOCAL_MODEL_COST_MAP=True, LITELLM_LOG=ERROR"))
        finally:
            for server in reversed(servers):
                server.stop()
    report(results, args, client, "; ".join(x for x in (litellm_info, portkey_info) if x))
    print(f"\n(run took {time.monotonic() - began:.0f}s)")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_load":
        load_main(sys.argv[2])
    elif len(sys.argv) > 1 and sys.argv[1] == "_upstream":
        upstream_main(int(sys.argv[2]), float(sys.argv[3]), sys.argv[4:5] == ["idle"])
    elif len(sys.argv) > 1 and sys.argv[1] == "_relay":
        relay_main(int(sys.argv[2]), sys.argv[3])
    else:
        sys.exit(main(sys.argv[1:]))
