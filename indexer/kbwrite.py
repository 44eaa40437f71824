"""Writing an approved Q&A entry into ``knowledge/qa/<topic>.yaml``, validated on a copy first."""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

import yaml

from indexer import yamlio
from indexer.knowledge import ID_RE, load_knowledge, load_topics

_LOCK = threading.Lock()
TOPIC_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    if "\n" in value:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value.rstrip() + "\n", style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


_Dumper.add_representer(str, _str)


class ApproveError(ValueError):
    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


def next_entry_id(ids: set[str], topic: str) -> str:
    prefix = f"{topic}-hoi-dap-"
    n = 0
    for eid in ids:
        if eid.startswith(prefix) and eid[len(prefix):].isdigit():
            n = max(n, int(eid[len(prefix):]))
    return f"{prefix}{n + 1}"


def entry_yaml(entry: dict[str, Any]) -> str:
    return yaml.dump([entry], Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=1000,
                     default_flow_style=False)


def _appended(existing: str, block: str) -> str:
    if not existing.strip():
        return block
    try:
        data = yamlio.safe_load(existing)
    except yaml.YAMLError:
        data = None
    if data == []:
        return block
    return existing.rstrip("\n") + "\n" + block


def approve_entry(knowledge_dir: Path, *, topic: str, question: str, paraphrases: list[str], answer: str,
                  legal_basis: list[str], valid_from: str, needs_review: bool = False,
                  source: str | None = None) -> tuple[str, str]:
    """Write the entry; returns (entry id, file path relative to the repository). Raises
    :class:`ApproveError` with ``file:line: message`` lines when the knowledge base would be invalid."""
    knowledge_dir = Path(knowledge_dir)
    errors = []
    topics = load_topics(knowledge_dir)
    if not TOPIC_RE.match(topic or "") or topic not in topics:
        errors.append(f"Chủ đề '{topic}' không có trong topics.yaml.")
    if not question.strip():
        errors.append("Câu hỏi đang trống.")
    if not answer.strip():
        errors.append("Câu trả lời đang trống.")
    basis = [b.strip() for b in legal_basis if b.strip()]
    if not basis:
        errors.append("Cần ít nhất một căn cứ pháp lý.")
    try:
        valid = dt.date.fromisoformat(valid_from.strip())
    except ValueError:
        errors.append(f"Ngày áp dụng '{valid_from}' không đúng dạng YYYY-MM-DD.")
        valid = None
    if errors:
        raise ApproveError(errors)
    assert valid is not None
    with _LOCK:
        kb = load_knowledge(knowledge_dir)
        if kb.errors:
            raise ApproveError(["Cơ sở tri thức đang có lỗi, cần sửa trước khi duyệt:"]
                               + [str(e) for e in kb.errors])
        ids = {e.id for e in kb.entries}
        entry_id = next_entry_id(ids, topic)
        if not ID_RE.match(entry_id):
            raise ApproveError([f"Mã mục '{entry_id}' không hợp lệ."])
        entry: dict[str, Any] = {"id": entry_id, "topic": topic, "question": question.strip()}
        paras = []
        for p in paraphrases:
            p = p.strip()
            if p and p.casefold() != question.strip().casefold() and p not in paras:
                paras.append(p)
        if paras:
            entry["paraphrases"] = paras
        entry["answer"] = answer.strip().replace("\r\n", "\n")
        if source and source.strip():
            entry["source"] = source.strip()
        entry["legal_basis"] = basis
        entry["valid_from"] = valid
        entry["needs_review"] = bool(needs_review)
        target = knowledge_dir / "qa" / f"{topic}.yaml"
        existing = target.read_text(encoding="utf-8") if target.exists() else ""
        new_text = _appended(existing, entry_yaml(entry))
        # Validate on a copy first, so the real knowledge base is never left broken.
        with tempfile.TemporaryDirectory(prefix="kb-check-") as tmp:
            copy = Path(tmp) / knowledge_dir.name
            shutil.copytree(knowledge_dir, copy, ignore=shutil.ignore_patterns(".git", "*.tmp"))
            (copy / "qa").mkdir(exist_ok=True)
            (copy / "qa" / f"{topic}.yaml").write_text(new_text, encoding="utf-8")
            checked = load_knowledge(copy)
            if checked.errors:
                raise ApproveError([str(e) for e in checked.errors])
            if entry_id not in checked.by_id():
                raise ApproveError([f"Mục {entry_id} không đọc lại được sau khi ghi."])
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp_file = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        tmp_file.write_text(new_text, encoding="utf-8")
        os.replace(tmp_file, target)
        try:
            rel = str(target.relative_to(knowledge_dir.parent))
        except ValueError:
            rel = str(target)
        return entry_id, rel
