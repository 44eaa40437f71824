"""Administering the knowledge base: validate, build, switch, roll back, approve drafts.

The one way to do it, used by the command line (``ldtbxh knowledge check``, ``ldtbxh index ...``) and the
console alike. The active version has one source of truth, the ``CURRENT`` pointer of the index folder:
building (unless told not to), switching and rolling back move it atomically, and every server process
(``bot.runtime.AssistantHolder``) and ``ldtbxh ask`` answer from the version it names.
"""

from __future__ import annotations

from pathlib import Path

from bot.calculators.loader import load_calculators
from bot.config import Settings
from bot.storage import Storage
from indexer.embed import Embedder
from indexer.index import (
    IndexMissing,
    KnowledgeInvalid,
    Manifest,
    Progress,
    build_index,
    current_version,
    list_versions,
    publish,
)
from indexer.kbwrite import ApproveError, approve_entry
from indexer.knowledge import KnowledgeBase, load_knowledge

__all__ = ["ApproveError", "IndexMissing", "KnowledgeAdmin", "KnowledgeInvalid"]


class KnowledgeAdmin:
    """``store`` (optional) records every action in the audit log and holds the drafts."""

    def __init__(self, settings: Settings, embedder: Embedder, store: Storage | None = None) -> None:
        self.settings = settings
        self.embedder = embedder
        self.store = store

    def audit(self, actor: str, action: str, target_type: str | None = None, target_id: object = None,
               details: dict[str, object] | None = None) -> None:
        if self.store is not None:
            self.store.audit.log(actor, action, target_type, target_id, details)

    # --- the knowledge files ---------------------------------------------------------------------------
    def validate(self, knowledge_dir: Path | None = None) -> KnowledgeBase:
        """Read and check every file, the calculators included (see ``.errors``)."""
        directory = knowledge_dir or self.settings.knowledge_dir
        kb = load_knowledge(directory)
        if (directory / "calculators").is_dir():
            kb.errors.extend(load_calculators(directory / "calculators").errors)
        return kb

    # --- index versions -------------------------------------------------------------------------------
    def versions(self) -> list[Manifest]:
        """Every built version, oldest first."""
        return list_versions(self.settings.index_root)

    def active(self) -> str | None:
        """The version the assistant answers from."""
        return current_version(self.settings.index_root)

    def previous(self) -> str | None:
        """The version built before the active one (what a rollback goes to)."""
        names = [m.version for m in self.versions()]
        cur = self.active()
        if cur not in names or names.index(cur) == 0:
            return None
        return names[names.index(cur) - 1]

    def build(self, *, actor: str, activate: bool = True, progress: Progress | None = None,
              knowledge_dir: Path | None = None) -> Manifest:
        """Validate and build a new version; ``activate``: switch to it at once. Raises
        ``indexer.index.KnowledgeInvalid`` (with every error) when the knowledge base is invalid."""
        s = self.settings
        calc_dir = (knowledge_dir or s.knowledge_dir) / "calculators"
        try:
            if calc_dir.is_dir() and (calc_errors := load_calculators(calc_dir).errors):
                raise KnowledgeInvalid(calc_errors)
            manifest = build_index(
                knowledge_dir or s.knowledge_dir, s.index_root, self.embedder, query_prefix=s.query_prefix,
                passage_prefix=s.passage_prefix, segmented_for_model=s.model_wants_segmented,
                ann_threshold=s.ann_threshold, progress=progress, publish_now=activate)
        except KnowledgeInvalid as exc:
            self.audit(actor, "kb.rebuild_failed", None, None, {"errors": len(exc.errors)})
            raise
        except Exception as exc:
            self.audit(actor, "kb.rebuild_failed", None, None, {"error": type(exc).__name__})
            raise
        self.audit(actor, "kb.rebuild", "kb_version", manifest.version,
                    {"entries": manifest.entries, "seconds": manifest.build_seconds, "activated": activate})
        return manifest

    def switch(self, version: str, *, actor: str, action: str = "kb.switch") -> None:
        """Make ``version`` the active one. Raises :class:`IndexMissing` when there is no such version."""
        before = self.active()
        if version not in {m.version for m in self.versions()}:
            raise IndexMissing(f"Không có phiên bản chỉ mục '{version}' (no such index version).")
        publish(self.settings.index_root, version)
        self.audit(actor, action, "kb_version", version, {"from": before})

    def rollback(self, *, actor: str) -> str:
        """Switch to the version built before the active one; returns its name."""
        prev = self.previous()
        if prev is None:
            raise IndexMissing("Không có phiên bản trước để quay lại (no earlier index version).")
        self.switch(prev, actor=actor, action="kb.rollback")
        return prev

    # --- drafts -----------------------------------------------------------------------------------------
    def approve_draft(self, draft_id: int, *, actor: str, topic: str, question: str, paraphrases: list[str],
                      answer: str, legal_basis: list[str], valid_from: str, needs_review: bool = False,
                      source: str | None = None) -> tuple[str, str]:
        """Write the draft (as edited by the administrator) into ``knowledge/qa/<topic>.yaml`` and mark it
        approved; returns (entry id, file). Raises :class:`ApproveError` (the knowledge base would be
        invalid: nothing is written) or ``KeyError`` (no draft waiting with this number)."""
        assert self.store is not None, "approving drafts needs the database"
        draft = self.store.drafts.get(draft_id)
        if draft is None or draft.status != "draft":
            raise KeyError(draft_id)
        try:
            entry_id, rel = approve_entry(
                self.settings.knowledge_dir, topic=topic, question=question, paraphrases=paraphrases,
                answer=answer, legal_basis=legal_basis, valid_from=valid_from, needs_review=needs_review,
                source=source)
        except ApproveError as exc:
            self.audit(actor, "draft.approve_refused", "kb_draft", draft_id, {"errors": len(exc.errors)})
            raise
        self.store.drafts.approved(draft_id, entry_id=entry_id, reviewer=actor, question=question.strip(),
                                   answer=answer.strip(), topic=topic, paraphrases=paraphrases, file=rel)
        return entry_id, rel

    def reject_draft(self, draft_id: int, *, actor: str) -> bool:
        assert self.store is not None, "drafts need the database"
        return self.store.drafts.reject(draft_id, reviewer=actor)
