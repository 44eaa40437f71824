"""The Vietnamese text pipeline: normalisation, abbreviations, restoration, segmentation, folding."""

from __future__ import annotations

from pathlib import Path

import pytest

from indexer.diacritics import DiacriticRestorer
from indexer.text import SyllableSegmenter, TextPipeline, load_abbreviations, load_stopwords

KNOWLEDGE = Path(__file__).resolve().parent.parent / "knowledge"
SHIPPED = Path(__file__).resolve().parent.parent / "data" / "diacritics.json.gz"


@pytest.fixture(scope="module")
def pipe() -> TextPipeline:
    restorer = DiacriticRestorer.load(SHIPPED)
    return TextPipeline.from_knowledge(KNOWLEDGE, restorer=restorer)


def test_abbreviations_table_is_data() -> None:
    table = load_abbreviations(KNOWLEDGE / "abbreviations.yaml")
    assert table["ko"] == "không" and table["dc"] == "được" and table["bhxh"] == "bảo hiểm xã hội"
    assert table["tctn"] == "trợ cấp thất nghiệp"


def test_normalize_nfc_lowercase_and_abbreviations() -> None:
    p = TextPipeline(abbreviations={"ko": "không", "dc": "được", "tctn": "trợ cấp thất nghiệp"},
                     segmenter=SyllableSegmenter())
    decomposed = "Tro\u031b\u0323 ca\u0302\u0301p"  # "Trợ cấp" typed with combining marks
    assert p.normalize(decomposed) == "trợ cấp"
    assert p.normalize("TCTN ko  đc   à?") == "trợ cấp thất nghiệp không được à"
    assert p.normalize("Hồ sơ H41.22-241105-0012!") == "hồ sơ h41.22-241105-0012"


def test_tone_marks_placed_one_way(pipe: TextPipeline) -> None:
    assert pipe.process_passage("Hoà bình, sức khoẻ").normalized == "hòa bình sức khỏe"


def test_restores_unaccented_question(pipe: TextPipeline) -> None:
    p = pipe.process("tro cap that nghiep duoc bao nhieu tien")
    assert p.was_unaccented
    assert p.restored.startswith("trợ cấp thất nghiệp được")
    assert "trợ_cấp" in p.words and "thất_nghiệp" in p.words
    assert "_" not in p.dense_text()  # e5 never sees underscores


def test_abbreviations_then_restoration(pipe: TextPipeline) -> None:
    p = pipe.process("ko dc huong tctn thi lam sao")
    assert p.restored.startswith("không được hưởng trợ cấp thất nghiệp")


def test_accented_text_kept(pipe: TextPipeline) -> None:
    q = "Thân nhân liệt sĩ được hưởng trợ cấp gì?"
    p = pipe.process(q)
    assert not p.was_unaccented
    assert p.restored == "thân nhân liệt sĩ được hưởng trợ cấp gì"


def test_folded_safety_net_is_accent_free(pipe: TextPipeline) -> None:
    p = pipe.process("Đăng ký thất nghiệp")
    assert "dang" in p.folded and "that_nghiep" in p.folded
    assert all(t.isascii() for t in p.folded)


def test_stopwords_removed_from_lexical_side_only(pipe: TextPipeline) -> None:
    stop = load_stopwords(KNOWLEDGE / "stopwords.txt")
    assert "tôi" in stop and "thì" in stop
    p = pipe.process("tôi muốn hỏi thì trợ cấp thất nghiệp")
    assert "tôi" not in p.words and "thì" not in p.words
    assert "tôi" in p.dense_text()


def test_segmented_dense_text_is_a_model_setting(pipe: TextPipeline) -> None:
    p = pipe.process("trợ cấp thất nghiệp")
    assert p.dense_text(segmented=True) == "trợ_cấp thất_nghiệp"
