"""Calculators in the dialogue: an amount question with its numbers gets the amount, one without them gets
one follow-up question (typed answer or button), and another question drops the pending calculation.
Real database (SQLite and PostgreSQL), the small knowledge base with the shipped calculators, the fake
embedder and the small knowledge base's fitted policy."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bot.dialogue import Dialogue
from bot.messages import Incoming
from bot.storage import Storage
from tests.support import REPO, make_dialogue, make_settings


@pytest.fixture
def calc_dialogue(store: Storage, migrated_url: str, tmp_path: Path, mini_kb: Path) -> Dialogue:
    shutil.copytree(REPO / "knowledge" / "calculators", mini_kb / "calculators")
    return make_dialogue(store, make_settings(tmp_path, mini_kb, database_url=migrated_url))


def say(d: Dialogue, text: str = "", payload: str | None = None, chat: str = "c1"):
    replies = d.handle(Incoming("web", chat, text=text, payload=payload))
    assert len(replies) == 1
    return replies[0]


def test_amount_question_with_its_numbers_is_computed(calc_dialogue: Dialogue) -> None:
    r = say(calc_dialogue, "em đóng bhtn 50 tháng, lương 8tr thì được hưởng trợ cấp thất nghiệp bao nhiêu 1 tháng")
    assert r.kind == "calculation" and r.topic == "tctn-huong", r.text
    assert "4.800.000" in r.text and "4 tháng" in r.text, r.text
    assert "Căn cứ" in r.text or "căn cứ" in r.text
    assert any(b.payload == "fb:1" for b in r.buttons)


def test_missing_number_asks_once_then_computes(calc_dialogue: Dialogue, store: Storage) -> None:
    r = say(calc_dialogue, "tro cap that nghiep cua em duoc bao nhieu tien 1 thang, em dong 50 thang")
    assert r.kind == "calculation" and r.topic == "tctn-huong", r.text
    assert "?" in r.text and "4.800.000" not in r.text
    state = store.states.get("web", "c1")
    assert state and state["calculation"]["calc"] == "tro-cap-that-nghiep"
    r = say(calc_dialogue, "8 triệu")
    assert r.kind == "calculation" and "4.800.000" in r.text, r.text
    assert not (store.states.get("web", "c1") or {}).get("calculation")


def test_absurd_number_is_refused_and_asked_again_and_a_button_payload_answers(calc_dialogue: Dialogue) -> None:
    r = say(calc_dialogue, "đóng bảo hiểm thất nghiệp -3 tháng lương 8 triệu được bao nhiêu")
    assert r.kind == "calculation" and "không hợp lệ" in r.text and "bao nhiêu tháng" in r.text, r.text
    r = say(calc_dialogue, "50 tháng")
    assert "4.800.000" in r.text, r.text  # the salary given with the bad number was kept
    r = say(calc_dialogue, payload="calc:tro-cap-that-nghiep:months=50", chat="c2")
    assert r.kind == "calculation" and "lương" in r.text.lower() and "?" in r.text, r.text
    r = say(calc_dialogue, "8tr5", chat="c2")
    assert "5.100.000" in r.text, r.text


def test_another_question_drops_the_pending_calculation(calc_dialogue: Dialogue, store: Storage) -> None:
    r = say(calc_dialogue, "trợ cấp thất nghiệp được bao nhiêu, em đóng 50 tháng")
    assert r.kind == "calculation" and store.states.get("web", "c1")["calculation"]
    r = say(calc_dialogue, "Hồ sơ đề nghị hưởng trợ cấp thất nghiệp gồm những giấy tờ gì?")
    assert r.kind in ("answer", "choices"), r.text
    assert not (store.states.get("web", "c1") or {}).get("calculation")


def test_calculators_are_published_with_the_index_version_and_checked_before(tmp_path: Path, mini_kb: Path) -> None:
    from bot.knowledge_admin import KnowledgeAdmin, KnowledgeInvalid
    from tests.fakes import HashingEmbedder

    shutil.copytree(REPO / "knowledge" / "calculators", mini_kb / "calculators")
    settings = make_settings(tmp_path, mini_kb)
    admin = KnowledgeAdmin(settings, HashingEmbedder(256))
    m = admin.build(actor="test")
    version_dir = settings.index_root / "versions" / m.version
    assert (version_dir / "calculators" / "tro-cap-that-nghiep.yaml").exists()
    assert (version_dir / "abbreviations.yaml").exists()
    broken = mini_kb / "calculators" / "tro-cap-that-nghiep.yaml"
    broken.write_text(broken.read_text(encoding="utf-8").replace("topic: tctn-huong", "topic: khong-co"),
                      encoding="utf-8")
    with pytest.raises(KnowledgeInvalid) as exc:
        admin.build(actor="test")
    assert any("tro-cap-that-nghiep.yaml" in str(e) for e in exc.value.errors)
    assert any("tro-cap-that-nghiep.yaml" in str(e) for e in admin.validate().errors)
