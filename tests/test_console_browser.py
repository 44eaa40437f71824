"""The whole loop in a real headless Chromium (Debian's /usr/bin/chromium) against uvicorn on 127.0.0.1:

a citizen's question is declined in the web chat (and the same question arrives on a fake channel);
an officer signs in to the console, sees it grouped, answers once and makes a draft; the reply reaches
the web chat (through the web outbox) and the fake channel (through the outbox worker); an
administrator approves the draft, rebuilds the index, switches to it; the same question is then answered
by the assistant itself.

Install: ``apt-get install -y chromium chromium-driver``; ``playwright install`` is never needed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bot.config import Settings, load_settings
from bot.dialogue import Dialogue
from bot.messages import Button, Incoming
from bot.runtime import AssistantHolder
from bot.store import Store
from handlers.console.security import hash_password
from indexer.embed import HashingEmbedder
from indexer.index import build_index
from tests.conftest import serve_in_thread

try:
    from tests.db_fixtures import db_url, migrated_url, store  # noqa: F401
except ImportError:  # pragma: no cover
    from db_fixtures import db_url, migrated_url, store  # type: ignore[no-redef]  # noqa: F401

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync"]
DEPT = "Sở Lao động – Thương binh và Xã hội tỉnh Thử Nghiệm"
QUESTION = "Hôm nay thời tiết Hà Nội thế nào?"
REPLY = "Trợ lý của Sở không dự báo thời tiết; bạn xem bản tin của Đài Khí tượng Thủy văn tỉnh nhé."

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="/usr/bin/chromium is missing: apt-get install -y chromium chromium-driver")


@dataclass
class FakeChannel:
    """A channel that records what the outbox worker delivers to it."""

    name: str = "fake"
    router: Any = None
    sent: list[tuple[str, str]] = field(default_factory=list)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def send(self, chat_id: str, text: str, buttons: list[Button]) -> None:
        self.sent.append((chat_id, text))


@dataclass
class Server:
    url: str
    settings: Settings
    dialogue: Dialogue
    fake: FakeChannel


def nav(page: Any, name: str) -> None:
    page.get_by_role("navigation", name="Chức năng").get_by_role("link", name=name, exact=True).click()


@pytest.fixture
def server(store: Store, migrated_url: str, tmp_path: Path, mini_kb: Path,
           monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    from handlers.app import ServeOptions, create_app

    monkeypatch.setenv("LDTBXH_CONSOLE_SECURE_COOKIES", "false")  # plain http on 127.0.0.1 in the test
    monkeypatch.setenv("LDTBXH_CONSOLE_GROUP_THRESHOLD", "0.6")
    settings = load_settings(
        knowledge_dir=mini_kb, data_dir=tmp_path / "var", embedding_model="fake-hashing-256",
        database_url=migrated_url, min_dense_for_answer=0.0, dense_weight=0.3, answer_threshold=0.5,
        choice_threshold=0.3, dept_name=DEPT,
    )
    build_index(settings.knowledge_dir, settings.index_root, HashingEmbedder(256))
    holder = AssistantHolder(settings, embedder=HashingEmbedder(256), active_version=store.active_kb_version)
    dialogue = Dialogue.from_settings(settings, store=store, holder=holder)
    store.add_user("canbo", hash_password("mat-khau-can-bo-1"), "officer")
    store.add_user("quantri", hash_password("mat-khau-quan-tri-1"), "admin")
    fake = FakeChannel()
    app = create_app(settings, dialogue, channels=[fake],
                     options=ServeOptions(reload_seconds=3600, outbox_poll_seconds=0.2))
    with serve_in_thread(app) as base:
        yield Server(base, settings, dialogue, fake)


def test_declined_question_answered_in_the_console_then_by_the_assistant(server: Server, store: Store,
                                                                        tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    # the same question on another channel (e.g. Telegram), handled by the same dialogue
    assert server.dialogue.handle(Incoming("fake", "f-1", text="hom nay thoi tiet ha noi the nao"))[0].kind \
        == "fallback"

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            # --- a citizen asks in the web chat and is politely declined
            citizen = browser.new_context().new_page()
            citizen.goto(server.url + "/")
            log = citizen.get_by_role("log")
            box = citizen.get_by_label("Câu hỏi của bạn")
            box.fill(QUESTION)
            box.press("Enter")
            expect(log.locator(".msg.bot").last).to_contain_text("chưa tìm thấy câu trả lời")

            # --- an officer signs in and sees the declined question, grouped with the other one
            officer = browser.new_context().new_page()
            officer.goto(server.url + "/console/")
            expect(officer).to_have_url(server.url + "/console/login")
            officer.get_by_label("Tên đăng nhập").fill("canbo")
            officer.get_by_label("Mật khẩu").fill("mat-khau-can-bo-1")
            officer.get_by_role("button", name="Đăng nhập").click()
            expect(officer.get_by_role("heading", level=1)).to_contain_text("Tổng quan")
            officer.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
            nav(officer, "Câu hỏi chưa trả lời")
            group = officer.locator("article.group").first
            expect(group).to_contain_text("thời tiết")
            expect(group).to_contain_text("2 công dân")
            officer.screenshot(path=str(tmp_path / "unanswered.png"), full_page=True)
            group.get_by_label("Câu trả lời gửi công dân").fill(REPLY)
            group.get_by_label("Chủ đề (cho bản nháp hỏi–đáp)").select_option("lien-he-gio-lam-viec")
            group.get_by_role("button", name="Gửi trả lời và tạo bản nháp hỏi–đáp").click()
            expect(officer.get_by_role("status")).to_contain_text("Đã gửi trả lời tới 2 công dân")
            expect(officer.get_by_role("status")).to_contain_text("bản nháp hỏi–đáp số")

            # --- the reply reaches the fake channel (outbox worker) and the web chat (page polling)
            deadline = time.monotonic() + 15
            while not server.fake.sent and time.monotonic() < deadline:
                time.sleep(0.1)
            assert server.fake.sent and server.fake.sent[0][0] == "f-1" and REPLY in server.fake.sent[0][1]
            citizen.reload()
            expect(log.locator(".msg.officer")).to_contain_text("Đài Khí tượng Thủy văn")

            # --- an officer may not approve; an administrator does
            nav(officer, "Tri thức")
            expect(officer.get_by_role("button", name="Dựng lại chỉ mục")).to_have_count(0)
            officer.get_by_role("button", name="Đăng xuất").click()
            officer.get_by_label("Tên đăng nhập").fill("quantri")
            officer.get_by_label("Mật khẩu").fill("mat-khau-quan-tri-1")
            officer.get_by_role("button", name="Đăng nhập").click()
            nav(officer, "Tri thức")
            officer.get_by_role("link", name="#1").click()
            expect(officer.get_by_label("Câu hỏi", exact=True)).to_have_value(QUESTION)
            officer.get_by_label("Căn cứ pháp lý (mỗi dòng một văn bản)").fill("Quy chế tiếp công dân của Sở")
            officer.get_by_label("Áp dụng từ ngày").fill("2026-01-01")
            officer.get_by_role("button", name="Duyệt vào cơ sở tri thức").click()
            expect(officer.get_by_role("status")).to_contain_text("lien-he-gio-lam-viec-hoi-dap-1")

            # --- rebuild in the background (progress on the page), then switch
            old = server.dialogue.holder.version
            officer.get_by_role("button", name="Dựng lại chỉ mục").click()
            switch = officer.get_by_role("button", name="Chuyển sang phiên bản mới")
            expect(switch).to_be_visible(timeout=60000)
            expect(officer.locator("#rebuild-progress")).to_have_attribute("value", "100")
            switch.click()
            expect(officer.get_by_role("status")).to_contain_text("Trợ lý đang dùng phiên bản")
            new = server.dialogue.holder.version
            assert new != old and store.active_kb_version() == new
            expect(officer.locator("#dang-phuc-vu")).to_have_text(new or "")
            officer.screenshot(path=str(tmp_path / "knowledge.png"), full_page=True)

            # --- the same question is now answered by the assistant
            box.fill(QUESTION)
            box.press("Enter")
            expect(log.locator(".msg.bot").last).to_contain_text("Đài Khí tượng Thủy văn")
            expect(log.locator(".msg.bot").last.get_by_role("button", name="👍 Hữu ích")).to_be_visible()

            # --- the dashboard counts it all
            nav(officer, "Tổng quan")
            expect(officer.locator("#kpi-questions")).to_have_text("3")
            officer.screenshot(path=str(tmp_path / "dashboard-after.png"), full_page=True)
        finally:
            browser.close()
