"""Finding the ask inside a citizen's story."""

from __future__ import annotations

from indexer.question import parse


def test_story_is_split_into_greeting_context_and_ask() -> None:
    p = parse("Chào anh chị, em 29 tuổi, làm công nhân may 5 năm, lương 9.200.000đ. "
              "Cho em hỏi em nộp hồ sơ thất nghiệp ở đâu ạ? Em cảm ơn nhiều.")
    roles = [s.role for s in p.sentences]
    assert roles == ["context", "ask", "thanks"]
    assert p.sentences[0].text.startswith("em 29 tuổi") and "9.200.000đ" in p.sentences[0].text
    assert p.core == "em nộp hồ sơ thất nghiệp ở đâu ạ"
    assert "Chào" not in p.body and "cảm ơn" not in p.body and p.is_story


def test_unaccented_story_reads_the_same_way() -> None:
    p = parse("chao so, toi lam o tp.hcm nhung que o quang nam. xin hoi toi co nop ho so thay cho me duoc khong")
    assert [s.role for s in p.sentences] == ["context", "ask"]
    assert p.sentences[0].text == "toi lam o tp.hcm nhung que o quang nam"
    assert p.core == "toi co nop ho so thay cho me duoc khong"


def test_question_words_without_a_question_mark_make_an_ask() -> None:
    p = parse("Mẹ tôi 80 tuổi không có lương hưu. Giờ muốn xin trợ cấp thì làm thế nào")
    assert [s.role for s in p.sentences] == ["context", "ask"]


def test_short_question_is_its_own_core_and_body() -> None:
    p = parse("ông 80 tuổi có tiền hàng tháng ko")
    assert p.core == p.body == "ông 80 tuổi có tiền hàng tháng ko" and not p.is_story


def test_no_recognised_ask_uses_the_last_sentence() -> None:
    p = parse("Tôi bị cho nghỉ việc. Tôi đóng bảo hiểm thất nghiệp 3 năm")
    assert p.core == "Tôi đóng bảo hiểm thất nghiệp 3 năm"
