"""The assistant end to end on the small knowledge base with the fake embedder."""

from __future__ import annotations

from bot.assistant import Assistant
from tests.fakes import HashingEmbedder


def make(settings) -> Assistant:
    return Assistant.from_settings(settings, embedder=HashingEmbedder(256))


def test_answers_with_legal_basis_and_date(fake_index) -> None:
    a = make(fake_index)
    out = a.ask("Trợ cấp thất nghiệp được hưởng bao nhiêu tiền một tháng?")
    r = out.reply
    assert r.kind == "answer" and r.entry_id == "tctn-huong-muc" and r.topic == "tctn-huong"
    assert "60%" in r.text and "Luật Việc làm số 74/2025/QH15" in r.text and "01/01/2026" in r.text
    assert [b.payload for b in r.buttons] == ["detail:tctn-huong-muc", "fb:1", "fb:0"]
    assert r.candidates[0]["entry_id"] == "tctn-huong-muc"


def test_an_answer_offers_related_questions_as_buttons(fake_index) -> None:
    a = make(fake_index)
    r = a.answer_reply("tctn-huong-muc", related=["ncc-liet-si-test", "tctn-huong-muc"])
    assert [b.payload for b in r.buttons] == ["detail:tctn-huong-muc", "pick:ncc-liet-si-test", "fb:1", "fb:0"]
    assert r.text.endswith('Có thể bạn muốn hỏi: "Thân nhân liệt sĩ được trợ cấp gì?"')
    assert r.entry_id == "tctn-huong-muc"  # the answer itself is unchanged; the entry is not offered twice


def test_unaccented_question_finds_same_topic(fake_index) -> None:
    out = make(fake_index).ask("than nhan liet si duoc tro cap gi")
    assert out.reply.topic == "ncc-than-nhan-liet-si"


def test_details_show_procedure_with_department_config(fake_index) -> None:
    a = make(fake_index)
    r = a.details_reply("tctn-huong-muc")
    assert r.entry_id == "tctn-huong-test"
    assert "Thành phần hồ sơ" in r.text and fake_index.department.job_center in r.text and "{job_center}" not in r.text


def test_out_of_scope_falls_back(fake_index) -> None:
    r = make(fake_index).ask("Hôm nay thời tiết Hà Nội thế nào?").reply
    assert r.kind == "fallback"
    assert "chưa tìm thấy câu trả lời" in r.text and r.buttons[0].payload == "followup:start"


def test_smalltalk_and_bad_input(fake_index) -> None:
    a = make(fake_index)
    assert a.ask("xin chao").reply.kind == "smalltalk"
    assert "trợ lý ảo" in a.ask("Bạn là ai?").reply.text
    assert a.ask("   ").reply.kind == "error"
    long = a.ask("trợ cấp " * 400).reply
    assert long.kind == "error" and "dài quá" in long.text
