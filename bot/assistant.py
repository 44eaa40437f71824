"""The question-answering core: text in, a reply (answer, choices or fallback) out.

It wires the swappable parts together from the settings; the channel adapters and the CLI only call
``Assistant.ask`` (and the dialogue layer on top of it).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bot.calculators import CalcOutcome, CalculatorSet
from bot.config import Settings
from bot.doc_search import DocSearcher, EntryText, LegalHint, PassageHit, curated_dates
from bot.embedder import settings_embedder
from bot.messages import Button, Reply
from bot.policy import (
    DOC_MIN_SCOPE,
    DOC_MIN_SCORE,
    DOC_TOP_TOPICS,
    Decision,
    Policy,
    PolicyError,
    calculation_allowed,
    decide,
    document_allowed,
    document_gate,
    topic_rank,
)
from bot.protocol import (
    DETAILS,
    FEEDBACK_NO,
    FEEDBACK_YES,
    FOLLOWUP_START,
    FULL_TEXT,
    PICK,
    REPHRASE,
    ReplyKind,
)
from bot.retrieval import Retriever, SearchResult
from bot.smalltalk import SmallTalk
from indexer.documents.numbers import cited_articles
from indexer.embed import Embedder
from indexer.index import load_index
from indexer.placeholders import render
from indexer.text import Segmenter, TextPipeline

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    """Everything the caller may want to log about one question."""

    reply: Reply
    search: SearchResult | None
    decision: Decision | None
    calculation: dict[str, Any] | None = None
    """A calculator waiting for a missing number: the state to pass to ``continue_calculation``."""
    passage: str | None = None
    """A document reply: the id of the quoted passage ("Xem toàn văn" shows its whole Article)."""

    @property
    def shown(self) -> list[tuple[str, str]]:
        """(topic, entry id) of what the reply shows: the answer, the offered choices, or a calculator's topic
        (no entry)."""
        if self.reply.kind in ("calculation", "document"):
            return [(self.reply.topic, "")] if self.reply.topic else []
        if self.decision is None or self.reply.kind not in ("answer", "choices"):
            return []
        return [(o.topic, o.entry.entry_id) for o in self.decision.options]

    @property
    def related(self) -> list[tuple[str, str]]:
        """(topic, entry id) of the related questions offered under an answer, in order."""
        if self.decision is None or self.reply.kind != "answer":
            return []
        return [(o.topic, o.entry.entry_id) for o in self.decision.related]


def too_long_reply(length: int, limit: int) -> Reply:
    return Reply(f"Tin nhắn dài quá ({length} ký tự). Bạn vui lòng hỏi ngắn gọn trong khoảng "
                 f"{limit} ký tự, mỗi lần một câu hỏi nhé.", kind=ReplyKind.ERROR)


HINT_ENTRIES = 8
"""How many of the closest curated entries lend their legal basis to the documents tier."""


def _label(title: str) -> str:
    """A button's label for an entry title (channels show about 60 characters)."""
    return title if len(title) <= 60 else title[:57] + "..."


def _fmt_date(iso: str) -> str:
    y, m, d = iso.split("-")
    return f"{int(d):02d}/{int(m):02d}/{y}"



class Assistant:
    def __init__(self, settings: Settings, retriever: Retriever, smalltalk: SmallTalk,
                 policy: Policy | None, calculators: CalculatorSet | None = None,
                 documents: DocSearcher | None = None) -> None:
        self.settings = settings
        self.retriever = retriever
        self.smalltalk = smalltalk
        self.policy = policy
        self.calculators = calculators
        self.documents = documents
        """The legal texts (second tier), when a documents index has been built."""
        self._cited: dict[str, list[tuple[str, frozenset[str] | None]]] = {}
        """entry id -> the documents and Articles its legal basis cites (parsed once)."""
        self._entry_texts: dict[str, EntryText] | None = None
        self.doc_min_scope = DOC_MIN_SCOPE
        self.doc_min_score = DOC_MIN_SCORE
        self.doc_top_topics = DOC_TOP_TOPICS
        """When a declined question gets a clause (:func:`bot.policy.document_allowed`): the calibrated
        constants; tests with the fake embedder, whose scores mean something else, set their own."""
        self.department = settings.department.placeholders()

    @classmethod
    def from_settings(cls, settings: Settings, embedder: Embedder | None = None,
                      segmenter: Segmenter | None = None, progress: Any = None,
                      version: str | None = None, require_policy: bool = True) -> Assistant:
        """``require_policy=False``: load an index that has no answer policy yet, or one that no longer fits the
        retrieval features (to fit one)."""
        embedder = embedder or settings_embedder(settings, progress=progress)
        index = load_index(settings.index_root, model=embedder.name, version=version)
        pipeline = TextPipeline.from_knowledge(settings.knowledge_dir, restorer=index.restorer,
                                               segmenter=segmenter)
        retriever = Retriever(index, embedder, pipeline, query_prefix=settings.query_prefix)
        policy_file = index.path / "policy.json"
        policy = None
        try:
            policy = Policy.load(policy_file) if require_policy or policy_file.exists() else None
        except PolicyError:
            if require_policy:
                raise  # without it, a policy fitted on other features is what a new fit replaces
        calc_dir = index.path / "calculators"  # published with the index version (see indexer.index)
        calculators = CalculatorSet.load(calc_dir) if calc_dir.is_dir() else None
        return cls(settings, retriever, SmallTalk.load(settings.knowledge_dir / "smalltalk.yaml"), policy,
                   calculators, load_documents(settings, embedder, pipeline))

    def warm_up(self) -> None:
        self.retriever.warm_up()
        if self.calculators is not None:
            self.calculators.warm_up()
        if self.documents is not None:
            self.documents.warm_up()
            # The Articles each entry citing a whole document lifts: found now, not on a citizen's question.
            for entry_id in self.retriever.index.entries:
                for h in self._hints_of(entry_id, 1.0):
                    if h.entry is not None:
                        self.documents.closest_articles(h.document, h.entry)

    # --- rendering -------------------------------------------------------------------------------
    def render(self, text: str) -> str:
        return render(text, self.department).strip()

    def entry(self, entry_id: str) -> dict[str, Any] | None:
        return self.retriever.index.entries.get(entry_id)

    def answer_reply(self, entry_id: str, score: float | None = None, related: Sequence[str] = ()) -> Reply:
        """The answer of an entry; ``related``: entry ids offered below it as related questions."""
        e = self.retriever.entry(entry_id)
        basis = "; ".join(e["legal_basis"][:2])
        text = self.render(e["answer"])
        text += f"\n\n(Căn cứ: {basis}; nội dung áp dụng từ {_fmt_date(e['valid_from'])}.)"
        buttons = []
        if e["kind"] == "procedure" or (e.get("source") and self.entry(e["source"]) is not None):
            buttons.append(Button("Xem chi tiết", DETAILS + entry_id))
        titles = [(rid, self.retriever.entry(rid)["title"]) for rid in related if rid != entry_id]
        if titles:
            text += "\n\nCó thể bạn muốn hỏi: " + "; ".join(f"\"{t}\"" for _, t in titles)
            buttons += [Button(_label(t), PICK + rid) for rid, t in titles]
        buttons += [Button("👍 Hữu ích", FEEDBACK_YES), Button("👎 Chưa hữu ích", FEEDBACK_NO)]
        return Reply(text=text, kind=ReplyKind.ANSWER, buttons=buttons, topic=e["topic"], entry_id=entry_id,
                     score=score)

    def details_reply(self, entry_id: str) -> Reply:
        e = self.entry(entry_id)
        if e is None:
            return Reply("Nội dung này không còn trong cơ sở tri thức. Bạn vui lòng hỏi lại nhé.", kind=ReplyKind.ERROR)
        if e["kind"] != "procedure" and e.get("source") and self.entry(e["source"]):
            e = self.entry(e["source"])
            assert e is not None
        text = self.render(e.get("details") or e["answer"])
        return Reply(text=text, kind=ReplyKind.ANSWER, topic=e["topic"], entry_id=e["id"])

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
            "Bạn có thể bấm \"Gặp cán bộ\" để để lại số điện thoại cho cán bộ gọi lại.\n"
            "Hoặc gọi đường dây nóng {dept_hotline} ({dept_hours})."
        )
        return Reply(text=text, kind=ReplyKind.FALLBACK, buttons=[Button("Gặp cán bộ", FOLLOWUP_START)])

    def document_reply(self, hit: PassageHit) -> Reply:
        """A clause of a legal text, quoted as the law's wording: its text (which starts with a warning
        when the wording is no longer current), its citation, the date it holds from, and a reminder that
        the Department confirms the citizen's own case."""
        title = f"{hit.doc_type} {hit.document}".strip()
        if hit.doc_title:
            title += f" ({hit.doc_title if len(hit.doc_title) <= 120 else hit.doc_title[:119] + '…'})"
        since = f"; nội dung áp dụng từ {_fmt_date(hit.effective)}" if hit.effective else ""
        # The quoted text is the law's wording: never passed through the placeholder renderer.
        text = (
            "Tôi chưa có câu trả lời soạn sẵn cho câu hỏi này. Quy định liên quan trong văn bản pháp luật:\n\n"
            f"«{hit.text}»\n\n"
            f"(Trích {hit.citation}{since}.)\n"
            f"Văn bản: {title}.\n"
            "Đây là nguyên văn quy định của pháp luật, không phải kết luận cho trường hợp của bạn; Sở sẽ xác "
            "nhận trường hợp cụ thể của bạn. Câu hỏi đã được ghi lại để cán bộ xem xét, bạn có thể bấm "
            "\"Gặp cán bộ\" để được gọi lại."
        )
        buttons = [Button("Xem toàn văn", FULL_TEXT), Button("👍 Hữu ích", FEEDBACK_YES),
                   Button("👎 Chưa hữu ích", FEEDBACK_NO), Button("Gặp cán bộ", FOLLOWUP_START)]
        return Reply(text=text, kind=ReplyKind.DOCUMENT, buttons=buttons, topic=hit.topic,
                     score=round(hit.score, 4), citations=[hit.citation])

    def full_text_reply(self, passage_id: str | None) -> Reply:
        """"Xem toàn văn": the whole Article of a quoted clause (long ones cut, with a note), its citation and
        date, the law's wording as it stands (never through the placeholder renderer)."""
        art = self.documents.article_text(passage_id) if self.documents is not None and passage_id else None
        if art is None:
            return Reply("Đoạn văn bản này không còn trong dữ liệu hiện tại của trợ lý. Bạn vui lòng hỏi lại, "
                         "hoặc bấm \"Gặp cán bộ\" để được gọi lại.", kind=ReplyKind.ERROR,
                         buttons=[Button("Gặp cán bộ", FOLLOWUP_START)])
        head = f"{art.citation}" + (f". {art.title}" if art.title else "")
        since = f" (nội dung áp dụng từ {_fmt_date(art.effective)})" if art.effective else ""
        tail = ("\n\n(Điều này còn tiếp; phần còn lại cán bộ của Sở có thể cung cấp khi bạn cần.)"
                if art.cut else "")
        text = f"{head}{since}:\n\n{art.text}{tail}"
        return Reply(text=text, kind=ReplyKind.INFO, buttons=[Button("Gặp cán bộ", FOLLOWUP_START)],
                     citations=[art.citation])

    def quoted_clause(self, text: str) -> PassageHit | None:
        """The clause :meth:`ask` quotes for ``text`` now, or None when it answers otherwise (or has no
        documents tier); the console shows it to officers, who can turn it into a curated answer."""
        if self.documents is None or self.policy is None or not (text or "").strip():
            return None
        result = self.retriever.search(text)
        decision = decide(result, self.policy)
        if decision.kind in ("answer", "choices"):
            return None
        return self.document_hit(result, decision)

    def document_hit(self, result: SearchResult, decision: Decision) -> PassageHit | None:
        """The clause to quote for a question the curated tier declines, or None (see
        :func:`bot.policy.document_allowed`)."""
        if self.documents is None or not document_gate(decision.kind, decision.out_of_scope, decision.scope,
                                                       self.doc_min_scope):
            return None
        hit = self.best_passage(result)
        if hit is None or self.policy is None:
            return None
        rank = topic_rank(self.policy.topic_probabilities(result.topic_features), result.topics, hit.topic)
        if not document_allowed(decision.kind, decision.out_of_scope, decision.scope, hit.score, rank,
                                self.doc_min_scope, self.doc_min_score, self.doc_top_topics):
            return None
        return hit

    def best_passage(self, result: SearchResult) -> PassageHit | None:
        """The documents tier's best clause for a question the curated tier already processed (and
        embedded, when its vector can be reused)."""
        if self.documents is None:
            return None
        t0 = time.perf_counter()
        try:
            qvec = result.query_vector
            if qvec is None and self.documents.embedder is not None:
                qvec = self.documents.embedder.embed([result.query.dense_text()], self.documents.query_prefix)[0]
            hits = self.documents.search_processed(result.query, qvec, k=1, hints=self.legal_hints(result))
            return hits[0] if hits else None
        finally:
            result.timings["documents"] = (time.perf_counter() - t0) * 1000

    def legal_hints(self, result: SearchResult, k: int = HINT_ENTRIES) -> list[LegalHint]:
        """What the ``k`` curated entries closest to the question cite as their legal basis, for the
        documents tier: the closest entry's citations weigh 1, the next ones 1/2, 1/3... A citation of a
        whole document carries the entry's text, so that the documents tier lifts the Articles of that
        document closest to it (:meth:`bot.doc_search.DocSearcher.closest_articles`)."""
        return [h for rank, c in enumerate(result.candidates[:k]) for h in self._hints_of(c.entry_id, 1 / (1 + rank))]

    def _hints_of(self, entry_id: str, weight: float) -> list[LegalHint]:
        cited = self._cited.get(entry_id)
        if cited is None:
            e = self.retriever.index.entries.get(entry_id) or {}
            cited = [x for basis in e.get("legal_basis") or [] for x in cited_articles(basis)]
            self._cited[entry_id] = cited
        return [LegalHint(doc, arts, weight, None if arts else self.entry_text(entry_id)) for doc, arts in cited]

    def entry_text(self, entry_id: str) -> EntryText | None:
        """What a curated entry says, from the curated index (no new processing or embedding): the tokens
        of its answer (a procedure: its summary) and the vector of its question (a procedure: its summary)."""
        if self._entry_texts is None:
            ix = self.retriever.index
            row_of = {int(u): r for r, u in enumerate(ix.dense_units)}
            unit_of = {(u["entry"], u["field"]): i for i, u in enumerate(ix.units)}
            texts: dict[str, EntryText] = {}
            for u in ix.units:
                if u["field"] in ("answer", "summary"):
                    row = row_of.get(unit_of.get((u["entry"], "question" if u["field"] == "answer" else "summary"), -1))
                    texts[u["entry"]] = EntryText(u["entry"], tuple(u.get("words") or ()), tuple(u.get("folded") or ()),
                                                  None if row is None else ix.vectors[row])
            self._entry_texts = texts
        return self._entry_texts.get(entry_id)

    def choices_reply(self, decision: Decision) -> Reply:
        lines = ["Tôi tìm thấy vài nội dung gần với câu hỏi của bạn. Bạn muốn hỏi về:"]
        buttons = []
        for i, option in enumerate(decision.options, 1):
            e = self.retriever.entry(option.entry.entry_id)
            title = e["title"]
            lines.append(f"{i}. {title}")
            buttons.append(Button(_label(title), PICK + option.entry.entry_id))
        lines.append("Bấm vào một lựa chọn, hoặc hỏi lại cụ thể hơn.")
        buttons.append(Button("Không phải các ý trên", REPHRASE))
        return Reply(text="\n".join(lines), kind=ReplyKind.CHOICES, buttons=buttons)

    def calculation_reply(self, out: CalcOutcome) -> Reply:
        """A calculator's result, follow-up question or message about a bad number, as a reply."""
        buttons = list(out.buttons)
        if out.kind == "result":
            buttons += [Button("👍 Hữu ích", FEEDBACK_YES), Button("👎 Chưa hữu ích", FEEDBACK_NO)]
        return Reply(text=self.render(out.text), kind=ReplyKind.CALCULATION, buttons=buttons, topic=out.topic,
                     score=1.0 if out.kind == "result" else None)

    def continue_calculation(self, text: str, state: dict[str, Any] | None) -> Outcome | None:
        """The answer to a calculator's pending follow-up question (typed or a ``calc:`` button), or None when
        the message is something else (then it is asked as a new question and the pending one is dropped)."""
        if self.calculators is None:
            return None
        is_payload = self.calculators.is_payload(text)
        if not is_payload and not self.calculators.is_pending(state):
            return None
        detection = self.calculators.detect(text, state)
        if detection is None or not (detection.resumed or is_payload):
            return None
        out = self.calculators.respond(detection, state)
        return Outcome(self.calculation_reply(out), None, None, out.state)

    def calc_topic(self, text: str) -> tuple[str, bool] | None:
        """The topic of the calculator that recognises ``text`` as an amount question, and whether the
        question carries numbers; None if no calculator does."""
        detection = self.calculators.detect(text) if self.calculators is not None else None
        return (detection.topic, detection.has_numbers) if detection is not None else None

    def _calculation(self, text: str, result: SearchResult) -> Outcome | None:
        """An amount question that a calculator can work out, if the answer policy agrees on its topic."""
        if self.calculators is None or self.policy is None:
            return None
        t0 = time.perf_counter()
        try:
            detection = self.calculators.detect(text)
            if detection is None:
                return None
            probs = self.policy.topic_probabilities(result.topic_features)
            scope = self.policy.scope_probability(result.question_features)
            if not calculation_allowed(probs, scope, result.topics, detection.topic, detection.has_numbers):
                return None
            out = self.calculators.respond(detection)
            reply = self.calculation_reply(out)
            reply.candidates = self._candidates(result, probs)
            return Outcome(reply, result, None, out.state)
        finally:
            result.timings["calc"] = (time.perf_counter() - t0) * 1000

    def _candidates(self, result: SearchResult, probs: np.ndarray) -> list[dict[str, Any]]:
        return [
            {"entry_id": result.best_entry[result.topics[i]].entry_id, "topic": result.topics[i],
             "score": round(float(probs[i]), 4)}
            for i in probs.argsort()[::-1][:5] if result.topics[i] in result.best_entry
        ]

    def likely_topics(self, text: str, k: int = 3) -> list[tuple[str, float, str]]:
        """The ``k`` most likely topics of ``text``: (topic, probability, best entry id), best first."""
        result = self.retriever.search(text)
        if self.policy is None:
            raise PolicyError("no answer policy in this index version: run `ldtbxh policy fit`")
        probs = self.policy.topic_probabilities(result.topic_features)
        return [(result.topics[i], float(probs[i]), result.best_entry[result.topics[i]].entry_id)
                for i in probs.argsort()[::-1] if result.topics[i] in result.best_entry][:k]

    # --- the main entry point --------------------------------------------------------------------
    def ask(self, text: str) -> Outcome:
        text = (text or "").strip()
        if not text:
            return Outcome(Reply("Bạn hãy gõ câu hỏi bằng chữ nhé.", kind=ReplyKind.ERROR), None, None)
        if len(text) > self.settings.max_message_chars:
            return Outcome(too_long_reply(len(text), self.settings.max_message_chars), None, None)
        intent = self.smalltalk.match(text)
        if intent is not None:
            return Outcome(Reply(self.render(intent.reply), kind=ReplyKind.SMALLTALK), None, None)
        if self.policy is None:
            raise PolicyError("no answer policy in this index version: run `ldtbxh policy fit`")
        result = self.retriever.search(text)
        calculation = self._calculation(text, result)
        if calculation is not None:
            return calculation
        decision = decide(result, self.policy)
        passage: str | None = None
        if decision.kind == "answer" and decision.best is not None:
            reply = self.answer_reply(decision.best.entry_id, round(decision.options[0].probability, 4),
                                      [o.entry.entry_id for o in decision.related])
        elif decision.kind == "choices":
            reply = self.choices_reply(decision)
        elif (hit := self.document_hit(result, decision)) is not None:
            reply = self.document_reply(hit)
            passage = hit.id
        else:
            agency = (result.oos_group or {}).get("agency") if decision.out_of_scope else None
            reply = self.fallback_reply(agency)
        if decision.options and reply.kind not in ("answer", "document"):
            top = decision.options[0]
            reply.topic, reply.entry_id, reply.score = top.topic, top.entry.entry_id, round(top.probability, 4)
        reply.candidates = self._candidates(result, self.policy.topic_probabilities(result.topic_features))
        return Outcome(reply, result, decision, passage=passage)


def load_documents(settings: Settings, embedder: Embedder, pipeline: TextPipeline) -> DocSearcher | None:
    """The documents tier when ``documents_in_dialogue`` is on and a documents index has been built for this
    embedder, else None (the assistant then answers from the curated entries alone)."""
    from indexer.documents.index import current_doc_version, docs_root, load_doc_index

    if not settings.documents_in_dialogue or current_doc_version(docs_root(settings.index_root)) is None:
        return None
    try:
        index = load_doc_index(settings.index_root, model=embedder.name)
    except Exception as exc:  # noqa: BLE001 - a broken documents index must not stop the curated answers
        log.warning("documents tier off: %s", exc)
        return None
    return DocSearcher(index, embedder, pipeline, query_prefix=settings.query_prefix,
                       curated_from=curated_dates(settings.knowledge_dir))
