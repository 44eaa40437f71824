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

from bot.config import Settings, get_settings
from bot.dossier_settings import DossierSettings
from bot.messages import Button, Incoming, Reply
from bot.privacy import format_mobile, mask_name, mask_phone, normalize_mobile, strip_diacritics
from bot.store import Store

log = logging.getLogger(__name__)

FLOW = "followup"
PAYLOAD_START = "followup:start"
PAYLOAD_CONFIRM = "followup:confirm"
PAYLOAD_CANCEL = "followup:cancel"
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
_CONFIRM = frozenset({"xac nhan", "dong y", "ok", "oke", "co", "dung", "dung roi", "gui", "gui di", "yes", "xac nhan gui"})
_NAME_RE = re.compile(r"^[^\W\d_]+(?:[ '.\-][^\W\d_]+)*\.?$")


def _norm(text: str) -> str:
    t = strip_diacritics(text or "").lower()
    return " ".join(re.findall(r"[a-z0-9]+", t))


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

    def __init__(
        self, store: Store, settings: Settings | None = None, dossier_settings: DossierSettings | None = None
    ) -> None:
        self.store = store
        self.settings = settings or get_settings()
        self.ds = dossier_settings or DossierSettings()

    def wants_followup(self, text: str) -> bool:
        n = f" {_norm(text)} "
        return any(f" {t} " in n for t in _TRIGGERS)

    def start(self, incoming: Incoming, question: str | None = None) -> Reply:
        """Begin the dialogue; ``question``: what the citizen already asked (e.g. after a fallback)."""
        state: dict[str, Any] = {"flow": FLOW, "step": "name", "phone_errors": 0}
        if question and question.strip() and not self.wants_followup(question):
            state["question"] = question.strip()[: self.settings.max_message_chars]
        return Reply(
            f"Dạ, mình sẽ chuyển yêu cầu để cán bộ {self.settings.dept_name} liên hệ lại với anh/chị. "
            "Trước hết, anh/chị vui lòng cho biết họ và tên (gõ “hủy” nếu muốn dừng).",
            kind="followup",
            buttons=[Button("Hủy", PAYLOAD_CANCEL)],
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
            if payload == PAYLOAD_START or (not payload and self.wants_followup(text)):
                prior = (state or {}).get("last_question") or (state or {}).get("question")
                return self.start(incoming, prior if isinstance(prior, str) else None)
            return None

        n = _norm(text)
        if payload == PAYLOAD_CANCEL or (not payload and n in _CANCEL):
            return self._cancelled()
        step = state.get("step")
        if step == "name":
            return self._on_name(state, text)
        if step == "phone":
            return self._on_phone(state, text)
        if step == "question":
            return self._on_question(state, text)
        if step == "confirm":
            if payload == PAYLOAD_CONFIRM or (not payload and n in _CONFIRM):
                return self._confirmed(incoming, state)
            return self._confirm(state, again=True)
        return self.start(incoming, state.get("question"))

    # --- steps ------------------------------------------------------------------------------------

    def _cancelled(self) -> Reply:
        return Reply(
            "Dạ, mình đã hủy yêu cầu gọi lại. Anh/chị cần hỗ trợ gì thêm cứ nhắn cho mình nhé.",
            kind="followup",
            state=None,
        )

    def _on_name(self, state: dict[str, Any], text: str) -> Reply:
        if normalize_mobile(text):
            msg = "Dạ, đó có vẻ là số điện thoại. Anh/chị vui lòng cho biết họ và tên trước (ví dụ: Nguyễn Văn An)."
            return Reply(msg, kind="followup", buttons=[Button("Hủy", PAYLOAD_CANCEL)], state=state)
        name = _clean_name(text)
        if name is None:
            return Reply(
                "Họ tên chưa hợp lệ. Anh/chị vui lòng nhập họ và tên, chỉ gồm chữ cái (ví dụ: Nguyễn Văn An).",
                kind="followup",
                buttons=[Button("Hủy", PAYLOAD_CANCEL)],
                state=state,
            )
        new_state = {**state, "step": "phone", "name": name}
        return Reply(
            f"Cảm ơn anh/chị {name}. Anh/chị vui lòng cho biết số điện thoại di động để cán bộ gọi lại "
            "(ví dụ: 0912 345 678).",
            kind="followup",
            buttons=[Button("Hủy", PAYLOAD_CANCEL)],
            state=new_state,
        )

    def _on_phone(self, state: dict[str, Any], text: str) -> Reply:
        phone = normalize_mobile(text)
        if phone is None:
            errors = int(state.get("phone_errors", 0)) + 1
            if errors >= MAX_PHONE_ERRORS:
                s = self.settings
                return Reply(
                    "Mình chưa nhận được số điện thoại hợp lệ nên tạm dừng yêu cầu gọi lại. Anh/chị có thể gọi "
                    f"trực tiếp đường dây nóng {s.dept_hotline}, hoặc nhắn “gặp cán bộ” để thử lại.",
                    kind="followup",
                    state=None,
                )
            return Reply(
                "Số điện thoại chưa đúng định dạng số di động Việt Nam: cần 10 chữ số, bắt đầu bằng 03, 05, 07, "
                "08 hoặc 09 (có thể viết +84, có dấu cách hoặc dấu chấm). Anh/chị vui lòng nhập lại.",
                kind="followup",
                buttons=[Button("Hủy", PAYLOAD_CANCEL)],
                state={**state, "phone_errors": errors},
            )
        new_state = {**state, "phone": phone}
        if new_state.get("question"):
            return self._confirm({**new_state, "step": "confirm"})
        new_state["step"] = "question"
        return Reply(
            "Anh/chị cần cán bộ hỗ trợ về việc gì? Vui lòng mô tả ngắn gọn (ví dụ: hồ sơ trợ cấp thất nghiệp "
            "nộp tháng trước chưa có kết quả).",
            kind="followup",
            buttons=[Button("Hủy", PAYLOAD_CANCEL)],
            state=new_state,
        )

    def _on_question(self, state: dict[str, Any], text: str) -> Reply:
        question = re.sub(r"\s+", " ", text).strip()
        if len(question) < 3:
            return Reply(
                "Anh/chị vui lòng mô tả ngắn gọn nội dung cần hỗ trợ để cán bộ chuẩn bị trước khi gọi lại.",
                kind="followup",
                buttons=[Button("Hủy", PAYLOAD_CANCEL)],
                state=state,
            )
        return self._confirm({**state, "question": question[: self.settings.max_message_chars], "step": "confirm"})

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
            kind="followup",
            buttons=[Button("Xác nhận", PAYLOAD_CONFIRM), Button("Hủy", PAYLOAD_CANCEL)],
            state={**state, "step": "confirm"},
        )

    def _confirmed(self, incoming: Incoming, state: dict[str, Any]) -> Reply:
        name, phone, question = str(state["name"]), str(state["phone"]), str(state["question"])
        ticket = self.store.create_followup(incoming.channel, incoming.chat_id, name, phone, question)
        log.info(
            "follow-up #%d created from %s for %s (%s)", ticket, incoming.channel, mask_name(name), mask_phone(phone)
        )
        s = self.settings
        return Reply(
            f"Đã ghi nhận yêu cầu số {ticket}. Cán bộ {s.dept_name} sẽ gọi lại cho anh/chị qua số "
            f"{mask_phone(phone)} {self.ds.followup_sla}, trong giờ làm việc: {s.dept_hours}. "
            f"Khi gọi, cán bộ sẽ nhắc mã yêu cầu {ticket} để anh/chị tiện nhận biết. "
            f"Nếu cần gấp, anh/chị có thể gọi đường dây nóng {s.dept_hotline}. Cảm ơn anh/chị!",
            kind="followup",
            state=None,
        )
