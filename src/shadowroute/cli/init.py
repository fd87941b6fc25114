"""``shadowroute init``: a commented starter ``shadowroute.toml`` for a new project."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Annotated

import typer

from ..config import load_config
from ..errors import ConfigError
from .common import app, say

STARTER = "templates/starter.toml"


@app.command("init")
def init(
    path: Annotated[Path, typer.Argument(help="Where to write the starter config.")] = Path(
        "shadowroute.toml"),
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented starter shadowroute.toml (two models, one task type, judge off)."""
    if path.exists() and not force:
        raise ConfigError(f"{path} already exists; edit it, or write elsewhere with "
                          f"`shadowroute init OTHER.toml` (--force overwrites)")
    text = resources.files(__package__).joinpath(STARTER).read_text()
    try:
        path.write_text(text)
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from exc
    config = load_config(path)  # the starter must always load as written
    say(f"wrote {path}: models {', '.join(config.models)}; task type "
        f"{', '.join(config.tasks)}; judge off")
    say("next: set your prices and candidates, then `shadowroute config check`, and capture "
        "with shadow() or `shadowroute serve`")
