"""Follow-up requests: the citizen asks to be contacted by an officer.

Steps: name -> phone (a valid Vietnamese mobile) -> question (skipped when already known, e.g. the question
that got a fallback) -> confirm (buttons "Xác nhận" / "Hủy"). "hủy" or "thôi" stops at any step. On
confirmation a ticket is stored and the citizen is told what happens next. Names and phones are masked in
logs.

State kept in ``Reply.state``::

    {"flow": "followup", "step": "name" | "phone" | "question" | "confirm",
     "name": ..., "phone": ..., "question": ..., "phone_errors": 0}
"""

from __future__ import annotations

import logging
import re
from typing import Any

from bot.config import Settings
from bot.messages import Button, Incoming, Reply
from bot.privacy import format_mobile, mask_name, mask_phone, normalize_mobile
from bot.protocol import FOLLOWUP_CANCEL, FOLLOWUP_CONFIRM, FOLLOWUP_START, ReplyKind
from bot.storage.followups import FollowUps
from indexer.diacritics import fold_words

log = logging.getLogger(__name__)

FLOW = "followup"
MAX_PHONE_ERRORS = 3

_TRIGGERS = (
    "gap can bo",
    "gap nhan vien",
    "gap nguoi that",
    "noi chuyen voi can bo",
    "noi chuyen voi nguoi",
    "lien he can bo",
    "can bo lien he",
    "can bo goi",
    "goi lai cho toi",
    "goi lai cho minh",
    "goi lai cho em",
    "goi lai giup",
    "goi lai duoc khong",
    "goi cho toi",
    "lien he lai",
    "lien he voi toi",
    "yeu cau goi lai",
    "de lai so dien thoai",
    "de lai sdt",
    "xin gap can bo",
    "can tu van truc tiep",
    "tu van vien",
)
_CANCEL = frozenset(
    {"huy", "thoi", "huy bo", "thoi khong can", "khong can nua", "thoi khong can nua", "dung lai", "cancel", "stop",
     "khong", "huy yeu cau"}
)
_CANCEL_TICKET = frozenset({"huy", "huy bo", "huy yeu cau", "cancel", "huy yeu cau goi lai"})
_CONFIRM = frozenset({"xac nhan", "dong y", "ok", "oke", "co", "dung", "dung roi", "gui", "gui di", "yes", "xac nhan gui"})
_NAME_RE = re.compile(r"^[^\W\d_]+(?:[ '.\-][^\W\d_]+)*\.?$")
MAX_NAME_WORDS = 6

_QUESTION_MARKERS = (
    "gi", "bao nhieu", "bao lau", "the nao", "lam sao", "o dau", "khi nao", "tai sao", "vi sao", "ra sao",
    "duoc khong", "phai khong", "hay khong", "co khong", "chua a", "nao", "cho hoi", "xin hoi", "hoi ve",
    "muon biet", "lam the nao", "lam gi", "la ai", "ai la", "ai duoc",
)
"""Folded words that make a message read as a question."""
_TOPIC_WORDS = (
    "tro cap", "that nghiep", "bao hiem", "khuyet tat", "tre em", "ho so", "thu tuc", "chinh sach", "che do",
    "nguoi co cong", "hoc nghe", "viec lam", "giay to", "dang ky", "huu tri", "liet si", "thuong binh",
    "ho ngheo", "cai nghien", "tien luong", "xuat khau lao dong", "bien nhan", "tra cuu", "dich vu cong",
)
"""Folded phrases of the Department's subjects: never part of a person's name."""
_THANKS = ("cam on", "thank", "thanks", "tks", "camon", "xin chao", "chao ban", "chao em", "chao anh", "chao chi")
_ACKS = frozenset({"ok", "oke", "okay", "vang", "da", "duoc", "roi", "uh", "u", "um", "a", "chao", "hi", "hello",
                   "alo", "vang a", "da vang", "ok a", "duoc roi", "tot", "tot qua", "hay qua"})
_FILLER = frozenset({"cho", "toi", "em", "minh", "tui", "nhe", "nha", "a", "voi", "giup", "di", "duoc", "khong", "xin",
                     "muon", "can", "hay", "vui", "long", "lam", "on", "anh", "chi", "ban", "oi", "so", "dien",
                     "thoai", "cua", "la", "sdt", "ak", "ah", "dum", "ho", "lai", "sau", "nhanh", "som", "gap",
                     "de", "co", "the", "yeu", "cau", "bo", "ve", "viec", "nay"})
"""Words that may surround a call-back request without making it about something else."""


def _contains(n: str, phrases: tuple[str, ...]) -> bool:
    padded = f" {n} "
    return any(f" {p} " in padded for p in phrases)


def is_thanks(text: str) -> bool:
    """A thank-you, a greeting or a bare acknowledgement ("cảm ơn", "ok", "vâng ạ")."""
    n = fold_words(text)
    return _contains(n, _THANKS) or n in _ACKS


def reads_as_question(text: str) -> bool:
    """True when ``text`` reads as a question of its own (not a name, a phone number or a yes/no)."""
    n = fold_words(text)
    words = n.split()
    if normalize_mobile(text) or len(words) < 3:
        return False
    if "?" in text:
        return True
    return _contains(n, _QUESTION_MARKERS) or (len(words) >= 4 and _contains(n, _TOPIC_WORDS))


def _not_a_name(text: str) -> bool:
    n = fold_words(text)
    return (len(n.split()) > MAX_NAME_WORDS or "?" in text or is_thanks(text) or _contains(n, _TOPIC_WORDS)
            or _contains(n, _QUESTION_MARKERS + ("gap can bo", "goi lai", "lien he")))


def _clean_name(text: str) -> str | None:
    name = re.sub(r"\s+", " ", text or "").strip().strip(",;:")
    for prefix in ("tôi tên là ", "tên tôi là ", "tôi là ", "em tên là ", "tên là ", "họ tên: ", "tên: "):
        if name.lower().startswith(prefix):
            name = name[len(prefix) :].strip()
            break
    if not (2 <= len(name) <= 100) or not _NAME_RE.match(name):
        return None
    if sum(ch.isalpha() for ch in name) < 2:
        return None
    return " ".join(w[:1].upper() + w[1:] for w in name.split(" "))


class FollowUpFlow:
    """The "please call me back" dialogue. ``handle`` returns None when a message is not for it."""

    def __init__(self, followups: FollowUps, settings: Settings) -> None:
        self.followups = followups
        self.dept = settings.department
        self.max_chars = settings.max_message_chars
        self.sla = settings.dossiers.followup_sla

    def wants_followup(self, text: str) -> bool:
        """True when ``text`` is mainly a request to be called back ("gọi lại cho tôi", "gặp cán bộ"), not a
        question that merely mentions one ("... bao lâu thì trung tâm liên hệ lại ạ?")."""
        n = f" {fold_words(text)} "
        hits = [t for t in _TRIGGERS if f" {t} " in n]
        if not hits:
            return False
        rest = n
        for t in sorted(hits, key=len, reverse=True):
            rest = rest.replace(f" {t} ", " ")
        words = rest.split()
        if _contains(" ".join(words), _QUESTION_MARKERS) or _contains(" ".join(words), _TOPIC_WORDS):
            return False
        return sum(w not in _FILLER for w in words) <= 2

    def start(self, incoming: Incoming, question: str | None = None) -> Reply:
        """Begin the dialogue; ``question``: what the citizen already asked (e.g. after a fallback)."""
        state: dict[str, Any] = {"flow": FLOW, "step": "name", "phone_errors": 0}
        if question and question.strip() and not self.wants_followup(question):
            state["question"] = question.strip()[: self.max_chars]
        return Reply(
            f"Dạ, mình sẽ chuyển yêu cầu để cán bộ {self.dept.dept_name} liên hệ lại với anh/chị. "
            "Trước hết, anh/chị vui lòng cho biết họ và tên (gõ “hủy” nếu muốn dừng).",
            kind=ReplyKind.FOLLOWUP,
            buttons=[Button("Hủy", FOLLOWUP_CANCEL)],
            state=state,
        )

    def handle(self, incoming: Incoming, state: dict[str, Any] | None) -> Reply | None:
        """The reply if ``incoming`` belongs to the follow-up dialogue (or starts it), else None.

        Started by a trigger phrase ("gặp cán bộ", "gọi lại cho tôi") or the payload ``followup:start``; if the
        current state of another flow holds ``last_question`` (or ``question``), that becomes the question.
        """
        text = (incoming.text or "").strip()
        payload = incoming.payload or ""
        if not state or state.get("flow") != FLOW:
            ticket = (state or {}).get("last_ticket")
            if payload in (FOLLOWUP_CANCEL, FOLLOWUP_CONFIRM) or (ticket and not payload
                                                                  and fold_words(text) in _CANCEL_TICKET):
                return self._after_ticket(ticket, cancel=payload != FOLLOWUP_CONFIRM, state=state)
            if payload == FOLLOWUP_START or (not payload and self.wants_followup(text)):
                prior = (state or {}).get("last_question") or (state or {}).get("question")
                return self.start(incoming, prior if isinstance(prior, str) else None)
            return None

        n = fold_words(text)
        if payload == FOLLOWUP_CANCEL or (not payload and n in _CANCEL):
            return self._cancelled()
        step = state.get("step")
        if step == "name":
            return self._on_name(state, text)
        if step == "phone":
            return self._on_phone(state, text)
        if step == "question":
            return self._on_question(state, text)
        if step == "confirm":
            if payload == FOLLOWUP_CONFIRM or (not payload and n in _CONFIRM):
                return self._confirmed(incoming, state)
            return self._confirm(state, again=True)
        return self.start(incoming, state.get("question"))

    # --- steps ------------------------------------------------------------------------------------

    def _after_ticket(self, ticket: Any, *, cancel: bool, state: dict[str, Any] | None) -> Reply:
        """"Hủy" / "Xác nhận" pressed again after the request was confirmed (or when there is none)."""
        keep = {k: v for k, v in (state or {}).items() if k.startswith("last_")} or None
        if not ticket:
            return Reply("Hiện không có yêu cầu gọi lại nào đang soạn. Anh/chị cần cán bộ gọi lại thì bấm "
                         "“Gặp cán bộ” nhé.", kind=ReplyKind.FOLLOWUP,
                         buttons=[Button("Gặp cán bộ", FOLLOWUP_START)], state=keep)
        if cancel:
            text = (f"Yêu cầu số {ticket} đã được gửi trước đó và vẫn còn hiệu lực: cán bộ sẽ gọi lại cho "
                    "anh/chị. Nếu không cần nữa, anh/chị chỉ cần báo với cán bộ khi được gọi.")
        else:
            text = f"Yêu cầu số {ticket} đã được ghi nhận rồi, anh/chị không cần gửi lại."
        return Reply(text, kind=ReplyKind.FOLLOWUP, state=keep)

    def _cancelled(self) -> Reply:
        return Reply(
            "Dạ, mình đã hủy yêu cầu gọi lại. Anh/chị cần hỗ trợ gì thêm cứ nhắn cho mình nhé.",
            kind=ReplyKind.FOLLOWUP,
            state=None,
        )

    def _on_name(self, state: dict[str, Any], text: str) -> Reply:
        if normalize_mobile(text):
            msg = "Dạ, đó có vẻ là số điện thoại. Anh/chị vui lòng cho biết họ và tên trước (ví dụ: Nguyễn Văn An)."
            return Reply(msg, kind=ReplyKind.FOLLOWUP, buttons=[Button("Hủy", FOLLOWUP_CANCEL)], state=state)
        if is_thanks(text):
            return Reply(
                "Dạ không có gì ạ. Để cán bộ gọi lại, anh/chị cho mình xin họ và tên nhé (ví dụ: Nguyễn Văn An), "
                "hoặc bấm “Hủy” nếu không cần nữa.",
                kind=ReplyKind.FOLLOWUP, buttons=[Button("Hủy", FOLLOWUP_CANCEL)], state=state)
        name = None if _not_a_name(text) else _clean_name(text)
        if name is None and _not_a_name(text):
            return Reply(
                "Dạ, mình đang ghi yêu cầu gọi lại nên cần họ và tên của anh/chị (ví dụ: Nguyễn Văn An). "
                "Nếu anh/chị muốn hỏi điều khác, bấm “Hủy” rồi gõ câu hỏi nhé.",
                kind=ReplyKind.FOLLOWUP, buttons=[Button("Hủy", FOLLOWUP_CANCEL)], state=state)
        if name is None:
            return Reply(
                "Họ tên chưa hợp lệ. Anh/chị vui lòng nhập họ và tên, chỉ gồm chữ cái (ví dụ: Nguyễn Văn An).",
                kind=ReplyKind.FOLLOWUP,
                buttons=[Button("Hủy", FOLLOWUP_CANCEL)],
                state=state,
            )
        new_state = {**state, "step": "phone", "name": name}
        return Reply(
            f"Cảm ơn anh/chị {name}. Anh/chị vui lòng cho biết số điện thoại di động để cán bộ gọi lại "
            "(ví dụ: 0912 345 678).",
            kind=ReplyKind.FOLLOWUP,
            buttons=[Button("Hủy", FOLLOWUP_CANCEL)],
            state=new_state,
        )

    def _on_phone(self, state: dict[str, Any], text: str) -> Reply:
        phone = normalize_mobile(text)
        if phone is None and is_thanks(text):
            return Reply(
                "Dạ, để cán bộ gọi lại, anh/chị cho mình xin số điện thoại di động nhé (ví dụ: 0912 345 678), "
                "hoặc bấm “Hủy” nếu không cần nữa.",
                kind=ReplyKind.FOLLOWUP, buttons=[Button("Hủy", FOLLOWUP_CANCEL)], state=state)
        if phone is None:
            errors = int(state.get("phone_errors", 0)) + 1
            if errors >= MAX_PHONE_ERRORS:
                s = self.dept
                return Reply(
                    "Mình chưa nhận được số điện thoại hợp lệ nên tạm dừng yêu cầu gọi lại. Anh/chị có thể gọi "
                    f"trực tiếp đường dây nóng {s.dept_hotline}, hoặc nhắn “gặp cán bộ” để thử lại.",
                    kind=ReplyKind.FOLLOWUP,
                    state=None,
                )
            return Reply(
                "Số điện thoại chưa đúng định dạng số di động Việt Nam: cần 10 chữ số, bắt đầu bằng 03, 05, 07, "
                "08 hoặc 09 (có thể viết +84, có dấu cách hoặc dấu chấm). Anh/chị vui lòng nhập lại.",
                kind=ReplyKind.FOLLOWUP,
                buttons=[Button("Hủy", FOLLOWUP_CANCEL)],
                state={**state, "phone_errors": errors},
            )
        new_state = {**state, "phone": phone}
        if new_state.get("question"):
            return self._confirm({**new_state, "step": "confirm"})
        new_state["step"] = "question"
        return Reply(
            "Anh/chị cần cán bộ hỗ trợ về việc gì? Vui lòng mô tả ngắn gọn (ví dụ: hồ sơ trợ cấp thất nghiệp "
            "nộp tháng trước chưa có kết quả).",
            kind=ReplyKind.FOLLOWUP,
            buttons=[Button("Hủy", FOLLOWUP_CANCEL)],
            state=new_state,
        )

    def _on_question(self, state: dict[str, Any], text: str) -> Reply:
        question = re.sub(r"\s+", " ", text).strip()
        if len(question) < 3:
            return Reply(
                "Anh/chị vui lòng mô tả ngắn gọn nội dung cần hỗ trợ để cán bộ chuẩn bị trước khi gọi lại.",
                kind=ReplyKind.FOLLOWUP,
                buttons=[Button("Hủy", FOLLOWUP_CANCEL)],
                state=state,
            )
        return self._confirm({**state, "question": question[: self.max_chars], "step": "confirm"})

    def _confirm(self, state: dict[str, Any], again: bool = False) -> Reply:
        head = (
            "Anh/chị vui lòng bấm “Xác nhận” để gửi yêu cầu, hoặc “Hủy” nếu không cần nữa."
            if again
            else "Anh/chị vui lòng kiểm tra lại thông tin:"
        )
        text = (
            f"{head}\n"
            f"• Họ tên: {state.get('name')}\n"
            f"• Số điện thoại: {format_mobile(str(state.get('phone')))}\n"
            f"• Nội dung: {state.get('question')}"
        )
        if not again:
            text += "\nBấm “Xác nhận” để gửi yêu cầu, hoặc “Hủy” nếu không cần nữa."
        return Reply(
            text,
            kind=ReplyKind.FOLLOWUP,
            buttons=[Button("Xác nhận", FOLLOWUP_CONFIRM), Button("Hủy", FOLLOWUP_CANCEL)],
            state={**state, "step": "confirm"},
        )

    def _confirmed(self, incoming: Incoming, state: dict[str, Any]) -> Reply:
        name, phone, question = str(state["name"]), str(state["phone"]), str(state["question"])
        ticket = self.followups.create(incoming.channel, incoming.chat_id, name, phone, question)
        log.info(
            "follow-up #%d created from %s for %s (%s)", ticket, incoming.channel, mask_name(name), mask_phone(phone)
        )
        s = self.dept
        return Reply(
            f"Đã ghi nhận yêu cầu số {ticket}. Cán bộ {s.dept_name} sẽ gọi lại cho anh/chị qua số "
            f"{mask_phone(phone)} {self.sla}, trong giờ làm việc: {s.dept_hours}. "
            f"Khi gọi, cán bộ sẽ nhắc mã yêu cầu {ticket} để anh/chị tiện nhận biết. "
            f"Nếu cần gấp, anh/chị có thể gọi đường dây nóng {s.dept_hotline}. Cảm ơn anh/chị!",
            kind=ReplyKind.FOLLOWUP,
            state={"last_ticket": ticket},
        )
