"""The channel-agnostic dialogue: one incoming message (text or button payload) -> replies.

Every channel adapter (Telegram, Zalo, web chat, CLI) calls ``Dialogue.handle``. The small conversation
state per chat (offered choices, the last question, a dossier lookup or a follow-up request in
progress) lives in the database, so a restart or a second process loses nothing.

Buttons and their payloads (≤ 64 bytes, Telegram's limit):
    help                   what the assistant can do
    pick:<entry id>        one of the offered choices
    detail:<entry id>      the full procedure ("xem chi tiết")
    fb:1 / fb:0            helpful / not helpful
    dossier:start|cancel   dossier status lookup (bot.lookup)
    followup:start|...     ask for an officer to call back (bot.followup)
    media:<kind>           a sticker, image, voice... (set by the adapter)
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from bot.assistant import DETAILS, FEEDBACK_NO, FEEDBACK_YES, FOLLOWUP, PICK, too_long_reply
from bot.config import Settings
from bot.followup import FollowUpFlow
from bot.lookup import DossierLookup
from bot.messages import Button, Incoming, Reply
from bot.models import utcnow
from bot.runtime import AssistantHolder
from bot.store import Store

log = logging.getLogger(__name__)

HELP = "help"
MEDIA = "media:"
_COMMANDS = re.compile(r"^/(start|help|batdau|trogiup)\b", re.I)


def help_reply(dept_name: str) -> Reply:
    return Reply(
        f"Xin chào! Tôi là trợ lý ảo của {dept_name}. Tôi có thể:\n"
        "• Trả lời câu hỏi về thủ tục, chính sách: trợ cấp thất nghiệp, người có công, trợ giúp xã hội, "
        "trẻ em, học nghề, cai nghiện, nộp hồ sơ trực tuyến...\n"
        "• Tra cứu tình trạng hồ sơ: gửi số biên nhận (ví dụ H41.22-241105-0012).\n"
        "• Ghi lại yêu cầu để cán bộ gọi lại cho bạn.\n"
        "Bạn cứ gõ câu hỏi, có dấu hay không dấu đều được.",
        kind="info",
        buttons=[Button("Tra cứu hồ sơ", "dossier:start"), Button("Gặp cán bộ", FOLLOWUP)],
    )


def split_message(text: str, limit: int) -> list[str]:
    """Split a long reply at paragraph (then line, then word) boundaries, each part ≤ ``limit``."""
    text = text.strip()
    if len(text) <= limit:
        return [text]
    parts: list[str] = []
    cur = ""
    for para in text.split("\n\n"):
        for piece in [para] if len(para) <= limit else _split_long(para, limit):
            candidate = f"{cur}\n\n{piece}" if cur else piece
            if len(candidate) <= limit:
                cur = candidate
            else:
                if cur:
                    parts.append(cur)
                cur = piece
    if cur:
        parts.append(cur)
    return parts


def _split_long(para: str, limit: int) -> list[str]:
    out: list[str] = []
    cur = ""
    for line in para.split("\n"):
        words = [line] if len(line) <= limit else line.split(" ")
        joiner = "\n" if len(words) == 1 else " "
        for w in words:
            while len(w) > limit:  # a single unbreakable run
                if cur:
                    out.append(cur)
                    cur = ""
                out.append(w[:limit])
                w = w[limit:]
            candidate = f"{cur}{joiner if cur else ''}{w}"
            if len(candidate) <= limit:
                cur = candidate
            else:
                out.append(cur)
                cur = w
        joiner = "\n"
    if cur:
        out.append(cur)
    return out


class Dialogue:
    def __init__(self, holder: AssistantHolder, store: Store, lookup: DossierLookup, followup: FollowUpFlow,
                 settings: Settings, *, flood_per_minute: int = 20,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.holder = holder
        self.store = store
        self.lookup = lookup
        self.followup = followup
        self.settings = settings
        self.flood_per_minute = flood_per_minute
        self.clock = clock

    @classmethod
    def from_settings(cls, settings: Settings, store: Store | None = None,
                      holder: AssistantHolder | None = None) -> Dialogue:
        from bot.dossiers import make_dossier_source

        store = store or Store(settings)
        holder = holder or AssistantHolder(settings, active_version=store.active_kb_version)
        lookup = DossierLookup(make_dossier_source(store), store, settings)
        return cls(holder, store, lookup, FollowUpFlow(store, settings), settings)

    # --- helpers -----------------------------------------------------------------------------------
    def _log(self, msg: Incoming, reply: Reply, t0: float, text: str | None = None,
             normalized: str | None = None) -> int:
        return self.store.log_request(
            msg.channel, msg.chat_id, (text if text is not None else msg.text or msg.payload or "")[:2000],
            normalized=normalized, kind=reply.kind if reply.kind in {
                "answer", "choices", "fallback", "dossier", "followup", "smalltalk", "info", "error"} else "info",
            entry_id=reply.entry_id, topic=reply.topic, score=reply.score,
            latency_ms=round((time.perf_counter() - t0) * 1000, 2), kb_version=self.holder.version,
        )

    def _flooding(self, msg: Incoming) -> bool:
        if self.flood_per_minute <= 0:
            return False
        since = self.clock() - timedelta(minutes=1)
        return self.store.requests_since(msg.channel, msg.chat_id, since) >= self.flood_per_minute

    # --- the entry point -----------------------------------------------------------------------------
    def handle(self, msg: Incoming) -> list[Reply]:
        t0 = time.perf_counter()
        text = (msg.text or "").strip()
        payload = (msg.payload or "").strip()
        if self._flooding(msg):
            return [Reply("Bạn gửi tin nhắn nhanh quá. Vui lòng đợi khoảng một phút rồi hỏi tiếp nhé.",
                          kind="error")]
        if payload.startswith(MEDIA):
            reply = Reply(
                "Xin lỗi, tôi chỉ đọc được tin nhắn chữ, chưa xem được hình ảnh, nhãn dán hay tin nhắn thoại. "
                "Bạn vui lòng gõ câu hỏi bằng chữ (có dấu hay không dấu đều được) nhé.", kind="info")
            self._log(msg, reply, t0, text=f"[{payload[len(MEDIA):] or 'media'}]")
            return [reply]
        if len(text) > self.settings.max_message_chars:
            reply = too_long_reply(len(text), self.settings.max_message_chars)
            self._log(msg, reply, t0, text=text[:200] + "…")
            return [reply]

        state = self.store.get_state(msg.channel, msg.chat_id, max_age=timedelta(hours=24))
        assistant = self.holder.current
        if payload == HELP or _COMMANDS.match(text):
            return self._reply(msg, help_reply(self.settings.dept_name), t0, None)
        if payload.startswith(PICK):
            entry_id = payload[len(PICK):]
            if assistant.entry(entry_id) is None:
                return self._reply(msg, Reply("Lựa chọn này không còn hiệu lực. Bạn vui lòng hỏi lại nhé.",
                                              kind="error"), t0, state)
            reply = assistant.answer_reply(entry_id)
            question = (state or {}).get("last_question") or ""
            rid = self._log(msg, reply, t0, text=question)
            self.store.set_state(msg.channel, msg.chat_id, {
                "last_question": question, "last_entry": entry_id,
                "last_request_id": rid if question else (state or {}).get("last_request_id")})
            return [reply]
        if payload.startswith(DETAILS):
            reply = assistant.details_reply(payload[len(DETAILS):])
            return self._reply(msg, reply, t0, state)
        if payload in (FEEDBACK_YES, FEEDBACK_NO):
            return self._feedback(msg, state, payload == FEEDBACK_YES, t0)

        for flow in (self.lookup, self.followup):
            r = flow.handle(msg, state)
            if r is not None:
                if r.state is None and state and state.get("last_question"):
                    r.state = {k: v for k, v in state.items() if k.startswith("last_")}
                return self._reply(msg, r, t0, r.state)
        if not text:
            return self._reply(msg, help_reply(self.settings.dept_name), t0, None)

        outcome = assistant.ask(text)
        reply = outcome.reply
        normalized = outcome.search.query.restored if outcome.search else None
        rid = self._log(msg, reply, t0, text=text, normalized=normalized)
        if reply.kind == "fallback":
            self.store.log_unanswered(msg.channel, msg.chat_id, text, normalized=normalized, request_id=rid)
        new_state: dict[str, Any] = {"last_question": text, "last_request_id": rid,
                                     "last_entry": reply.entry_id if reply.kind == "answer" else None}
        if reply.kind == "choices":
            new_state["offered"] = [b.payload[len(PICK):] for b in reply.buttons if b.payload.startswith(PICK)]
        self.store.set_state(msg.channel, msg.chat_id, new_state)
        return [reply]

    def _reply(self, msg: Incoming, reply: Reply, t0: float, state: dict[str, Any] | None) -> list[Reply]:
        self._log(msg, reply, t0)
        self.store.set_state(msg.channel, msg.chat_id, state)
        return [reply]

    def _feedback(self, msg: Incoming, state: dict[str, Any] | None, helpful: bool, t0: float) -> list[Reply]:
        st = state or {}
        self.store.add_feedback(msg.channel, msg.chat_id, helpful, request_id=st.get("last_request_id"),
                                entry_id=st.get("last_entry"))
        if helpful:
            reply = Reply("Cảm ơn bạn đã phản hồi! Bạn cần hỏi gì thêm cứ nhắn nhé.", kind="info")
        else:
            question = st.get("last_question")
            if question:
                self.store.log_unanswered(msg.channel, msg.chat_id, question, request_id=st.get("last_request_id"))
            reply = Reply(
                "Cảm ơn bạn đã cho biết. Câu hỏi đã được chuyển để cán bộ xem lại câu trả lời.\n"
                "Bạn có thể hỏi lại cụ thể hơn, hoặc bấm \"Gặp cán bộ\" để được gọi lại.",
                kind="info", buttons=[Button("Gặp cán bộ", FOLLOWUP)])
        return self._reply(msg, reply, t0, st or None)
