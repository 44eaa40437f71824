"""Tests of the diacritic restorer (indexer/diacritics.py) and of the shipped model."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest

from indexer.diacritics import (
    DiacriticRestorer,
    clean_markdown,
    fold,
    fold_words,
    has_diacritics,
    knowledge_texts,
)

ROOT = Path(__file__).resolve().parents[1]
SHIPPED_MODEL = ROOT / "data" / "diacritics.json.gz"

# A tiny training set: "ho" is hồ (hồ sơ), hộ (hộ nghèo, hỗ trợ is "ho tro") or họ (họ tên) by context.
SMALL_CORPUS = [
    "Người lao động nộp hồ sơ đề nghị hưởng trợ cấp thất nghiệp tại trung tâm dịch vụ việc làm.",
    "Hồ sơ đề nghị hưởng trợ cấp thất nghiệp gồm đơn đề nghị và quyết định thôi việc.",
    "Trong thời hạn ba tháng kể từ ngày chấm dứt hợp đồng lao động, người lao động phải nộp hồ sơ.",
    "Mức hưởng trợ cấp thất nghiệp hằng tháng bằng 60% mức bình quân tiền lương.",
    "Hộ nghèo, hộ cận nghèo được hỗ trợ đóng bảo hiểm y tế.",
    "Danh sách hộ nghèo do Ủy ban nhân dân cấp xã lập.",
    "Gia đình thuộc hộ nghèo được hỗ trợ tiền điện hằng tháng.",
    "Ghi rõ họ tên, ngày tháng năm sinh và địa chỉ thường trú.",
    "Người khai phải ghi họ tên và ký vào tờ khai.",
    "Người có công với cách mạng được hưởng trợ cấp ưu đãi hằng tháng.",
    "Thân nhân liệt sĩ được hưởng trợ cấp tuất hằng tháng.",
    "Thương binh được giám định lại tỷ lệ tổn thương cơ thể.",
    "Người khuyết tật đặc biệt nặng được hưởng trợ cấp xã hội hằng tháng.",
    "Người cao tuổi từ đủ 80 tuổi trở lên không có lương hưu được trợ cấp xã hội.",
    "Trẻ em mồ côi cả cha và mẹ được trợ cấp nuôi dưỡng.",
    "Người nghiện ma túy được đăng ký cai nghiện tự nguyện tại gia đình.",
    "Người nước ngoài làm việc tại Việt Nam phải có giấy phép lao động.",
    "Thời hạn của giấy phép lao động tối đa là 02 năm.",
    "Mức lương tối thiểu vùng được áp dụng từ ngày 01/01/2026.",
    "Người lao động được hỗ trợ học nghề tối đa sáu tháng.",
    "Cho tôi hỏi thủ tục này làm ở đâu?",
    "Trợ cấp thất nghiệp được bao nhiêu tiền một tháng?",
    "Tôi muốn tra cứu kết quả giải quyết hồ sơ.",
    "Hồ sơ nộp trực tuyến trên cổng dịch vụ công.",
    "Bạn có thể giúp tôi được không?",
    "Nghỉ việc rồi thì phải làm gì?",
    "Tôi bị mất việc, có được hưởng trợ cấp không?",
    "Công ty nợ lương thì tôi khiếu nại ở đâu?",
    "Hòa giải viên lao động giải quyết tranh chấp lao động cá nhân.",
    "Mẹ tôi được nhận trợ cấp mai táng.",
]


@pytest.fixture(scope="module")
def small() -> DiacriticRestorer:
    return DiacriticRestorer.train(SMALL_CORPUS)


# ---- fold / has_diacritics -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Trợ cấp thất nghiệp", "tro cap that nghiep"),
        ("Đường dây nóng", "duong day nong"),
        ("ĐỘI ĐƯỜNG đđ", "doi duong dd"),
        ("Hỗ trợ 60%, tối đa 5 tháng!", "ho tro 60%, toi da 5 thang!"),
        ("người khuyết tật (nặng)", "nguoi khuyet tat (nang)"),
        ("H41.22-241105-0012", "h41.22-241105-0012"),
        ("", ""),
        ("already plain", "already plain"),
    ],
)
def test_fold(text: str, expected: str) -> None:
    assert fold(text) == expected


def test_fold_decomposed_input() -> None:
    decomposed = unicodedata.normalize("NFD", "Trợ cấp ưu đãi Đảng")
    assert decomposed != unicodedata.normalize("NFC", decomposed)
    assert fold(decomposed) == "tro cap uu dai dang"
    assert fold(decomposed) == fold(unicodedata.normalize("NFC", decomposed))


def test_fold_words_keeps_only_words() -> None:
    assert fold_words("Số biên nhận: H41.22–241105-0012 (Đồng Nai)!") == "so bien nhan h41 22 241105 0012 dong nai"
    assert fold_words("  Trạng thái   hồ sơ ") == "trang thai ho so"
    assert fold_words("") == ""


def test_has_diacritics() -> None:
    assert has_diacritics("trợ cấp")
    assert has_diacritics("di đâu")
    assert has_diacritics("đi")
    assert has_diacritics("Đ")
    assert has_diacritics(unicodedata.normalize("NFD", "thất nghiệp"))
    assert not has_diacritics("tro cap that nghiep")
    assert not has_diacritics("H41.22-241105-0012 ABC")
    assert not has_diacritics("")


# ---- restoring with a small model ------------------------------------------------------------------
def test_restores_held_in_phrases(small: DiacriticRestorer) -> None:
    assert small.restore("tro cap that nghiep") == "trợ cấp thất nghiệp"
    assert (
        small.restore("nop ho so de nghi huong tro cap that nghiep")
        == "nộp hồ sơ đề nghị hưởng trợ cấp thất nghiệp"
    )
    assert (
        small.restore("ho ngheo duoc ho tro dong bao hiem y te") == "hộ nghèo được hỗ trợ đóng bảo hiểm y tế"
    )
    assert small.restore("ghi ro ho ten") == "ghi rõ họ tên"
    assert small.restore("than nhan liet si") == "thân nhân liệt sĩ"
    assert small.restore("giay phep lao dong") == "giấy phép lao động"


def test_context_chooses_between_candidates(small: DiacriticRestorer) -> None:
    assert {"hồ", "hộ", "họ", "hỗ"} <= set(small.candidates("ho"))
    assert small.restore("ho so") == "hồ sơ"
    assert small.restore("ho ngheo") == "hộ nghèo"
    assert small.restore("ho ten") == "họ tên"


def test_mixed_input_accented_words_constrain_neighbours(small: DiacriticRestorer) -> None:
    # The accented neighbour decides which "ho" is meant.
    assert small.restore("ho sơ") == "hồ sơ"
    assert small.restore("ho nghèo") == "hộ nghèo"
    assert small.restore("ho tên") == "họ tên"
    assert small.restore("trợ cap thất nghiep") == "trợ cấp thất nghiệp"


def test_codes_numbers_and_punctuation_kept(small: DiacriticRestorer) -> None:
    out = small.restore("tra cuu ket qua giai quyet ho so H41.22-241105-0012 nhe")
    assert out == "tra cứu kết quả giải quyết hồ sơ H41.22-241105-0012 nhe"
    assert small.restore("muc huong 60% tu ngay 01/01/2026, toi da 5 thang?") == (
        "mức hưởng 60% từ ngày 01/01/2026, tối đa 5 tháng?"
    )
    assert small.restore("email abc@example.vn, https://dichvucong.gov.vn") == (
        "email abc@example.vn, https://dichvucong.gov.vn"
    )


def test_accented_input_unchanged(small: DiacriticRestorer) -> None:
    for text in [
        "Trợ cấp thất nghiệp được bao nhiêu tiền một tháng?",
        "Hồ sơ nộp ở đâu ạ",
        "hoà giải viên lao động",  # old-style tone placement, still kept as typed
        "",
        "   ",
        "123 456",
    ]:
        assert small.restore(text) == text


def test_unknown_words_and_case(small: DiacriticRestorer) -> None:
    assert small.restore("xyzqw tro cap") == "xyzqw trợ cấp"
    assert small.restore("Tro cap that nghiep") == "Trợ cấp thất nghiệp"
    assert small.restore("TRO CAP THAT NGHIEP") == "TRỢ CẤP THẤT NGHIỆP"
    decomposed = unicodedata.normalize("NFD", "trợ cấp") + " that nghiep"
    assert small.restore(decomposed) == "trợ cấp thất nghiệp"


def test_unaccented_training_text_is_ignored() -> None:
    model = DiacriticRestorer.train(["tro cap that nghiep la bao nhieu", "Trợ cấp thất nghiệp là bao nhiêu?"])
    assert "tro" not in model.candidates("tro")
    assert model.restore("tro cap that nghiep la bao nhieu") == "trợ cấp thất nghiệp là bao nhiêu"


def test_update_adds_text(small: DiacriticRestorer, tmp_path: Path) -> None:
    model = DiacriticRestorer.train(SMALL_CORPUS[:5])
    assert model.restore("chuyen noi huong") == "chuyen noi hưởng"
    model.update(["Hồ sơ đề nghị chuyển nơi hưởng trợ cấp thất nghiệp."])
    assert model.restore("chuyen noi huong") == "chuyển nơi hưởng"


def test_save_load_round_trip(small: DiacriticRestorer, tmp_path: Path) -> None:
    path = tmp_path / "model.json.gz"
    small.save(path)
    loaded = DiacriticRestorer.load(path)
    assert loaded.order == small.order
    assert loaded.vocab == small.vocab
    assert len(loaded) == len(small)
    for text in ["nop ho so o dau", "ho ngheo duoc ho tro gi", "ghi ro ho ten", "tro cap 60% luong"]:
        assert loaded.restore(text) == small.restore(text)
    # Updating a loaded model works too.
    loaded.update(["Chuyển nơi hưởng trợ cấp thất nghiệp."])
    assert loaded.restore("chuyen noi huong") == "chuyển nơi hưởng"


def test_load_rejects_other_files(tmp_path: Path) -> None:
    import gzip

    path = tmp_path / "other.json.gz"
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write('{"format": "something-else"}')
    with pytest.raises(ValueError):
        DiacriticRestorer.load(path)


# ---- helpers ---------------------------------------------------------------------------------------
def test_clean_markdown() -> None:
    md = (
        "---\ntitle: Việc làm\npermalink: /van-ban/\n---\n\n## VĂN BẢN\n"
        "| **Nguồn** | [Thư Viện](https://example.vn/x?q=1) |\n|---|---|\n"
        "a) Hợp đồng **lao động**; xem https://vbpl.vn/abc\n1. Người lao động.\n"
    )
    text = clean_markdown(md)
    for gone in ("permalink", "title", "http", "vbpl", "**", "|", "##", "---", "a)", "1."):
        assert gone not in text
    assert " ".join(text.split()) == "VĂN BẢN Nguồn Thư Viện Hợp đồng lao động ; xem Người lao động."


def test_knowledge_texts(tmp_path: Path) -> None:
    qa = tmp_path / "qa"
    qa.mkdir()
    (qa / "tctn.yaml").write_text(
        "- id: tctn-muc-huong\n  topic: tctn-huong\n  question: Trợ cấp thất nghiệp được bao nhiêu?\n"
        "  paraphrases:\n    - thất nghiệp được bao nhiêu tiền\n    - muc huong tro cap that nghiep\n"
        "  answer: |\n    Mức hưởng bằng 60% ... gọi {dept_hotline}.\n  valid_from: 2026-01-01\n"
        "  needs_review: false\n",
        encoding="utf-8",
    )
    (qa / "broken.yaml").write_text("- id: [unclosed\n  question: Câu hỏi hỏng\n", encoding="utf-8")
    proc = tmp_path / "procedures" / "tctn-huong"
    proc.mkdir(parents=True)
    (proc / "tctn-huong-giai-quyet.md").write_text(
        "---\nid: tctn-huong-giai-quyet\ntopic: tctn-huong\ntitle: Giải quyết hưởng trợ cấp thất nghiệp\n"
        "steps:\n  - Nộp hồ sơ tại Trung tâm Dịch vụ việc làm\n---\nTóm tắt **ngắn** cho điện thoại.\n",
        encoding="utf-8",
    )
    (tmp_path / "notes.txt").write_text("không đọc", encoding="utf-8")
    texts = knowledge_texts(tmp_path)
    joined = "\n".join(texts)
    assert "Trợ cấp thất nghiệp được bao nhiêu?" in texts
    assert "thất nghiệp được bao nhiêu tiền" in texts
    assert "Giải quyết hưởng trợ cấp thất nghiệp" in texts
    assert "Nộp hồ sơ tại Trung tâm Dịch vụ việc làm" in texts
    assert "Tóm tắt" in joined and "**" not in joined
    assert "tctn-muc-huong" not in joined and "tctn-huong" not in joined
    assert "{dept_hotline}" not in joined and "Câu hỏi hỏng" not in joined and "không đọc" not in joined
    assert knowledge_texts(tmp_path / "missing") == []
    # The unaccented paraphrase is in the texts but is not learnt as a spelling.
    model = DiacriticRestorer.train(texts)
    assert "muc" not in model.candidates("muc")


# ---- the shipped model -----------------------------------------------------------------------------
# Realistic questions of citizens, written for this test (not taken from any evaluation set). The input
# is the accent-folded text; the expected output is the text itself.
CITIZEN_QUESTIONS = [
    "trợ cấp thất nghiệp được bao nhiêu tiền một tháng",
    "nghỉ việc bao lâu thì phải nộp hồ sơ hưởng thất nghiệp",
    "đóng bảo hiểm thất nghiệp 8 tháng có được hưởng không",
    "không đi báo tìm việc hằng tháng có bị cắt tiền không",
    "mức hỗ trợ học nghề cho người đang hưởng trợ cấp thất nghiệp",
    "chuyển hưởng trợ cấp thất nghiệp từ bình dương về nghệ an",
    "mẹ liệt sĩ được trợ cấp hằng tháng bao nhiêu",
    "thủ tục công nhận liệt sĩ cho ông nội tôi",
    "thương binh hạng 2/4 được hưởng chế độ gì",
    "con của người hoạt động kháng chiến bị nhiễm chất độc hóa học có được trợ cấp không",
    "người có công mất thì tiền mai táng là bao nhiêu",
    "hỗ trợ làm nhà ở cho người có công với cách mạng",
    "thân nhân liệt sĩ được hưởng trợ cấp tuất như thế nào",
    "giám định lại tỷ lệ tổn thương cơ thể cho thương binh",
    "trợ cấp một lần khi người có công qua đời",
    "bà tôi 85 tuổi không có lương hưu có được trợ cấp xã hội không",
    "người đơn thân nghèo nuôi con nhỏ có được trợ cấp không",
    "nhà bị sập do lũ lụt được hỗ trợ bao nhiêu",
    "người lang thang được đưa vào cơ sở bảo trợ xã hội",
    "làm giấy xác nhận khuyết tật cho con ở đâu",
    "người khuyết tật nặng mỗi tháng được nhận bao nhiêu tiền",
    "người chăm sóc người khuyết tật đặc biệt nặng có được hỗ trợ không",
    "điều kiện để được công nhận hộ nghèo là gì",
    "hộ cận nghèo có được cấp thẻ bảo hiểm y tế miễn phí không",
    "trẻ mồ côi cả cha và mẹ được hỗ trợ những gì",
    "trẻ em dưới 6 tuổi có được khám chữa bệnh miễn phí không",
    "phát hiện trẻ em bị bạo hành thì gọi số nào",
    "học nghề ngắn hạn cho lao động nông thôn có mất tiền không",
    "bộ đội xuất ngũ đi học nghề được hỗ trợ bao nhiêu",
    "đăng ký cai nghiện ma túy tự nguyện ở đâu",
    "con nghiện ma túy gia đình có được đưa đi cai nghiện bắt buộc không",
    "thủ tục cấp giấy phép lao động cho người nước ngoài cần những giấy tờ gì",
    "giấy phép lao động có thời hạn tối đa bao lâu",
    "đi làm việc ở hàn quốc theo hợp đồng cần điều kiện gì",
    "lương tối thiểu vùng 1 năm 2026 là bao nhiêu",
    "công ty trả lương thấp hơn lương tối thiểu thì xử lý thế nào",
    "bị công ty nợ lương thì gửi đơn khiếu nại ở đâu",
    "doanh nghiệp có 20 người lao động có phải đăng ký nội quy không",
    "tiền lương làm thêm giờ vào ngày lễ được tính thế nào",
    "bị tai nạn lao động thì được bồi thường bao nhiêu",
    "tôi muốn tra cứu kết quả hồ sơ số H41.22-241105-0012",
]

_SYLLABLE = re.compile(r"[^\W\d_]+")


def _syllables(text: str) -> list[str]:
    """Lower-case syllables of a text (chunks with a digit, i.e. numbers and codes, left out)."""
    chunks = unicodedata.normalize("NFC", text).lower().split()
    return [
        m.group()
        for chunk in chunks
        if not any(c.isdigit() for c in chunk)
        for m in _SYLLABLE.finditer(chunk)
    ]


@pytest.fixture(scope="module")
def shipped() -> DiacriticRestorer:
    assert SHIPPED_MODEL.exists(), "data/diacritics.json.gz is missing: run scripts/train_diacritics.py"
    return DiacriticRestorer.load(SHIPPED_MODEL)


def test_shipped_model_size() -> None:
    assert SHIPPED_MODEL.stat().st_size <= 15 * 1024 * 1024


def test_shipped_model_syllable_accuracy(shipped: DiacriticRestorer) -> None:
    total = correct = 0
    errors: list[str] = []
    for gold in CITIZEN_QUESTIONS:
        out = shipped.restore(fold(gold))
        gold_syl, out_syl = _syllables(gold), _syllables(out)
        assert len(gold_syl) == len(out_syl), (gold, out)
        ok = sum(a == b for a, b in zip(gold_syl, out_syl, strict=True))
        total += len(gold_syl)
        correct += ok
        if ok < len(gold_syl):
            errors.append(f"{out!r} (expected {gold!r})")
    accuracy = correct / total
    print(
        f"\nshipped model: syllable accuracy {accuracy:.4f} ({correct}/{total}) on {len(CITIZEN_QUESTIONS)} questions"
    )
    for line in errors:
        print("  ", line)
    assert accuracy >= 0.90
    assert shipped.restore("tra cuu ho so H41.22-241105-0012") == "tra cứu hồ sơ H41.22-241105-0012"


# ---- spelling correction of unknown syllables ----------------------------------------------------
def test_corrects_unknown_syllables_from_context(shipped: DiacriticRestorer) -> None:
    # A letter missing, a mark misplaced or wrong: the syllable is not Vietnamese, a known one fits.
    assert shipped.restore("thươg binh hạng 2") == "thương binh hạng 2"
    assert shipped.restore("khuyết tậc nặng") == "khuyết tật nặng"
    assert shipped.restore("thân nhân liẹt sĩ") == "thân nhân liệt sĩ"
    assert shipped.restore("đang hửong thất nghiệp") == "đang hưởng thất nghiệp"
    assert shipped.restore("tro cap thatt nghiep") == "trợ cấp thất nghiệp"


def test_correction_leaves_real_words_names_and_codes(shipped: DiacriticRestorer) -> None:
    # Real syllables the model has never seen, foreign words, codes and abbreviations are kept.
    for text in ["con thằng bé ổng nói hoài ở sài gòn", "bị viêm phổi", "nứt toác", "doanh nghiệp fdi",
                 "đăng ký qua zalo, tài khoản vneid", "ở tp.hcm", "alo alo", "mã H41.22-241105-0012"]:
        assert shipped.restore(text) == text


def test_correction_cost_keeps_unknown_when_nothing_fits(small: DiacriticRestorer) -> None:
    assert small.restore("xyzqw trợ cấp") == "xyzqw trợ cấp"
    assert small.restore("trợ cấpp thất nghiệp") == "trợ cấp thất nghiệp"


def test_warm_up_loads_the_typo_word_list_before_the_first_question(shipped: DiacriticRestorer) -> None:
    from indexer.diacritics import _folded_lexicon

    shipped.warm_up()
    assert _folded_lexicon.cache_info().currsize == 1 and "thuong" in _folded_lexicon()
