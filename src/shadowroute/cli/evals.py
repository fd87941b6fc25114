"""``shadowroute eval``: offline evaluations on real data (``evals/``).

Registered on the main app by :mod:`shadowroute.cli`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import anyio
import typer

from ..errors import ConfigError
from .common import app, console


@app.command("eval")
def eval_(
    name: Annotated[str, typer.Argument(help="The eval to run: routellm (verdicts on real "
                                             "data) or scorers (each scorer against the "
                                             "truth).", show_default=False)],
    data: Annotated[
        Path | None,
        typer.Option("--data", help="Folder with the eval's data files, or the datasets folder "
                                    "holding it (default: $SHADOWROUTE_DATASETS, else "
                                    "shared/datasets above here, else the copy shipped in "
                                    "evals/datasets).", show_default=False),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option("--database-url", help="Load into this database and keep it (default: a "
                                            "temporary SQLite file; $SHADOWROUTE_DATABASE_URL is "
                                            "ignored). Not for scorers: it stores nothing.",
                     show_default=False),
    ] = None,
    json_path: Annotated[
        Path | None,
        typer.Option("--json", help="Write the report's JSON twin here (scorers: the "
                                    "validity table).", show_default=False),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="The eval's config (default: "
                                            "evals/NAME/shadowroute.toml of the checkout). Not "
                                            "for scorers: it builds each scorer itself.",
                     show_default=False),
    ] = None,
) -> None:
    """Run an offline eval on real data and print what it found.

    routellm loads the data into a throw-away database (or --database-url),
    then scores and decides: the verdict per task type.

    scorers runs every deterministic scorer over pairs whose truth is known:
    pass rate, precision, recall, accuracy and kappa per scorer.

    Nothing is called and no API key is needed: the outputs are pre-recorded."""
    from ..evals import get_eval, measure_eval, run_eval
    from ..report import report_json

    spec = get_eval(name)
    if spec.load is None:  # a measurement: nothing stored, no config
        for value, key in ((database_url, "--database-url"), (config, "--config")):
            if value is not None:
                raise ConfigError(f"the {spec.name} eval stores nothing and reads no config: "
                                  f"leave {key} out", key=key)
        with console.status(f"running the {spec.name} eval ..."):
            measured = measure_eval(spec, data=data)
        lines, text = measured.lines(), measured.to_json
    else:
        with console.status(f"running the {spec.name} eval ..."):
            run = anyio.run(lambda: run_eval(spec, data=data, database_url=database_url,
                                             config=config))
        lines, text = run.lines(), lambda: report_json(run.report)
    for line in lines:
        console.print(line, highlight=False, markup=False, soft_wrap=True)
    if json_path is not None:
        try:
            json_path.parent.mkdir(parents=True, exist_ok=True)
            json_path.write_text(text(), encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot write {json_path}: {exc.strerror or exc}",
                              key="--json") from exc
        console.print(f"json: {json_path}", highlight=False, markup=False, soft_wrap=True)
