"""The whole loop in a real headless Chromium (Debian's /usr/bin/chromium) against uvicorn on 127.0.0.1:

a citizen's question is declined in the web chat (and the same question arrives on a fake channel);
an officer signs in to the console, sees it grouped, answers once and makes a draft; the reply reaches
the web chat (through the web outbox) and the fake channel (through the outbox worker); an
administrator approves the draft, rebuilds the index, switches to it; the same question is then answered
by the assistant itself.

Install: ``apt-get install -y chromium chromium-driver``; ``playwright install`` is never needed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.config import Settings
from bot.dialogue import Dialogue
from bot.messages import Incoming
from bot.storage import Storage
from handlers.console.security import hash_password
from handlers.server import create_app
from indexer.index import current_version
from tests.browser import ARGS, CHROMIUM, shot
from tests.fakes import FakeChannel
from tests.support import make_dialogue, make_settings, serve_in_thread

DEPT = "Sở Lao động – Thương binh và Xã hội tỉnh Thử Nghiệm"
QUESTION = "Hôm nay thời tiết Hà Nội thế nào?"
REPLY = "Trợ lý của Sở không dự báo thời tiết; bạn xem bản tin của Đài Khí tượng Thủy văn tỉnh nhé."

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="/usr/bin/chromium is missing: apt-get install -y chromium chromium-driver")


@dataclass
class Server:
    url: str
    settings: Settings
    dialogue: Dialogue
    fake: FakeChannel


def nav(page: Any, name: str) -> None:
    """Follow a menu item (its name may end with the unread count, "Câu hỏi chưa trả lời 4 mới")."""
    link = re.compile("^" + re.escape(name) + r"( \d+ mới)?$")
    page.get_by_role("navigation", name="Chức năng").get_by_role("link", name=link).click()


@pytest.fixture
def server(store: Storage, migrated_url: str, tmp_path: Path, mini_kb: Path) -> Iterator[Server]:
    settings = make_settings(
        tmp_path, mini_kb, database_url=migrated_url, department={"dept_name": DEPT},
        console={"secure_cookies": False, "group_threshold": 0.6,  # plain http on 127.0.0.1 in the test
                 "refresh_seconds": 5},
        serve={"reload_seconds": 3600, "outbox_poll_seconds": 0.2})
    dialogue = make_dialogue(store, settings)
    store.users.add("canbo", hash_password("mat-khau-can-bo-1"), "officer")
    store.users.add("quantri", hash_password("mat-khau-quan-tri-1"), "admin")
    fake = FakeChannel()
    app = create_app(settings, dialogue, channels=[fake])
    with serve_in_thread(app) as base:
        yield Server(base, settings, dialogue, fake)


def test_declined_question_answered_in_the_console_then_by_the_assistant(server: Server, store: Storage,
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
            shot(officer, "console-dashboard", full_page=True)
            nav(officer, "Câu hỏi chưa trả lời")
            group = officer.locator("li.group").first
            expect(group).to_contain_text("thời tiết")
            expect(group).to_contain_text("2 công dân")
            shot(officer, "console-unanswered", full_page=True)
            group.locator("summary").click()
            group.get_by_label("Câu trả lời gửi công dân").fill(REPLY)
            group.get_by_label("Chủ đề (cho bản nháp hỏi–đáp)").select_option("lien-he-gio-lam-viec")
            group.get_by_role("button", name="Gửi trả lời và tạo bản nháp hỏi–đáp").click()
            # nothing is sent before the officer sees who receives it
            recipients = officer.get_by_role("table", name="Người nhận (2)")
            expect(recipients.locator("tbody tr")).to_have_count(2)
            expect(recipients).to_contain_text("Web")
            expect(recipients).to_contain_text("fake")
            assert not server.fake.sent
            shot(officer, "console-confirm-recipients", full_page=True)
            officer.get_by_role("button", name="Xác nhận gửi tới 2 công dân").click()
            expect(officer.get_by_role("status")).to_contain_text("Đã xếp hàng gửi trả lời tới 2 công dân")
            expect(officer.get_by_role("status")).to_contain_text("bản nháp hỏi–đáp số")

            # --- the reply reaches the fake channel (outbox worker) and the web chat (page polling)
            assert server.fake.sent_event.wait(15)
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
            expect(officer.locator("#muc-added")).to_contain_text("lien-he-gio-lam-viec-hoi-dap-1")
            shot(officer, "console-switch-confirm", full_page=True)
            assert server.dialogue.holder.version == old  # nothing switched before the confirmation
            officer.get_by_role("button", name=re.compile("Xác nhận chuyển sang")).click()
            expect(officer.get_by_role("status")).to_contain_text("Trợ lý đang dùng phiên bản")
            new = server.dialogue.holder.version
            assert new != old and current_version(server.settings.index_root) == new
            expect(officer.locator("#dang-phuc-vu")).to_have_text(new or "")
            shot(officer, "console-knowledge", full_page=True)

            # --- the same question is now answered by the assistant
            box.fill(QUESTION)
            box.press("Enter")
            expect(log.locator(".msg.bot").last).to_contain_text("Đài Khí tượng Thủy văn")
            expect(log.locator(".msg.bot").last.get_by_role("button", name="👍 Hữu ích")).to_be_visible()

            # --- the dashboard: citizens' channels by default (the fake channel is test traffic), filters
            nav(officer, "Tổng quan")
            expect(officer.locator("#kpi-questions")).to_have_text("2")
            expect(officer.locator("#mau-nho")).to_contain_text("Mẫu nhỏ")
            officer.get_by_label("Tính cả lưu lượng thử nghiệm, dòng lệnh").check()
            officer.get_by_role("button", name="Xem").click()
            expect(officer.locator("#kpi-questions")).to_have_text("3")
            officer.get_by_label("Kênh").select_option("telegram")
            officer.get_by_role("button", name="Xem").click()
            expect(officer.locator("#kpi-questions")).to_have_text("0")
            expect(officer.locator("#pham-vi")).to_contain_text("Chỉ kênh Telegram")
            officer.get_by_label("Kênh").select_option("web")
            officer.get_by_label("Tính cả lưu lượng thử nghiệm, dòng lệnh").uncheck()
            officer.get_by_role("button", name="Xem").click()
            expect(officer.locator("#kpi-questions")).to_have_text("2")
            with officer.expect_download() as dl:
                officer.get_by_role("link", name="Excel (XLSX, mọi bảng)").click()
            assert dl.value.suggested_filename.endswith(".xlsx")
            shot(officer, "console-dashboard-after", full_page=True)
        finally:
            browser.close()


def _sign_in(page: Any, base: str, user: str = "canbo", password: str = "mat-khau-can-bo-1") -> None:
    page.goto(base + "/console/login")
    page.get_by_label("Tên đăng nhập").fill(user)
    page.get_by_label("Mật khẩu").fill(password)
    page.get_by_role("button", name="Đăng nhập").click()


def test_triage_bulk_dismiss_undo_split_and_one_draft(server: Server, store: Storage) -> None:
    from playwright.sync_api import expect, sync_playwright

    d = server.dialogue
    for chat, q in [("a1", QUESTION), ("a2", "hom nay thoi tiet ha noi the nao vay"), ("a3", "giá vàng hôm nay"),
                    ("a4", "kết quả xổ số miền nam chiều nay"), ("a5", "mua vé máy bay đi Đà Nẵng ở đâu rẻ")]:
        assert d.handle(Incoming("web", chat, text=q))[0].kind == "fallback"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            _sign_in(page, server.url)
            nav(page, "Câu hỏi chưa trả lời")
            rows = page.locator("li.group")
            expect(rows).to_have_count(4)
            expect(page.locator("#unread-unanswered")).to_have_text("5 mới")  # in the menu
            # a new question arrives while the officer works: the count follows, the page stays
            d.handle(Incoming("telegram", "t9", text="đội tuyển bóng đá tối nay đá mấy giờ"))
            expect(page.locator("#unread-unanswered")).to_have_text("6 mới", timeout=15000)
            expect(page.locator("#fresh")).to_contain_text("Có 1 câu hỏi chưa trả lời mới")
            expect(rows).to_have_count(4)
            page.locator("#fresh").get_by_role("link", name="Tải lại trang").click()
            expect(rows).to_have_count(5)
            expect(page.locator("li.group", has_text="bóng đá")).to_have_count(1)
            box = rows.first.bounding_box()
            assert box and box["height"] < 80  # one compact line per group

            # --- bulk: two groups dismissed at once, then undone
            gold = page.locator("li.group", has_text="giá vàng")
            lottery = page.locator("li.group", has_text="xổ số")
            gold.get_by_role("checkbox").check()
            lottery.get_by_role("checkbox").check()
            page.get_by_role("button", name="Bỏ qua", exact=True).click()
            expect(page.get_by_role("status")).to_contain_text("Đã bỏ qua 2 câu hỏi")
            expect(rows).to_have_count(3)
            page.get_by_role("button", name="Hoàn tác").click()
            expect(page.get_by_role("status")).to_contain_text("Đã đưa 2 câu hỏi trở lại hàng chờ")
            expect(rows).to_have_count(5)
            # "ngoài thẩm quyền" for one
            page.locator("li.group", has_text="máy bay").get_by_role("checkbox").check()
            page.get_by_role("button", name="Ngoài thẩm quyền").click()
            expect(page.get_by_role("status")).to_contain_text("1 câu hỏi ngoài thẩm quyền")
            assert [u.status for u in store.requests.list_unanswered(status="out_of_scope")] == ["out_of_scope"]

            # --- assign: the lottery group to the officer signed in, then "Của tôi" shows only it
            page.locator("li.group", has_text="xổ số").get_by_role("checkbox").check()
            expect(page.get_by_label("Giao cho", exact=True)).to_have_value("canbo")
            page.get_by_role("button", name="Giao", exact=True).click()
            expect(page.get_by_role("status")).to_contain_text("Đã giao 1 câu hỏi cho canbo")
            expect(page.locator("li.group", has_text="xổ số")).to_contain_text("Giao cho canbo")
            page.get_by_role("checkbox", name=re.compile("Của tôi")).check()
            page.get_by_role("button", name="Lọc").click()
            expect(rows).to_have_count(1)
            expect(rows.first).to_contain_text("xổ số")
            page.goto(server.url + "/console/unanswered")
            expect(rows).to_have_count(4)

            # --- split: the weather group's second wording becomes a group of its own
            weather = page.locator("li.group", has_text="thời tiết").first
            expect(weather).to_contain_text("2 câu hỏi")
            weather.locator("summary").click()
            weather.get_by_role("checkbox", name=re.compile("the nao vay")).check()
            weather.get_by_role("button", name="Tách thành nhóm riêng").click()
            expect(page.get_by_role("status")).to_contain_text("Đã tách 1 câu hỏi")
            expect(page.locator("li.group", has_text=re.compile("thời tiết|thoi tiet"))).to_have_count(2)
            expect(rows).to_have_count(5)

            # --- answer one group, then a double click on "Tạo bản nháp" makes one draft
            g = page.locator("li.group", has_text="giá vàng")
            g.locator("summary").click()
            g.get_by_label("Câu trả lời gửi công dân").fill("Sở không có thông tin giá vàng.")
            g.get_by_role("button", name="Gửi trả lời", exact=True).click()
            expect(page.get_by_role("table", name="Người nhận (1)")).to_contain_text("giá vàng hôm nay")
            page.get_by_role("button", name="Xác nhận gửi tới 1 công dân").click()
            expect(page.get_by_role("status")).to_contain_text("Đã xếp hàng gửi trả lời tới 1 công dân")
            page.get_by_label("Trạng thái").select_option("answered")
            page.get_by_role("button", name="Lọc").click()
            answered = page.locator("li.group", has_text="giá vàng")
            answered.locator("summary").click()
            answered.get_by_role("button", name="Tạo bản nháp hỏi–đáp").dblclick()
            expect(page.get_by_role("status")).to_contain_text("bản nháp hỏi–đáp số")
            assert len(store.drafts.recent()) == 1
            # a second attempt (another tab, a stale page) gets the same draft
            page.goto(server.url + "/console/unanswered?status=answered")
            answered = page.locator("li.group", has_text="giá vàng")
            answered.locator("summary").click()
            answered.get_by_role("button", name="Tạo bản nháp hỏi–đáp").click()
            expect(page.get_by_role("status")).to_contain_text("đã có bản nháp hỏi–đáp số")
            assert len(store.drafts.recent()) == 1
        finally:
            browser.close()
