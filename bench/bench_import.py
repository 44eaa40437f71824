"""Benchmark: import a generated 100,000-row dossier export (CSV) and print rows per second.

    .venv/bin/python bench/bench_import.py [--rows 100000] [--url postgresql+psycopg://...]

Without --url a SQLite file in a temporary directory is used. The first import inserts every row; a second
import of an export in which 10% of the rows changed status measures the update path.
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.dossiers.importer import import_dossiers  # noqa: E402
from bot.storage import Storage  # noqa: E402
from bot.storage.engine import upgrade  # noqa: E402

PROCEDURES = [
    "Giải quyết hưởng trợ cấp thất nghiệp",
    "Cấp giấy phép lao động cho người nước ngoài",
    "Trợ cấp xã hội hằng tháng",
    "Hỗ trợ học nghề",
    "Xác nhận người có công",
]
STATUSES = ["Mới đăng ký", "Đã tiếp nhận", "Đang xử lý", "Yêu cầu bổ sung", "Đã có kết quả", "Đã trả kết quả"]
FAMILY = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Vũ", "Đặng", "Bùi"]
MIDDLE = ["Văn", "Thị", "Đức", "Minh", "Thu"]
GIVEN = ["An", "Bình", "Cường", "Dung", "Hoa", "Lan", "Nam", "Sơn"]


def generate(path: Path, rows: int, seed: int, changed: float = 0.0) -> None:
    rnd = random.Random(seed)
    change_rnd = random.Random(seed + 1)
    start = datetime(2024, 1, 2, 7, 30)
    with path.open("w", encoding="utf-8-sig", newline="") as f:
        w = csv.writer(f, delimiter=";")
        w.writerow(["Số biên nhận", "Tên thủ tục", "Người nộp", "Số điện thoại", "Ngày tiếp nhận", "Ngày hẹn trả",
                    "Trạng thái", "Ghi chú", "Ngày cập nhật"])
        for i in range(rows):
            received = start + timedelta(minutes=7 * i)
            status = STATUSES[i % len(STATUSES)]
            updated = received + timedelta(days=3)
            if changed and change_rnd.random() < changed:
                status = "Đã trả kết quả"
                updated += timedelta(days=10)
            w.writerow([
                f"H41.22-{received:%y%m%d}-{i:06d}",
                PROCEDURES[i % len(PROCEDURES)],
                f"{FAMILY[i % 8]} {MIDDLE[i % 5]} {GIVEN[(i // 8) % 8]}",
                f"09{rnd.randrange(10**8):08d}",
                received.strftime("%d/%m/%Y %H:%M"),
                (received + timedelta(days=20)).strftime("%d/%m/%Y"),
                status,
                "Bổ sung bản sao sổ BHXH" if status == "Yêu cầu bổ sung" else "",
                updated.strftime("%d/%m/%Y %H:%M"),
            ])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--url", default=None, help="database URL (default: a temporary SQLite file)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        url = args.url or f"sqlite:///{d / 'bench.sqlite3'}"
        upgrade(url)
        store = Storage(url)
        first, second = d / "export1.csv", d / "export2.csv"
        generate(first, args.rows, seed=1)
        generate(second, args.rows, seed=1, changed=0.10)
        print(f"{args.rows} rows, {first.stat().st_size / 1e6:.1f} MB, database {store.engine.url.get_backend_name()}")
        for label, path in (("first import (insert)", first), ("re-import (10% changed)", second)):
            t0 = time.perf_counter()
            report = import_dossiers(store.dossiers, path, actor="bench")
            dt = time.perf_counter() - t0
            print(f"{label}: {dt:.1f} s, {report.rows_total / dt:,.0f} rows/s "
                  f"(new {report.inserted}, updated {report.updated}, unchanged {report.unchanged}, "
                  f"failed {report.failed})")
        store.close()


if __name__ == "__main__":
    main()
