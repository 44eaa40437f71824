"""The web chat page in a real headless Chromium (Debian's /usr/bin/chromium) against uvicorn.

Install: ``apt-get install -y chromium chromium-driver`` (``.ci/run`` does it); the Python ``playwright``
package drives it (``playwright install`` is never needed: the system browser is used).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.storage import Storage
from bot.storage.models import RequestLog
from handlers.server import create_app
from tests.browser import ARGS, CHROMIUM, PHONE, shot
from tests.support import make_dialogue, make_settings, serve_in_thread

DEPT = "Sở Lao động – Thương binh và Xã hội tỉnh Thử Nghiệm"

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="/usr/bin/chromium is missing: apt-get install -y chromium chromium-driver",
)


@pytest.fixture
def server(store: Storage, migrated_url: str, tmp_path: Path, mini_kb: Path) -> Iterator[str]:
    settings = make_settings(tmp_path, mini_kb, database_url=migrated_url, department={"dept_name": DEPT},
                             serve={"reload_seconds": 3600})
    dialogue = make_dialogue(store, settings)
    app = create_app(settings, dialogue, channels=[])
    with serve_in_thread(app) as base:
        yield base + "/"


def test_ask_choose_and_feedback_in_the_browser(server: str, store: Storage) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"],
        )
        try:
            page = browser.new_page(viewport={"width": 360, "height": 640})  # a small phone
            # the page polls for officers' messages once it has restored the history; wait for that first
            # poll, or it could pick up (and acknowledge) the message queued below before the reload does
            with page.expect_response(lambda r: r.url.endswith("/messages")):
                page.goto(server)
            expect(page).to_have_title(f"Trợ lý ảo – {DEPT}")
            expect(page.locator("header")).to_contain_text(DEPT)
            log = page.get_by_role("log")
            expect(log).to_have_attribute("aria-live", "polite")

            # an officer's reply queued for this browser's chat shows up (the page polls on load)
            chat_id = page.evaluate("window.localStorage.getItem('ldtbxh_chat_id')")
            assert chat_id and chat_id.startswith("w")
            store.outbox.enqueue("web", chat_id, "Cán bộ: hồ sơ của bạn đã được tiếp nhận.")
            with page.expect_response(lambda r: r.url.endswith("/messages/ack")) as acked:
                page.reload()
            assert acked.value.json() == {"acknowledged": 1}  # shown, then acknowledged by the page
            assert page.evaluate("window.localStorage.getItem('ldtbxh_chat_id')") == chat_id
            expect(log.locator(".msg.officer")).to_contain_text("hồ sơ của bạn đã được tiếp nhận")
            expect(log.locator(".msg.officer")).to_have_count(1)
            assert store.outbox.pending_for_chat("web", chat_id) == []

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
    assert not store.outbox.due("web")  # the officer's message was delivered to the page


def test_a_lost_answer_and_thu_lai_give_one_answer(server: str, store: Storage) -> None:
    """The server answers but the answer never reaches the page (the network drops it): the page offers
    "Thử lại", which sends the same message id, and gets the stored answer; the question is answered once."""
    import json

    from playwright.sync_api import Route, expect, sync_playwright
    from sqlalchemy import select

    from bot.storage.models import RequestLog

    bodies: list[dict[str, str]] = []

    def flaky(route: Route) -> None:
        bodies.append(json.loads(route.request.post_data or "{}"))
        if len(bodies) == 1:
            route.fetch()  # the server receives and answers it ...
            route.abort("connectionreset")  # ... and the answer is lost on the way back
        else:
            route.continue_()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM),
                                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            page = browser.new_page()
            page.route("**/api/chat", flaky)
            page.goto(server)
            log = page.get_by_role("log")
            box = page.get_by_label("Câu hỏi của bạn")
            box.fill("Trợ cấp thất nghiệp được hưởng bao nhiêu tiền một tháng?")
            box.press("Enter")
            retry = log.get_by_role("button", name="Thử lại")
            expect(retry).to_be_visible()
            retry.click()
            expect(log.locator(".msg.bot", has=page.get_by_role("button", name="Xem chi tiết"))).to_have_count(1)
        finally:
            browser.close()
    assert len(bodies) == 2 and bodies[0]["message_id"] == bodies[1]["message_id"]
    assert len(bodies[0]["message_id"]) == 36
    with store.db.transaction() as s:
        asked = [r.question for r in s.scalars(select(RequestLog))]
    assert asked.count("Trợ cấp thất nghiệp được hưởng bao nhiêu tiền một tháng?") == 1


# --- the citizen's fixes on a 360×640 phone (SQLite only: the page, not the database, is under test) -----

@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def phone(chromium: Any, server: str) -> Iterator[Any]:
    context = chromium.new_context(viewport=PHONE)
    page = context.new_page()
    page.goto(server)
    try:
        yield page
    finally:
        context.close()


def ask(page: Any, text: str) -> None:
    box = page.get_by_label("Câu hỏi của bạn")
    box.fill(text)
    box.press("Enter")


SQLITE = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@SQLITE
def test_reload_keeps_the_conversation_with_the_officers_reply(phone: Any, store: Storage) -> None:
    from playwright.sync_api import expect

    log = phone.get_by_role("log")
    chat_id = phone.evaluate("window.localStorage.getItem('ldtbxh_chat_id')")
    assert re.fullmatch(r"w[0-9a-f]{32}", chat_id)  # 128 random bits
    ask(phone, "liệt sĩ thất nghiệp")
    choices = log.locator(".msg.bot", has_text="Bạn muốn hỏi về")
    expect(choices.get_by_role("button", name="Không phải các ý trên")).to_be_visible()
    choices.get_by_role("button", name="Giải quyết hưởng trợ cấp thất nghiệp").click()
    expect(log.locator(".msg.bot")).to_have_count(3)  # welcome, choices, answer
    store.outbox.enqueue("web", chat_id, "Cán bộ: hồ sơ của bạn đã được tiếp nhận.")
    with phone.expect_response(lambda r: r.url.endswith("/messages/ack")):
        phone.reload()
    expect(log.locator(".msg.officer")).to_contain_text("đã được tiếp nhận")
    phone.reload()  # the officer's message is now part of the kept conversation
    expect(log.locator(".msg.user")).to_have_count(2)
    expect(log.locator(".msg.user").first).to_have_text(re.compile("liệt sĩ thất nghiệp"))
    expect(log.locator(".msg.officer")).to_have_count(1)
    restored = log.locator(".msg.bot").nth(1)
    expect(restored.get_by_role("button", name="Không phải các ý trên")).to_be_disabled()  # used list
    expect(log.locator(".msg.bot").last.get_by_role("button", name="👍 Hữu ích")).to_be_enabled()
    shot(phone, "chat-restored")


@SQLITE
def test_a_network_error_keeps_the_text_and_offers_a_retry(phone: Any, store: Storage) -> None:
    from playwright.sync_api import expect

    log = phone.get_by_role("log")
    phone.route("**/api/chat", lambda route: route.abort("internetdisconnected"))
    question = "Trợ cấp thất nghiệp được hưởng bao nhiêu tiền một tháng?"
    ask(phone, question)
    retry = log.get_by_role("button", name="Thử lại")
    expect(retry).to_be_visible()
    expect(log.locator(".msg.error").last).to_contain_text("mất kết nối")
    expect(phone.get_by_label("Câu hỏi của bạn")).to_have_value(question)  # nothing lost
    shot(phone, "chat-retry")
    phone.unroute("**/api/chat")
    retry.click()
    expect(log.locator(".msg.bot").last).to_contain_text("tháng")
    expect(log.get_by_role("button", name="Thử lại")).to_have_count(0)
    expect(phone.get_by_label("Câu hỏi của bạn")).to_have_value("")
    chat_id = phone.evaluate("window.localStorage.getItem('ldtbxh_chat_id')")
    assert [x.role for x in store.transcripts.history("web", chat_id)] == ["user", "bot"]


@SQLITE
def test_a_lost_answer_retried_is_answered_once(phone: Any, store: Storage, server: str) -> None:
    """The request reached the server but its answer was lost: the retry (same client id) gets the same
    answer, and the question is handled once."""
    from playwright.sync_api import expect

    def lose_answer(route: Any) -> None:
        route.fetch()  # the server handles it...
        route.abort("connectionreset")  # ...and the page never hears back

    log = phone.get_by_role("log")
    phone.route("**/api/chat", lose_answer)
    ask(phone, "mức chuẩn trợ cấp người có công là bao nhiêu")
    retry = log.get_by_role("button", name="Thử lại")
    expect(retry).to_be_visible()
    phone.unroute("**/api/chat")
    retry.click()
    expect(log.locator(".msg.bot").last).to_contain_text("2.789.000")
    chat_id = phone.evaluate("window.localStorage.getItem('ldtbxh_chat_id')")
    assert [x.role for x in store.transcripts.history("web", chat_id)] == ["user", "bot"]
    with store.db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(RequestLog)) == 1  # handled once


@SQLITE
def test_rephrase_after_none_of_the_above(phone: Any) -> None:
    from playwright.sync_api import expect

    log = phone.get_by_role("log")
    ask(phone, "liệt sĩ thất nghiệp")
    choices = log.locator(".msg.bot", has_text="Bạn muốn hỏi về")
    choices.get_by_role("button", name="Không phải các ý trên").click()
    invite = log.locator(".msg.bot", has_text="hỏi lại bằng cách khác")
    expect(invite).to_contain_text("hỏi lại bằng cách khác")
    expect(invite.get_by_role("button", name="Gặp cán bộ")).to_be_visible()
    expect(choices.get_by_role("button", name="Giải quyết hưởng trợ cấp thất nghiệp")).to_be_disabled()
    ask(phone, "Trợ cấp thất nghiệp được hưởng bao nhiêu tiền một tháng?")
    answer = log.locator(".msg.bot").last
    expect(answer.get_by_role("button", name="Xem chi tiết")).to_be_visible()
    expect(log).not_to_contain_text("Cảm ơn anh/chị")


@SQLITE
def test_thank_you_is_refused_as_a_name(phone: Any) -> None:
    from playwright.sync_api import expect

    log = phone.get_by_role("log")
    chips = log.get_by_role("group", name="Gợi ý để bắt đầu")
    expect(chips.get_by_role("button")).to_have_count(5)
    shot(phone, "chat-first-screen")
    chips.get_by_role("button", name="Gặp cán bộ").click()
    expect(chips.get_by_role("button", name="Gặp cán bộ")).to_be_disabled()
    expect(log.locator(".msg.bot").last).to_contain_text("họ và tên")
    ask(phone, "xin cảm ơn")
    last = log.locator(".msg.bot").last
    expect(last).to_contain_text("cho mình xin họ và tên")
    expect(log).not_to_contain_text("Cảm ơn anh/chị Xin")
    ask(phone, "Nguyễn Văn An")
    expect(log.locator(".msg.bot").last).to_contain_text("Cảm ơn anh/chị Nguyễn Văn An")


@SQLITE
def test_long_reply_folded_scrolled_to_its_start_with_a_typing_indicator(phone: Any) -> None:
    from playwright.sync_api import expect

    log = phone.get_by_role("log")
    gate: list[Any] = []
    phone.route("**/api/chat", lambda route: gate.append(route))
    ask(phone, "Trợ cấp thất nghiệp được hưởng bao nhiêu tiền một tháng?")
    expect(log.locator(".msg.typing")).to_be_visible()
    expect(phone.get_by_role("status")).to_contain_text("đang trả lời")
    phone.wait_for_function("() => true")
    gate.pop().continue_()
    expect(log.locator(".msg.typing")).to_have_count(0)
    phone.unroute("**/api/chat")
    answer = log.locator(".msg.bot").last
    answer.get_by_role("button", name="Xem chi tiết").click()
    details = log.locator(".msg.bot").last
    expect(details).to_contain_text("Thành phần hồ sơ")
    more = details.get_by_role("button", name="Xem thêm")
    expect(more).to_have_attribute("aria-expanded", "false")
    # the reply's first line is in view: the log scrolled to its start, not its end
    top, at_end = phone.evaluate("""() => { const l = document.getElementById('log'); const m = l.lastElementChild;
        return [m.offsetTop - l.scrollTop, l.scrollTop >= l.scrollHeight - l.clientHeight - 1]; }""")
    assert top >= 0 and (top <= 12 or at_end), top
    shot(phone, "chat-long-answer")
    more.click()
    expect(details.get_by_role("button", name="Thu gọn")).to_have_attribute("aria-expanded", "true")


# --- 150 % zoom and a slow network (issue 14: "also at 150 % zoom and on a slow network") ----------------

ZOOM_150 = {"width": 240, "height": 427}
"""A 360×640 phone at 150 % zoom: the CSS viewport is the screen divided by 1.5."""
SLOW = {"offline": False, "latency": 400, "downloadThroughput": 50 * 1024, "uploadThroughput": 50 * 1024}
"""Chromium's network emulation (CDP ``Network.emulateNetworkConditions``): 400 ms latency, 50 KB/s."""

OVERFLOW_JS = """() => {
  const w = document.documentElement.clientWidth;
  const out = [];
  for (const el of document.body.querySelectorAll('*')) {
    const r = el.getBoundingClientRect();
    if (!r.width || !r.height || getComputedStyle(el).clip === 'rect(0px, 0px, 0px, 0px)') continue;
    // wholly off to the left is a hidden skip link (it shows on focus), not a cut-off element
    if ((r.left < -1 && r.right > 0) || r.right > w + 1) out.push(el.tagName + '.' + el.className + ' ' + Math.round(r.left) + '..' + Math.round(r.right));
  }
  return {width: w, scrollWidth: document.documentElement.scrollWidth, bodyScrollWidth: document.body.scrollWidth,
          overflowing: out.slice(0, 10)};
}"""


def assert_no_overflow(page: Any) -> None:
    """No horizontal scrolling: the page is no wider than the viewport and no visible element sticks out."""
    m = page.evaluate(OVERFLOW_JS)
    assert m["scrollWidth"] <= m["width"] and m["bodyScrollWidth"] <= m["width"], m
    assert m["overflowing"] == [], m


def assert_in_view(page: Any, locator: Any, *, whole: bool = False) -> None:
    """The element is wholly inside the viewport's width and at least partly (``whole``: wholly) inside its
    height."""
    box = locator.bounding_box()
    size = page.viewport_size
    assert box is not None, locator
    assert box["x"] >= 0 and box["x"] + box["width"] <= size["width"] + 0.5, (box, size)
    if whole:
        assert box["y"] >= 0 and box["y"] + box["height"] <= size["height"] + 0.5, (box, size)
    else:
        assert box["y"] < size["height"] and box["y"] + box["height"] > 0, (box, size)


def first_screen(page: Any) -> None:
    """The question box, "Gửi" and the first quick-reply chips ("Tra cứu hồ sơ", "Gặp cán bộ") are wholly on
    the first screen (on a short screen the chips come above the welcome text); every chip is wholly visible
    once the conversation is scrolled to it, vertically only; nothing needs a horizontal scroll."""
    from playwright.sync_api import expect

    assert_no_overflow(page)
    box = page.get_by_label("Câu hỏi của bạn")
    expect(box).to_be_visible()
    assert_in_view(page, box, whole=True)
    assert_in_view(page, page.get_by_role("button", name="Gửi"), whole=True)
    log = page.get_by_role("log")
    chips = log.get_by_role("group", name="Gợi ý để bắt đầu")
    expect(chips.get_by_role("button")).to_have_count(5)
    log_box = log.bounding_box()
    assert log_box is not None

    def in_log(chip: Any) -> None:
        assert_in_view(page, chip, whole=True)
        box_k = chip.bounding_box()
        assert box_k and log_box["y"] <= box_k["y"] and box_k["y"] + box_k["height"] <= log_box["y"] + log_box["height"]

    for name in ("Tra cứu hồ sơ", "Gặp cán bộ"):  # without any scrolling
        in_log(chips.get_by_role("button", name=name))
    for k in range(5):
        chip = chips.get_by_role("button").nth(k)
        chip.scroll_into_view_if_needed()
        in_log(chip)
    assert page.evaluate("[window.scrollX, document.getElementById('log').scrollLeft]") == [0, 0]
    assert_no_overflow(page)
    page.evaluate("() => { document.getElementById('log').scrollTop = 0; window.scrollTo(0, 0); }")


def answer_arrives_readable(page: Any, timeout: float = 5000) -> Any:
    from playwright.sync_api import expect

    log = page.get_by_role("log")
    ask(page, "Trợ cấp thất nghiệp được hưởng bao nhiêu tiền một tháng?")
    answer = log.locator(".msg.bot", has=page.get_by_role("button", name="Xem chi tiết")).last
    expect(answer).to_contain_text("tháng", timeout=timeout)
    # readable: the reply's start is in view (scrolled to its start), its text is at least 16 CSS pixels
    # (24 device pixels at 150 %), the line is not cut off on the right
    top = page.evaluate("""() => { const l = document.getElementById('log'); const m = l.lastElementChild;
        return m.getBoundingClientRect().top - l.getBoundingClientRect().top; }""")
    assert -1 <= top <= 40, top
    size = float(answer.evaluate("el => parseFloat(getComputedStyle(el).fontSize)"))
    assert size >= 16, size
    assert_in_view(page, answer)
    assert_in_view(page, answer.get_by_role("button", name="Xem chi tiết"))
    assert_no_overflow(page)
    return answer


@SQLITE
def test_first_screen_and_an_answer_at_150_percent_zoom(chromium: Any, server: str) -> None:
    """A 360×640 phone at 150 % zoom (device scale factor 1.5, CSS viewport 240×427)."""
    context = chromium.new_context(viewport=ZOOM_150, device_scale_factor=1.5, is_mobile=True, has_touch=True)
    try:
        page = context.new_page()
        page.goto(server)
        assert page.evaluate("window.devicePixelRatio") == 1.5
        assert page.evaluate("[window.innerWidth, window.innerHeight]") == [240, 427]
        first_screen(page)
        shot(page, "chat-zoom150-first-screen")
        answer = answer_arrives_readable(page)
        shot(page, "chat-zoom150-answer")
        answer.get_by_role("button", name="Xem chi tiết").click()
        details = page.get_by_role("log").locator(".msg.bot").last
        from playwright.sync_api import expect

        expect(details).to_contain_text("Thành phần hồ sơ")
        assert_in_view(page, details.get_by_role("button", name="Xem thêm"))
        assert_no_overflow(page)
    finally:
        context.close()


@SQLITE
def test_first_screen_and_an_answer_on_a_slow_network(chromium: Any, server: str) -> None:
    """400 ms latency and 50 KB/s both ways (Chromium's own throttling, through the DevTools protocol)."""
    import time

    from playwright.sync_api import expect

    context = chromium.new_context(viewport=PHONE)
    try:
        page = context.new_page()
        cdp = context.new_cdp_session(page)
        cdp.send("Network.enable")
        cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
        cdp.send("Network.emulateNetworkConditions", SLOW)
        t0 = time.monotonic()
        page.goto(server, wait_until="commit")
        log = page.get_by_role("log")
        expect(log.get_by_role("group", name="Gợi ý để bắt đầu").get_by_role("button")).to_have_count(5,
                                                                                                   timeout=15000)
        shown = time.monotonic() - t0  # the chips are in the page itself
        page.wait_for_load_state("load", timeout=15000)  # chat.js and chat.css: the chips now work
        loaded = time.monotonic() - t0
        # the throttling is in force: the page, then its script, each at least one 400 ms round trip
        assert shown >= 0.4 and loaded >= 0.8, (shown, loaded)
        first_screen(page)
        shot(page, "chat-slow-first-screen")
        # while the answer travels the page says so, and the question stays visible
        ask(page, "Trợ cấp thất nghiệp được hưởng bao nhiêu tiền một tháng?")
        expect(log.locator(".msg.typing")).to_be_visible()
        expect(log.locator(".msg.user").last).to_contain_text("Trợ cấp thất nghiệp")
        answer = log.locator(".msg.bot", has=page.get_by_role("button", name="Xem chi tiết")).last
        expect(answer).to_contain_text("tháng", timeout=15000)
        expect(log.locator(".msg.typing")).to_have_count(0)
        expect(log.get_by_role("button", name="Thử lại")).to_have_count(0)
        assert_in_view(page, answer)
        assert_no_overflow(page)
        shot(page, "chat-slow-answer")
        print(f"slow network: chips shown after {shown:.1f} s, page loaded after {loaded:.1f} s")
    finally:
        context.close()
