"""Dossier statuses: the fixed set of codes, how a one-stop system's labels map to them, and the record
a dossier source returns."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from indexer.diacritics import fold_words

STATUS_WORDS: dict[str, str] = {
    "registered": "Mới đăng ký, đang chờ cán bộ tiếp nhận",
    "received": "Đã được tiếp nhận, đang chờ chuyển xử lý",
    "rejected": "Không được tiếp nhận",
    "processing": "Đang được xử lý",
    "supplement": "Cần bổ sung giấy tờ",
    "financial": "Chờ thực hiện nghĩa vụ tài chính (nộp phí, lệ phí, thuế)",
    "withdrawn": "Công dân đã rút hồ sơ",
    "stopped": "Đã dừng xử lý",
    "done": "Đã có kết quả, đang chờ trả",
    "returned": "Đã trả kết quả",
    "other": "",
}
"""The fixed set of status codes and how they are said to a citizen ("other" shows the original label)."""

CLOSED_STATUSES = frozenset({"rejected", "withdrawn", "stopped", "done", "returned"})
"""Statuses for which a passed due date does not make the dossier overdue."""

# Normalised (no diacritics, lower-case) label -> code. Checked exactly first, then by containment with the
# longest alias first ("khong duoc tiep nhan" before "duoc tiep nhan").
_STATUS_ALIASES: dict[str, str] = {
    "moi dang ky": "registered",
    "moi tiep nhan": "received",
    "da tiep nhan": "received",
    "duoc tiep nhan": "received",
    "tiep nhan": "received",
    "cho tiep nhan": "registered",
    "khong duoc tiep nhan": "rejected",
    "khong tiep nhan": "rejected",
    "tu choi tiep nhan": "rejected",
    "tu choi": "rejected",
    "dang xu ly": "processing",
    "dang giai quyet": "processing",
    "dang tham dinh": "processing",
    "cho phe duyet": "processing",
    "yeu cau bo sung": "supplement",
    "cho bo sung": "supplement",
    "bo sung ho so": "supplement",
    "yeu cau thuc hien nghia vu tai chinh": "financial",
    "nghia vu tai chinh": "financial",
    "cong dan rut ho so": "withdrawn",
    "rut ho so": "withdrawn",
    "dung xu ly": "stopped",
    "tam dung": "stopped",
    "da xu ly xong": "done",
    "da co ket qua": "done",
    "cho tra ket qua": "done",
    "hoan thanh": "done",
    "da tra ket qua": "returned",
    "da tra": "returned",
}
_STATUS_BY_LENGTH = sorted(_STATUS_ALIASES.items(), key=lambda kv: -len(kv[0]))


def map_status(label: str) -> str:
    """The status code of a label as the one-stop system writes it ("other" when unknown)."""
    n = fold_words(label)
    if not n:
        return "other"
    if n in _STATUS_ALIASES:
        return _STATUS_ALIASES[n]
    padded = f" {n} "
    for alias, code in _STATUS_BY_LENGTH:
        if f" {alias} " in padded:
            return code
    return "other"


@dataclass(frozen=True)
class Dossier:
    receipt: str
    procedure: str
    applicant_name: str
    status: str
    status_label: str
    received_at: datetime | None = None
    due_date: date | None = None
    applicant_phone: str | None = None
    note: str | None = None
    updated_at: datetime | None = None

    @property
    def status_words(self) -> str:
        return STATUS_WORDS.get(self.status) or self.status_label

    def is_overdue(self, today: date) -> bool:
        return self.due_date is not None and self.status not in CLOSED_STATUSES and self.due_date < today
