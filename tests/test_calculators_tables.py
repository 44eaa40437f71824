"""Every amount of the calculators checked against the legal text (tests/data/legal-extracts/, copied
from the official texts): each row of Phụ lục II and III for every rate 21-100 %, the rows of Phụ lục I
used (martyrs' relatives, Heroic Mothers, Heroes, supplements, sick soldiers, Agent Orange), Phụ lục VI,
the base levels, the regional minimum wage and the base salary."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from bot.calculators.loader import load_calculators
from bot.calculators.spec import Calculator, Period

HERE = Path(__file__).resolve().parent
EXTRACTS = HERE / "data" / "legal-extracts"
LOADED = load_calculators(HERE.parent / "knowledge" / "calculators")
TEXT_2024 = (EXTRACTS / "4804-vbhn-2024.md").read_text(encoding="utf-8")
TEXT_2023 = (EXTRACTS / "55-2023-nd-cp.md").read_text(encoding="utf-8")
DAY_2024 = dt.date(2024, 7, 1)
DAY_2023 = dt.date(2023, 7, 1)


def _amount(cell: str) -> int:
    return int(cell.replace(".", ""))


def _section(text: str, start: str, end: str | None) -> str:
    i = text.index(start)
    return text[i:text.index(end, i + len(start))] if end else text[i:]


def _rate_rows(section: str) -> dict[int, int]:
    rows: dict[int, int] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        for k in range(0, len(cells) - 2, 3):
            m = re.fullmatch(r"(\d+)%", cells[k + 1])
            if m and re.fullmatch(r"\d{1,3}(?:\.\d{3})+", cells[k + 2]):
                rows[int(m.group(1))] = _amount(cells[k + 2])
    return rows


def _row(section: str, label: str) -> list[int]:
    """The amounts of the first table row whose label cell is exactly ``label``."""
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if label in cells:
            after = cells[cells.index(label) + 1:]
            return [_amount(c.split("/")[0]) for c in after if re.fullmatch(r"\d{1,3}(?:\.\d{3})+(?:/.*)?", c)]
    raise AssertionError(f"row not found: {label}")


def _period(calc_id: str, day: dt.date) -> Period:
    calc: Calculator = LOADED.calculators[calc_id]
    per = calc.period_at(day)
    assert per is not None and per.valid_from == day
    return per


@pytest.mark.parametrize(("text", "day", "annex", "next_annex", "table"), [
    (TEXT_2024, DAY_2024, "PHỤ LỤC II", "PHỤ LỤC III", "A"),
    (TEXT_2024, DAY_2024, "PHỤ LỤC III", "PHỤ LỤC VI", "B"),
    (TEXT_2023, DAY_2023, "PHỤ LỤC II", "PHỤ LỤC III", "A"),
    (TEXT_2023, DAY_2023, "PHỤ LỤC III", None, "B"),
])
def test_war_invalid_tables_row_by_row(text: str, day: dt.date, annex: str, next_annex: str | None, table: str) -> None:
    legal = _rate_rows(_section(text, annex, next_annex))
    assert sorted(legal) == list(range(21, 101))
    ours = {lo: amount for lo, hi, amount in _period("thuong-binh", day).data["tables"][table] if lo == hi}
    assert ours == legal


def _annex1(text: str, start: str, end: str) -> str:
    return _section(_section(text, "PHỤ LỤC I", "PHỤ LỤC II"), start, end)


@pytest.mark.parametrize(("text", "day"), [(TEXT_2024, DAY_2024), (TEXT_2023, DAY_2023)])
def test_annex_one_rows(text: str, day: dt.date) -> None:
    martyrs = _annex1(text, "| 3 | Thân nhân liệt sĩ", "| 4 |")
    amounts = _period("than-nhan-liet-si", day).amounts
    assert _row(martyrs, "Thân nhân của 01 liệt sĩ") == [amounts["mot"]]
    assert _row(martyrs, "Thân nhân của 02 liệt sĩ") == [amounts["hai"]]
    assert _row(martyrs, "Thân nhân của 3 liệt sĩ trở lên") == [amounts["ba"]]
    assert [a for a in _row(martyrs, "3.4")][-1:] == [amounts["nuoi_duong"]]

    mother = _period("ba-me-viet-nam-anh-hung", day).amounts
    assert _row(text, "Bà mẹ Việt Nam anh hùng") == [mother["tro_cap"], mother["phu_cap"]]
    assert _row(text, "Người phục vụ Bà mẹ Việt Nam anh hùng sống ở gia đình") == [mother["phuc_vu"]]
    hero = _annex1(text, "| 5 |", "| 6 |")
    assert _row(hero, "5")[-1:] == [_period("anh-hung", day).amounts["tro_cap"]]

    invalid = _annex1(text, "| 6 |", "| 7 |")
    tb = _period("thuong-binh", day).amounts
    prefix = "Thương binh, người hưởng chính sách như thương binh, thương binh loại B có tỷ lệ tổn thương cơ thể từ 81% trở lên"
    assert _row(invalid, prefix) == [tb["phu_cap"]]
    assert _row(invalid, prefix + " có vết thương đặc biệt nặng") == [tb["phu_cap_dac_biet"]]
    serve = "Người phục vụ thương binh, người hưởng chính sách như thương binh, thương binh loại B có tỷ lệ tổn thương cơ thể từ 81% trở lên"
    assert _row(invalid, serve + " ở gia đình") == [tb["phuc_vu"]]
    assert _row(invalid, serve + " có vết thương đặc biệt nặng ở gia đình") == [tb["phuc_vu_dac_biet"]]

    sick = _annex1(text, "| 7 | Bệnh binh", "| 8 |")
    per = _period("benh-binh", day)
    for lo, hi, amount in per.data["tables"]["A"]:
        assert _row(sick, f"Có tỷ lệ tổn thương cơ thể từ {lo}% - {hi}%") == [amount]
    assert _row(sick, "Bệnh binh có tỷ lệ tổn thương cơ thể từ 81% trở lên") == [per.amounts["phu_cap"]]
    assert _row(sick, "Người phục vụ bệnh binh ở gia đình có tỷ lệ tổn thương cơ thể từ 81% trở lên") == [per.amounts["phuc_vu"]]

    agent = _annex1(text, "| 8 | Người hoạt động kháng chiến bị nhiễm chất độc hoá học", "| 9 |")
    per = _period("chat-doc-hoa-hoc", day)
    rows = per.data["tables"]["A"]
    for lo, hi, amount in rows[:-1]:
        assert _row(agent, f"Có tỷ lệ tổn thương cơ thể từ {lo}% - {hi}%") == [amount]
    assert _row(agent, "Có tỷ lệ tổn thương cơ thể từ 81% trở lên") == [rows[-1][2]]
    assert per.amounts["muc_41_60"] == rows[1][2]


def test_one_off_bands_of_annex_six() -> None:
    annex = _section(TEXT_2024, "PHỤ LỤC VI", None)
    bands = LOADED.calculators["thuong-binh"].config["one_off"]["bands"]
    for lo, hi, coef in bands:
        assert f"| Tỷ lệ tổn thương cơ thể từ {lo}% - {hi}% | {str(coef).replace('.', ',')} lần mức chuẩn |" in annex


def test_base_levels_and_wages_against_the_texts() -> None:
    figs = LOADED.figures
    assert "là 2.789.000 đồng" in TEXT_2024 and figs["ncc.muc_chuan"].at(DAY_2024).amount == 2_789_000  # type: ignore[union-attr]
    assert "là 2.055.000 đồng" in TEXT_2023 and figs["ncc.muc_chuan"].at(DAY_2023).amount == 2_055_000  # type: ignore[union-attr]
    tgxh = (EXTRACTS / "20-2021-nd-cp.md").read_text(encoding="utf-8")
    assert "từ ngày 01 tháng 7 năm 2021 là 360.000 đồng/tháng" in tgxh
    assert figs["tgxh.muc_chuan"].at(dt.date(2021, 7, 1)).amount == 360_000  # type: ignore[union-attr]
    assert "tối thiểu bằng 20 lần mức chuẩn" in tgxh
    wage = (EXTRACTS / "293-2025-nd-cp.md").read_text(encoding="utf-8")
    numbers = [_amount(x) for x in re.findall(r"\b\d\.\d{3}\.000\b", wage)]
    assert numbers == [5_310_000, 4_730_000, 4_140_000, 3_700_000]
    for region, amount in zip(("I", "II", "III", "IV"), numbers, strict=True):
        assert figs[f"luong_toi_thieu_vung.{region}"].at(dt.date(2026, 1, 1)).amount == amount  # type: ignore[union-attr]
    base = (EXTRACTS / "161-2026-nd-cp.md").read_text(encoding="utf-8")
    assert "mức lương cơ sở là 2.530.000 đồng/tháng" in base and "2.340.000 đồng/tháng hiện hành" in base
    assert figs["luong_co_so"].at(dt.date(2026, 7, 1)).amount == 2_530_000  # type: ignore[union-attr]
    assert figs["luong_co_so"].at(dt.date(2026, 6, 30)).amount == 2_340_000  # type: ignore[union-attr]


def test_social_assistance_coefficients_are_in_the_decree() -> None:
    """Each coefficient used with tgxh.muc_chuan appears in Điều 6 of Nghị định 20/2021/NĐ-CP."""
    article6 = _section((EXTRACTS / "20-2021-nd-cp.md").read_text(encoding="utf-8"), "Điều 6.1.NĐ.6.", "Điều 6.1.NĐ.11.")
    for calc in LOADED.calculators.values():
        rules = list(calc.rules) + [r for p in calc.periods for r in p.data.get("rules", ())]
        for rule in rules:
            c = rule.add
            if c is not None and c.figure == "tgxh.muc_chuan" and c.coefficient is not None and c.coefficient < 10:
                assert f"Hệ số {c.coefficient:.1f}".replace(".", ",") in article6, (calc.id, c.coefficient)
