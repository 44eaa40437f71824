"""``import_dossiers``: a one-stop export into the ``dossiers`` table, with a report."""

from __future__ import annotations

import logging
import time
from datetime import datetime
from pathlib import Path

from bot.dossiers.readers import ImportReport, ParsedDossier, RowIssue, read_dossier_file
from bot.storage.dossiers import Dossiers

log = logging.getLogger(__name__)


def import_dossiers(dossiers: Dossiers, path: str | Path, *, actor: str | None = None,
                    name: str | None = None, chunk_size: int = 2000) -> ImportReport:
    """Import an export (upsert by receipt number, history of status changes: see
    :meth:`bot.storage.dossiers.Dossiers.upsert`). ``name``: the file name to record (default: the
    path's). Raises :class:`bot.dossiers.readers.DossierImportError` when the file cannot be read at all.
    """
    t0 = time.perf_counter()
    parsed, report = read_dossier_file(path)
    if name:
        report.filename = name

    # The same receipt twice in one file: keep the newest (by "Ngày cập nhật", then by position).
    latest: dict[str, ParsedDossier] = {}
    for row in parsed:
        prev = latest.get(row.receipt_key)
        if prev is None:
            latest[row.receipt_key] = row
            continue
        newer = (row.source_updated_at or datetime.min) >= (prev.source_updated_at or datetime.min)
        keep, drop = (row, prev) if newer else (prev, row)
        latest[row.receipt_key] = keep
        report.warnings.append(
            RowIssue(drop.line, f"số biên nhận {row.receipt} trùng với dòng {keep.line}; dùng dòng {keep.line}")
        )
        report.duplicates += 1
    rows = sorted(latest.values(), key=lambda r: r.line)

    counts = dossiers.upsert(rows, filename=name or str(path), actor=actor, rows_total=report.rows_total,
                             errors=[(e.line, e.reason) for e in report.errors], chunk_size=chunk_size)
    report.inserted, report.updated = counts.inserted, counts.updated
    report.unchanged, report.stale = counts.unchanged, counts.stale
    report.import_id = counts.import_id
    report.seconds = time.perf_counter() - t0
    log.info("dossier import %s: %d rows, %d new, %d updated, %d unchanged, %d stale, %d failed",
             Path(path).name, report.rows_total, report.inserted, report.updated, report.unchanged,
             report.stale, report.failed)
    return report
