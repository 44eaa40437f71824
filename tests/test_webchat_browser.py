"""The web chat page in a real headless Chromium (Debian's /usr/bin/chromium) against uvicorn.

Install: ``apt-get install -y chromium chromium-driver`` (``.ci/run`` does it); the Python ``playwright``
package drives it (``playwright install`` is never needed: the system browser is used).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.config import load_settings
from bot.dialogue import Dialogue
from bot.runtime import AssistantHolder
from bot.store import Store
from handlers.app import ServeOptions, create_app
from indexer.embed import HashingEmbedder
from indexer.index import build_index
from tests.conftest import serve_in_thread

try:
    from tests.db_fixtures import db_url, migrated_url, store  # noqa: F401
except ImportError:  # pragma: no cover
    from db_fixtures import db_url, migrated_url, store  # type: ignore[no-redef]  # noqa: F401

CHROMIUM = Path("/usr/bin/chromium")
DEPT = "Sở Lao động – Thương binh và Xã hội tỉnh Thử Nghiệm"

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="/usr/bin/chromium is missing: apt-get install -y chromium chromium-driver",
)


@pytest.fixture
def server(store: Store, migrated_url: str, tmp_path: Path, mini_kb: Path) -> Iterator[str]:
    settings = load_settings(
        knowledge_dir=mini_kb, data_dir=tmp_path / "var", embedding_model="fake-hashing-256",
        database_url=migrated_url, min_dense_for_answer=0.0, dense_weight=0.3, answer_threshold=0.5,
        choice_threshold=0.3, dept_name=DEPT,
    )
    build_index(settings.knowledge_dir, settings.index_root, HashingEmbedder(256))
    holder = AssistantHolder(settings, embedder=HashingEmbedder(256), active_version=store.active_kb_version)
    dialogue = Dialogue.from_settings(settings, store=store, holder=holder)
    app = create_app(settings, dialogue, channels=[], options=ServeOptions(reload_seconds=3600))
    with serve_in_thread(app) as base:
        yield base + "/"


def test_ask_choose_and_feedback_in_the_browser(server: str, store: Store) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"],
        )
        try:
            page = browser.new_page(viewport={"width": 360, "height": 640})  # a small phone
            page.goto(server)
            expect(page).to_have_title(f"Trợ lý ảo – {DEPT}")
            expect(page.locator("header")).to_contain_text(DEPT)
            log = page.get_by_role("log")
            expect(log).to_have_attribute("aria-live", "polite")

            # an officer's reply queued for this browser's chat shows up (the page polls on load)
            chat_id = page.evaluate("window.localStorage.getItem('ldtbxh_chat_id')")
            assert chat_id and chat_id.startswith("w")
            store.enqueue_outbox("web", chat_id, "Cán bộ: hồ sơ của bạn đã được tiếp nhận.")
            page.reload()
            assert page.evaluate("window.localStorage.getItem('ldtbxh_chat_id')") == chat_id
            expect(log.locator(".msg.officer")).to_contain_text("hồ sơ của bạn đã được tiếp nhận")

            # type a question (labelled textarea), send it with Enter
            box = page.get_by_label("Câu hỏi của bạn")
            box.fill("Trợ cấp thất nghiệp được hưởng bao nhiêu tiền một tháng?")
            box.press("Enter")
            expect(log.locator(".msg.user").last).to_contain_text("Trợ cấp thất nghiệp")
            answer = log.locator(".msg.bot", has=page.get_by_role("button", name="Xem chi tiết")).first
            expect(answer.get_by_role("button", name="Xem chi tiết")).to_be_visible()

            # a button works with the keyboard: focus it and press Enter
            answer.get_by_role("button", name="Xem chi tiết").focus()
            page.keyboard.press("Enter")
            expect(log.locator(".msg.bot").last).to_contain_text("Thành phần hồ sơ")

            # feedback with a click; both feedback buttons are then disabled
            answer.get_by_role("button", name="👍 Hữu ích").click()
            expect(log.locator(".msg.bot").last).to_contain_text("Cảm ơn bạn đã phản hồi")
            expect(answer.get_by_role("button", name="👎 Chưa hữu ích")).to_be_disabled()

            # a question out of scope offers "Gặp cán bộ", which starts the follow-up flow
            box.fill("hom nay thoi tiet ha noi the nao")
            page.get_by_role("button", name="Gửi").click()
            fallback = log.locator(".msg.bot", has_text="chưa tìm thấy câu trả lời").first
            expect(fallback.get_by_role("button", name="Gặp cán bộ")).to_be_visible()
            fallback.get_by_role("button", name="Gặp cán bộ").click()
            expect(log.locator(".msg.bot").last).to_contain_text("họ và tên")
            expect(box).to_be_focused()
        finally:
            browser.close()
    assert not store.due_outbox("web")  # the officer's message was delivered to the page
