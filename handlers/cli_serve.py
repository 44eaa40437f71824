"""``ldtbxh serve``: run the one ASGI application (web chat, configured channels, /healthz) under uvicorn."""

from __future__ import annotations

import typer

from bot.config import Settings
from handlers.cli_common import settings as load


def preflight(settings: Settings) -> str:
    """Refuse to start on a schema that is behind or without an index; returns the index version."""
    from bot.storage import SchemaBehindError, Storage
    from indexer.index import current_version, list_versions

    try:
        Storage(settings).close()
    except SchemaBehindError as exc:
        raise RuntimeError(f"{exc}\nChạy trước: ldtbxh db upgrade") from None
    except Exception as exc:  # e.g. PostgreSQL unreachable
        raise RuntimeError(f"Không kết nối được cơ sở dữ liệu (database unreachable): {exc}") from None
    version = current_version(settings.index_root)
    if not version:
        raise RuntimeError(f"Chưa có chỉ mục tri thức trong {settings.index_root} (no index yet).\n"
                           "Chạy trước: ldtbxh index build")
    if version not in {m.version for m in list_versions(settings.index_root)}:
        raise RuntimeError(f"Phiên bản chỉ mục {version} không có trong {settings.index_root} "
                           "(the active index version is missing).\nChạy: ldtbxh index build")
    return version


def serve(
    host: str = typer.Option("127.0.0.1", help="Address to listen on (0.0.0.0: every interface)."),
    port: int = typer.Option(8000, min=1, max=65535, help="TCP port."),
    workers: int = typer.Option(1, "--workers", min=1, max=64,
                                help="Server processes (each loads its own copy of the model)."),
    log_level: str = typer.Option("info", help="critical, error, warning, info or debug."),
    forwarded_allow_ips: str = typer.Option(
        "127.0.0.1", help="Reverse proxies whose X-Forwarded-For is trusted (for the per-address limit)."),
) -> None:
    """Serve the web chat, every configured channel and /healthz as one application (uvicorn)."""
    import logging

    import uvicorn

    from handlers.server import setup_logging

    settings = load()
    level = getattr(logging, log_level.upper(), None)
    if not isinstance(level, int):
        typer.echo(f"--log-level: unknown level {log_level!r}", err=True)
        raise typer.Exit(2)
    setup_logging(level)
    logging.getLogger().setLevel(level)
    try:
        version = preflight(settings)
    except RuntimeError as exc:
        typer.echo(f"Không thể khởi động (cannot start): {exc}", err=True)
        raise typer.Exit(3) from None
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    typer.echo(f"Trợ lý ảo {settings.department.dept_name}: chỉ mục {version}; "
               f"web chat http://{shown}:{port}/ , health http://{shown}:{port}/healthz", err=True)
    uvicorn.run("handlers.server:app_from_env", factory=True, host=host, port=port, workers=workers,
                reload=False, log_config=None, log_level=log_level.lower(), proxy_headers=True,
                forwarded_allow_ips=forwarded_allow_ips, access_log=False)
