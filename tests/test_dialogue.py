"""The channel-agnostic dialogue on a real database (SQLite and PostgreSQL) with the fake embedder."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from bot.dialogue import Dialogue, split_message
from bot.messages import Incoming
from bot.models import Feedback, Unanswered
from bot.store import Store

try:
    from tests.conftest import fake_dialogue
    from tests.db_fixtures import db_url, migrated_url, store  # noqa: F401
except ImportError:  # pragma: no cover
    from conftest import fake_dialogue  # type: ignore[no-redef]
    from db_fixtures import db_url, migrated_url, store  # type: ignore[no-redef]  # noqa: F401


@pytest.fixture
def dialogue(store: Store, migrated_url: str, tmp_path: Path, mini_kb: Path) -> Dialogue:
    d = fake_dialogue(store, migrated_url, tmp_path, mini_kb)
    d.flood_per_minute = 8
    return d


def say(d: Dialogue, text: str = "", payload: str | None = None, chat: str = "c1"):
    replies = d.handle(Incoming("web", chat, text=text, payload=payload))
    assert len(replies) == 1
    return replies[0]


def test_question_answer_details_and_feedback(dialogue: Dialogue, store: Store) -> None:
    r = say(dialogue, "Trợ cấp thất nghiệp được hưởng bao nhiêu tiền một tháng?")
    assert r.kind == "answer" and r.entry_id == "tctn-huong-muc"
    detail = say(dialogue, payload="detail:tctn-huong-muc")
    assert "Thành phần hồ sơ" in detail.text
    r = say(dialogue, payload="fb:0")
    assert "chuyển để cán bộ" in r.text
    with store.session() as s:
        fb = s.scalars(select(Feedback)).all()
        un = s.scalars(select(Unanswered)).all()
    assert [(f.helpful, f.entry_id) for f in fb] == [(False, "tctn-huong-muc")]
    assert [u.question for u in un] == ["Trợ cấp thất nghiệp được hưởng bao nhiêu tiền một tháng?"]


def test_fallback_is_logged_and_leads_to_followup(dialogue: Dialogue, store: Store) -> None:
    r = say(dialogue, "Hôm nay thời tiết Hà Nội thế nào?", chat="c2")
    assert r.kind == "fallback"
    assert [u.question for u in store.list_unanswered()] == ["Hôm nay thời tiết Hà Nội thế nào?"]
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
