"""The channel-agnostic dialogue on a real database (SQLite and PostgreSQL) with the fake embedder."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.dialogue import Dialogue
from bot.messages import Incoming, split_message
from bot.storage import Storage
from bot.storage.models import Feedback, Unanswered


@pytest.fixture
def dialogue(dialogue: Dialogue, db_url: str) -> Dialogue:
    """conftest's dialogue with a low flood limit; ``db_url`` is named so that pytest 8 parametrizes every test
    of the overriding fixture on SQLite and PostgreSQL."""
    dialogue.flood_per_minute = 8
    return dialogue


def say(d: Dialogue, text: str = "", payload: str | None = None, chat: str = "c1"):
    replies = d.handle(Incoming("web", chat, text=text, payload=payload))
    assert len(replies) == 1
    return replies[0]


def test_question_answer_details_and_feedback(dialogue: Dialogue, store: Storage) -> None:
    r = say(dialogue, "Trợ cấp thất nghiệp được hưởng bao nhiêu tiền một tháng?")
    assert r.kind == "answer" and r.entry_id == "tctn-huong-muc"
    detail = say(dialogue, payload="detail:tctn-huong-muc")
    assert "Thành phần hồ sơ" in detail.text
    r = say(dialogue, payload="fb:0")
    assert "chuyển để cán bộ" in r.text
    with store.db.transaction() as s:
        fb = s.scalars(select(Feedback)).all()
        un = s.scalars(select(Unanswered)).all()
    assert [(f.helpful, f.entry_id) for f in fb] == [(False, "tctn-huong-muc")]
    assert [u.question for u in un] == ["Trợ cấp thất nghiệp được hưởng bao nhiêu tiền một tháng?"]


def test_fallback_is_logged_and_leads_to_followup(dialogue: Dialogue, store: Storage) -> None:
    r = say(dialogue, "Hôm nay thời tiết Hà Nội thế nào?", chat="c2")
    assert r.kind == "fallback"
    assert [u.question for u in store.requests.list_unanswered()] == ["Hôm nay thời tiết Hà Nội thế nào?"]
    r = say(dialogue, payload="followup:start", chat="c2")
    assert r.kind == "followup" and "họ và tên" in r.text
    # the state survives a new Dialogue object (e.g. another process)
    other = Dialogue(dialogue.holder, store, dialogue.lookup, dialogue.followup, dialogue.settings)
    r = other.handle(Incoming("web", "c2", text="Nguyễn Văn An"))[0]
    assert r.kind == "followup" and "số điện thoại" in r.text.lower()


def test_pick_from_choices(dialogue: Dialogue) -> None:
    r = say(dialogue, payload="pick:ncc-muc-chuan-test", chat="c3")
    assert r.kind == "answer" and "2.789.000" in r.text
    r = say(dialogue, payload="pick:khong-ton-tai", chat="c3")
    assert r.kind == "error"


def test_help_media_oversize_and_flood(dialogue: Dialogue) -> None:
    assert "Tra cứu tình trạng hồ sơ" in say(dialogue, "/start", chat="c4").text
    assert "chỉ đọc được tin nhắn chữ" in say(dialogue, payload="media:sticker", chat="c4").text
    assert "dài quá" in say(dialogue, "a" * 5000, chat="c4").text
    for _ in range(5):
        say(dialogue, "xin chào", chat="c4")
    assert "nhanh quá" in say(dialogue, "xin chào", chat="c4").text
    assert say(dialogue, "xin chào", chat="c5").kind == "smalltalk"  # other chats are not affected


def test_dossier_lookup_is_routed(dialogue: Dialogue) -> None:
    r = say(dialogue, "tra cứu hồ sơ", chat="c6")
    assert r.kind == "dossier" and "số biên nhận" in r.text.lower()


def test_split_message_at_paragraphs() -> None:
    text = "\n\n".join(f"Đoạn {i} " + "chữ " * 30 for i in range(10))
    parts = split_message(text, 400)
    assert all(len(p) <= 400 for p in parts) and len(parts) > 1
    assert all(p.startswith("Đoạn") for p in parts)
    assert " ".join(" ".join(parts).split()) == " ".join(text.split())
    assert split_message("x" * 1000, 300) == ["x" * 300] * 3 + ["x" * 100]


def all_replies(d: Dialogue, text: str = "", payload: str | None = None, chat: str = "c1"):
    return d.handle(Incoming("web", chat, text=text, payload=payload))


def test_none_of_the_above_invites_a_rephrase_not_the_form(dialogue: Dialogue, store: Storage) -> None:
    r = say(dialogue, "liệt sĩ thất nghiệp", chat="r1")
    assert r.kind == "choices" and r.buttons[-1].label == "Không phải các ý trên"
    r = say(dialogue, payload=r.buttons[-1].payload, chat="r1")
    assert r.kind == "info" and "hỏi lại bằng cách khác" in r.text
    assert [(b.label, b.payload) for b in r.buttons] == [("Gặp cán bộ", "followup:start")]
    # the rephrased question is answered, not taken as a name
    r = say(dialogue, "Trợ cấp thất nghiệp được hưởng bao nhiêu tiền một tháng?", chat="r1")
    assert r.kind == "answer"
    assert "liệt sĩ thất nghiệp" in [u.question for u in store.requests.list_unanswered()]


@pytest.mark.parametrize("text", ["xin cảm ơn", "Cảm ơn em nhiều", "ok", "vâng ạ"])
def test_thank_you_is_not_a_name(dialogue: Dialogue, text: str) -> None:
    say(dialogue, payload="followup:start", chat="n1")
    r = say(dialogue, text, chat="n1")
    assert r.kind == "followup" and "họ và tên" in r.text and "Cảm ơn anh/chị" not in r.text
    r = say(dialogue, "Nguyễn Văn An", chat="n1")
    assert "Cảm ơn anh/chị Nguyễn Văn An" in r.text
    r = say(dialogue, "cảm ơn", chat="n1")
    assert "số điện thoại" in r.text and "chưa đúng định dạng" not in r.text


def test_a_topic_typed_as_a_name_is_not_taken_as_one(dialogue: Dialogue, store: Storage) -> None:
    say(dialogue, payload="followup:start", chat="n2")
    replies = all_replies(dialogue, "Tro Cap Cho Tre Em Khuyet Tat", chat="n2")
    assert all("Cảm ơn anh/chị" not in r.text for r in replies)
    assert "tạm dừng việc ghi yêu cầu gọi lại" in replies[0].text  # read as a new question
    say(dialogue, payload="followup:start", chat="n3")
    r = say(dialogue, "tro cap", chat="n3")  # too short for a question, not a name either
    assert r.kind == "followup" and "họ và tên" in r.text and "Cảm ơn anh/chị" not in r.text
    assert (store.states.get("web", "n3") or {}).get("step") == "name"


def test_a_question_inside_a_form_leaves_it_and_is_answered(dialogue: Dialogue) -> None:
    say(dialogue, payload="followup:start", chat="q1")
    notice, answer = all_replies(dialogue, "Trợ cấp thất nghiệp được hưởng bao nhiêu tiền một tháng?", chat="q1")
    assert "tạm dừng việc ghi yêu cầu gọi lại" in notice.text
    assert answer.kind == "answer" and answer.entry_id == "tctn-huong-muc"
    r = say(dialogue, "Nguyễn Văn An", chat="q1")  # the form is over: a name is now just text
    assert "Cảm ơn anh/chị" not in r.text
    # at the phone step too
    say(dialogue, payload="followup:start", chat="q2")
    say(dialogue, "Nguyễn Văn An", chat="q2")
    replies = all_replies(dialogue, "mức chuẩn trợ cấp người có công là bao nhiêu?", chat="q2")
    assert len(replies) == 2 and replies[1].kind == "answer"


def test_the_callback_form_opens_only_on_a_clear_request(dialogue: Dialogue) -> None:
    q = "em cần mang giấy tờ gì để đăng ký tìm việc và bao lâu thì trung tâm liên hệ lại ạ?"
    assert not dialogue.followup.wants_followup(q)
    r = say(dialogue, q, chat="f1")
    assert r.kind != "followup"
    for text in ("gọi lại cho tôi", "cho tôi gặp cán bộ", "Em muốn để lại số điện thoại để cán bộ gọi lại"):
        assert dialogue.followup.wants_followup(text), text
    r = say(dialogue, "gọi lại cho tôi nhé", chat="f2")
    assert r.kind == "followup" and "họ và tên" in r.text


def test_cancel_after_confirming_says_the_request_stands(dialogue: Dialogue, store: Storage) -> None:
    say(dialogue, payload="followup:start", chat="k1")
    say(dialogue, "Nguyễn Văn An", chat="k1")
    say(dialogue, "0912345678", chat="k1")
    say(dialogue, "Hồ sơ thất nghiệp chưa có kết quả", chat="k1")
    done = say(dialogue, payload="followup:confirm", chat="k1")
    ticket = store.followups.recent()[0].id
    assert f"Đã ghi nhận yêu cầu số {ticket}" in done.text
    r = say(dialogue, payload="followup:cancel", chat="k1")
    assert f"Yêu cầu số {ticket}" in r.text and "vẫn còn hiệu lực" in r.text
    r = say(dialogue, payload="followup:confirm", chat="k1")
    assert "đã được ghi nhận rồi" in r.text
    assert len(store.followups.recent()) == 1


def test_answers_leave_out_unconfigured_values(dialogue: Dialogue) -> None:
    r = say(dialogue, "Hôm nay thời tiết Hà Nội thế nào?", chat="p1")
    assert r.kind == "fallback" and "chưa cấu hình" not in r.text and "Gặp cán bộ" in r.text
    assert "chưa cấu hình" not in say(dialogue, "/start", chat="p2").text
