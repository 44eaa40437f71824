"""The documents commands end to end through the real CLI: import (good and bad files), check, list,
build, search --jsonl (curated entries and passages), eval-docs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from handlers.cli import app

HERE = Path(__file__).resolve().parent
FIX = HERE / "data" / "documents"
NCC = HERE.parent / "knowledge" / "documents" / "texts" / "nguoi-co-cong-2024"


@pytest.fixture()
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    k = tmp_path / "knowledge"
    shutil.copytree(HERE / "data" / "kb-mini", k)
    for key, value in {"KNOWLEDGE_DIR": str(k), "DATA_DIR": str(tmp_path / "var"),
                       "TEST_EMBEDDER": "tests.fakes:hashing_embedder"}.items():
        monkeypatch.setenv(f"LDTBXH_{key}", value)
    return k


def test_import_check_build_search_eval(env: Path, tmp_path: Path) -> None:
    r = CliRunner()
    res = r.invoke(app, ["documents", "import", str(FIX / "quyet-dinh-123.docx"), str(FIX / "ban-scan.pdf"),
                         str(NCC / "02_2020_ubtvqh14.md"), str(NCC / "4804_2024_vbhn_bldtbxh.md"),
                         "--topic", "btxh-tro-cap-hang-thang"])
    assert res.exit_code == 1, res.output  # one bad file: reported, the others imported
    assert "LỖI" in res.output and "ban-scan.pdf" in res.output and "OCR" in res.output
    assert res.output.count("OK   ") == 3
    res = r.invoke(app, ["documents", "check"])
    assert res.exit_code == 0, res.output
    assert "3 documents (3 with a shipped text)" in res.output
    res = r.invoke(app, ["documents", "list"])
    assert "75/2021/NĐ-CP" in res.output and "123/QĐ-SLĐTBXH" in res.output
    res = r.invoke(app, ["documents", "build", "--workers", "1"])
    assert res.exit_code == 0, res.output
    assert "Documents index" in res.output and "passages" in res.output
    res = r.invoke(app, ["index", "build"])
    assert res.exit_code == 0, res.output

    questions = "thương binh 85% được bao nhiêu tiền một tháng\nho so tro cap xa hoi gom giay to gi\n"
    res = r.invoke(app, ["search", "--jsonl", "--k", "3"], input=questions)
    assert res.exit_code == 0, res.output
    lines = [json.loads(x) for x in res.output.splitlines() if x.startswith("{")]
    assert len(lines) == 2
    kinds = {h["kind"] for h in lines[0]["hits"]}
    assert kinds == {"entry", "passage"}
    p = next(h for h in lines[0]["hits"] if h["kind"] == "passage")
    assert set(p) >= {"kind", "id", "topic", "document", "citation", "source_file", "score"}
    assert any(h.get("document") == "75/2021/NĐ-CP" and "Phụ lục II" in h["citation"] for h in lines[0]["hits"])

    gold = tmp_path / "gold.jsonl"
    gold.write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in [
        {"q": "thương binh 85% được bao nhiêu tiền một tháng", "area": "ncc",
         "gold": [{"document": "4804/VBHN-BLĐTBXH", "article": "Phụ lục II"}]},
        {"q": "thoi han giai quyet ho so tro cap xa hoi la bao lau", "area": "btxh",
         "gold_files": ["texts/quyet-dinh-123.md"]},
    ]) + "\n", encoding="utf-8")
    res = r.invoke(app, ["eval-docs", str(gold), "--json"])
    assert res.exit_code == 0, res.output
    m = json.loads(res.output[res.output.index("{"):])
    assert m["all"]["n"] == 2 and m["accented"]["n"] == 1 and m["unaccented"]["n"] == 1
    assert 0.0 <= m["all"]["mrr@10"] <= 1.0 and m["all"]["recall@10"] >= m["all"]["recall@1"]
    assert m["accented"]["recall@10"] == 1.0, "the VBHN number is an alias of 75/2021/NĐ-CP"
    assert "no_near_copy" in m and m["no_near_copy"]["n"] <= m["all"]["n"]  # hints on: near-copies set apart
    res = r.invoke(app, ["eval-docs", str(gold), "--json", "--alone"])
    assert res.exit_code == 0, res.output
    alone = json.loads(res.output[res.output.index("{"):])
    assert alone["all"]["n"] == 2 and "no_near_copy" not in alone


def test_near_copies_of_the_knowledge_are_recognised() -> None:
    from bot.doc_eval import near_copy_test

    near = near_copy_test(["Mất giấy chứng nhận thương binh thì xin cấp lại ở đâu?", "trợ cấp"])
    assert near("mat giay chung nhan thuong binh xin cap lai o dau")  # folded, Jaccard 0.9
    assert not near("thương binh được hưởng những chế độ ưu đãi gì hằng tháng")
    assert not near("trợ cấp")  # under 5 tokens: never a near-copy


def test_import_flags_are_checked(env: Path) -> None:
    r = CliRunner()
    res = r.invoke(app, ["documents", "import", str(FIX / "quyet-dinh-123.md"), "--effective", "tomorrow"])
    assert res.exit_code == 2 and "--effective" in res.output
    res = r.invoke(app, ["documents", "import", str(FIX), "--number", "1/QĐ-X"])
    assert res.exit_code == 2 and "--number" in res.output
    res = r.invoke(app, ["documents", "import", str(FIX / "quyet-dinh-123.md"), "--status", "old"])
    assert res.exit_code == 2


def test_search_without_a_documents_index_says_so(env: Path) -> None:
    res = CliRunner().invoke(app, ["search", "--tier", "passages", "trợ cấp"])
    assert res.exit_code == 1 and "ldtbxh documents build" in res.output
