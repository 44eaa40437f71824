"""Imported dossiers, their history, the import runs and citizens' lookups (for the rate limit)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, func, insert, select, update

from bot.dossiers.readers import ParsedDossier
from bot.storage.audit import record
from bot.storage.engine import Database
from bot.storage.models import Dossier, DossierHistory, DossierImport, DossierLookupLog, utcnow

LOOKUP_OUTCOMES = ("found", "not_found", "unavailable", "verified", "verify_failed", "rate_limited")
RATE_LIMITED_OUTCOMES = ("found", "not_found", "verify_failed")
"""Lookup outcomes that count against the per-chat hourly limit."""

_COMPARED = ("receipt", "procedure", "applicant_name", "applicant_phone", "received_at", "due_date", "status",
             "status_label", "note", "source_updated_at")


_DATETIMES = ("received_at", "source_updated_at", "updated_at")
_RESTORED = (*_COMPARED, "updated_at")
"""The columns an undo puts back on the rows an import updated."""


class UndoRefused(Exception):
    """The import cannot be undone (the message says why, in Vietnamese, for the console)."""


@dataclass
class UndoResult:
    removed: int
    """dossiers the import had added, deleted"""
    restored: int
    """dossiers the import had updated, put back as they were"""
    history: int
    """history rows of the import deleted"""


def _to_json(v: Any) -> Any:
    return v.isoformat() if isinstance(v, date | datetime) else v


def _from_json(col: str, v: Any) -> Any:
    if v is None:
        return None
    if col in _DATETIMES:
        return datetime.fromisoformat(v)
    if col == "due_date":
        return date.fromisoformat(v)
    return v


@dataclass
class UpsertCounts:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    stale: int = 0
    """rows older (by "Ngày cập nhật") than what is stored, skipped"""
    import_id: int = 0
    """the ``dossier_imports`` row of this run"""


def _values(r: ParsedDossier) -> dict[str, Any]:
    return {"receipt": r.receipt, "receipt_key": r.receipt_key, "procedure": r.procedure,
            "applicant_name": r.applicant_name, "applicant_phone": r.applicant_phone,
            "received_at": r.received_at, "due_date": r.due_date, "status": r.status,
            "status_label": r.status_label, "note": r.note, "source_updated_at": r.source_updated_at}


def _history_row(dossier_id: int, row: ParsedDossier, import_id: int) -> dict[str, Any]:
    return {"dossier_id": dossier_id, "status": row.status, "status_label": row.status_label, "note": row.note,
            "changed_at": row.source_updated_at, "import_id": import_id, "recorded_at": utcnow()}


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, datetime) and isinstance(b, datetime):
        return a.replace(microsecond=0, tzinfo=None) == b.replace(microsecond=0, tzinfo=None)
    if isinstance(a, datetime) and isinstance(b, date):
        return a.date() == b
    return bool(a == b)


class Dossiers:
    def __init__(self, db: Database) -> None:
        self.db = db

    # --- import -------------------------------------------------------------------------------------
    def upsert(self, rows: Sequence[ParsedDossier], *, filename: str, actor: str | None, rows_total: int,
               errors: Sequence[tuple[int, str]], chunk_size: int = 2000) -> UpsertCounts:
        """Store one import run in one transaction: a new receipt is inserted, a known one updated in place
        (a row older than what is stored is skipped as stale), and every change of status or note adds a
        ``dossier_history`` row. ``errors``: the (line, reason) of the rows that could not be read.

        The run records what undoing it needs (the ids it inserted, the previous values of the rows it
        updated: :meth:`undo_import`); the undo data of earlier runs is dropped, as only the last run can be
        undone (and personal data is not kept twice longer than needed)."""
        counts = UpsertCounts()
        inserted_ids: list[int] = []
        previous: dict[str, dict[str, Any]] = {}
        dt = cast(Table, Dossier.__table__)
        ht = cast(Table, DossierHistory.__table__)
        now = utcnow()
        with self.db.engine.begin() as conn:
            import_id = conn.execute(insert(DossierImport).values(filename=filename[:500], actor=actor,
                                                                  created_at=now)
                                     .returning(DossierImport.id)).scalar_one()
            for start in range(0, len(rows), chunk_size):
                chunk = rows[start: start + chunk_size]
                existing = {rec.receipt_key: rec for rec in conn.execute(
                    select(dt).where(dt.c.receipt_key.in_([r.receipt_key for r in chunk]))).mappings()}
                inserts: list[dict[str, Any]] = []
                updates: list[dict[str, Any]] = []
                history: list[dict[str, Any]] = []
                new_rows: list[ParsedDossier] = []
                for r in chunk:
                    old = existing.get(r.receipt_key)
                    vals = _values(r)
                    if old is None:
                        inserts.append({**vals, "created_at": now, "updated_at": now})
                        new_rows.append(r)
                        continue
                    if (r.source_updated_at is not None and old["source_updated_at"] is not None
                            and r.source_updated_at < old["source_updated_at"]):
                        counts.stale += 1
                        continue
                    if r.source_updated_at is None and old["source_updated_at"] is not None:
                        vals["source_updated_at"] = old["source_updated_at"]
                    if all(_same(old[c], vals[c]) for c in _COMPARED):
                        counts.unchanged += 1
                        continue
                    updates.append({**vals, "_id": old["id"], "updated_at": now})
                    previous[str(old["id"])] = {c: _to_json(old[c]) for c in _RESTORED}
                    counts.updated += 1
                    if (old["status"], old["status_label"], old["note"]) != (r.status, r.status_label, r.note):
                        history.append(_history_row(old["id"], r, import_id))
                if inserts:
                    conn.execute(insert(dt), inserts)
                    counts.inserted += len(inserts)
                    ids = dict(conn.execute(select(dt.c.receipt_key, dt.c.id).where(
                        dt.c.receipt_key.in_([r.receipt_key for r in new_rows]))).all())
                    history.extend(_history_row(ids[r.receipt_key], r, import_id) for r in new_rows)
                    inserted_ids.extend(ids[r.receipt_key] for r in new_rows)
                if updates:
                    cols: dict[str, Any] = {c: bindparam(c) for c in _COMPARED if c != "receipt_key"}
                    cols["updated_at"] = bindparam("updated_at")
                    conn.execute(update(dt).where(dt.c.id == bindparam("_id")).values(**cols), updates)
                if history:
                    conn.execute(insert(ht), history)
            conn.execute(update(DossierImport).where(DossierImport.id == import_id).values(
                rows_total=rows_total, rows_inserted=counts.inserted, rows_updated=counts.updated,
                rows_unchanged=counts.unchanged + counts.stale, rows_failed=len(errors),
                errors=[{"line": line, "reason": reason} for line, reason in list(errors)[:1000]],
                undo={"inserted": inserted_ids, "previous": previous}))
            conn.execute(update(DossierImport).where(DossierImport.id != import_id, DossierImport.undo.is_not(None))
                         .values(undo=None))
        counts.import_id = import_id
        return counts

    def last_import(self) -> DossierImport | None:
        """The most recent import run (the only one that can be undone)."""
        with self.db.transaction() as s:
            return s.scalar(select(DossierImport).order_by(DossierImport.id.desc()).limit(1))

    def can_undo(self, imp: DossierImport | None) -> bool:
        return imp is not None and imp.undo is not None and imp.undone_at is None

    def undo_import(self, import_id: int, *, actor: str) -> UndoResult:
        """Undo the last import run in one transaction: delete the dossiers it added (and their history),
        put the rows it updated back as they were, delete the history rows it wrote; the run stays in the
        list, marked undone. Raises :class:`UndoRefused` for any run but the last, a run already undone, or a
        run without undo data."""
        dt = cast(Table, Dossier.__table__)
        with self.db.transaction() as s:
            q = select(DossierImport).where(DossierImport.id == import_id)
            if self.db.dialect == "postgresql":
                q = q.with_for_update()
            imp = s.scalar(q)
            if imp is None:
                raise UndoRefused("Không có lần nhập này.")
            latest = s.scalar(select(func.max(DossierImport.id)))
            if imp.undone_at is not None:
                raise UndoRefused(f"Lần nhập này đã được hoàn tác lúc {imp.undone_at:%H:%M %d/%m/%Y} (UTC).")
            if imp.id != latest:
                raise UndoRefused("Chỉ hoàn tác được lần nhập gần nhất.")
            if imp.undo is None:
                raise UndoRefused("Lần nhập này không lưu dữ liệu để hoàn tác (nhập từ dòng lệnh trước khi có "
                                  "chức năng này).")
            inserted = [int(i) for i in imp.undo.get("inserted", [])]
            previous: dict[str, dict[str, Any]] = imp.undo.get("previous", {})
            conn = s.connection()
            ht = cast(Table, DossierHistory.__table__)
            history = cast(Any, conn.execute(delete(ht).where(ht.c.import_id == imp.id))).rowcount or 0
            removed = 0
            for start in range(0, len(inserted), 2000):
                chunk = inserted[start: start + 2000]
                conn.execute(delete(ht).where(ht.c.dossier_id.in_(chunk)))
                removed += cast(Any, conn.execute(delete(dt).where(dt.c.id.in_(chunk)))).rowcount or 0
            restored = 0
            if previous:
                rows = [{"_id": int(k), **{c: _from_json(c, v.get(c)) for c in _RESTORED}}
                        for k, v in previous.items()]
                cols: dict[str, Any] = {c: bindparam(c) for c in _RESTORED}
                restored = len(rows)
                conn.execute(update(dt).where(dt.c.id == bindparam("_id")).values(**cols), rows)
            imp.undo = None
            imp.undone_at = utcnow()
            imp.undone_by = actor[:64]
            record(s, actor, "dossiers.import_undo", "dossier_import", imp.id,
                   {"file": imp.filename, "removed": removed, "restored": restored, "history": history})
        return UndoResult(removed, restored, history)

    def imports(self, limit: int = 20) -> list[DossierImport]:
        """The most recent import runs, newest first."""
        with self.db.transaction() as s:
            return list(s.scalars(select(DossierImport).order_by(DossierImport.id.desc()).limit(limit)))

    # --- dossiers -----------------------------------------------------------------------------------
    def get(self, receipt_key: str) -> Dossier | None:
        with self.db.transaction() as s:
            return s.scalar(select(Dossier).where(Dossier.receipt_key == receipt_key))

    def history(self, receipt_key: str) -> list[DossierHistory]:
        with self.db.transaction() as s:
            d = s.scalar(select(Dossier).where(Dossier.receipt_key == receipt_key))
            if d is None:
                return []
            return list(s.scalars(select(DossierHistory).where(DossierHistory.dossier_id == d.id)
                                  .order_by(DossierHistory.id)))

    # --- citizens' lookups ------------------------------------------------------------------------------
    def log_lookup(self, channel: str, chat_id: str, receipt: str, outcome: str) -> None:
        if outcome not in LOOKUP_OUTCOMES:
            raise ValueError(f"unknown outcome {outcome!r}")
        with self.db.transaction() as s:
            s.add(DossierLookupLog(channel=channel, chat_id=str(chat_id), receipt=receipt[:64], outcome=outcome))

    def lookups_since(self, channel: str, chat_id: str, since: datetime,
                      outcomes: Sequence[str] = RATE_LIMITED_OUTCOMES, *,
                      receipt: str | None = None) -> tuple[int, datetime | None]:
        """How many counted lookups this chat made since ``since``, and the oldest of them.

        With ``receipt``: the lookups of that receipt number from any chat (to stop guessing spread over
        several chats).
        """
        conds = [DossierLookupLog.created_at >= since, DossierLookupLog.outcome.in_(list(outcomes))]
        if receipt is not None:
            conds.append(DossierLookupLog.receipt == receipt[:64])
        else:
            conds += [DossierLookupLog.channel == channel, DossierLookupLog.chat_id == str(chat_id)]
        with self.db.transaction() as s:
            count, oldest = s.execute(
                select(func.count(DossierLookupLog.id), func.min(DossierLookupLog.created_at)).where(*conds)
            ).one()
            return int(count), oldest

    def unknown_receipts(self, limit: int = 100) -> list[tuple[str, int]]:
        """Receipt numbers citizens asked about that were not found, most asked first."""
        with self.db.transaction() as s:
            rows = s.execute(select(DossierLookupLog.receipt, func.count())
                             .where(DossierLookupLog.outcome == "not_found")
                             .group_by(DossierLookupLog.receipt).order_by(func.count().desc()).limit(limit)).all()
            return [(r[0], int(r[1])) for r in rows]
