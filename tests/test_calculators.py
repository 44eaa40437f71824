"""Calculators: the hand-computed worked examples (exact), the boundaries, the change of period on its
effective date, bad input, the follow-up dialogue and its state, the review list."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.calculators import CalcOutcome, CalculatorSet
from bot.calculators.loader import MAX_PAYLOAD_BYTES
from bot.calculators.reply import DISCLAIMER

HERE = Path(__file__).resolve().parent
KNOWLEDGE = HERE.parent / "knowledge"
WORKED = yaml.safe_load((HERE / "data" / "calc-worked-examples.yaml").read_text(encoding="utf-8"))
for _w in WORKED:  # YAML 1.1 reads the key "on" as true; the file was committed before the code, keep it
    _w["on"] = _w.pop(True, _w.get("on"))
TODAY = dt.date(2026, 11, 30)


@pytest.fixture(scope="module")
def calcs() -> CalculatorSet:
    cs = CalculatorSet.load(KNOWLEDGE / "calculators", today=lambda: TODAY)
    cs.warm_up()
    return cs


def _on(value: Any) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))


# --- worked examples: computed by hand from the cited row, committed before the code ------------------
@pytest.mark.parametrize("ex", WORKED, ids=[w["id"] for w in WORKED])
def test_worked_example_exact(calcs: CalculatorSet, ex: dict[str, Any]) -> None:
    out = calcs.compute(ex["calc"], ex["inputs"], on=_on(ex["on"]))
    expect = dict(ex["expect"])
    status = expect.pop("status")
    assert out.kind == status, out.text
    review = expect.pop("needs_review", None)
    if review is not None:
        assert out.needs_review is review
    for key, value in expect.items():
        assert out.values.get(key) == value, f"{ex['id']} {key}: {out.values.get(key)} != {value}\n{out.text}"
    if status == "result":
        assert out.calculator == ex["calc"] and out.topic and out.state is None
        assert out.legal_basis and out.valid_from is not None


def test_worked_examples_cover_every_calculator(calcs: CalculatorSet) -> None:
    # muc-chuan-tro-giup-xa-hoi only shows tgxh.muc_chuan: checked in test_base_level_changes_on_2024_07_01.
    assert {w["calc"] for w in WORKED} | {"muc-chuan-tro-giup-xa-hoi"} == {c.id for c in calcs.calculators}


# --- unemployment boundaries ----------------------------------------------------------------------
@pytest.mark.parametrize(("months", "benefit", "kept"), [
    (11, 0, None), (12, 3, 0), (36, 3, 0), (37, 3, 1), (47, 3, 11), (48, 4, 0), (49, 4, 1),
    (143, 11, 11), (144, 12, 0), (156, 12, 12),
])
def test_unemployment_months_boundaries(calcs: CalculatorSet, months: int, benefit: int, kept: int | None) -> None:
    out = calcs.compute("tro-cap-that-nghiep", {"months": months, "salary": 6_000_000})
    assert out.values.get("months_benefit") == benefit
    if kept is None:
        assert out.kind == "not_eligible" and "12 tháng" in out.text
    else:
        assert out.kind == "result" and out.values["months_kept"] == kept


def test_unemployment_cap_boundary(calcs: CalculatorSet) -> None:
    # 60 % of 44.250.000 is exactly the cap of region I (5 x 5.310.000 = 26.550.000): not capped.
    at = calcs.compute("tro-cap-that-nghiep", {"months": 60, "salary": 44_250_000, "region": "I"})
    assert at.values["monthly"] == 26_550_000 and at.values["capped"] is False
    over = calcs.compute("tro-cap-that-nghiep", {"months": 60, "salary": 44_250_010, "region": "I"})
    assert over.values["monthly"] == 26_550_000 and over.values["capped"] is True
    assert "vượt mức trần 26.550.000 đ (5 × 5.310.000 đ, vùng I)" in over.text


def test_unemployment_region_asked_only_when_the_cap_can_apply(calcs: CalculatorSet) -> None:
    # Lowest cap: 5 x 3.700.000 (vùng IV) = 18.500.000 = 60 % of 30.833.333,3.
    below = calcs.compute("tro-cap-that-nghiep", {"months": 60, "salary": 30_833_333})
    assert below.kind == "result" and below.values["monthly"] == 18_500_000
    above = calcs.compute("tro-cap-that-nghiep", {"months": 60, "salary": 31_000_000})
    assert above.kind == "question" and above.ask == "region"
    assert [b.label for b in above.buttons] == ["Vùng I", "Vùng II", "Vùng III", "Vùng IV"]


def test_unemployment_period_changes_on_2026_01_01(calcs: CalculatorSet) -> None:
    inputs = {"months": 120, "salary": 50_000_000, "region": "I"}
    old = calcs.compute("tro-cap-that-nghiep", inputs, on=dt.date(2025, 12, 31))
    new = calcs.compute("tro-cap-that-nghiep", inputs, on=dt.date(2026, 1, 1))
    assert old.values["monthly"] == 5 * 4_960_000 and new.values["monthly"] == 5 * 5_310_000
    assert "ngày thứ 16" in old.text and "Luật Việc làm 38/2013/QH13" in old.text
    assert "ngày làm việc thứ 11" in new.text and "Luật Việc làm 74/2025/QH15" in new.text
    assert old.valid_from == dt.date(2024, 7, 1) and new.valid_from == dt.date(2026, 1, 1)
    # The old law's cap for state-paid salaries is mentioned with the base salary in force (2.340.000).
    assert "11.700.000 đ" in old.text


def test_unemployment_steps_are_shown(calcs: CalculatorSet) -> None:
    out = calcs.compute("tro-cap-that-nghiep", {"months": 50, "salary": 8_000_000})
    assert "đóng 50 tháng → 3 + 1 = 4 tháng" in out.text
    assert "8.000.000 × 60 % = 4.800.000 đ/tháng, dưới mức trần" in out.text
    assert "2 tháng đóng chưa dùng" in out.text and "Bảo lưu" in out.text
    assert DISCLAIMER in out.text
    assert len(out.text) < 1000  # phone-sized


# --- people with merit: rates around the thresholds, base level on its effective date --------------
@pytest.mark.parametrize(("calc", "rate", "kind", "amount"), [
    ("thuong-binh", 20, "not_eligible", None), ("thuong-binh", 21, "result", 1_878_000),
    ("thuong-binh", 60, "result", 5_364_000), ("thuong-binh", 61, "result", 5_450_000),
    ("thuong-binh", 80, "result", 7_150_000), ("thuong-binh", 81, "result", 7_240_000),
    ("thuong-binh", 100, "result", 8_941_000),
    ("chat-doc-hoa-hoc", 20, "not_eligible", None), ("chat-doc-hoa-hoc", 21, "result", 2_120_000),
    ("chat-doc-hoa-hoc", 40, "result", 2_120_000), ("chat-doc-hoa-hoc", 41, "result", 3_542_000),
    ("chat-doc-hoa-hoc", 60, "result", 3_542_000), ("chat-doc-hoa-hoc", 61, "result", 4_964_000),
    ("chat-doc-hoa-hoc", 80, "result", 4_964_000), ("chat-doc-hoa-hoc", 81, "result", 6_358_000),
    ("benh-binh", 40, "not_eligible", None), ("benh-binh", 41, "result", 2_911_000),
    ("benh-binh", 60, "result", 3_627_000), ("benh-binh", 61, "result", 4_622_000),
    ("benh-binh", 80, "result", 5_329_000), ("benh-binh", 81, "result", 6_378_000),
    ("benh-binh", 91, "result", 7_104_000),
])
def test_rate_boundaries(calcs: CalculatorSet, calc: str, rate: int, kind: str, amount: int | None) -> None:
    out = calcs.compute(calc, {"rate": rate})
    assert out.kind == kind, out.text
    if amount is not None:
        assert out.values["amount"] == amount


def test_supplements_from_81_percent(calcs: CalculatorSet) -> None:
    assert "phụ cấp hằng tháng 1.399.000 đ" in calcs.compute("thuong-binh", {"rate": 81}).text
    assert "phụ cấp" not in calcs.compute("thuong-binh", {"rate": 80}).text


@pytest.mark.parametrize(("calc", "inputs", "before", "after"), [
    ("thuong-binh", {"rate": 61}, 4_016_000, 5_450_000),
    ("than-nhan-liet-si", {"martyrs": 1}, 2_055_000, 2_789_000),
    ("ba-me-viet-nam-anh-hung", {}, 6_165_000 + 1_722_000, 8_367_000 + 2_337_000),
    ("nguoi-khuyet-tat", {"level": "nang", "group": "nguoi-lon"}, 540_000, 750_000),
    ("mai-tang-btxh", {}, 7_200_000, 10_000_000),
    ("muc-chuan-uu-dai", {}, 2_055_000, 2_789_000),
    ("muc-chuan-tro-giup-xa-hoi", {}, 360_000, 500_000),
])
def test_base_level_changes_on_2024_07_01(calcs: CalculatorSet, calc: str, inputs: dict[str, Any],
                                          before: int, after: int) -> None:
    assert calcs.compute(calc, inputs, on=dt.date(2024, 6, 30)).values["amount"] == before
    assert calcs.compute(calc, inputs, on=dt.date(2024, 7, 1)).values["amount"] == after


def test_base_salary_and_minimum_wage_on_their_dates(calcs: CalculatorSet) -> None:
    assert calcs.compute("luong-co-so", {}, on=dt.date(2026, 6, 30)).values["amount"] == 2_340_000
    assert calcs.compute("luong-co-so", {}, on=dt.date(2026, 7, 1)).values["amount"] == 2_530_000
    assert calcs.compute("luong-toi-thieu-vung", {"region": "IV"}, on=dt.date(2025, 12, 31)).values["amount"] == 3_450_000
    assert calcs.compute("luong-toi-thieu-vung", {"region": "IV"}, on=dt.date(2026, 1, 1)).values["amount"] == 3_700_000
    everything = calcs.compute("luong-toi-thieu-vung", {})
    assert everything.values == {"I": 5_310_000, "II": 4_730_000, "III": 4_140_000, "IV": 3_700_000}


def test_a_date_before_any_figure_says_so(calcs: CalculatorSet) -> None:
    out = calcs.compute("thuong-binh", {"rate": 61}, on=dt.date(2020, 1, 1))
    assert out.kind == "no_data" and "Chưa có số liệu" in out.text


def test_elderly_rules_by_date(calcs: CalculatorSet) -> None:
    # Before 01/07/2025: social allowance only from 80; from then: social pension from 75.
    assert calcs.compute("nguoi-cao-tuoi", {"age": 77, "situation": "khong-luong-huu"},
                         on=dt.date(2025, 6, 30)).kind == "not_eligible"
    pension = calcs.compute("nguoi-cao-tuoi", {"age": 77, "situation": "khong-luong-huu"}, on=dt.date(2025, 7, 1))
    assert pension.kind == "result" and pension.values["amount"] == 500_000 and "hưu trí xã hội" in pension.text
    assert calcs.compute("nguoi-cao-tuoi", {"age": 72, "situation": "ho-ngheo"}).values["amount"] == 500_000
    young = calcs.compute("nguoi-cao-tuoi", {"age": 65, "situation": "khong-luong-huu"})
    assert young.kind == "not_eligible" and "75 tuổi" in young.text
    # Poor and alone: the higher social allowance wins over the pension.
    assert calcs.compute("nguoi-cao-tuoi", {"age": 82, "situation": "ngheo-co-don"}).values["amount"] == 1_000_000


def test_rules_add_up_with_the_arithmetic(calcs: CalculatorSet) -> None:
    out = calcs.compute("than-nhan-liet-si", {"martyrs": 1, "alone": True})
    assert "2.789.000 + 2.231.000 = 5.020.000 đ" in out.text
    single = calcs.compute("than-nhan-liet-si", {"martyrs": 1})
    assert single.values["amount"] == 2_789_000 and "thêm trợ cấp tuất nuôi dưỡng 2.231.000 đ" in single.text
    kids = calcs.compute("don-than-nuoi-con", {"children": 3})
    assert kids.values["amount"] == 1_500_000 and "3 × 1,0 × mức chuẩn trợ giúp xã hội 500.000 đ" in kids.text


# --- needs_review ---------------------------------------------------------------------------------
def test_needs_review_is_said_in_the_reply(calcs: CalculatorSet) -> None:
    out = calcs.compute("mai-tang-btxh", {})
    assert out.needs_review and "chờ cán bộ xác nhận" in out.text and "500.000 đ" in out.text
    confirmed = calcs.compute("thuong-binh", {"rate": 61})
    assert not confirmed.needs_review and "chờ" not in confirmed.text


def test_review_items_list_every_unconfirmed_figure(calcs: CalculatorSet) -> None:
    items = calcs.review_items()
    text = "\n".join(str(i) for i in items)
    for needle in ("Mức chuẩn trợ giúp xã hội: 500.000 đ", "Mức trợ cấp hưu trí xã hội: 500.000 đ",
                   "vùng I: 4.960.000 đ", "Trợ cấp thất nghiệp"):
        assert needle in text, text
    assert all(i.file.startswith("knowledge/calculators/") and i.line > 1 and i.note for i in items)
    assert "2.789.000" not in text  # confirmed from the consolidated text


def test_shared_figure_keys(calcs: CalculatorSet) -> None:
    for key in ("ncc.muc_chuan", "tgxh.muc_chuan", "luong_co_so", "luong_toi_thieu_vung.I",
                "luong_toi_thieu_vung.II", "luong_toi_thieu_vung.III", "luong_toi_thieu_vung.IV"):
        assert calcs.figure(key) is not None, key
    fp = calcs.figure("ncc.muc_chuan")
    assert fp is not None and fp.amount == 2_789_000 and fp.valid_from == dt.date(2024, 7, 1)


# --- bad input ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("calc", "inputs", "ask", "words"), [
    ("tro-cap-that-nghiep", {"months": -3, "salary": 8_000_000}, "months", "không thể là số âm"),
    ("tro-cap-that-nghiep", {"months": 40, "salary": 8}, "salary", "8 đ không hợp lý"),
    ("tro-cap-that-nghiep", {"months": 4000, "salary": 8_000_000}, "months", "không hợp lệ"),
    ("thuong-binh", {"rate": 250}, "rate", "chỉ từ 1 % đến 100 %"),
    ("nguoi-cao-tuoi", {"age": 300, "situation": "khong-luong-huu"}, "age", "không thể lớn hơn 125"),
    ("nguoi-khuyet-tat", {"level": "nang", "age": 300}, "group", "không hợp lệ"),
])
def test_bad_input_gets_a_clear_message_and_keeps_the_rest(calcs: CalculatorSet, calc: str,
                                                           inputs: dict[str, Any], ask: str, words: str) -> None:
    out = calcs.compute(calc, inputs)
    assert out.kind == "invalid" and out.ask == ask and words in out.text, out.text
    assert out.state is not None and out.state["ask"] == ask
    kept = {k: v for k, v in inputs.items() if k not in (ask, "age")}
    assert all(out.state["inputs"].get(k) == v for k, v in kept.items())


def test_below_threshold_says_what_applies_instead(calcs: CalculatorSet) -> None:
    out = calcs.compute("thuong-binh", {"rate": 15})
    assert out.kind == "not_eligible" and out.values["one_off"] == 16_734_000
    assert "6,0 × mức chuẩn 2.789.000 đ = 16.734.000 đ (một lần)" in out.text
    assert "Phụ lục VI" in out.text
    agent = calcs.compute("chat-doc-hoa-hoc", {"rate": 15})
    assert "vô sinh" in agent.text and "3.542.000 đ" in agent.text


# --- the dialogue: one follow-up question, answers as text or payload, state round trip ---------------
def _turn(calcs: CalculatorSet, text: str, state: dict[str, Any] | None) -> CalcOutcome:
    d = calcs.detect(text, state)
    assert d is not None, text
    out = calcs.respond(d, state)
    if out.state is not None:
        assert json.loads(json.dumps(out.state)) == out.state  # JSON-able
    return out


def test_dialogue_asks_one_thing_at_a_time_then_computes(calcs: CalculatorSet) -> None:
    first = _turn(calcs, "tro cap that nghiep duoc bao nhieu tien vay", None)
    assert first.kind == "question" and first.ask == "months" and first.text.count("?") == 1
    second = _turn(calcs, "4 nam 2 thang", first.state)
    assert second.kind == "question" and second.ask == "salary" and second.inputs == {"months": 50}
    third = _turn(calcs, "8tr5", second.state)
    assert third.kind == "result" and third.values["monthly"] == 5_100_000 and third.state is None


def test_button_payload_answers_the_question(calcs: CalculatorSet) -> None:
    asked = _turn(calcs, "lương tôi 50 triệu, đóng bhtn 10 năm thì trợ cấp thất nghiệp bao nhiêu", None)
    assert asked.ask == "region" and asked.buttons
    for b in asked.buttons:
        assert b.payload.startswith("calc:") and len(b.payload.encode()) <= MAX_PAYLOAD_BYTES
        assert calcs.is_payload(b.payload)
    done = _turn(calcs, asked.buttons[1].payload, asked.state)
    assert done.kind == "result" and done.values["monthly"] == 23_650_000


def test_every_button_payload_fits_64_bytes(calcs: CalculatorSet) -> None:
    from bot.calculators.reply import _buttons

    for calc in calcs.calculators:
        for spec in calc.inputs:
            for b in _buttons(calc, spec):
                assert len(b.payload.encode()) <= 64, b.payload


def test_bad_answer_then_good_answer(calcs: CalculatorSet) -> None:
    asked = _turn(calcs, "thuong binh duoc bao nhieu", None)
    bad = _turn(calcs, "250", asked.state)
    assert bad.kind == "invalid" and "250 %" in bad.text and bad.state and bad.state["ask"] == "rate"
    good = _turn(calcs, "61%", bad.state)
    assert good.kind == "result" and good.values["amount"] == 5_450_000


def test_unreadable_answer_is_asked_again_once_then_dropped(calcs: CalculatorSet) -> None:
    asked = _turn(calcs, "benh binh lanh bao nhieu", None)
    assert [b.label for b in asked.buttons][:2] == ["41–50 %", "51–60 %"]
    again = _turn(calcs, "ko nho", asked.state)
    assert again.kind == "question" and again.text.startswith("Em chưa đọc được")
    stop = _turn(calcs, "hmm", again.state)
    assert stop.kind == "invalid" and stop.state is None


def test_range_button_gives_the_group_amount(calcs: CalculatorSet) -> None:
    asked = _turn(calcs, "benh binh lanh bao nhieu", None)
    out = _turn(calcs, asked.buttons[2].payload, asked.state)  # 61–70 %
    assert out.kind == "result" and out.values["amount"] == 4_622_000 and "61–70 %" in out.text


def test_another_question_while_pending(calcs: CalculatorSet) -> None:
    asked = _turn(calcs, "đóng bhtn 4 năm thì trợ cấp bao nhiêu", None)
    assert calcs.is_pending(asked.state)
    switched = _turn(calcs, "thương binh 61% lãnh bao nhiêu", asked.state)
    assert switched.calculator == "thuong-binh" and switched.kind == "result"
    assert calcs.detect("cho hỏi nộp hồ sơ thất nghiệp ở đâu, giờ làm việc thế nào", asked.state) is None


def test_choice_by_number_and_derived_age_group(calcs: CalculatorSet) -> None:
    asked = _turn(calcs, "ông tôi 78 tuổi thì được trợ cấp người cao tuổi bao nhiêu", None)
    assert asked.ask == "situation" and len(asked.buttons) == 3
    out = _turn(calcs, "3", asked.state)
    assert out.kind == "result" and out.inputs["situation"] == "khong-luong-huu"
    level = _turn(calcs, "con toi bi khuyet tat thi duoc tro cap bao nhieu tien", None)
    group = _turn(calcs, "đặc biệt nặng", level.state)
    assert group.ask == "group"
    done = _turn(calcs, "7 tuổi", group.state)
    assert done.values["amount"] == 1_250_000


def test_result_names_calculator_topic_basis_and_date(calcs: CalculatorSet) -> None:
    out = _turn(calcs, "thương binh 61% giờ lãnh bao nhiêu", None)
    assert out.calculator == "thuong-binh" and out.topic == "ncc-thuong-binh"
    assert "Phụ lục II, Nghị định 77/2024/NĐ-CP" in out.text and "áp dụng từ 01/07/2024" in out.text
    assert DISCLAIMER in out.text
