"""The documents tier in the dialogue: a question the curated entries decline is answered with the
matching clause of a legal text, its citation and the date it holds from; never an out-of-scope one.

Real parts: the small knowledge base and its answer policy, a documents index built from the test
fixture decision (tests/data/documents/quyet-dinh-123.md) with a hand-written supersession of its
annex, the fake embedder. The calibrated thresholds (bot.policy.DOC_MIN_SCOPE / DOC_MIN_SCORE) are for
the real model's scores; with the fake embedder the tests set their own, stated in each test.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from bot.assistant import Assistant
from bot.config import Settings
from bot.messages import Incoming
from bot.policy import decide, document_allowed, document_gate, topic_rank
from bot.runtime import AssistantHolder
from bot.storage import Storage
from indexer.documents.importer import Overrides, import_paths
from indexer.documents.index import build_doc_index
from tests.fakes import HashingEmbedder
from tests.support import HERE, make_dialogue, make_settings

FIXTURE = HERE / "data" / "documents" / "quyet-dinh-123.md"
TOPIC = "btxh-tro-cap-hang-thang"
SUPERSESSION = """supersessions:
  - document: 123/QĐ-SLĐTBXH
    parts: ["Phụ lục I"]
    superseded_by: 456/QĐ-SLĐTBXH
    from: 2026-01-01
    scope: "mức hỗ trợ chi phí đi lại"
    text_shipped: false
"""

DECLINED = "cán bộ một cửa kiểm tra thành phần hồ sơ trợ cấp xã hội và viết giấy biên nhận cho người nộp không"
"""Declined by the curated tier of the small knowledge base (no entry says it), in its scope (P ≈ 0.5),
answered word for word by khoản 2 Điều 3 of the fixture decision."""
SUPERSEDED = "chi phí đi lại khi nộp hồ sơ"
"""Declined (P(scope) ≈ 0.24); its clause is a row of Phụ lục I, superseded in the map above."""
WEATHER = "Hôm nay thời tiết Hà Nội thế nào?"
"""Declined as another agency's business (out_of_scope.yaml)."""
VISA = "xin visa đi Mỹ ở đâu"
"""Declined, P(scope) ≈ 0.02."""


def add_documents(settings: Settings, embedder_dim: int = 256) -> None:
    """Import the fixture decision (serving one topic), map its annex as superseded, build the index."""
    kb = settings.knowledge_dir
    res = import_paths([FIXTURE], kb, Overrides(topics=[TOPIC]))
    assert all(r.ok for r in res), [r.error for r in res]
    (kb / "documents" / "supersession.yaml").write_text(SUPERSESSION, encoding="utf-8")
    build_doc_index(kb, settings.index_root, HashingEmbedder(embedder_dim), workers=1, today=dt.date(2026, 7, 15))


def assistant(settings: Settings, min_scope: float = 0.2, min_score: float = 0.3, top_topics: int = 1000
              ) -> Assistant:
    """The small knowledge base's policy (fitted for the fake embedder) ranks its topics by hashed
    words: the topic condition is tested on its own (``top_topics``), the other tests leave it open."""
    a = Assistant.from_settings(settings, embedder=HashingEmbedder(256))
    a.doc_min_scope, a.doc_min_score, a.doc_top_topics = min_scope, min_score, top_topics
    return a


@pytest.fixture()
def with_docs(fake_index: Settings) -> Settings:
    add_documents(fake_index)
    return fake_index.model_copy(update={"documents_in_dialogue": True})


def test_the_documents_tier_stays_out_of_the_dialogue_unless_switched_on(fake_index: Settings) -> None:
    add_documents(fake_index)
    assert Assistant.from_settings(fake_index, embedder=HashingEmbedder(256)).documents is None
    on = fake_index.model_copy(update={"documents_in_dialogue": True})
    assert Assistant.from_settings(on, embedder=HashingEmbedder(256)).documents is not None


def test_a_declined_question_gets_the_clause_with_citation_and_date(with_docs: Settings) -> None:
    a = assistant(with_docs)
    assert a.documents is not None
    out = a.ask(DECLINED)
    r = out.reply
    assert r.kind == "document", r.text
    assert out.decision is not None and out.decision.kind == "fallback" and not out.decision.out_of_scope
    assert r.citations == ["khoản 2 Điều 3 Quyết định 123/QĐ-SLĐTBXH"]
    assert "«2. Cán bộ một cửa kiểm tra thành phần hồ sơ và viết giấy biên nhận cho người nộp.»" in r.text
    assert "(Trích khoản 2 Điều 3 Quyết định 123/QĐ-SLĐTBXH; nội dung áp dụng từ 15/03/2025.)" in r.text
    assert "nguyên văn quy định của pháp luật" in r.text and "Sở sẽ xác nhận trường hợp cụ thể" in r.text
    assert [(b.label, b.payload) for b in r.buttons] == [
        ("Xem toàn văn", "fulltext"), ("👍 Hữu ích", "fb:1"), ("👎 Chưa hữu ích", "fb:0"), ("Gặp cán bộ", "followup:start")]
    assert out.passage is not None and out.passage.startswith("123-")
    assert r.topic == TOPIC and r.entry_id is None and r.score is not None and r.score >= 0.3
    assert out.shown == [(TOPIC, "")]
    assert out.search is not None and "documents" in out.search.timings


def test_the_score_threshold_is_applied(with_docs: Settings) -> None:
    a = assistant(with_docs, min_score=0.99)
    assert a.ask(DECLINED).reply.kind == "fallback"


def test_a_clause_whose_topic_the_policy_does_not_see_is_not_quoted(with_docs: Settings) -> None:
    # The fixture's topic (btxh-tro-cap-hang-thang) is not among the small policy's two best topics here.
    a = assistant(with_docs, top_topics=2)
    out = a.ask(DECLINED)
    assert out.reply.kind == "fallback"
    assert a.policy is not None and out.search is not None
    hit = a.best_passage(out.search)
    assert hit is not None and hit.topic == TOPIC and hit.score >= 0.3
    rank = topic_rank(a.policy.topic_probabilities(out.search.topic_features), out.search.topics, TOPIC)
    assert rank is not None and rank >= 2
    a.doc_top_topics = rank + 1
    assert a.ask(DECLINED).reply.kind == "document"


def test_out_of_scope_questions_never_get_a_clause(with_docs: Settings) -> None:
    # Even with no score threshold at all: another agency's business is never searched in the texts...
    a = assistant(with_docs, min_scope=0.0, min_score=0.0)
    out = a.ask(WEATHER)
    assert out.decision is not None and out.decision.out_of_scope
    assert out.reply.kind == "fallback" and not out.reply.citations
    assert "documents" not in (out.search.timings if out.search else {})
    # ...and a question the policy thinks is not the Department's business neither.
    a = assistant(with_docs, min_scope=0.2, min_score=0.0)
    out = a.ask(VISA)
    assert out.decision is not None and out.decision.scope < 0.2
    assert out.reply.kind == "fallback"


def test_answers_and_choices_of_the_curated_tier_are_kept(with_docs: Settings) -> None:
    a = assistant(with_docs, min_scope=0.0, min_score=0.0)
    out = a.ask("Trợ cấp thất nghiệp được hưởng bao nhiêu tiền một tháng?")
    assert out.reply.kind == "answer" and out.reply.entry_id == "tctn-huong-muc"


def test_a_superseded_clause_shows_its_warning_first(with_docs: Settings) -> None:
    r = assistant(with_docs).ask(SUPERSEDED).reply
    assert r.kind == "document", r.text
    assert r.citations[0].endswith("Phụ lục I Quyết định 123/QĐ-SLĐTBXH")
    quote = r.text.split("«", 1)[1]
    assert quote.startswith("Lưu ý: quy định này đã được thay thế bởi 456/QĐ-SLĐTBXH từ 01/01/2026")
    assert "Các mức tiền trong đoạn này không còn áp dụng." in quote
    assert quote.index("Lưu ý") < quote.index("đồng"), "the warning comes before any amount"


def test_without_a_documents_index_nothing_changes(fake_index: Settings) -> None:
    a = assistant(fake_index, min_scope=0.0, min_score=0.0)
    assert a.documents is None
    out = a.ask(DECLINED)
    assert out.reply.kind == "fallback" and "chưa tìm thấy câu trả lời" in out.reply.text
    assert "documents" not in (out.search.timings if out.search else {})


def test_an_index_built_with_another_embedder_is_left_off(fake_index: Settings) -> None:
    add_documents(fake_index, embedder_dim=128)
    a = assistant(fake_index, min_scope=0.0, min_score=0.0)
    assert a.documents is None
    assert a.ask(DECLINED).reply.kind == "fallback"


def test_a_running_assistant_picks_up_a_new_documents_index(fake_index: Settings) -> None:
    on = fake_index.model_copy(update={"documents_in_dialogue": True})
    holder = AssistantHolder(on, embedder=HashingEmbedder(256))
    assert holder.current.documents is None
    assert holder.check_reload() is False
    add_documents(on)
    assert holder.check_reload() is True, "a documents build is picked up like a curated index switch"
    assert holder.current.documents is not None and holder.check_reload() is False


def test_gate_functions() -> None:
    assert document_gate("fallback", False, 0.5, 0.4)
    assert not document_gate("fallback", True, 0.9, 0.0), "another agency's business"
    assert not document_gate("answer", False, 0.9, 0.0) and not document_gate("choices", False, 0.9, 0.0)
    assert not document_gate("fallback", False, 0.3, 0.4)
    assert document_allowed("fallback", False, 0.5, 0.7, 1, 0.4, 0.6, 2)
    assert not document_allowed("fallback", False, 0.5, 0.5, 1, 0.4, 0.6, 2), "score"
    assert not document_allowed("fallback", False, 0.5, 0.7, 2, 0.4, 0.6, 2), "topic not among the best two"
    assert not document_allowed("fallback", False, 0.5, 0.7, None, 0.4, 0.6, 2), "a clause without a topic"
    probs = np.array([0.1, 0.6, 0.3])
    assert [topic_rank(probs, ["a", "b", "c"], t) for t in ("b", "c", "a", "z", None)] == [0, 1, 2, None, None]


def test_the_dialogue_logs_a_document_reply_for_officers(store: Storage, migrated_url: str, tmp_path: Path,
                                                          mini_kb: Path) -> None:
    settings = make_settings(tmp_path, mini_kb, database_url=migrated_url, documents_in_dialogue=True)
    add_documents(settings)
    d = make_dialogue(store, settings)
    a = d.holder.current
    a.doc_min_scope, a.doc_min_score, a.doc_top_topics = 0.2, 0.3, 1000
    [reply] = d.handle(Incoming("web", "c1", text=DECLINED))
    assert reply.kind == "document" and reply.citations
    queue = store.requests.queue()
    assert [(i.question, i.source) for i in queue] == [(DECLINED, "document")], \
        "a clause is not a curated answer: officers still see the question, marked answered from documents"
    # "Chưa hữu ích" on the clause: the question is already queued, not a second time.
    [thanks] = d.handle(Incoming("web", "c1", payload="fb:0"))
    assert "chuyển để cán bộ xem lại" in thanks.text
    assert len(store.requests.queue()) == 1
    # A plain decline stays a plain decline in the queue.
    d.handle(Incoming("web", "c2", text=VISA))
    assert sorted(i.source for i in store.requests.queue()) == ["document", "fallback"]


def test_xem_toan_van_shows_the_whole_article_then_the_annex_with_its_warning(
        store: Storage, migrated_url: str, tmp_path: Path, mini_kb: Path) -> None:
    settings = make_settings(tmp_path, mini_kb, database_url=migrated_url, documents_in_dialogue=True)
    add_documents(settings)
    d = make_dialogue(store, settings)
    a = d.holder.current
    a.doc_min_scope, a.doc_min_score, a.doc_top_topics = 0.2, 0.3, 1000
    # Before any clause was quoted, "Xem toàn văn" says so (and offers an officer) rather than guessing.
    [nothing] = d.handle(Incoming("web", "c1", payload="fulltext"))
    assert nothing.kind == "error" and "không còn trong dữ liệu" in nothing.text
    [clause] = d.handle(Incoming("web", "c1", text=DECLINED))
    assert clause.kind == "document" and "Xem toàn văn" in [b.label for b in clause.buttons]
    [whole] = d.handle(Incoming("web", "c1", payload="fulltext"))
    assert whole.text.startswith("Điều 3 Quyết định 123/QĐ-SLĐTBXH. Thành phần hồ sơ "
                                 "(nội dung áp dụng từ 15/03/2025):"), whole.text
    for part in ("1. Hồ sơ gồm các giấy tờ sau đây:", "a) Tờ khai của đối tượng theo mẫu;",
                 "c) Bản sao giấy khai sinh đối với trẻ em.", "2. Cán bộ một cửa kiểm tra thành phần hồ sơ"):
        assert part in whole.text, part
    assert whole.text.index("a) Tờ khai") < whole.text.index("2. Cán bộ một cửa"), "in the Article's order"
    assert "Điều 4" not in whole.text and "còn tiếp" not in whole.text
    assert whole.citations == ["Điều 3 Quyết định 123/QĐ-SLĐTBXH"]
    assert [b.payload for b in whole.buttons] == ["followup:start"]
    # The feedback that follows still concerns the clause (the state was kept).
    [thanks] = d.handle(Incoming("web", "c1", payload="fb:1"))
    assert "Cảm ơn" in thanks.text

    # A superseded annex: every row in order, the warning once before them; a long one is cut.
    searcher = a.documents
    assert searcher is not None
    row = next(p for p in searcher.index.passages if p.kind == "row")
    art = searcher.article_text(row.id)
    assert art is not None and art.citation.startswith("Phụ lục I") and not art.cut
    lines = art.text.split("\n")
    assert lines[0].startswith("Lưu ý: quy định này đã được thay thế bởi 456/QĐ-SLĐTBXH từ 01/01/2026")
    assert [ln.split(";")[0] for ln in lines[1:]] == ["Dưới 10 km", "Từ 10 km đến dưới 30 km", "Từ 30 km trở lên"]
    assert sum(ln.startswith("Lưu ý") for ln in lines) == 1, "one warning for the rows it concerns"
    short = searcher.article_text(row.id, limit=len(lines[0]) + 80)
    assert short is not None and short.cut and len(short.text) <= len(lines[0]) + 80
    assert searcher.article_text("khong-co/dieu-9") is None


def test_decide_is_unchanged_by_the_documents_tier(with_docs: Settings) -> None:
    """The curated decision is computed before (and independently of) the documents tier."""
    a = assistant(with_docs)
    res = a.retriever.search(DECLINED)
    assert a.policy is not None
    d = decide(res, a.policy)
    assert d.kind == "fallback"
    assert a.document_hit(res, d) is not None


def test_a_question_answered_from_a_clause_becomes_a_curated_draft_in_one_reply(
        store: Storage, migrated_url: str, tmp_path: Path, mini_kb: Path) -> None:
    """The officers' queue shows the clause the assistant quoted; the reply box holds that clause with its
    citation and date, the topic is the clause's; sending it as it stands answers the citizen and makes a
    draft whose approval form has the legal basis and the date filled in."""
    import html
    import re

    from fastapi import FastAPI
    from fastapi.testclient import TestClient
    from sqlalchemy import select

    from bot.storage.models import KbDraft, Outbox
    from handlers.console.router import console_router
    from handlers.console.security import hash_password
    from tests.test_console import ADMIN_PW, CSRF_RE, OFFICER_PW, login

    settings = make_settings(tmp_path, mini_kb, database_url=migrated_url, documents_in_dialogue=True,
                             console={"secure_cookies": False})
    add_documents(settings)
    d = make_dialogue(store, settings)
    a = d.holder.current
    a.doc_min_scope, a.doc_min_score, a.doc_top_topics = 0.2, 0.3, 1000
    [quoted] = d.handle(Incoming("telegram", "t1", text=DECLINED))
    assert quoted.kind == "document"
    d.handle(Incoming("web", "w1", text=VISA))  # a plain decline: no clause, nothing pre-filled
    [old] = d.handle(Incoming("web", "w2", text=SUPERSEDED))  # a superseded row: shown, never pre-filled
    assert old.kind == "document" and "đã được thay thế" in old.text

    app = FastAPI()
    app.include_router(console_router(settings, d.holder, store), prefix="/console")
    store.users.add("canbo", hash_password(OFFICER_PW), "officer")
    store.users.add("admin", hash_password(ADMIN_PW), "admin")
    officer = TestClient(app)
    assert login(officer, "canbo", OFFICER_PW).status_code == 303
    superseded = officer.get("/console/unanswered", params={"source": "document", "q": "đi lại"}).text
    assert "Trợ lý đã trích dẫn văn bản" in superseded and "không còn là quy định hiện hành" in superseded
    assert re.search(r'name="reply"[^>]*></textarea>', superseded), "an old amount is never offered as an answer"
    page = officer.get("/console/unanswered", params={"source": "document", "q": "biên nhận"}).text
    assert "Trợ lý đã trích dẫn văn bản" in page and "khoản 2 Điều 3 Quyết định 123/QĐ-SLĐTBXH" in page
    box = re.search(r'<textarea id="reply-[^"]+" name="reply"[^>]*>([^<]*)</textarea>', page, re.S)
    assert box is not None
    prefilled = html.unescape(box.group(1))
    assert prefilled == ("Theo quy định: 2. Cán bộ một cửa kiểm tra thành phần hồ sơ và viết giấy biên nhận cho "
                         "người nộp.\n\nCăn cứ: khoản 2 Điều 3 Quyết định 123/QĐ-SLĐTBXH (áp dụng từ 15/03/2025).")
    assert re.search(rf'<option value="{TOPIC}" selected>', page), "the clause's topic is chosen"
    plain = officer.get("/console/unanswered", params={"source": "fallback"}).text
    assert "Trợ lý đã trích dẫn" not in plain and re.search(r'name="reply"[^>]*></textarea>', plain)

    ids = re.search(r'<input type="hidden" name="ids" value="([0-9,]+)">', page).group(1)  # type: ignore[union-attr]
    token = CSRF_RE.search(page).group(1)  # type: ignore[union-attr]
    r = officer.post("/console/unanswered/reply", data={
        "csrf_token": token, "ids": ids, "reply": prefilled, "topic": TOPIC, "action": "reply_draft",
        "confirmed": "1"})
    assert r.status_code == 200 and "Đã tạo bản nháp hỏi–đáp số" in r.text, r.text
    with store.db.transaction() as s:
        [draft] = s.scalars(select(KbDraft)).all()
        [sent] = s.scalars(select(Outbox)).all()
        draft_id, draft_topic, draft_question = draft.id, draft.topic, draft.question
    assert (sent.channel, sent.chat_id) == ("telegram", "t1") and "khoản 2 Điều 3" in sent.text
    assert draft_topic == TOPIC and draft_question == DECLINED

    admin = TestClient(app)
    assert login(admin, "admin", ADMIN_PW).status_code == 303
    form = admin.get(f"/console/knowledge/drafts/{draft_id}").text
    assert re.search(r'name="legal_basis"[^>]*>khoản 2 Điều 3 Quyết định 123/QĐ-SLĐTBXH</textarea>', form), form
    assert 'name="valid_from" type="date" value="2025-03-15"' in form


def test_a_whole_document_citation_carries_what_its_entry_says(with_docs: Settings) -> None:
    """Entries citing a document without an Article pass their own words and vector, so the documents
    tier can lift the Articles of that document closest to them (read from the curated index)."""
    a = assistant(with_docs)
    res = a.retriever.search("mức chuẩn trợ cấp người có công bao nhiêu")
    hints = a.legal_hints(res)
    first = next(h for h in hints if h.document == "77/2024/NĐ-CP")
    assert first.articles is None and first.weight == 1.0
    entry = first.entry
    assert entry is not None and entry.id == "ncc-muc-chuan-test"
    assert entry.vector is not None and entry.vector.shape == (256,)
    assert {"mức", "chuẩn"} <= {w for t in entry.words for w in t.split("_")}  # its answer's words
    assert a.entry_text("ncc-muc-chuan-test") is entry  # built once
    assert a.entry_text("no-such-entry") is None
