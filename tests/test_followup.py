"""The follow-up ("please call me back") dialogue: validation, confirmation, cancel, storage, log masking."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from bot.config import Settings
from bot.followup import FollowUpFlow
from bot.messages import Incoming, Reply
from bot.storage import Storage
from bot.storage.models import FollowUp


def msg(text: str = "", payload: str | None = None, chat: str = "z1") -> Incoming:
    return Incoming(channel="zalo", chat_id=chat, text=text, payload=payload)


@pytest.fixture
def flow(store: Storage, settings: Settings) -> FollowUpFlow:
    assert settings.dossiers.followup_sla == "trong vòng 1 ngày làm việc"
    return FollowUpFlow(store.followups, settings)


def run(flow: FollowUpFlow, state: dict[str, Any] | None, *messages: Incoming) -> tuple[Reply, dict[str, Any] | None]:
    reply: Reply | None = None
    for m in messages:
        reply = flow.handle(m, state)
        assert reply is not None, m
        state = reply.state
    assert reply is not None
    return reply, state


@pytest.mark.parametrize(
    "text",
    ["Cho tôi gặp cán bộ", "gap can bo", "Gọi lại cho tôi nhé", "em muốn để lại số điện thoại", "liên hệ lại giúp tôi"],
)
def test_trigger_phrases(flow: FollowUpFlow, text: str) -> None:
    assert flow.wants_followup(text)
    r = flow.handle(msg(text), None)
    assert r is not None and r.kind == "followup" and r.state is not None and r.state["step"] == "name"


def test_not_for_the_followup(flow: FollowUpFlow) -> None:
    assert not flow.wants_followup("trợ cấp thất nghiệp được bao nhiêu")
    assert flow.handle(msg("trợ cấp thất nghiệp được bao nhiêu"), None) is None
    assert flow.handle(msg("5678"), {"flow": "dossier", "step": "await_phone4", "receipt": "x"}) is None


def test_full_dialogue_stores_a_ticket(flow: FollowUpFlow, store: Storage, settings: Settings) -> None:
    r, state = run(
        flow,
        None,
        msg("gặp cán bộ"),
        msg("nguyễn văn an"),
    )
    assert "Cảm ơn anh/chị Nguyễn Văn An" in r.text and state and state["step"] == "phone"
    r, state = run(flow, state, msg("0912.345.678"))
    assert state and state["step"] == "question" and state["phone"] == "0912345678"
    r, state = run(flow, state, msg("Hồ sơ thất nghiệp nộp tháng trước chưa có kết quả"))
    assert state and state["step"] == "confirm"
    assert "Họ tên: Nguyễn Văn An" in r.text and "0912 345 678" in r.text and "chưa có kết quả" in r.text
    assert [(b.label, b.payload) for b in r.buttons] == [("Xác nhận", "followup:confirm"), ("Hủy", "followup:cancel")]
    assert store.followups.recent() == []
    r, state = run(flow, state, msg(payload="followup:confirm"))
    tickets = store.followups.recent()
    assert state == {"last_ticket": tickets[0].id}  # the form is over; the ticket is remembered
    assert len(tickets) == 1
    t: FollowUp = tickets[0]
    assert (t.name, t.phone, t.question, t.status, t.channel) == (
        "Nguyễn Văn An",
        "0912345678",
        "Hồ sơ thất nghiệp nộp tháng trước chưa có kết quả",
        "new",
        "zalo",
    )
    assert f"Đã ghi nhận yêu cầu số {t.id}" in r.text
    assert "09******78" in r.text and "0912345678" not in r.text
    assert "trong vòng 1 ngày làm việc" in r.text and settings.department.dept_hotline in r.text


@pytest.mark.parametrize(
    "bad", ["0123456789", "091234567", "09123456789", "0212345678", "abc", "+1 202 555 0100", "1900 1234", "0012345678"]
)
def test_invalid_phone_numbers_are_refused(flow: FollowUpFlow, store: Storage, bad: str) -> None:
    _, state = run(flow, None, msg("gặp cán bộ"), msg("Trần Thị Bích Ngọc"))
    r = flow.handle(msg(bad), state)
    assert r is not None and "chưa đúng định dạng số di động Việt Nam" in r.text
    assert r.state is not None and r.state["step"] == "phone" and r.state["phone_errors"] == 1


@pytest.mark.parametrize(
    ("good", "normal"),
    [("+84 987 654 321", "0987654321"), ("84987654321", "0987654321"), ("0356-111-222", "0356111222"),
     ("0701 234 567", "0701234567"), ("0587.123.456", "0587123456"), ("0812345678", "0812345678")],
)
def test_valid_phone_formats(flow: FollowUpFlow, good: str, normal: str) -> None:
    _, state = run(flow, None, msg("gặp cán bộ"), msg("Trần Thị Bích Ngọc"), msg(good))
    assert state is not None and state["phone"] == normal


def test_three_invalid_phones_end_the_dialogue(flow: FollowUpFlow, store: Storage, settings: Settings) -> None:
    _, state = run(flow, None, msg("gặp cán bộ"), msg("Lê Văn Cường"))
    r, state = run(flow, state, msg("123"), msg("0999"))
    assert state is not None and state["phone_errors"] == 2
    r, state = run(flow, state, msg("không có"))
    assert state is None and settings.department.dept_hotline in r.text
    assert store.followups.recent() == []


def test_invalid_names_are_refused(flow: FollowUpFlow) -> None:
    _, state = run(flow, None, msg("gặp cán bộ"))
    for bad in ("", "1234", "a", "An123", "0912345678"):
        r = flow.handle(msg(bad), state)
        assert r is not None and r.state == state
    r = flow.handle(msg("Tôi tên là phạm thị hoa"), state)
    assert r is not None and r.state is not None and r.state["name"] == "Phạm Thị Hoa"


@pytest.mark.parametrize("word", ["hủy", "Thôi", "thôi không cần nữa", "huy"])
def test_cancel_at_any_step(flow: FollowUpFlow, store: Storage, word: str) -> None:
    steps = [msg("gặp cán bộ"), msg("Nguyễn Văn An"), msg("0912345678"), msg("Hỏi về hồ sơ")]
    for n in range(1, len(steps) + 1):
        _, state = run(flow, None, *steps[:n])
        r = flow.handle(msg(word), state)
        assert r is not None and r.state is None and "đã hủy" in r.text
    r = flow.handle(msg(payload="followup:cancel"), {"flow": "followup", "step": "confirm"})
    assert r is not None and r.state is None
    assert store.followups.recent() == []


def test_start_after_a_fallback_skips_the_question(flow: FollowUpFlow, store: Storage) -> None:
    r = flow.start(msg("cho tôi gặp cán bộ"), question="Chế độ cho người có công ở xã tôi thế nào?")
    r, state = run(flow, r.state, msg("Đặng Văn Giang"), msg("0905123456"))
    assert state is not None and state["step"] == "confirm" and "Chế độ cho người có công" in r.text
    r, state = run(flow, state, msg("ok"))
    assert state == {"last_ticket": store.followups.recent()[0].id}
    assert store.followups.recent()[0].question == "Chế độ cho người có công ở xã tôi thế nào?"
    # The fallback's button: the core keeps the unanswered question in the state as last_question.
    r2 = flow.handle(msg(payload="followup:start"), {"flow": "fallback", "last_question": "Hỏi về BHXH"})
    assert r2 is not None and r2.state is not None and r2.state["question"] == "Hỏi về BHXH"


def test_unclear_answer_at_confirm_asks_again(flow: FollowUpFlow, store: Storage) -> None:
    _, state = run(flow, None, msg("gặp cán bộ"), msg("Nguyễn Văn An"), msg("0912345678"), msg("Hỏi về hồ sơ"))
    r = flow.handle(msg("để tôi nghĩ"), state)
    assert r is not None and r.state == state and "Xác nhận" in r.text and len(r.buttons) == 2
    assert store.followups.recent() == []


def test_names_and_phones_are_masked_in_logs(
    flow: FollowUpFlow, store: Storage, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        run(
            flow,
            None,
            msg("gặp cán bộ"),
            msg("Nguyễn Văn An"),
            msg("0912 345 678"),
            msg("Hồ sơ chậm"),
            msg(payload="followup:confirm"),
        )
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "follow-up #" in logged
    assert "Nguyễn V. A." in logged and "09******78" in logged
    assert "Nguyễn Văn An" not in logged and "0912345678" not in logged and "0912 345 678" not in logged


@pytest.mark.parametrize("name", ["Lê Thị Ái", "Nguyễn Văn Hội", "Lương Văn Can", "Trần Thu", "Hồ Sơn", "Gia Bảo"])
def test_names_that_look_like_words_are_still_names(flow: FollowUpFlow, name: str) -> None:
    from bot.followup import reads_as_question

    assert not reads_as_question(name)
    r, state = run(flow, None, msg("gặp cán bộ"), msg(name))
    assert state and state["step"] == "phone" and f"Cảm ơn anh/chị {name}" in r.text
