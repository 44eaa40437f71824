"""The one Jinja environment of the server: the web chat page and the console's pages."""

from __future__ import annotations

from pathlib import Path

from fastapi.templating import Jinja2Templates

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
CONSOLE_STATIC = HERE / "console" / "static"
TEMPLATES = Jinja2Templates(directory=[str(HERE / "templates"), str(HERE / "console" / "templates")])
