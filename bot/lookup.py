"""The dossier status lookup dialogue.

A citizen sends a receipt number anywhere in a message (or first says "tra cứu hồ sơ" and is asked for
it). The assistant answers with the procedure, the status in words, the dates, whether it is overdue and
what to do next, showing the applicant's name only masked and never the phone. The officer's note and
the specific next step are shown only after the citizen types the last 4 digits of the phone on the
dossier.

Limits (counted in the database, so restarts do not reset them and every server process shares them;
``bot.storage.limits``): lookups per chat, per source (the platform user; on the web, the client address,
since a page can make up new chat ids at will), per receipt number (whoever asks) and globally, plus
unknown numbers per source (enumeration finds mostly unknown numbers). The last-4-digits check counts
wrong answers per receipt **and source**: a stranger who guesses wrong locks only themselves out; past
``lookup_verify_receipt_failures`` wrong answers for one receipt in an hour (from any source), that receipt
accepts one verification attempt per ``lookup_verify_slow_seconds``: guessing slows to a crawl, the owner
waits a minute at worst.

State kept in ``Reply.state`` (the caller stores it and passes it back)::

    {"flow": "dossier", "step": "await_receipt", "attempts": 0}
    {"flow": "dossier", "step": "await_phone4", "receipt": "H41.22-241105-0012"}
"""

from __future__ import annotations

import hmac
import logging
import re
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from typing import Any

from bot.config import Settings
from bot.dossiers.receipts import find_receipt
from bot.dossiers.sources import DossierSource, DossierSourceUnavailable
from bot.dossiers.statuses import CLOSED_STATUSES, Dossier
from bot.messages import Button, Incoming, Reply
from bot.privacy import mask_name, normalize_mobile
from bot.protocol import DOSSIER_CANCEL, DOSSIER_START, FOLLOWUP_START, ReplyKind
from bot.storage.dossiers import Dossiers
from bot.storage.limits import Limit, RateLimits, Refused
from bot.storage.models import utcnow
from indexer.diacritics import fold_words

log = logging.getLogger(__name__)

VN_TZ = timezone(timedelta(hours=7))
FLOW = "dossier"

_TRIGGERS = (
    "tra cuu ho so",
    "tra cuu tinh trang",
    "tra cuu trang thai",
    "tra cuu bien nhan",
    "tra cuu so bien nhan",
    "kiem tra ho so",
    "kiem tra tinh trang ho so",
    "tinh trang ho so",
    "trang thai ho so",
    "tien do ho so",
    "tien do giai quyet ho so",
    "ho so cua toi",
    "ho so den dau",
    "ho so toi den dau",
    "ho so da xong chua",
    "ho so xong chua",
    "ho so da co ket qua chua",
    "xem ho so",
    "theo doi ho so",
    "ho so da nop",
)
_CANCEL = frozenset({"huy", "thoi", "huy bo", "thoi khong can", "khong can nua", "dung lai", "cancel", "stop"})
_FORGOT = ("khong nho", "quen so", "khong biet", "quen roi", "doi so", "mat so")


def _norm(text: str) -> str:
    return re.sub(r"\bhs\b", "ho so", fold_words(text or ""))


def _fmt_date(d: date | datetime | None) -> str:
    return d.strftime("%d/%m/%Y") if d else "chưa có"


def _last4(phone: str | None) -> str | None:
    digits = re.sub(r"\D", "", phone or "")
    return digits[-4:] if len(digits) >= 4 else None


class DossierLookup:
    """The lookup dialogue. ``handle`` returns None when a message is not for it."""

    def __init__(self, source: DossierSource, dossiers: Dossiers, settings: Settings, *,
                 clock: Callable[[], datetime] | None = None, limits: RateLimits | None = None) -> None:
        self.source = source
        self.dossiers = dossiers
        self.limits = limits or RateLimits(dossiers.db)
        self.dept = settings.department
        self.ds = settings.dossiers
        self._clock = clock

    # --- entry points -----------------------------------------------------------------------------

    def today(self) -> date:
        return (self._clock() if self._clock else datetime.now(VN_TZ)).date()

    def wants_lookup(self, text: str) -> bool:
        """True when the message asks to look up a dossier (with or without a receipt number)."""
        if find_receipt(text, self.ds.receipt_pattern):
            return True
        n = f" {_norm(text)} "
        return any(f" {t} " in n for t in _TRIGGERS)

    def handle(self, incoming: Incoming, state: dict[str, Any] | None) -> Reply | None:
        """The reply to ``incoming`` if it belongs to the lookup dialogue, else None.

        When it returns None while ``state`` was a dossier state, the caller should treat the dossier flow as
        over (the citizen moved on to another question).
        """
        flow = (state or {}).get("flow")
        if flow == "followup":
            return None  # the citizen is in the middle of a follow-up request
        in_flow = flow == FLOW
        text = (incoming.text or "").strip()
        payload = incoming.payload or ""

        if payload == DOSSIER_CANCEL or (in_flow and _norm(text) in _CANCEL):
            return Reply(
                "Dạ, mình đã dừng tra cứu hồ sơ. Anh/chị cần hỗ trợ gì thêm cứ nhắn cho mình nhé.",
                kind=ReplyKind.DOSSIER,
                state=None,
            )
        receipt = find_receipt(text, self.ds.receipt_pattern)
        if receipt:
            return self._lookup(incoming, receipt)
        if in_flow:
            assert state is not None
            step = state.get("step")
            if step == "await_phone4":
                return self._verify(incoming, state, text)
            if step == "await_receipt":
                if re.search(r"\d", text):
                    return self._reprompt_receipt(state)
                if self.wants_lookup(text) or payload == DOSSIER_START:
                    return self._ask_receipt()
                return None
        if payload == DOSSIER_START or self.wants_lookup(text):
            return self._ask_receipt()
        return None

    # --- steps ------------------------------------------------------------------------------------

    def _ask_receipt(self) -> Reply:
        return Reply(
            "Anh/chị vui lòng gửi số biên nhận của hồ sơ (in trên giấy biên nhận/phiếu hẹn trả kết quả, "
            f"ví dụ: {self.ds.receipt_example}). Mình sẽ tra cứu tình trạng giúp anh/chị.",
            kind=ReplyKind.DOSSIER,
            buttons=[Button("Hủy", DOSSIER_CANCEL)],
            state={"flow": FLOW, "step": "await_receipt", "attempts": 0},
        )

    def _reprompt_receipt(self, state: dict[str, Any]) -> Reply:
        attempts = int(state.get("attempts", 0)) + 1
        if attempts >= 3:
            return Reply(
                "Mình vẫn chưa nhận ra số biên nhận trong tin nhắn. Anh/chị có thể xem lại giấy biên nhận, "
                f"hoặc liên hệ {self.dept.one_stop_office} qua đường dây nóng {self.dept.dept_hotline} "
                f"(giờ làm việc: {self.dept.dept_hours}) để được hỗ trợ tra cứu.",
                kind=ReplyKind.DOSSIER,
                buttons=[Button("Gặp cán bộ", FOLLOWUP_START)],
                state=None,
            )
        return Reply(
            "Mình chưa nhận ra số biên nhận trong tin nhắn. Số biên nhận có dạng như "
            f"{self.ds.receipt_example} (gồm chữ, số, dấu chấm và gạch ngang). "
            "Anh/chị vui lòng gửi lại đầy đủ số in trên giấy biên nhận.",
            kind=ReplyKind.DOSSIER,
            buttons=[Button("Hủy", DOSSIER_CANCEL)],
            state={"flow": FLOW, "step": "await_receipt", "attempts": attempts},
        )

    @staticmethod
    def source_of(incoming: Incoming) -> str:
        """Who is asking, for the limits: the platform user, or (web) the client address."""
        return incoming.source or f"{incoming.channel}:{incoming.chat_id}"

    def _rate_limited(self, incoming: Incoming, receipt: str | None = None) -> Reply | None:
        now = utcnow()
        limit = self.ds.lookup_limit_per_hour
        count, oldest = self.dossiers.lookups_since(incoming.channel, incoming.chat_id, now - timedelta(hours=1))
        if count >= limit:
            wait = (oldest + timedelta(hours=1) - now) if oldest else timedelta(hours=1)
            return self._limited_reply(
                f"Anh/chị đã tra cứu {count} lần trong một giờ qua. Để bảo vệ thông tin hồ sơ của người dân, "
                f"mỗi cuộc trò chuyện chỉ được tra cứu tối đa {limit} lần mỗi giờ.", wait)
        if receipt is None:
            return None
        src, key, hour = self.source_of(incoming), re.sub(r"[^A-Z0-9]", "", receipt.upper()), timedelta(hours=1)
        refused = self.limits.check([
            Limit(f"lookup:nf:{src}", self.ds.lookup_not_found_per_source_per_hour, hour),
        ], record=False) or self.limits.check([
            Limit(f"lookup:src:{src}", self.ds.lookup_limit_per_source_per_hour, hour),
            Limit(f"lookup:rcpt:{key}", self.ds.lookup_limit_per_receipt_per_hour, hour),
            Limit("lookup:all", self.ds.lookup_limit_global_per_hour, hour),
        ])
        if refused is None:
            return None
        return self._limited_reply(self._why(refused), refused.retry_after)

    @staticmethod
    def _why(refused: Refused) -> str:
        kind = refused.limit.key.split(":")[1]
        if kind == "rcpt":
            return ("Hồ sơ này đã được tra cứu quá nhiều lần trong một giờ qua. Để bảo vệ thông tin của người "
                    "đứng tên hồ sơ, mình tạm dừng tra cứu số biên nhận này.")
        if kind == "all":
            return "Hệ thống tra cứu hồ sơ đang nhận quá nhiều yêu cầu."
        return ("Có quá nhiều lượt tra cứu hồ sơ (hoặc số biên nhận không tồn tại) từ nơi anh/chị đang kết nối "
                "trong một giờ qua. Để bảo vệ thông tin hồ sơ của người dân, mình tạm dừng tra cứu.")

    def _limited_reply(self, why: str, wait: timedelta) -> Reply:
        minutes = max(1, int(wait.total_seconds() // 60) + 1)
        return Reply(
            f"{why} Anh/chị vui lòng thử lại sau khoảng {minutes} phút, hoặc gọi đường dây nóng "
            f"{self.dept.dept_hotline} nếu cần gấp.",
            kind=ReplyKind.DOSSIER,
            state=None,
        )

    def _lookup(self, incoming: Incoming, receipt: str) -> Reply:
        limited = self._rate_limited(incoming, receipt)
        if limited is not None:
            self.dossiers.log_lookup(incoming.channel, incoming.chat_id, receipt, "rate_limited")
            log.info("dossier lookup refused: a rate limit was reached (%s)", incoming.channel)
            return limited
        try:
            dossier = self.source.get(receipt)
        except DossierSourceUnavailable as exc:
            self.dossiers.log_lookup(incoming.channel, incoming.chat_id, receipt, "unavailable")
            log.warning("dossier source unavailable (%s)", exc)
            return self._unavailable(receipt)
        if dossier is None:
            self.dossiers.log_lookup(incoming.channel, incoming.chat_id, receipt, "not_found")
            self.limits.hit(f"lookup:nf:{self.source_of(incoming)}")
            log.info("dossier lookup: receipt number not found")
            return self._not_found(receipt)
        self.dossiers.log_lookup(incoming.channel, incoming.chat_id, receipt, "found")
        return self._summary(dossier)

    def _unavailable(self, receipt: str) -> Reply:
        s = self.dept
        return Reply(
            "Xin lỗi anh/chị, hệ thống một cửa điện tử của tỉnh đang tạm thời không phản hồi nên mình chưa "
            f"tra cứu được hồ sơ {receipt}. Anh/chị vui lòng thử lại sau ít phút, hoặc gọi đường dây nóng "
            f"{s.dept_hotline} để được hỗ trợ.",
            kind=ReplyKind.DOSSIER,
            state=None,
        )

    def _not_found(self, receipt: str) -> Reply:
        s = self.dept
        return Reply(
            f"Mình chưa tìm thấy hồ sơ có số biên nhận {receipt}. Anh/chị vui lòng:\n"
            f"• Kiểm tra lại số in trên giấy biên nhận (ví dụ: {self.ds.receipt_example}), "
            "chú ý các dấu chấm, gạch ngang và chữ cái;\n"
            "• Lưu ý hồ sơ vừa nộp có thể cần 1–2 ngày làm việc mới có trên hệ thống tra cứu.\n"
            f"Nếu vẫn chưa tìm thấy, anh/chị có thể liên hệ {s.one_stop_office} ({s.dept_address}), "
            f"gọi đường dây nóng {s.dept_hotline} (giờ làm việc: {s.dept_hours}), "
            "hoặc bấm “Gặp cán bộ” để được gọi lại.",
            kind=ReplyKind.DOSSIER,
            buttons=[Button("Gặp cán bộ", FOLLOWUP_START)],
            state={"flow": FLOW, "step": "await_receipt", "attempts": 0},
        )

    def _due_line(self, d: Dossier) -> tuple[str, str | None]:
        """('• Ngày hẹn trả kết quả: …', an overdue warning or None)."""
        if d.due_date is None:
            return "• Ngày hẹn trả kết quả: chưa có", None
        line = f"• Ngày hẹn trả kết quả: {_fmt_date(d.due_date)}"
        if d.status in CLOSED_STATUSES:
            return line, None
        days = (d.due_date - self.today()).days
        if days > 0:
            return f"{line} (còn {days} ngày)", None
        if days == 0:
            return f"{line} (hạn trả là hôm nay)", None
        warning = (
            f"⚠ Hồ sơ đã quá hạn {-days} ngày so với ngày hẹn trả. Chúng tôi thành thật xin lỗi vì sự chậm trễ; "
            "hồ sơ quá hạn sẽ được cơ quan giải quyết thông báo lý do và hẹn lại ngày trả. "
            "Anh/chị có thể bấm “Gặp cán bộ” để được liên hệ."
        )
        return f"{line} (đã quá hạn {-days} ngày)", warning

    def _next_step(self, d: Dossier, verified: bool) -> str:
        s = self.dept
        office = f"{s.one_stop_office}, {s.dept_address},"
        due = _fmt_date(d.due_date) if d.due_date else None
        match d.status:
            case "registered" | "received" | "processing":
                if d.due_date is not None and d.due_date < self.today():
                    when = (" Hồ sơ đã quá ngày hẹn trả; cơ quan giải quyết sẽ thông báo lý do và hẹn lại ngày "
                            "trả kết quả.")
                else:
                    when = f" Kết quả dự kiến có vào ngày {due}." if due else ""
                return f"Anh/chị chưa cần làm gì thêm; cơ quan sẽ liên hệ nếu cần bổ sung.{when}"
            case "supplement":
                if not verified:
                    return (
                        "Anh/chị cần nộp bổ sung giấy tờ; danh sách giấy tờ cần bổ sung có trong ghi chú của "
                        "cán bộ (xem được sau khi xác minh)."
                    )
                return (
                    "Anh/chị vui lòng chuẩn bị các giấy tờ cần bổ sung theo ghi chú của cán bộ ở trên, mang theo "
                    f"giấy biên nhận, nộp tại {office} trong giờ làm việc, hoặc nộp bổ sung "
                    f"trực tuyến tại {s.portal_url}."
                )
            case "financial":
                return (
                    "Anh/chị vui lòng nộp phí, lệ phí (hoặc thuế) theo thông báo của cơ quan giải quyết, trực "
                    f"tuyến tại {s.portal_url} hoặc tại {office}, rồi giữ lại chứng từ nộp tiền."
                )
            case "done":
                return (
                    f"Anh/chị mang giấy biên nhận và căn cước công dân đến {office} để nhận kết quả "
                    "trong giờ làm việc, hoặc nhận theo hình thức đã đăng ký khi nộp hồ sơ (bưu điện, trực tuyến)."
                )
            case "returned":
                return f"Hồ sơ đã hoàn tất. Nếu anh/chị chưa nhận được kết quả, vui lòng gọi {s.dept_hotline}."
            case "rejected" | "stopped":
                reason = "ghi chú của cán bộ ở trên" if verified else "ghi chú của cán bộ (sau khi xác minh)"
                return (
                    f"Vui lòng xem lý do trong {reason}, hoặc liên hệ {office}, đường dây nóng {s.dept_hotline}, "
                    "để được hướng dẫn nộp lại."
                )
            case "withdrawn":
                return "Hồ sơ đã được rút theo đề nghị của công dân. Nếu muốn tiếp tục, anh/chị cần nộp hồ sơ mới."
            case _:
                return f"Nếu cần thêm thông tin, anh/chị vui lòng liên hệ {office}, đường dây nóng {s.dept_hotline}."

    def _body(self, d: Dossier, verified: bool) -> list[str]:
        status = d.status_words
        if verified and d.status_label and d.status_label != status:
            status = f"{status} (“{d.status_label}”)"
        due_line, overdue = self._due_line(d)
        lines = [
            f"• Thủ tục: {d.procedure}",
            f"• Người nộp: {mask_name(d.applicant_name)}",
            f"• Tình trạng: {status}",
            f"• Ngày tiếp nhận: {_fmt_date(d.received_at)}",
            due_line,
        ]
        if verified:
            if d.updated_at:
                lines.append(f"• Cập nhật lần cuối: {d.updated_at.strftime('%d/%m/%Y %H:%M')}")
            lines.append(f"• Ghi chú của cán bộ: {d.note or 'không có'}")
        if overdue:
            lines.append(overdue)
        lines.append(f"Bước tiếp theo: {self._next_step(d, verified)}")
        return lines

    def _summary(self, d: Dossier) -> Reply:
        lines = [f"Thông tin hồ sơ số {d.receipt}:", *self._body(d, verified=False)]
        _, overdue = self._due_line(d)
        buttons: list[Button] = []
        state: dict[str, Any] | None
        if _last4(d.applicant_phone):
            lines.append(
                "Để xem ghi chú của cán bộ và hướng dẫn chi tiết, anh/chị vui lòng nhập 4 số cuối của số điện "
                "thoại đã khai trong hồ sơ."
            )
            state = {"flow": FLOW, "step": "await_phone4", "receipt": d.receipt}
            buttons.append(Button("Bỏ qua", DOSSIER_CANCEL))
        else:
            lines.append(
                f"Để biết thêm chi tiết, anh/chị vui lòng mang giấy biên nhận đến {self.dept.one_stop_office} "
                f"hoặc gọi {self.dept.dept_hotline}."
            )
            state = None
        if overdue:
            buttons.insert(0, Button("Gặp cán bộ", FOLLOWUP_START))
        return Reply("\n".join(lines), kind=ReplyKind.DOSSIER, buttons=buttons, state=state)

    def _verify(self, incoming: Incoming, state: dict[str, Any], text: str) -> Reply | None:
        receipt = str(state.get("receipt") or "")
        digits = re.sub(r"\D", "", text)
        if not digits:
            if any(w in _norm(text) for w in _FORGOT):
                s = self.dept
                return Reply(
                    "Không sao ạ. Anh/chị có thể mang giấy biên nhận và căn cước công dân đến "
                    f"{s.one_stop_office} ({s.dept_address}) hoặc gọi {s.dept_hotline} "
                    "để được xem chi tiết hồ sơ.",
                    kind=ReplyKind.DOSSIER,
                    state=None,
                )
            return None  # another question: let the rest of the assistant answer it
        mobile = normalize_mobile(text)
        if len(digits) == 4:
            given = digits
        elif mobile:
            given = mobile[-4:]
        else:
            return Reply(
                "Anh/chị vui lòng nhập đúng 4 chữ số cuối của số điện thoại đã khai trong hồ sơ (ví dụ: 5678).",
                kind=ReplyKind.DOSSIER,
                buttons=[Button("Bỏ qua", DOSSIER_CANCEL)],
                state=state,
            )
        limited = self._rate_limited(incoming)
        if limited is not None:
            self.dossiers.log_lookup(incoming.channel, incoming.chat_id, receipt, "rate_limited")
            return limited
        now, hour = utcnow(), timedelta(hours=1)
        key, src = re.sub(r"[^A-Z0-9]", "", receipt.upper()), self.source_of(incoming)
        failures, _ = self.limits.count(f"verify:fail:{key}:{src}", now - hour)
        if failures >= self.ds.lookup_verify_attempts:
            return self._verify_locked()
        receipt_failures, _ = self.limits.count(f"verify:fail:{key}", now - hour)
        if receipt_failures >= self.ds.lookup_verify_receipt_failures:
            # many wrong answers from many sources: one attempt per slot, never a lock-out of the owner
            slow = self.limits.check([Limit(f"verify:try:{key}", 1,
                                            timedelta(seconds=self.ds.lookup_verify_slow_seconds))])
            if slow is not None:
                return self._limited_reply(
                    "Hồ sơ này vừa có nhiều lần xác minh chưa đúng nên mỗi lần xác minh cần cách nhau một chút.",
                    slow.retry_after)
        try:
            d = self.source.get(receipt)
        except DossierSourceUnavailable:
            self.dossiers.log_lookup(incoming.channel, incoming.chat_id, receipt, "unavailable")
            return self._unavailable(receipt)
        expected = _last4(d.applicant_phone) if d else None
        if d is None or expected is None:
            return Reply(
                "Xin lỗi anh/chị, mình không xác minh được hồ sơ này lúc này. Anh/chị vui lòng liên hệ "
                f"{self.dept.one_stop_office} hoặc gọi {self.dept.dept_hotline}.",
                kind=ReplyKind.DOSSIER,
                state=None,
            )
        if hmac.compare_digest(given, expected):
            self.dossiers.log_lookup(incoming.channel, incoming.chat_id, receipt, "verified")
            lines = [f"Cảm ơn anh/chị đã xác minh. Chi tiết hồ sơ số {d.receipt}:", *self._body(d, verified=True)]
            _, overdue = self._due_line(d)
            buttons = [Button("Gặp cán bộ", FOLLOWUP_START)] if overdue else []
            return Reply("\n".join(lines), kind=ReplyKind.DOSSIER, buttons=buttons, state=None)
        self.dossiers.log_lookup(incoming.channel, incoming.chat_id, receipt, "verify_failed")
        self.limits.hit(f"verify:fail:{key}:{src}", f"verify:fail:{key}")
        failures += 1
        left = self.ds.lookup_verify_attempts - failures
        if left <= 0:
            return self._verify_locked()
        return Reply(
            "4 số cuối chưa khớp với số điện thoại đã khai trong hồ sơ. "
            f"Anh/chị vui lòng kiểm tra và nhập lại (còn {left} lần thử).",
            kind=ReplyKind.DOSSIER,
            buttons=[Button("Bỏ qua", DOSSIER_CANCEL)],
            state=state,
        )

    def _verify_locked(self) -> Reply:
        s = self.dept
        return Reply(
            "Thông tin xác minh chưa khớp nhiều lần nên, để bảo vệ hồ sơ, mình tạm dừng xác minh hồ sơ này "
            "từ cuộc trò chuyện này trong một giờ. Anh/chị có thể mang giấy biên nhận và căn cước công dân đến "
            f"{s.one_stop_office} ({s.dept_address}) hoặc gọi {s.dept_hotline} để được hỗ trợ.",
            kind=ReplyKind.DOSSIER,
            state=None,
        )
