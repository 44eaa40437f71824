"""The question-answering core: text in, a reply (answer, choices or fallback) out.

It wires the swappable parts together from the settings; the channel adapters and the CLI only call
``Assistant.ask`` (and the dialogue layer on top of it).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from bot.config import Settings
from bot.messages import Button, Reply
from bot.policy import Decision, PolicyParams, decide
from bot.retrieval import FusionParams, Retriever, SearchResult
from bot.smalltalk import SmallTalk
from indexer.embed import Embedder, make_embedder
from indexer.index import load_index
from indexer.knowledge import render
from indexer.text import Segmenter, TextPipeline

log = logging.getLogger(__name__)

FEEDBACK_YES = "fb:1"
FEEDBACK_NO = "fb:0"
DETAILS = "detail:"
PICK = "pick:"
FOLLOWUP = "followup:start"


@dataclass
class Outcome:
    """Everything the caller may want to log about one question."""

    reply: Reply
    search: SearchResult | None
    decision: Decision | None


def too_long_reply(length: int, limit: int) -> Reply:
    return Reply(f"Tin nhắn dài quá ({length} ký tự). Bạn vui lòng hỏi ngắn gọn trong khoảng "
                 f"{limit} ký tự, mỗi lần một câu hỏi nhé.", kind="error")


def _fmt_date(iso: str) -> str:
    y, m, d = iso.split("-")
    return f"{int(d):02d}/{int(m):02d}/{y}"


class Assistant:
    def __init__(self, settings: Settings, retriever: Retriever, smalltalk: SmallTalk) -> None:
        self.settings = settings
        self.retriever = retriever
        self.smalltalk = smalltalk
        self.department = settings.department()
        self.policy = PolicyParams(
            answer_threshold=settings.answer_threshold, choice_threshold=settings.choice_threshold,
            answer_margin=settings.answer_margin, max_choices=settings.max_choices,
            min_dense_for_answer=settings.min_dense_for_answer, oos_margin=settings.oos_margin,
        )

    @classmethod
    def from_settings(cls, settings: Settings, embedder: Embedder | None = None,
                      segmenter: Segmenter | None = None, progress: Any = None,
                      version: str | None = None) -> Assistant:
        embedder = embedder or make_embedder(settings.embedding_model, settings.embedding_backend,
                                             settings.models_dir, progress=progress)
        index = load_index(settings.index_root, model=embedder.name, version=version)
        pipeline = TextPipeline.from_knowledge(settings.knowledge_dir, restorer=index.restorer,
                                               segmenter=segmenter)
        retriever = Retriever(index, embedder, pipeline, FusionParams(dense_weight=settings.dense_weight, dense_floor=settings.dense_floor),
                              query_prefix=settings.query_prefix)
        return cls(settings, retriever, SmallTalk.load(settings.knowledge_dir / "smalltalk.yaml"))

    def warm_up(self) -> None:
        self.retriever.warm_up()

    # --- rendering -------------------------------------------------------------------------------
    def render(self, text: str) -> str:
        return render(text, self.department).strip()

    def entry(self, entry_id: str) -> dict[str, Any] | None:
        return self.retriever.index.entries.get(entry_id)

    def answer_reply(self, entry_id: str, score: float | None = None) -> Reply:
        e = self.retriever.entry(entry_id)
        basis = "; ".join(e["legal_basis"][:2])
        text = self.render(e["answer"])
        text += f"\n\n(Căn cứ: {basis}; nội dung áp dụng từ {_fmt_date(e['valid_from'])}.)"
        buttons = []
        if e["kind"] == "procedure" or (e.get("source") and self.entry(e["source"]) is not None):
            buttons.append(Button("Xem chi tiết", DETAILS + entry_id))
        buttons += [Button("👍 Hữu ích", FEEDBACK_YES), Button("👎 Chưa hữu ích", FEEDBACK_NO)]
        return Reply(text=text, kind="answer", buttons=buttons, topic=e["topic"], entry_id=entry_id,
                     score=score)

    def details_reply(self, entry_id: str) -> Reply:
        e = self.entry(entry_id)
        if e is None:
            return Reply("Nội dung này không còn trong cơ sở tri thức. Bạn vui lòng hỏi lại nhé.", kind="error")
        if e["kind"] != "procedure" and e.get("source") and self.entry(e["source"]):
            e = self.entry(e["source"])
            assert e is not None
        text = self.render(e.get("details") or e["answer"])
        return Reply(text=text, kind="answer", topic=e["topic"], entry_id=e["id"])

    def fallback_reply(self, agency: str | None = None) -> Reply:
        lead = (
            "Xin lỗi, câu hỏi này không thuộc lĩnh vực tôi được giao trả lời "
            f"(việc này do {agency} giải quyết), nên tôi không muốn trả lời sai.\n"
            if agency else
            "Xin lỗi, tôi chưa tìm thấy câu trả lời chắc chắn cho câu hỏi này nên không muốn trả lời sai.\n"
        )
        text = self.render(
            lead +
            "Câu hỏi của bạn đã được ghi lại để cán bộ xem xét.\n"
            "Bạn có thể bấm \"Gặp cán bộ\" để để lại số điện thoại, hoặc gọi đường dây nóng {dept_hotline} "
            "({dept_hours})."
        )
        return Reply(text=text, kind="fallback", buttons=[Button("Gặp cán bộ", FOLLOWUP)])

    def choices_reply(self, decision: Decision) -> Reply:
        lines = ["Tôi tìm thấy vài nội dung gần với câu hỏi của bạn. Bạn muốn hỏi về:"]
        buttons = []
        for i, c in enumerate(decision.options, 1):
            e = self.retriever.entry(c.entry_id)
            title = e["title"]
            lines.append(f"{i}. {title}")
            label = title if len(title) <= 60 else title[:57] + "..."
            buttons.append(Button(label, PICK + c.entry_id))
        lines.append("Bấm vào một lựa chọn, hoặc hỏi lại cụ thể hơn.")
        buttons.append(Button("Không phải các ý trên", FOLLOWUP))
        return Reply(text="\n".join(lines), kind="choices", buttons=buttons)

    # --- the main entry point --------------------------------------------------------------------
    def ask(self, text: str) -> Outcome:
        text = (text or "").strip()
        if not text:
            return Outcome(Reply("Bạn hãy gõ câu hỏi bằng chữ nhé.", kind="error"), None, None)
        if len(text) > self.settings.max_message_chars:
            return Outcome(too_long_reply(len(text), self.settings.max_message_chars), None, None)
        intent = self.smalltalk.match(text)
        if intent is not None:
            return Outcome(Reply(self.render(intent.reply), kind="smalltalk"), None, None)
        result = self.retriever.search(text)
        decision = decide(result.candidates, self.policy, result.oos_similarity)
        if decision.kind == "answer" and decision.best is not None:
            reply = self.answer_reply(decision.best.entry_id, decision.best.score)
        elif decision.kind == "choices":
            reply = self.choices_reply(decision)
        else:
            agency = (result.oos_group or {}).get("agency") if decision.out_of_scope else None
            reply = self.fallback_reply(agency)
        best = decision.best
        if best is not None and reply.kind != "answer":
            reply.topic, reply.entry_id, reply.score = best.topic, best.entry_id, best.score
        reply.candidates = [
            {"entry_id": c.entry_id, "topic": c.topic, "score": c.score} for c in result.candidates[:5]
        ]
        return Outcome(reply, result, decision)
