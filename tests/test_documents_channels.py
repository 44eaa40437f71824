"""A clause of a legal text quoted end to end on every channel, then "Xem toàn văn": Telegram (the real
python-telegram-bot against the fake Bot API, webhook mode), Zalo (signed webhooks, payloads sent back as
``#fulltext`` text) and the web chat (``/api/chat``). The dialogue is the documents tier's of
``tests/test_documents_dialogue.py`` (the fixture decision, the fake embedder, the tests' own gates)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.dialogue import Dialogue
from bot.storage import Storage
from tests.support import make_dialogue, make_settings
from tests.test_app import chat, make_client
from tests.test_documents_dialogue import DECLINED, add_documents
from tests.test_telegram import Harness as TelegramHarness
from tests.test_telegram import buttons_of as telegram_buttons
from tests.test_telegram import callback_update, fake, text_update, with_channel  # noqa: F401 (fixture)
from tests.test_zalo import Harness as ZaloHarness
from tests.test_zalo import buttons_of as zalo_buttons
from tests.test_zalo import event, fake_zalo, harness  # noqa: F401 (fixtures)

CITED = "(Trích khoản 2 Điều 3 Quyết định 123/QĐ-SLĐTBXH; nội dung áp dụng từ 15/03/2025.)"
WHOLE = "Điều 3 Quyết định 123/QĐ-SLĐTBXH. Thành phần hồ sơ (nội dung áp dụng từ 15/03/2025):"


@pytest.fixture
def dialogue(store: Storage, migrated_url: str, tmp_path: Path, mini_kb: Path) -> Dialogue:
    settings = make_settings(tmp_path, mini_kb, database_url=migrated_url, documents_in_dialogue=True)
    add_documents(settings)
    d = make_dialogue(store, settings)
    a = d.holder.current
    a.doc_min_scope, a.doc_min_score, a.doc_top_topics = 0.2, 0.3, 1000
    return d


def test_telegram_quotes_the_clause_then_the_whole_article(fake, dialogue: Dialogue, store: Storage  # noqa: F811
                                                          ) -> None:
    async def body(h: TelegramHarness) -> None:
        [m] = await h.say(text_update(DECLINED))
        assert CITED in m["text"] and "«2. Cán bộ một cửa kiểm tra thành phần hồ sơ" in m["text"]
        assert ("Xem toàn văn", "fulltext") in telegram_buttons(m)
        [whole] = await h.say(callback_update(h.fake, m, "fulltext"))
        assert whole["text"].startswith(WHOLE) and "a) Tờ khai của đối tượng theo mẫu;" in whole["text"]

    asyncio.run(with_channel(fake, dialogue, store, body))


def test_zalo_quotes_the_clause_then_the_whole_article(harness: ZaloHarness) -> None:  # noqa: F811
    assert harness.post(event(text=DECLINED)).status_code == 200
    quoted = harness.fake.wait_messages(1)[0]
    assert CITED in quoted["message"]["text"]
    assert "#fulltext" in [b["payload"] for b in zalo_buttons(quoted)]
    assert harness.post(event(text="#fulltext")).status_code == 200  # Zalo sends the payload back as text
    whole = harness.fake.wait_messages(2)[1]
    assert whole["message"]["text"].startswith(WHOLE)


def test_web_chat_quotes_the_clause_then_the_whole_article(dialogue: Dialogue) -> None:
    with make_client(dialogue) as client:
        r = chat(client, "w" + "d" * 32, text=DECLINED)
        assert r["kind"] == "document" and CITED in r["text"]
        assert {"label": "Xem toàn văn", "payload": "fulltext"} in r["buttons"]
        whole = chat(client, "w" + "d" * 32, payload="fulltext")
        assert whole["text"].startswith(WHOLE) and "c) Bản sao giấy khai sinh đối với trẻ em." in whole["text"]
