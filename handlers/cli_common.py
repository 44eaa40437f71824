"""What every ``ldtbxh`` command shares: the settings (read once per command), the storage, the actor."""

from __future__ import annotations

import getpass

import typer

from bot.config import ConfigError, Settings, load_settings
from bot.storage import SchemaBehindError, Storage


def settings() -> Settings:
    """The settings, or exit 2 with the message naming the bad variable."""
    try:
        return load_settings()
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None


def storage(s: Settings | None = None) -> Storage:
    """The database, or exit 3 when its schema is behind (the message says ``ldtbxh db upgrade``)."""
    try:
        return Storage(s or settings())
    except SchemaBehindError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(3) from None


def actor() -> str:
    """Who runs the command, for the audit log."""
    try:
        return "cli:" + getpass.getuser()
    except Exception:
        return "cli"


def say(msg: str) -> None:
    typer.echo(msg, err=True)
