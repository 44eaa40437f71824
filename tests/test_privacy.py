"""Masking of names and phones, the log filter, and the Vietnamese mobile-number validator."""

from __future__ import annotations

import io
import logging

import pytest

from bot.dialogue import Dialogue
from bot.privacy import (
    PiiLogFilter,
    format_mobile,
    install_log_filter,
    is_vn_mobile,
    mask_name,
    mask_phone,
    mask_text,
    normalize_mobile,
)
from bot.storage import Storage


@pytest.mark.parametrize(
    ("name", "masked"),
    [
        ("Nguyễn Văn An", "Nguyễn V. A."),
        ("Trần Thị Bích Ngọc", "Trần T. B. N."),
        ("  lê   văn  cường ", "lê V. C."),
        ("Đặng Ánh", "Đặng Á."),
        ("An", "A."),
        ("", ""),
        (None, ""),
    ],
)
def test_mask_name(name: str | None, masked: str) -> None:
    assert mask_name(name) == masked


@pytest.mark.parametrize(
    ("phone", "masked"),
    [("0912345678", "09******78"), ("0912 345 678", "09******78"), ("+84912345678", "84*******78"),
     ("1234", "****"), ("", ""), (None, "")],
)
def test_mask_phone(phone: str | None, masked: str) -> None:
    assert mask_phone(phone) == masked


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("0912345678", "0912345678"),
        ("0912 345 678", "0912345678"),
        ("0912.345.678", "0912345678"),
        ("0912-345-678", "0912345678"),
        ("+84 912 345 678", "0912345678"),
        ("+84912345678", "0912345678"),
        ("84912345678", "0912345678"),
        ("(+84) 912 345 678", "0912345678"),
        ("0084 912 345 678", "0912345678"),
        ("+84 0912 345 678", "0912345678"),
        ("0321234567", "0321234567"),
        ("0521234567", "0521234567"),
        ("0701234567", "0701234567"),
        ("0861234567", "0861234567"),
        ("０９１２３４５６７８", "0912345678"),
    ],
)
def test_valid_vietnamese_mobiles(raw: str, normal: str) -> None:
    assert normalize_mobile(raw) == normal
    assert is_vn_mobile(raw)


@pytest.mark.parametrize(
    "raw",
    ["", None, "091234567", "09123456789", "0112345678", "0212345678", "0412345678", "0612345678",
     "0312345678", "0512345678", "0711234567", "0801234567", "+1 202 555 0100", "09l2345678", "0912 345 67a"],
)
def test_invalid_vietnamese_mobiles(raw: str | None) -> None:
    assert normalize_mobile(raw) is None
    assert not is_vn_mobile(raw)


def test_mask_text_masks_phones_and_id_numbers_but_not_receipts_or_dates() -> None:
    text = (
        "Tôi là An, sđt 0912 345 678, cũng có thể gọi +84 987.654.321; CCCD 001204012345, CMND 123456789. "
        "Hồ sơ H41.22-241105-0012 nộp 05/11/2024 lúc 08:31."
    )
    out = mask_text(text)
    for secret in ("0912 345 678", "987.654.321", "001204012345", "123456789"):
        assert secret not in out
    assert "09******78" in out and "00********45" in out and "12*****89" in out
    assert "H41.22-241105-0012" in out and "05/11/2024" in out and "08:31" in out


def test_log_filter_masks_messages_and_arguments() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("test.privacy")
    logger.propagate = False
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        install_log_filter(logger)
        install_log_filter(logger)  # idempotent
        assert sum(isinstance(f, PiiLogFilter) for f in handler.filters) == 1
        logger.info("citizen phone 0912345678 and id %s", "001204012345")
        logger.info("called back %s", "+84 912 345 678")
        logger.info("count %d of %d", 3, 10)
        try:
            raise ValueError("bad phone 0987654321")
        except ValueError:
            logger.exception("failed for 0987654321")
    finally:
        logger.removeHandler(handler)
    out = stream.getvalue()
    for secret in ("0912345678", "001204012345", "912 345 678", "0987654321"):
        assert secret not in out
    assert "09******78" in out and "count 3 of 10" in out


def test_helpers() -> None:
    assert format_mobile("0912345678") == "0912 345 678"


def test_free_text_is_masked_at_rest_and_the_follow_up_form_is_not_logged(dialogue: Dialogue, store: Storage) -> None:
    from sqlalchemy import select

    from bot.messages import Incoming
    from bot.storage.models import RequestLog

    def say(text: str) -> None:
        dialogue.handle(Incoming("web", "chat-priv-0001", text=text))

    say("CCCD của tôi là 034 092 001 234, số điện thoại 0912.345.678, tôi hỏi trợ cấp thất nghiệp")
    say("gặp cán bộ")
    say("Trần Thị Bình")
    say("0987 654 321")
    with store.db.transaction() as s:
        logged = [r.question for r in s.scalars(select(RequestLog).order_by(RequestLog.id))]
    text = "\n".join(logged)
    for secret in ("034 092 001 234", "034092001234", "0912.345.678", "Trần Thị Bình", "0987 654 321"):
        assert secret not in text
    assert "03********34" in logged[0] and "09******78" in logged[0]
    assert logged[2:] == ["[gặp cán bộ]", "[gặp cán bộ]"]


def test_index_version_names_are_not_taken_for_phone_numbers() -> None:
    from bot.privacy import mask_text

    assert mask_text("switched to 20261130-063828-226-050dda0e") == "switched to 20261130-063828-226-050dda0e"
    assert "0912-345-678" not in mask_text("gọi 0912-345-678")
