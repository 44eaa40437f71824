"""Knowledge validation: every error names its file and line; a broken base is never indexed."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import load_settings
from indexer.index import KnowledgeInvalid, build_index, current_version
from indexer.knowledge import load_knowledge
from indexer.placeholders import PLACEHOLDERS, render
from tests.fakes import HashingEmbedder


def test_mini_kb_is_valid(mini_kb: Path) -> None:
    kb = load_knowledge(mini_kb)
    assert kb.errors == []
    ids = {e.id for e in kb.entries}
    assert ids == {"tctn-huong-test", "tctn-huong-muc", "ncc-muc-chuan-test", "ncc-liet-si-test"}
    proc = kb.by_id()["tctn-huong-test"]
    assert proc.kind == "procedure"
    assert "Thành phần hồ sơ" in proc.details and "Quyết định thôi việc" in proc.details
    qa = kb.by_id()["tctn-huong-muc"]
    assert ("paraphrase", "tro cap that nghiep duoc bao nhieu") in qa.passages
    assert qa.valid_from.isoformat() == "2026-01-01"


def _append(path: Path, text: str) -> None:
    path.write_text(path.read_text(encoding="utf-8") + text, encoding="utf-8")


def test_errors_name_file_and_line(mini_kb: Path) -> None:
    qa = mini_kb / "qa" / "tctn-huong.yaml"
    _append(qa, """- id: tctn-huong-muc
  topic: tctn-huong
  question: Trùng id
  answer: x
  legal_basis: [Luật A]
  valid_from: 2026-01-01
- id: tctn-khac
  topic: khong-co-chu-de-nay
  question: Chủ đề lạ
  answer: y
  legal_basis: [Luật A]
  valid_from: 2026-01-01
- id: tctn-thieu-tra-loi
  topic: tctn-huong
  question: Thiếu câu trả lời
  legal_basis: [Luật A]
  valid_from: 2026-01-01
- id: tctn-ngay-sai
  topic: tctn-huong
  question: Ngày sai
  answer: z {khong_biet}
  legal_basis: [Luật A]
  valid_from: 2026-13-45
""")
    kb = load_knowledge(mini_kb)
    msgs = [str(e) for e in kb.errors]
    rel = "knowledge/qa/tctn-huong.yaml"
    assert f"{rel}:11: duplicate id 'tctn-huong-muc' (also in {rel}:1)" in msgs
    assert f"{rel}:18: unknown topic 'khong-co-chu-de-nay' (see knowledge/topics.yaml)" in msgs
    assert f"{rel}:23: missing or empty field 'answer'" in msgs
    assert f"{rel}:33: bad date '2026-13-45' (use YYYY-MM-DD)" in msgs
    assert f"{rel}:31: unknown placeholder '{{khong_biet}}' in answer" in msgs
    assert len(msgs) == 5


def test_procedure_errors(mini_kb: Path) -> None:
    p = mini_kb / "procedures" / "tctn-huong" / "broken.md"
    p.write_text("---\nid: Bad Id\ntopic: tctn-huong\ntitle: X\n---\n", encoding="utf-8")
    (mini_kb / "procedures" / "tctn-huong" / "nofront.md").write_text("chỉ có chữ\n", encoding="utf-8")
    msgs = [str(e) for e in load_knowledge(mini_kb).errors]
    rel = "knowledge/procedures/tctn-huong/broken.md"
    assert f"{rel}:2: bad id 'Bad Id' (use lower-case letters, digits, '-')" in msgs
    assert f"{rel}:2: missing or empty field 'agency'" in msgs
    assert any(m.startswith(f"{rel}:") and "summary" in m for m in msgs)
    assert "knowledge/procedures/tctn-huong/nofront.md:1: a procedure file must start with YAML front matter " \
        "between '---' lines" in msgs


def test_yaml_syntax_error_has_line(mini_kb: Path) -> None:
    (mini_kb / "qa" / "bad.yaml").write_text("- id: a\n  topic: [unclosed\n", encoding="utf-8")
    errs = load_knowledge(mini_kb).errors
    assert len(errs) == 1 and errs[0].file == "knowledge/qa/bad.yaml" and errs[0].line >= 2
    assert "YAML error" in errs[0].message


def test_broken_base_is_not_indexed(mini_kb: Path, tmp_path: Path) -> None:
    _append(mini_kb / "qa" / "tctn-huong.yaml", "- id: x1\n  topic: tctn-huong\n  question: q\n")
    with pytest.raises(KnowledgeInvalid) as exc:
        build_index(mini_kb, tmp_path / "idx", HashingEmbedder(64))
    assert any("missing or empty field 'answer'" in str(e) for e in exc.value.errors)
    assert current_version(tmp_path / "idx") is None


def test_render_placeholders() -> None:
    assert render("Gọi {dept_hotline} nhé", {"dept_hotline": "0123"}) == "Gọi 0123 nhé"


def test_agency_placeholders_are_configurable_and_valid_in_knowledge(mini_kb: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    agencies = {"agency_labour", "agency_merit", "agency_social", "agency_children", "agency_vocational",
                "agency_poverty", "agency_drug_rehab"}
    assert agencies <= PLACEHOLDERS
    defaults = load_settings().department.placeholders()
    assert defaults["agency_labour"] == "Sở Nội vụ" and defaults["agency_poverty"] == "Sở Nông nghiệp và Môi trường"
    monkeypatch.setenv("LDTBXH_AGENCY_SOCIAL", "Sở Y tế tỉnh Thử Nghiệm")
    values = load_settings().department.placeholders()
    assert set(values) == PLACEHOLDERS and values["agency_social"] == "Sở Y tế tỉnh Thử Nghiệm"
    _append(mini_kb / "qa" / "tctn-huong.yaml",
            "- id: cai-nghien-test\n  topic: tctn-huong\n  question: Cai nghiện ở đâu?\n"
            "  answer: Việc này do {agency_drug_rehab} phụ trách.\n  legal_basis: [Luật]\n"
            "  valid_from: 2026-01-01\n")
    kb = load_knowledge(mini_kb)
    assert kb.errors == []
    assert render(kb.by_id()["cai-nghien-test"].answer, values) == "Việc này do Sở Y tế phụ trách."
