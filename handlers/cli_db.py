"""CLI sub-commands for the database and the dossiers (mounted by handlers/cli.py as ``db`` and ``dossiers``)."""

from __future__ import annotations

from pathlib import Path

import typer

from bot.dossiers.importer import import_dossiers
from bot.dossiers.readers import DossierImportError
from bot.dossiers.receipts import receipt_key
from bot.privacy import mask_phone
from bot.storage.engine import current_revision, head_revision, make_engine, upgrade
from handlers.cli_common import actor, settings, storage

db_app = typer.Typer(help="Cơ sở dữ liệu: khởi tạo và nâng cấp (database schema).", no_args_is_help=True)
dossiers_app = typer.Typer(help="Hồ sơ một cửa: nhập tệp xuất và tra cứu (dossiers).", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head", help="Phiên bản đích (mặc định: mới nhất).")) -> None:
    """Apply the migrations (creates the database on first use)."""
    engine = make_engine(settings())
    before = current_revision(engine)
    after = upgrade(engine, revision)
    where = engine.url.render_as_string(hide_password=True)
    engine.dispose()
    if before == after:
        typer.echo(f"Cơ sở dữ liệu {where} đã ở phiên bản mới nhất ({after}).")
    else:
        typer.echo(f"Đã nâng cấp cơ sở dữ liệu {where}: {before or '(trống)'} -> {after}.")


@db_app.command("current")
def db_current() -> None:
    """Show the schema version of the database and the newest one this program knows."""
    engine = make_engine(settings())
    cur = current_revision(engine)
    head = head_revision()
    where = engine.url.render_as_string(hide_password=True)
    engine.dispose()
    typer.echo(f"Cơ sở dữ liệu: {where}")
    typer.echo(f"Phiên bản hiện tại: {cur or '(chưa khởi tạo)'} · mới nhất: {head}")
    if cur != head:
        typer.echo("Cần nâng cấp — run: ldtbxh db upgrade", err=True)
        raise typer.Exit(1)


@dossiers_app.command("import")
def dossiers_import(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True, help="Tệp .csv hoặc .xlsx"),
) -> None:
    """Import a one-stop export (CSV or XLSX); prints a report with the bad rows."""
    store = storage()
    try:
        report = import_dossiers(store.dossiers, file, actor=actor())
    except DossierImportError as exc:
        typer.echo(f"Không nhập được tệp {file.name}: {exc}", err=True)
        raise typer.Exit(1) from None
    store.audit.log(actor(), "dossiers.import", "file", file.name,
                    {"rows": report.rows_total, "inserted": report.inserted, "updated": report.updated,
                     "failed": report.failed})
    typer.echo(report.format())
    store.close()
    if report.failed and not report.imported:
        raise typer.Exit(1)


@dossiers_app.command("show")
def dossiers_show(
    receipt: str = typer.Argument(..., help="Số biên nhận"),
    show_phone: bool = typer.Option(False, "--show-phone", help="Hiện đầy đủ số điện thoại (được ghi nhật ký)."),
) -> None:
    """Show a dossier and its history (for officers; the access is recorded in the audit log)."""
    store = storage()
    try:
        d = store.dossiers.get(receipt_key(receipt))
        if d is None:
            typer.echo(f"Không có hồ sơ số {receipt}.", err=True)
            raise typer.Exit(1)
        lines = [
            f"Số biên nhận:   {d.receipt}",
            f"Thủ tục:        {d.procedure}",
            f"Người nộp:      {d.applicant_name}",
            f"Điện thoại:     {(d.applicant_phone if show_phone else mask_phone(d.applicant_phone)) or '-'}",
            f"Ngày tiếp nhận: {d.received_at:%d/%m/%Y %H:%M}",
            f"Ngày hẹn trả:   {d.due_date:%d/%m/%Y}" if d.due_date else "Ngày hẹn trả:   -",
            f"Trạng thái:     {d.status_label} [{d.status}]",
            f"Ghi chú:        {d.note or '-'}",
            f"Cập nhật:       {d.source_updated_at:%d/%m/%Y %H:%M}" if d.source_updated_at else "Cập nhật:       -",
        ]
        store.audit.log(actor(), "dossiers.show", "dossier", d.receipt, {"show_phone": show_phone})
        typer.echo("\n".join(lines))
        history = store.dossiers.history(d.receipt_key)
        if history:
            typer.echo("Lịch sử:")
            for h in history:
                when = h.changed_at or h.recorded_at
                typer.echo(f"  {when:%d/%m/%Y %H:%M}  {h.status_label}" + (f" — {h.note}" if h.note else ""))
    finally:
        store.close()
