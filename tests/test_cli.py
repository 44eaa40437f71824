"""The command line on the small knowledge base with the fake embedder: check, build, list, eval, rollback."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from handlers.cli import app


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, mini_kb, tmp_path):
    for k, v in {"KNOWLEDGE_DIR": str(mini_kb), "DATA_DIR": str(tmp_path / "var"),
                 "EMBEDDING_MODEL": "fake-hashing-256", "MIN_DENSE_FOR_ANSWER": "0", "DENSE_WEIGHT": "0.3",
                 "ANSWER_THRESHOLD": "0.5", "CHOICE_THRESHOLD": "0.3"}.items():
        monkeypatch.setenv(f"LDTBXH_{k}", v)
    return mini_kb


def test_help_reads_well() -> None:
    res = CliRunner().invoke(app, ["--help"])
    assert res.exit_code == 0
    for cmd in ("ask", "eval", "index", "knowledge", "db", "dossiers"):
        assert cmd in res.stdout


def test_bad_setting_fails_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LDTBXH_ANSWER_THRESHOLD", "abc")
    res = CliRunner().invoke(app, ["knowledge", "check"])
    assert res.exit_code == 2 and "LDTBXH_ANSWER_THRESHOLD" in res.output


def test_check_build_ask_eval_rollback(env, tmp_path) -> None:
    r = CliRunner()
    res = r.invoke(app, ["knowledge", "check"])
    assert res.exit_code == 0 and "4 entries" in res.stdout and "0 error(s)" in res.stdout
    assert r.invoke(app, ["db", "upgrade"]).exit_code == 0
    res = r.invoke(app, ["ask", "hello"])
    assert res.exit_code == 1 and "ldtbxh index build" in res.output
    assert r.invoke(app, ["index", "build"]).exit_code == 0
    assert r.invoke(app, ["index", "build"]).exit_code == 0
    listing = r.invoke(app, ["index", "list"]).stdout.splitlines()
    assert len(listing) == 2 and listing[1].startswith("*")
    evalfile = tmp_path / "e.jsonl"
    evalfile.write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in [
        {"q": "Trợ cấp thất nghiệp được hưởng bao nhiêu tiền một tháng?", "expect": "tctn-huong",
         "tags": ["accented"]},
        {"q": "muc chuan nguoi co cong", "expect": "ncc-muc-chuan", "tags": ["unaccented"]},
        {"q": "Hôm nay thời tiết Hà Nội thế nào?", "expect": None, "tags": ["oos"]},
        {"q": "Giấy phép lao động", "expect": "giay-phep-lao-dong", "tags": ["accented"]},
    ]), encoding="utf-8")
    res = r.invoke(app, ["eval", str(evalfile), "--json"])
    assert res.exit_code == 0, res.output
    m = json.loads(res.stdout)
    assert m["overall"]["in_scope"] == 2 and m["overall"]["top1"] == 1.0 and m["overall"]["declined"] == 1.0
    assert m["skipped_uncovered_topics"] == ["giay-phep-lao-dong"]
    assert set(m["by_tag"]) == {"accented", "unaccented", "oos"}
    res = r.invoke(app, ["eval", str(evalfile)])
    assert "recall3" in res.stdout and "latency ms: p50" in res.stdout
    assert r.invoke(app, ["index", "rollback"]).exit_code == 0
    assert r.invoke(app, ["index", "rollback"]).exit_code == 1


def test_ask_looks_up_an_imported_dossier(env) -> None:
    from tests.conftest import HERE

    r = CliRunner()
    assert r.invoke(app, ["db", "upgrade"]).exit_code == 0
    assert r.invoke(app, ["index", "build"]).exit_code == 0
    res = r.invoke(app, ["dossiers", "import", str(HERE / "data" / "dossiers" / "messy.csv")])
    assert res.exit_code == 0, res.output
    res = r.invoke(app, ["ask", "tra cứu hồ sơ H41.22-241105-0012"])
    assert res.exit_code == 0, res.output
    assert "Giải quyết hưởng trợ cấp thất nghiệp" in res.stdout
    assert "Nguyễn V. A." in res.stdout and "0912345678" not in res.stdout


def test_build_refuses_broken_knowledge(env) -> None:
    qa = env / "qa" / "tctn-huong.yaml"
    qa.write_text(qa.read_text(encoding="utf-8") + "- id: x\n  topic: nope\n", encoding="utf-8")
    res = CliRunner().invoke(app, ["index", "build"])
    assert res.exit_code == 1
    assert "tctn-huong.yaml:12: unknown topic 'nope'" in res.output
