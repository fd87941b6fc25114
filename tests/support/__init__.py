"""Shared fakes and builders of the test suite (not test modules: nothing here is collected).

Tests reach them as fixtures (``tests/conftest.py``); a test module imports a name from here
only where a fixture cannot work or is not the point: constants and the small data types inputs
are spelled with (``Out``, ``Row``), ``parametrize`` values, hypothesis strategies, a base class
at module level, helpers that module-level code calls, and the tools of the fault suite and the
browser tests (``FaultProxy``, ``drive``, ``render``). Test modules never import each other.

============== =================================================================================
config         ``make_config``, the one config builder, and its presets (shadow, sidecar, scoring)
pipeline       ``FakeCandidate``, ``completion()``, ``REQUEST``
store          ``exchange()``, and the readers ``stored()``, ``stored_counts()``, ``stored_text()``
sidecar        the sidecar under uvicorn, twin fake servers, SDK-shaped requests, answers, metrics
report         ``xchg()`` / ``Out``, ``candidate_of()`` / ``task_of()``, hostile texts
scoring        ``ScriptedJudge`` and the judge's verdicts, ``scoring_exchange()``, score readers
scorers        constants the scorer tests share
formats        wire samples the format tests share
offline        chat lines and JSONL files for ``shadowroute import``
fuzz           hypothesis settings and strategies of JSON, requests, responses and bodies
cli            ``run_cli()``: the command line in-process
browser        headless Chromium for tests of HTML output
faults         the fault suite's traffic, its driver and the table's ``Row``
faultproxy     fault-injecting TCP / HTTP proxies for the fault suite
memory_probe   a script the fault suite runs in a fresh process
============== =================================================================================
"""
