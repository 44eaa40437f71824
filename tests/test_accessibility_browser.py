"""axe-core (vendored, tests/vendor/axe-core) on the chat page and every console page, in Debian's Chromium:
0 violations of the WCAG 2.0/2.1 A and AA rules and axe's best practices. Screenshots go to var/screenshots/."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.messages import Incoming
from bot.storage import Storage
from handlers.console.security import hash_password
from handlers.server import create_app
from indexer.documents.importer import import_paths
from tests.browser import ARGS, AXE, CHROMIUM, PHONE, axe_violations, shot
from tests.support import make_dialogue, make_settings, serve_in_thread

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is missing"),
    pytest.mark.parametrize("db_url", ["sqlite"], indirect=True),
]
DEPT = "Sở Lao động – Thương binh và Xã hội tỉnh Thử Nghiệm"
DOCS = Path(__file__).parent / "data" / "documents"


@pytest.fixture
def site(store: Storage, migrated_url: str, tmp_path: Path, mini_kb: Path) -> Iterator[dict[str, Any]]:
    settings = make_settings(tmp_path, mini_kb, database_url=migrated_url, department={"dept_name": DEPT},
                             console={"secure_cookies": False, "group_threshold": 0.6},
                             serve={"reload_seconds": 3600})
    dialogue = make_dialogue(store, settings)
    import_paths([DOCS / "quyet-dinh-123.md"], mini_kb)  # one document for the documents page
    store.users.add("quantri", hash_password("mat-khau-quan-tri-1"), "admin")
    for chat, q in [("w1", "Hôm nay thời tiết Hà Nội thế nào?"), ("w2", "hom nay thoi tiet ha noi the nao vay"),
                    ("w3", "giá vàng hôm nay")]:
        dialogue.handle(Incoming("web", chat, text=q))
    dialogue.handle(Incoming("web", "w4", text="Trợ cấp thất nghiệp được hưởng bao nhiêu tiền một tháng?"))
    dialogue.handle(Incoming("web", "w4", payload="fb:0"))
    fid = store.followups.create("web", "w4", "Nguyễn Văn An", "0912345678", "Hỏi về trợ cấp thất nghiệp")
    draft = store.drafts.create(question="Giờ làm việc của Sở?", paraphrases=[], answer="Sáng 7h30.",
                                topic=None, author="quantri", unanswered_ids=[])
    app = create_app(settings, dialogue, channels=[])
    with serve_in_thread(app) as base:
        yield {"url": base, "fid": fid, "draft": draft, "holder": dialogue.holder}


CONTRAST = """sel => { const el = document.querySelector(sel); const cs = getComputedStyle(el);
  const rgb = c => c.match(/[\\d.]+/g).slice(0, 3).map(Number);
  const lum = c => { const v = rgb(c).map(x => { x /= 255; return x <= 0.03928 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4; });
                     return 0.2126 * v[0] + 0.7152 * v[1] + 0.0722 * v[2]; };
  const a = lum(cs.color), b = lum(cs.backgroundColor);
  return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05); }"""
"""The contrast ratio of an element's text on its own (opaque) background."""


def check(page: Any, name: str) -> None:
    found = axe_violations(page)
    shot(page, name, full_page=True)
    assert found == [], f"{name}: {found}"


def test_axe_on_the_chat_and_every_console_page(site: dict[str, Any]) -> None:
    from playwright.sync_api import expect, sync_playwright

    assert AXE.exists() and (AXE.parent / "LICENSE").exists()
    base = site["url"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            # --- the citizen's chat on a phone: first screen, then a conversation with every kind of message
            chat = browser.new_context(viewport=PHONE, bypass_csp=True).new_page()
            chat.goto(base + "/")
            check(chat, "a11y-chat-first-screen")
            # the checker finds what it should: an image without a text alternative, low contrast
            chat.evaluate("""() => { const d = document.createElement('div'); d.id = 'probe';
                d.innerHTML = '<img src="x.png"><p style="color:#bbb;background:#fff">mờ</p>';
                document.body.appendChild(d); }""")
            assert {v["id"] for v in axe_violations(chat)} >= {"image-alt", "color-contrast"}
            chat.evaluate("() => document.getElementById('probe').remove()")
            box = chat.get_by_label("Câu hỏi của bạn")
            for n, q in enumerate(("liệt sĩ thất nghiệp", "Trợ cấp thất nghiệp được hưởng bao nhiêu tiền một tháng?")):
                box.fill(q)
                box.press("Enter")
                expect(chat.locator(".msg.bot")).to_have_count(n + 2)  # the welcome, then one reply each
            chat.locator(".msg.bot").last.get_by_role("button", name="Xem chi tiết").click()
            expect(chat.get_by_role("button", name="Xem thêm")).to_be_visible()
            chat.route("**/api/chat", lambda route: route.abort())
            box.fill("mất mạng")
            box.press("Enter")
            expect(chat.get_by_role("button", name="Thử lại")).to_be_visible()
            chat.unroute("**/api/chat")
            check(chat, "a11y-chat-conversation")

            # --- the console, signed in as an administrator (who sees every page)
            page = browser.new_context(viewport={"width": 1280, "height": 800}, bypass_csp=True).new_page()
            page.goto(base + "/console/login")
            check(page, "a11y-console-login")
            page.get_by_label("Tên đăng nhập").fill("quantri")
            page.get_by_label("Mật khẩu").fill("mat-khau-quan-tri-1")
            page.get_by_role("button", name="Đăng nhập").click()
            expect(page.get_by_role("heading", level=1)).to_contain_text("Tổng quan")
            check(page, "a11y-console-dashboard")
            ratio = page.evaluate(CONTRAST, "nav a[aria-current=page]")
            assert ratio >= 4.5, ratio  # the current menu item (was 4.24:1)
            page.goto(base + "/console/unanswered")
            for summary in page.locator("li.group summary").all():
                summary.click()
            check(page, "a11y-console-unanswered")
            page.locator("li.group").first.get_by_label("Câu trả lời gửi công dân").fill("Xin lỗi, chưa có.")
            page.locator("li.group").first.get_by_role("button", name="Gửi trả lời", exact=True).click()
            expect(page.get_by_role("heading", level=1)).to_contain_text("Gửi trả lời tới")
            check(page, "a11y-console-confirm-reply")
            for path, name in [("/console/followups", "followups"), (f"/console/followups/{site['fid']}", "ticket"),
                               ("/console/knowledge", "knowledge"),
                               (f"/console/knowledge/confirm?version={site['holder'].version}", "switch-confirm"),
                               (f"/console/knowledge/drafts/{site['draft']}", "draft"),
                               ("/console/documents", "documents"),
                               ("/console/documents/passages?so=123/QĐ-SLĐTBXH", "document-passages"),
                               ("/console/documents/retire?so=123/QĐ-SLĐTBXH", "document-retire"),
                               ("/console/dossiers", "dossiers"), ("/console/users", "users"),
                               ("/console/audit", "audit")]:
                page.goto(base + path)
                expect(page.get_by_role("heading", level=1)).not_to_have_text(re.compile("^$"))
                check(page, f"a11y-console-{name}")
            page.goto(base + "/console/dossiers")
            page.get_by_label("Tệp xuất").set_input_files(str(Path(__file__).parent / "data" / "dossiers" / "messy.csv"))
            page.get_by_role("button", name="Xem trước").click()
            expect(page.get_by_role("heading", name=re.compile("Xem trước tệp messy.csv"))).to_be_visible()
            check(page, "a11y-console-dossier-preview")
            page.goto(base + "/console/documents")
            page.get_by_label("Tệp văn bản (chọn được nhiều tệp)").set_input_files(
                [str(DOCS / "quyet-dinh-123.html"), str(DOCS / "ban-scan.pdf")])
            page.get_by_role("button", name="Tải lên và nhập").click()
            expect(page.get_by_role("table", name=re.compile("Kết quả nhập"))).to_contain_text("Lỗi, không nhập")
            check(page, "a11y-console-documents-upload")
        finally:
            browser.close()
