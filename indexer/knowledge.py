"""Load and validate the knowledge base (``knowledge/``).

Validation collects every problem with its file and line, so an officer can fix them all at once;
``load_knowledge`` never returns a partially valid base silently: callers check ``errors``.
See docs/knowledge-format.md for the format.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from indexer import yamlio
from indexer.placeholders import PLACEHOLDER_RE, PLACEHOLDERS

ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,80}$")
BENEFIT_RE = re.compile(r"^[a-z0-9_]+(\.[A-Za-z0-9_]+)*$")
MAX_ANSWER_CHARS = 1200

PROCEDURE_REQUIRED = ("id", "topic", "title", "agency", "steps", "legal_basis", "valid_from")
QA_REQUIRED = ("id", "topic", "question", "answer", "legal_basis", "valid_from")
PROCEDURE_LIST_FIELDS = ("eligible", "documents", "steps", "legal_basis", "keywords")
PROCEDURE_SECTIONS = (
    ("eligible", "Đối tượng"),
    ("documents", "Thành phần hồ sơ"),
    ("steps", "Trình tự thực hiện"),
    ("where", "Nơi nộp"),
    ("processing_time", "Thời hạn giải quyết"),
    ("fees", "Phí, lệ phí"),
    ("result", "Kết quả"),
)


@dataclass(frozen=True)
class KnowledgeError:
    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


@dataclass(frozen=True)
class Amount:
    """A money figure an entry states: ``benefit`` key, amount in đồng, the date it holds from
    (``since``: a validated ISO date ``YYYY-MM-DD``, kept as text so that entries serialise to JSON)."""

    benefit: str
    amount: int
    since: str


@dataclass
class Entry:
    id: str
    kind: str  # "procedure" | "qa"
    topic: str
    title: str
    answer: str
    """Phone-sized text shown when this entry is the answer (Q&A answer, procedure summary)."""
    passages: list[tuple[str, str]]
    """(field, text) pairs that are indexed for this entry."""
    legal_basis: list[str]
    valid_from: dt.date
    needs_review: bool
    file: str
    line: int
    details: str = ""
    """The full procedure, for the "xem chi tiết" follow-up (empty for Q&A)."""
    source: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    amounts: list[Amount] = field(default_factory=list)
    """The money figures stated in the text, declared (``amounts:``) so they can be cross-checked."""


@dataclass
class OutOfScope:
    """Phrasings that belong to other agencies (knowledge/out_of_scope.yaml)."""

    id: str
    agency: str | None
    examples: list[str]


@dataclass
class KnowledgeBase:
    entries: list[Entry]
    topics: dict[str, str]
    digest: str
    errors: list[KnowledgeError] = field(default_factory=list)
    out_of_scope: list[OutOfScope] = field(default_factory=list)

    def by_id(self) -> dict[str, Entry]:
        return {e.id: e for e in self.entries}


# --- YAML with line numbers --------------------------------------------------------------------
_Loader = yamlio.DatesAsTextLoader


def _compose(text: str) -> tuple[Any, yaml.Node | None]:
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
        return data, node
    finally:
        loader.dispose()


def _key_lines(node: yaml.Node | None, offset: int) -> dict[str, int]:
    lines: dict[str, int] = {}
    if isinstance(node, yaml.MappingNode):
        for k, _v in node.value:
            lines[str(k.value)] = k.start_mark.line + 1 + offset
    return lines


class _Checker:
    def __init__(self, topics: set[str]) -> None:
        self.topics = topics
        self.errors: list[KnowledgeError] = []
        self.seen: dict[str, str] = {}

    def err(self, file: str, line: int, msg: str) -> None:
        self.errors.append(KnowledgeError(file, line, msg))

    def common(self, d: dict[str, Any], required: tuple[str, ...], file: str, line: int,
               lines: dict[str, int]) -> bool:
        ok = True
        for key in required:
            value = d.get(key)
            if value is None or (isinstance(value, str | list) and not value):
                self.err(file, lines.get(key, line), f"missing or empty field '{key}'")
                ok = False
        eid = d.get("id")
        if isinstance(eid, str):
            if not ID_RE.match(eid):
                self.err(file, lines.get("id", line), f"bad id '{eid}' (use lower-case letters, digits, '-')")
                ok = False
            elif eid in self.seen:
                self.err(file, lines.get("id", line), f"duplicate id '{eid}' (also in {self.seen[eid]})")
                ok = False
            else:
                self.seen[eid] = f"{file}:{lines.get('id', line)}"
        topic = d.get("topic")
        if topic is not None and topic not in self.topics:
            self.err(file, lines.get("topic", line), f"unknown topic '{topic}' (see knowledge/topics.yaml)")
            ok = False
        vf = d.get("valid_from")
        if vf is not None and not isinstance(vf, dt.date):
            try:
                d["valid_from"] = dt.date.fromisoformat(str(vf))
            except ValueError:
                self.err(file, lines.get("valid_from", line), f"bad date '{vf}' (use YYYY-MM-DD)")
                ok = False
        elif isinstance(vf, dt.datetime):
            d["valid_from"] = vf.date()
        nr = d.get("needs_review", False)
        if not isinstance(nr, bool):
            self.err(file, lines.get("needs_review", line), "needs_review must be true or false")
            ok = False
        if "amounts" in d:
            parsed = self.amounts(d.get("amounts"), file, lines.get("amounts", line))
            ok = ok and parsed is not None
            d["amounts"] = parsed or []
        lb = d.get("legal_basis")
        if isinstance(lb, str):
            d["legal_basis"] = [lb]
        elif lb is not None and not (isinstance(lb, list) and all(isinstance(x, str) for x in lb)):
            self.err(file, lines.get("legal_basis", line), "legal_basis must be a list of documents")
            ok = False
        return ok

    def amounts(self, value: Any, file: str, line: int) -> list[Amount] | None:
        """``amounts: [{benefit: key, amount: <int đồng>, from: YYYY-MM-DD}]``; None (and errors) if bad."""
        if not isinstance(value, list):
            self.err(file, line, "amounts must be a list of {benefit, amount, from}")
            return None
        out: list[Amount] = []
        for i, item in enumerate(value, 1):
            where = f"amounts item {i}"
            if not isinstance(item, dict) or set(item) != {"benefit", "amount", "from"}:
                self.err(file, line, f"{where} needs exactly the fields benefit, amount, from")
                return None
            benefit, amount, since = item["benefit"], item["amount"], item["from"]
            if not isinstance(benefit, str) or not BENEFIT_RE.match(benefit):
                self.err(file, line, f"{where}: bad benefit key {benefit!r} (dotted, lower-case: ncc.muc_chuan)")
                return None
            if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
                self.err(file, line, f"{where}: amount must be a whole number of đồng, got {amount!r}")
                return None
            try:
                day = dt.date.fromisoformat(str(since))
            except ValueError:
                self.err(file, line, f"{where}: bad date {since!r} (use YYYY-MM-DD)")
                return None
            out.append(Amount(benefit, amount, day.isoformat()))
        return out

    def text(self, value: Any, file: str, line: int, what: str) -> str:
        if value is None:
            return ""
        if isinstance(value, list):
            value = "\n".join(str(v) for v in value)
        s = str(value)
        for name in PLACEHOLDER_RE.findall(s):
            if name not in PLACEHOLDERS:
                self.err(file, line, f"unknown placeholder '{{{name}}}' in {what}")
        return s


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v) for v in value if v is not None]
    return [str(value)]


def load_topics(knowledge_dir: Path) -> dict[str, str]:
    data = yamlio.safe_load((knowledge_dir / "topics.yaml").read_text(encoding="utf-8"))
    return {t["id"]: t["title"] for t in data["topics"]}


def _load_procedure(path: Path, rel: str, ck: _Checker) -> Entry | None:
    text = path.read_text(encoding="utf-8")
    m = re.match(r"^---\s*\n(.*?)\n---\s*\n?(.*)$", text, re.S)
    if not m:
        ck.err(rel, 1, "a procedure file must start with YAML front matter between '---' lines")
        return None
    try:
        d, node = _compose(m.group(1))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        ck.err(rel, (mark.line + 2) if mark else 1, f"YAML error: {getattr(exc, 'problem', exc)}")
        return None
    if not isinstance(d, dict):
        ck.err(rel, 2, "front matter must be a mapping of fields")
        return None
    lines = _key_lines(node, offset=1)
    body = m.group(2).strip()
    ok = ck.common(d, PROCEDURE_REQUIRED, rel, 2, lines)
    if not body:
        ck.err(rel, text.count("\n") + 1, "the summary (Markdown body after the front matter) is empty")
        ok = False
    for key in PROCEDURE_LIST_FIELDS:
        if key in d and not isinstance(d[key], list | str | type(None)):
            ck.err(rel, lines.get(key, 2), f"'{key}' must be a list of lines")
            ok = False
    summary = ck.text(body, rel, text[: m.start(2)].count("\n") + 1, "summary")
    sections = []
    passages: list[tuple[str, str]] = []
    title = str(d.get("title", ""))
    keywords = _as_list(d.get("keywords"))
    passages.append(("title", title))
    if keywords:
        passages.append(("keywords", f"{title}. {', '.join(keywords)}"))
    passages.append(("summary", f"{title}. {summary}"))
    for key, label in PROCEDURE_SECTIONS:
        items = _as_list(d.get(key))
        if not items:
            continue
        ck.text(items, rel, lines.get(key, 2), key)
        if len(items) == 1:
            sections.append(f"{label}: {items[0]}")
        else:
            sections.append(f"{label}:\n" + "\n".join(f"- {x}" for x in items))
        passages.append((key, f"{title}. {label}: " + " ".join(items)))
    legal = _as_list(d.get("legal_basis"))
    if legal:
        sections.append("Căn cứ pháp lý:\n" + "\n".join(f"- {x}" for x in legal))
    if not ok:
        return None
    details = f"{title}\n\n" + "\n\n".join(sections)
    return Entry(
        id=d["id"], kind="procedure", topic=d["topic"], title=title, answer=summary, passages=passages,
        legal_basis=legal, valid_from=d["valid_from"], needs_review=bool(d.get("needs_review", False)),
        file=rel, line=1, details=details, source=d.get("code"),
        meta={k: d.get(k) for k in ("field", "code", "agency") if d.get(k)}, amounts=d.get("amounts") or [],
    )


def _load_qa_file(path: Path, rel: str, ck: _Checker) -> list[Entry]:
    try:
        data, node = _compose(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        ck.err(rel, (mark.line + 1) if mark else 1, f"YAML error: {getattr(exc, 'problem', exc)}")
        return []
    if data is None:
        return []
    if not isinstance(data, list) or not isinstance(node, yaml.SequenceNode):
        ck.err(rel, 1, "a Q&A file must be a YAML list of entries")
        return []
    out = []
    for item, item_node in zip(data, node.value, strict=True):
        line = item_node.start_mark.line + 1
        if not isinstance(item, dict):
            ck.err(rel, line, "each Q&A entry must be a mapping (id, topic, question, answer, ...)")
            continue
        lines = _key_lines(item_node, offset=0)
        ok = ck.common(item, QA_REQUIRED, rel, line, lines)
        paraphrases = item.get("paraphrases") or []
        if not isinstance(paraphrases, list) or not all(isinstance(p, str) for p in paraphrases):
            ck.err(rel, lines.get("paraphrases", line), "paraphrases must be a list of strings")
            ok = False
            paraphrases = []
        answer = ck.text(item.get("answer"), rel, lines.get("answer", line), "answer")
        if len(answer) > MAX_ANSWER_CHARS:
            ck.err(rel, lines.get("answer", line),
                   f"answer is {len(answer)} characters; keep it under {MAX_ANSWER_CHARS} (aim for 900)")
            ok = False
        if not ok:
            continue
        question = str(item["question"])
        passages = [("question", question)] + [("paraphrase", p) for p in paraphrases]
        passages.append(("answer", f"{question} {answer}"))
        out.append(Entry(
            id=item["id"], kind="qa", topic=item["topic"], title=question, answer=answer.strip(),
            passages=passages, legal_basis=_as_list(item.get("legal_basis")), valid_from=item["valid_from"],
            needs_review=bool(item.get("needs_review", False)), file=rel, line=line,
            source=item.get("source"), amounts=item.get("amounts") or [],
        ))
    return out


def _load_out_of_scope(path: Path, rel: str, ck: _Checker) -> list[OutOfScope]:
    if not path.exists():
        return []
    try:
        data, node = _compose(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        ck.err(rel, (mark.line + 1) if mark else 1, f"YAML error: {getattr(exc, 'problem', exc)}")
        return []
    groups = (data or {}).get("groups") if isinstance(data, dict) else None
    if not isinstance(groups, list):
        ck.err(rel, 1, "out_of_scope.yaml must have a 'groups' list")
        return []
    out = []
    for i, g in enumerate(groups):
        ok = isinstance(g, dict) and isinstance(g.get("id"), str) and isinstance(g.get("examples"), list) \
            and g["examples"] and all(isinstance(x, str) for x in g["examples"])
        if not ok:
            ck.err(rel, 1, f"group {i + 1} needs an 'id' and a non-empty list of 'examples'")
            continue
        out.append(OutOfScope(g["id"], g.get("agency"), list(g["examples"])))
    return out


def knowledge_digest(knowledge_dir: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(knowledge_dir.rglob("*")):
        if p.is_file() and p.suffix in {".md", ".yaml", ".yml", ".txt"}:
            h.update(str(p.relative_to(knowledge_dir)).encode())
            h.update(b"\0")
            h.update(p.read_bytes())
    return h.hexdigest()


def load_knowledge(knowledge_dir: Path) -> KnowledgeBase:
    """Read and validate everything under ``knowledge_dir``. Check ``.errors`` before using it."""
    knowledge_dir = Path(knowledge_dir)
    topics = load_topics(knowledge_dir)
    ck = _Checker(set(topics))
    entries: list[Entry] = []
    for path in sorted((knowledge_dir / "procedures").rglob("*.md")):
        rel = str(path.relative_to(knowledge_dir.parent))
        e = _load_procedure(path, rel, ck)
        if e:
            entries.append(e)
    for path in sorted((knowledge_dir / "qa").rglob("*.y*ml")):
        rel = str(path.relative_to(knowledge_dir.parent))
        entries.extend(_load_qa_file(path, rel, ck))
    oos = _load_out_of_scope(knowledge_dir / "out_of_scope.yaml",
                             str((knowledge_dir / "out_of_scope.yaml").relative_to(knowledge_dir.parent)), ck)
    return KnowledgeBase(entries=entries, topics=topics, digest=knowledge_digest(knowledge_dir),
                         errors=ck.errors, out_of_scope=oos)
