"""Validation of knowledge/calculators: the shipped files are valid; every error names file and line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bot.calculators import CalculatorConfigError, CalculatorSet
from bot.calculators.loader import load_calculators

REPO = Path(__file__).resolve().parent.parent
CALCS = REPO / "knowledge" / "calculators"


def test_shipped_calculators_are_valid() -> None:
    loaded = load_calculators(CALCS)
    assert loaded.errors == []
    assert len(loaded.calculators) >= 15
    topics = {c.topic for c in loaded.calculators.values()}
    assert {"tctn-huong", "ncc-thuong-binh", "ncc-chat-doc-hoa-hoc", "ncc-than-nhan-liet-si",
            "btxh-nguoi-cao-tuoi", "btxh-tro-cap-khuyet-tat", "btxh-mai-tang", "luong-toi-thieu-vung",
            "ncc-muc-chuan", "btxh-tro-cap-hang-thang"} <= topics


@pytest.fixture()
def kdir(tmp_path: Path) -> Path:
    """A knowledge dir with the real topics, figures and cues, and no calculator yet."""
    root = tmp_path / "knowledge"
    (root / "calculators").mkdir(parents=True)
    shutil.copy(REPO / "knowledge" / "topics.yaml", root / "topics.yaml")
    for name in ("_figures.yaml", "_recognizer.yaml"):
        shutil.copy(CALCS / name, root / "calculators" / name)
    return root / "calculators"


GOOD = """\
id: thu-nghiem
kind: rules
topic: ncc-than-nhan-liet-si
title: Thử nghiệm
summary: Máy tính thử.
keywords: [liệt sĩ]
inputs:
  martyrs:
    type: count
    label: Số liệt sĩ
    ask: Mấy liệt sĩ?
    min: 1
    max: 20
    count_of: [liệt sĩ]
rules:
  - when: {martyrs: 1}
    add: {amount: mot, label: Một liệt sĩ}
periods:
  - valid_from: 2024-07-01
    legal_basis: [Nghị định 77/2024/NĐ-CP]
    amounts:
      mot: 2.789.000
"""


def _errors(kdir: Path, name: str, text: str) -> list[str]:
    (kdir / name).write_text(text, encoding="utf-8")
    return [str(e) for e in load_calculators(kdir).errors]


def test_a_good_file_loads(kdir: Path) -> None:
    assert _errors(kdir, "thu-nghiem.yaml", GOOD) == []


@pytest.mark.parametrize(("old", "new", "line", "words"), [
    ("topic: ncc-than-nhan-liet-si", "topic: khong-co", 3, "unknown topic 'khong-co'"),
    ("kind: rules", "kind: bang", 2, "unknown kind 'bang'"),
    ("  - valid_from: 2024-07-01", "  - valid_from: 2024-13-01", 19, "bad date '2024-13-01'"),
    ("      mot: 2.789.000", "      mot: 500.000", 22, "read as a decimal number"),
    ("    add: {amount: mot, label: Một liệt sĩ}", "    add: {amount: hai, label: Hai}", 17, "amount 'hai' missing"),
    ("  - when: {martyrs: 1}", "  - when: {so_ls: 1}", 16, "unknown input 'so_ls'"),
    ("    type: count", "    type: so", 9, "unknown input type 'so'"),
    ("    add: {amount: mot, label: Một liệt sĩ}", "    add: {figure: khong.co, label: X}", 17, "unknown figure 'khong.co'"),
    ("    legal_basis: [Nghị định 77/2024/NĐ-CP]", "    legal_basis: []", 20, "legal_basis"),
    ("title: Thử nghiệm", "title: Thử nghiệm\ntitle: Lặp", 5, "duplicate key 'title'"),
])
def test_errors_name_file_and_line(kdir: Path, old: str, new: str, line: int, words: str) -> None:
    assert old in GOOD
    errors = _errors(kdir, "thu-nghiem.yaml", GOOD.replace(old, new))
    wanted = [e for e in errors if words in e]
    assert wanted, errors
    assert wanted[0].startswith(f"knowledge/calculators/thu-nghiem.yaml:{line}: "), errors


RATE = """\
id: bang-thu
kind: rate_table
topic: ncc-thuong-binh
title: Bảng thử
summary: Thử.
keywords: [thương binh]
inputs:
  rate:
    type: percent
    label: Tỷ lệ
    ask: Tỷ lệ?
    min: 1
    max: 100
    buttons: [21-40, 41-60, 61-100]
threshold: 21
below:
  text: Dưới {rate} %.
periods:
  - valid_from: 2024-07-01
    legal_basis: [Nghị định 77/2024/NĐ-CP]
    tables:
      A:
        21-40: 2.120.000
        41-60: 3.542.000
        61-80: 4.964.000
        81-100: 6.358.000
"""


def test_rate_table_gaps_overlaps_and_buttons(kdir: Path) -> None:
    gap = _errors(kdir, "bang-thu.yaml", RATE.replace("        61-80: 4.964.000\n", ""))
    assert any(e.startswith("knowledge/calculators/bang-thu.yaml:22: ") and "no amount for rates 61-80" in e
               for e in gap), gap
    overlap = _errors(kdir, "bang-thu.yaml", RATE.replace("61-80:", "55-80:"))
    assert any("overlap" in e for e in overlap), overlap
    button = [e for e in _errors(kdir, "bang-thu.yaml", RATE) if "spans several amounts" in e]
    assert button and button[0].startswith("knowledge/calculators/bang-thu.yaml:14: "), button
    placeholder = _errors(kdir, "bang-thu.yaml", RATE.replace("buttons: [21-40, 41-60, 61-100]", "buttons: []")
                          .replace("Dưới {rate} %.", "Dưới {khong_co}."))
    assert any("unknown placeholder '{khong_co}'" in e and ":17: " in e for e in placeholder), placeholder


def test_long_payload_is_refused(kdir: Path) -> None:
    text = GOOD.replace("id: thu-nghiem", "id: " + "a" * 50).replace(
        "    count_of: [liệt sĩ]", "    count_of: [liệt sĩ]\n    choices:\n      \"1\": Một")
    errors = _errors(kdir, "dai.yaml", text)
    assert any("longer than 64 bytes" in e and e.startswith("knowledge/calculators/dai.yaml:16: ") for e in errors), errors


def test_figures_file_errors(kdir: Path) -> None:
    figs = kdir / "_figures.yaml"
    figs.write_text(figs.read_text(encoding="utf-8").replace("amount: 2789000", "amount: 2.789"), encoding="utf-8")
    errors = [str(e) for e in load_calculators(kdir).errors]
    assert any(e.startswith("knowledge/calculators/_figures.yaml:") and "decimal number" in e for e in errors), errors


def test_calculator_set_refuses_a_broken_directory(kdir: Path) -> None:
    (kdir / "x.yaml").write_text(GOOD.replace("kind: rules", "kind: bang"), encoding="utf-8")
    with pytest.raises(CalculatorConfigError) as info:
        CalculatorSet.load(kdir)
    assert "knowledge/calculators/x.yaml:2: unknown kind 'bang'" in str(info.value)
