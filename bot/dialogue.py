"""The channel-agnostic dialogue: one incoming message (text or button payload) -> replies.

Every channel adapter (Telegram, Zalo, web chat, CLI) calls ``Dialogue.handle``. The small conversation
state per chat (offered choices, the last question, a dossier lookup or a follow-up request in
progress) lives in the database, so a restart or a second process loses nothing. The payloads of the
buttons are listed in :mod:`bot.protocol`.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from bot.assistant import Outcome, too_long_reply
from bot.config import Settings
from bot.dossiers.sources import make_dossier_source
from bot.followup import FollowUpFlow, reads_as_question
from bot.lookup import DossierLookup
from bot.messages import Button, Incoming, Reply
from bot.privacy import mask_text
from bot.protocol import (
    CALC,
    DETAILS,
    DOSSIER_START,
    FEEDBACK_NO,
    FEEDBACK_YES,
    FOLLOWUP_START,
    FULL_TEXT,
    HELP,
    MEDIA,
    PICK,
    REPHRASE,
    ReplyKind,
)
from bot.runtime import AssistantHolder
from bot.storage import Storage
from bot.storage.models import utcnow
from indexer.placeholders import drop_unconfigured

log = logging.getLogger(__name__)

_COMMANDS = re.compile(r"^/(start|help|batdau|trogiup)\b", re.I)


def help_reply(dept_name: str) -> Reply:
    return Reply(
        f"Xin chào! Tôi là trợ lý ảo của {dept_name}. Tôi có thể:\n"
        "• Trả lời câu hỏi về thủ tục, chính sách: trợ cấp thất nghiệp, người có công, trợ giúp xã hội, "
        "trẻ em, học nghề, cai nghiện, nộp hồ sơ trực tuyến...\n"
        "• Tra cứu tình trạng hồ sơ: gửi số biên nhận (ví dụ H41.22-241105-0012).\n"
        "• Ghi lại yêu cầu để cán bộ gọi lại cho bạn.\n"
        "Bạn cứ gõ câu hỏi, có dấu hay không dấu đều được.",
        kind=ReplyKind.INFO,
        buttons=[Button("Tra cứu hồ sơ", DOSSIER_START), Button("Gặp cán bộ", FOLLOWUP_START)],
    )


class Dialogue:
    def __init__(self, holder: AssistantHolder, store: Storage, lookup: DossierLookup, followup: FollowUpFlow,
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
    def from_settings(cls, settings: Settings, store: Storage | None = None,
                      holder: AssistantHolder | None = None) -> Dialogue:
        store = store or Storage(settings)
        holder = holder or AssistantHolder(settings)
        lookup = DossierLookup(make_dossier_source(settings.dossiers, store.dossiers), store.dossiers, settings,
                               limits=store.limits)
        return cls(holder, store, lookup, FollowUpFlow(store.followups, settings), settings)

    # --- helpers -----------------------------------------------------------------------------------
    def _log(self, msg: Incoming, reply: Reply, t0: float, text: str | None = None,
             normalized: str | None = None) -> int:
        return self.store.requests.log(
            msg.channel, msg.chat_id, (text if text is not None else msg.text or msg.payload or "")[:2000],
            normalized=normalized, kind=ReplyKind(reply.kind),
            entry_id=reply.entry_id, topic=reply.topic, score=reply.score,
            latency_ms=round((time.perf_counter() - t0) * 1000, 2), kb_version=self.holder.version,
        )

    def _flooding(self, msg: Incoming) -> bool:
        if self.flood_per_minute <= 0:
            return False
        since = self.clock() - timedelta(minutes=1)
        return self.store.requests.count_since(msg.channel, msg.chat_id, since) >= self.flood_per_minute

    # --- the entry point -----------------------------------------------------------------------------
    def handle(self, msg: Incoming) -> list[Reply]:
        """The replies to one message, without the department's values nobody configured."""
        values = self.settings.department.placeholders()
        replies = self._handle(msg)
        for r in replies:
            r.text = drop_unconfigured(r.text, values)
        return replies

    def _leaves_form(self, state: dict[str, Any] | None, text: str, payload: str) -> str | None:
        """What the citizen was doing, when ``text`` is a new question asked in the middle of a form."""
        if payload or not text or not state or not reads_as_question(text):
            return None
        flow, step = state.get("flow"), state.get("step")
        if flow == "followup" and step in ("name", "phone", "confirm"):
            return "ghi yêu cầu gọi lại"
        if flow == "dossier" and step == "await_phone4" and not re.search(r"\d", text):
            return "tra cứu hồ sơ"
        return None

    def _handle(self, msg: Incoming) -> list[Reply]:
        t0 = time.perf_counter()
        text = (msg.text or "").strip()
        payload = (msg.payload or "").strip()
        with self.store.db.unit():  # both reads in one round of the database
            flooding = self._flooding(msg)
            state = self.store.states.get(msg.channel, msg.chat_id, max_age=timedelta(hours=24))
        if flooding:
            return [Reply("Bạn gửi tin nhắn nhanh quá. Vui lòng đợi khoảng một phút rồi hỏi tiếp nhé.",
                          kind=ReplyKind.ERROR)]
        if payload.startswith(MEDIA):
            reply = Reply(
                "Xin lỗi, tôi chỉ đọc được tin nhắn chữ, chưa xem được hình ảnh, nhãn dán hay tin nhắn thoại. "
                "Bạn vui lòng gõ câu hỏi bằng chữ (có dấu hay không dấu đều được) nhé.", kind=ReplyKind.INFO)
            self._log(msg, reply, t0, text=f"[{payload[len(MEDIA):] or 'media'}]")
            return [reply]
        if len(text) > self.settings.max_message_chars:
            reply = too_long_reply(len(text), self.settings.max_message_chars)
            self._log(msg, reply, t0, text=text[:200] + "…")
            return [reply]

        assistant = self.holder.current
        if payload == HELP or _COMMANDS.match(text):
            return self._reply(msg, help_reply(self.settings.department.dept_name), t0, None)
        if payload.startswith(PICK):
            entry_id = payload[len(PICK):]
            if assistant.entry(entry_id) is None:
                return self._reply(msg, Reply("Lựa chọn này không còn hiệu lực. Bạn vui lòng hỏi lại nhé.",
                                              kind=ReplyKind.ERROR), t0, state)
            reply = assistant.answer_reply(entry_id)
            question = (state or {}).get("last_question") or ""
            with self.store.db.unit():
                rid = self._log(msg, reply, t0, text=question)
                self.store.states.set(msg.channel, msg.chat_id, {
                    "last_question": question, "last_entry": entry_id,
                    "last_request_id": rid if question else (state or {}).get("last_request_id")})
            return [reply]
        if payload == REPHRASE:
            reply = Reply(
                "Dạ, bạn vui lòng hỏi lại bằng cách khác: nói rõ việc bạn cần (ví dụ: \"làm hồ sơ trợ cấp thất "
                "nghiệp cần giấy tờ gì\") hoặc đối tượng (người có công, người khuyết tật, trẻ em...).\n"
                "Nếu muốn cán bộ gọi lại, bấm \"Gặp cán bộ\".",
                kind=ReplyKind.INFO, buttons=[Button("Gặp cán bộ", FOLLOWUP_START)])
            question = (state or {}).get("last_question")
            with self.store.db.unit():
                if question:
                    self.store.requests.log_unanswered(msg.channel, msg.chat_id, question,
                                                       request_id=(state or {}).get("last_request_id"))
                return self._reply(msg, reply, t0, state)
        if payload.startswith(DETAILS):
            reply = assistant.details_reply(payload[len(DETAILS):])
            return self._reply(msg, reply, t0, state)
        if payload in (FEEDBACK_YES, FEEDBACK_NO):
            return self._feedback(msg, state, payload == FEEDBACK_YES, t0)
        if payload == FULL_TEXT:
            return self._reply(msg, assistant.full_text_reply((state or {}).get("last_passage")), t0, state)

        notice: Reply | None = None
        left = self._leaves_form(state, text, payload)
        if left is not None:
            notice = Reply(f"Dạ, mình tạm dừng việc {left} để trả lời câu hỏi mới của anh/chị. Khi cần, anh/chị "
                           "cứ bắt đầu lại.", kind=ReplyKind.INFO)
            state = {k: v for k, v in (state or {}).items() if k.startswith("last_")} or None
        else:
            for flow in (self.lookup, self.followup):
                r = flow.handle(msg, state)
                if r is not None:
                    if state and state.get("last_question") and (r.state is None or "flow" not in r.state):
                        r.state = {**{k: v for k, v in state.items() if k.startswith("last_")}, **(r.state or {})}
                    return self._reply(msg, r, t0, r.state, text=self._flow_log_text(flow, msg, state))
        pending = (state or {}).get("calculation")
        if payload.startswith(CALC) or (text and pending):
            outcome = assistant.continue_calculation(payload or text, pending)
            if outcome is not None:
                question = (state or {}).get("last_question") or mask_text(text)
                with self.store.db.unit():
                    rid = self._log(msg, outcome.reply, t0, text=text or question)
                    self.store.states.set(msg.channel, msg.chat_id, {
                        "last_question": question, "last_request_id": rid, "last_entry": None,
                        "calculation": outcome.calculation})
                return [outcome.reply]
            if payload:
                return self._reply(msg, Reply("Câu hỏi tính toán này đã hết hiệu lực. Bạn vui lòng hỏi lại, "
                                              "kèm các con số của mình nhé.", kind=ReplyKind.ERROR), t0, None)
        if not text:
            return self._reply(msg, help_reply(self.settings.department.dept_name), t0, None)

        outcome = assistant.ask(text)
        reply = outcome.reply
        normalized = outcome.search.query.restored if outcome.search else None
        with self.store.db.unit():  # the request, the officers' queue and the chat state: one commit
            rid = self._log(msg, reply, t0, text=text, normalized=normalized)
            if reply.kind in (ReplyKind.FALLBACK, ReplyKind.DOCUMENT):
                # A clause quoted from the legal texts is not a curated answer: officers still see the
                # question (its request, kind "document", says it was answered from documents).
                self.store.requests.log_unanswered(msg.channel, msg.chat_id, text, normalized=normalized,
                                                   request_id=rid)
            self.store.states.set(msg.channel, msg.chat_id, self._state_after(reply, outcome, text, rid, state))
        return [notice, reply] if notice is not None else [reply]

    @staticmethod
    def _state_after(reply: Reply, outcome: Outcome, text: str, rid: int,
                     state: dict[str, Any] | None) -> dict[str, Any]:
        """The chat's state after a question was answered (or declined)."""
        new_state: dict[str, Any] = {"last_question": mask_text(text), "last_request_id": rid,
                                     "last_entry": reply.entry_id if reply.kind == ReplyKind.ANSWER else None}
        if reply.kind == ReplyKind.DOCUMENT:
            new_state["last_queued"] = True  # already in the officers' queue: 👎 does not add it twice
            new_state["last_passage"] = outcome.passage  # what "Xem toàn văn" shows
        if outcome.calculation:
            new_state["calculation"] = outcome.calculation
        if reply.kind == ReplyKind.CHOICES:
            new_state["offered"] = reply.offered
        if state and state.get("last_ticket"):
            new_state["last_ticket"] = state["last_ticket"]
        return new_state

    def _flow_log_text(self, flow: object, msg: Incoming, state: dict[str, Any] | None) -> str | None:
        """What the request log keeps of a message answered by a flow: never the name, phone or the
        verification digits a citizen types into the follow-up form or the dossier check."""
        st = state or {}
        if flow is self.followup and st.get("flow") == "followup" and not msg.payload:
            return "[gặp cán bộ]"
        if flow is self.lookup and st.get("step") == "await_phone4" and re.search(r"\d", msg.text or ""):
            return "[xác minh 4 số cuối]"
        return None

    def _reply(self, msg: Incoming, reply: Reply, t0: float, state: dict[str, Any] | None,
               text: str | None = None) -> list[Reply]:
        with self.store.db.unit():
            self._log(msg, reply, t0, text=text)
            self.store.states.set(msg.channel, msg.chat_id, state)
        return [reply]

    def _feedback(self, msg: Incoming, state: dict[str, Any] | None, helpful: bool, t0: float) -> list[Reply]:
        st = state or {}
        with self.store.db.unit():
            self.store.requests.add_feedback(msg.channel, msg.chat_id, helpful,
                                             request_id=st.get("last_request_id"), entry_id=st.get("last_entry"))
            if helpful:
                reply = Reply("Cảm ơn bạn đã phản hồi! Bạn cần hỏi gì thêm cứ nhắn nhé.", kind=ReplyKind.INFO)
            else:
                question = st.get("last_question")
                if question and not st.get("last_queued"):
                    self.store.requests.log_unanswered(msg.channel, msg.chat_id, question,
                                                       request_id=st.get("last_request_id"))
                reply = Reply(
                    "Cảm ơn bạn đã cho biết. Câu hỏi đã được chuyển để cán bộ xem lại câu trả lời.\n"
                    "Bạn có thể hỏi lại cụ thể hơn, hoặc bấm \"Gặp cán bộ\" để được gọi lại.",
                    kind=ReplyKind.INFO, buttons=[Button("Gặp cán bộ", FOLLOWUP_START)])
            return self._reply(msg, reply, t0, st or None)
