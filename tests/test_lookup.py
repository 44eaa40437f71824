"""The dossier lookup dialogue: masking, verification, unknown numbers, outages and rate limiting."""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import update

from bot.config import Settings
from bot.dossiers.importer import import_dossiers
from bot.dossiers.sources import HttpDossierSource, LocalDossierSource
from bot.dossiers.statuses import Dossier
from bot.lookup import DossierLookup
from bot.messages import Incoming, Reply
from bot.storage import Storage
from bot.storage.models import DossierLookupLog, utcnow
from tests.fakes import FakeDossierSource

TODAY = datetime(2024, 11, 20, 9, 0)
DATA = Path(__file__).parent / "data" / "dossiers"

AN = Dossier(
    receipt="H41.22-241105-0012",
    procedure="Giải quyết hưởng trợ cấp thất nghiệp",
    applicant_name="Nguyễn Văn An",
    applicant_phone="0912345678",
    received_at=datetime(2024, 11, 5, 8, 31),
    due_date=date(2024, 12, 3),
    status="processing",
    status_label="Đang xử lý",
    note="Đã chuyển phòng chuyên môn thẩm định",
    updated_at=datetime(2024, 11, 12, 15, 2),
)
NGOC = Dossier(
    receipt="H41.22-241106-0031",
    procedure="Cấp giấy phép lao động cho người nước ngoài",
    applicant_name="Trần Thị Bích Ngọc",
    applicant_phone="0987654321",
    received_at=datetime(2024, 11, 6),
    due_date=date(2024, 11, 15),
    status="supplement",
    status_label="Yêu cầu bổ sung",
    note="Bổ sung bản sao hộ chiếu có chứng thực",
)
OLD = Dossier(
    receipt="000.00.20.H41-240927-0001",
    procedure="Trợ cấp xã hội hằng tháng",
    applicant_name="Lê Văn Cường",
    applicant_phone=None,
    received_at=datetime(2024, 9, 27),
    due_date=date(2024, 10, 11),
    status="returned",
    status_label="Đã trả kết quả",
    note="Đã trả quyết định",
)


def msg(text: str = "", chat: str = "c1", payload: str | None = None) -> Incoming:
    return Incoming(channel="telegram", chat_id=chat, text=text, payload=payload)


def limited(settings: Settings, **dossiers: object) -> Settings:
    """``settings`` with some dossier settings changed."""
    return settings.model_copy(update={"dossiers": settings.dossiers.model_copy(update=dossiers)})


@pytest.fixture
def source() -> FakeDossierSource:
    return FakeDossierSource([AN, NGOC, OLD])


@pytest.fixture
def lookup(source: FakeDossierSource, store: Storage, settings: Settings) -> DossierLookup:
    return DossierLookup(source, store.dossiers, limited(settings, lookup_limit_per_hour=10, lookup_verify_attempts=3),
                         clock=lambda: TODAY)


def assert_private(reply: Reply, *dossiers: Dossier) -> None:
    for d in dossiers:
        assert d.applicant_name not in reply.text
        if d.applicant_phone:
            assert d.applicant_phone not in reply.text
            assert d.applicant_phone[-4:] not in reply.text


def test_receipt_anywhere_in_a_message_gives_a_masked_summary(lookup: DossierLookup) -> None:
    r = lookup.handle(msg("cho em hỏi hồ sơ h41.22 – 241105-0012 đến đâu rồi ạ"), None)
    assert r is not None and r.kind == "dossier"
    assert "Thông tin hồ sơ số H41.22-241105-0012" in r.text
    assert "Giải quyết hưởng trợ cấp thất nghiệp" in r.text
    assert "Nguyễn V. A." in r.text
    assert "Đang được xử lý" in r.text
    assert "05/11/2024" in r.text and "03/12/2024 (còn 13 ngày)" in r.text
    assert "quá hạn" not in r.text
    assert "Bước tiếp theo: Anh/chị chưa cần làm gì thêm" in r.text
    assert "4 số cuối" in r.text
    assert AN.note not in r.text  # the officer's note only after verification
    assert_private(r, AN)
    assert r.state == {"flow": "dossier", "step": "await_phone4", "receipt": "H41.22-241105-0012"}


def test_correct_last_four_digits_show_full_details(lookup: DossierLookup, store: Storage) -> None:
    r1 = lookup.handle(msg("H41.22-241105-0012"), None)
    assert r1 is not None
    r2 = lookup.handle(msg("5678"), r1.state)
    assert r2 is not None and r2.state is None
    assert "Cảm ơn anh/chị đã xác minh" in r2.text
    assert "Ghi chú của cán bộ: Đã chuyển phòng chuyên môn thẩm định" in r2.text
    assert "Cập nhật lần cuối: 12/11/2024 15:02" in r2.text
    assert "Nguyễn V. A." in r2.text
    assert_private(r2, AN)
    # A full phone number typed instead of 4 digits is accepted too.
    r3 = lookup.handle(msg("H41.22-241105-0012", chat="c2"), None)
    r4 = lookup.handle(msg("+84 912 345 678", chat="c2"), r3.state if r3 else None)
    assert r4 is not None and "Cảm ơn anh/chị đã xác minh" in r4.text


def test_wrong_digits_are_limited_per_receipt_and_source(lookup: DossierLookup, store: Storage) -> None:
    r = lookup.handle(msg("H41.22-241105-0012"), None)
    assert r is not None
    state = r.state
    r = lookup.handle(msg("1111"), state)
    assert r is not None and "còn 2 lần thử" in r.text and r.state == state
    r = lookup.handle(msg("12"), state)  # not 4 digits: asked again, not counted
    assert r is not None and "4 chữ số cuối" in r.text
    r = lookup.handle(msg("2222"), state)
    assert r is not None and "còn 1 lần thử" in r.text
    r = lookup.handle(msg("3333"), state)
    assert r is not None and r.state is None and "tạm dừng xác minh" in r.text
    r = lookup.handle(msg("5678"), state)  # the guesser stays locked out, even with the right digits
    assert r is not None and "tạm dừng xác minh" in r.text and AN.note not in r.text
    # ... but a stranger's wrong guesses do not lock the owner out: from their own chat, it works
    r = lookup.handle(msg("H41.22-241105-0012", chat="owner"), None)
    r = lookup.handle(msg("5678", chat="owner"), r.state if r else None)
    assert r is not None and "Cảm ơn anh/chị đã xác minh" in r.text


def test_guessing_from_many_chats_slows_down_without_locking_the_owner_out(
        source: FakeDossierSource, store: Storage, settings: Settings) -> None:
    lk = DossierLookup(source, store.dossiers, limited(settings, lookup_verify_receipt_failures=4,
                                                       lookup_verify_slow_seconds=3600), clock=lambda: TODAY)
    for i in range(4):  # four strangers, one wrong guess each
        r = lk.handle(msg("H41.22-241105-0012", chat=f"x{i}"), None)
        r = lk.handle(msg("1111", chat=f"x{i}"), r.state if r else None)
        assert r is not None and "chưa khớp" in r.text
    # now one attempt per slot: the first one in the slot is checked (the owner gets in) ...
    r = lk.handle(msg("H41.22-241105-0012", chat="owner"), None)
    r = lk.handle(msg("5678", chat="owner"), r.state if r else None)
    assert r is not None and "Cảm ơn anh/chị đã xác minh" in r.text
    # ... the next one waits for the next slot (a wait in minutes, not an hour-long lock)
    r = lk.handle(msg("H41.22-241105-0012", chat="x9"), None)
    r = lk.handle(msg("2222", chat="x9"), r.state if r else None)
    assert r is not None and "cách nhau" in r.text and "thử lại sau khoảng" in r.text


def test_enumeration_from_many_chats_of_one_address_is_limited(
        source: FakeDossierSource, store: Storage, settings: Settings) -> None:
    lk = DossierLookup(source, store.dossiers, limited(settings, lookup_not_found_per_source_per_hour=3),
                       clock=lambda: TODAY)
    answers = []
    for i in range(8):  # a new web chat id for every guess, all from one address
        m = Incoming(channel="web", chat_id=f"chat-{i:08d}", text=f"H41.22-241105-{9000 + i:04d}", source="ip:abc")
        r = lk.handle(m, None)
        assert r is not None
        answers.append("tạm dừng tra cứu" in r.text)
    assert answers == [False, False, False, True, True, True, True, True]
    # another address is not affected; the global and per-receipt counters hold across processes (database)
    other = lk.handle(Incoming(channel="web", chat_id="chat-x0000001", text="H41.22-241105-0012", source="ip:def"),
                      None)
    assert other is not None and "Thông tin hồ sơ số" in other.text


def test_supplement_next_step_before_and_after_verification(lookup: DossierLookup, settings: Settings) -> None:
    r = lookup.handle(msg("tra cứu H41.22-241106-0031"), None)
    assert r is not None
    assert "Cần bổ sung giấy tờ" in r.text
    assert "đã quá hạn 5 ngày" in r.text and "xin lỗi" in r.text
    assert [b.payload for b in r.buttons] == ["followup:start", "dossier:cancel"]
    assert "Bổ sung bản sao hộ chiếu" not in r.text and "xác minh" in r.text
    r2 = lookup.handle(msg("4321"), r.state)
    assert r2 is not None
    assert "Ghi chú của cán bộ: Bổ sung bản sao hộ chiếu có chứng thực" in r2.text
    assert settings.department.one_stop_office in r2.text and "mang theo giấy biên nhận" in r2.text
    assert "Trần T. B. N." in r2.text
    assert_private(r2, NGOC)


def test_dossier_without_phone_and_closed_dossier_are_not_overdue(lookup: DossierLookup) -> None:
    r = lookup.handle(msg("000.00.20.H41-240927-0001"), None)
    assert r is not None and r.state is None
    assert "Đã trả kết quả" in r.text and "quá hạn" not in r.text and "4 số cuối" not in r.text
    assert "Lê V. C." in r.text


def test_tra_cuu_request_asks_for_the_number(lookup: DossierLookup) -> None:
    assert lookup.wants_lookup("Tôi muốn tra cứu hồ sơ")
    assert lookup.wants_lookup("tinh trang hs cua toi")
    assert not lookup.wants_lookup("hồ sơ hưởng trợ cấp thất nghiệp gồm những gì")
    r = lookup.handle(msg("Tôi muốn tra cứu hồ sơ"), None)
    assert r is not None and r.state == {"flow": "dossier", "step": "await_receipt", "attempts": 0}
    assert "số biên nhận" in r.text
    r2 = lookup.handle(msg("số 241105"), r.state)
    assert r2 is not None and "chưa nhận ra số biên nhận" in r2.text and r2.state["attempts"] == 1  # type: ignore[index]
    r3 = lookup.handle(msg("đây ạ: H41.22-241105-0012"), r2.state)
    assert r3 is not None and "Thông tin hồ sơ số H41.22-241105-0012" in r3.text
    # A different question while waiting for the number goes back to the rest of the assistant.
    assert lookup.handle(msg("trợ cấp thất nghiệp được bao nhiêu tiền"), r.state) is None
    # Three messages without a recognisable number end the flow politely.
    st = r.state
    for _ in range(3):
        rr = lookup.handle(msg("12345"), st)
        assert rr is not None
        st = rr.state
    assert st is None


def test_cancel_and_messages_that_are_not_for_the_lookup(lookup: DossierLookup) -> None:
    assert lookup.handle(msg("xin chào"), None) is None
    assert lookup.handle(msg("H41.22-241105-0012"), {"flow": "followup", "step": "question"}) is None
    r = lookup.handle(msg("tra cứu hồ sơ"), None)
    assert r is not None
    r2 = lookup.handle(msg("thôi"), r.state)
    assert r2 is not None and r2.state is None and "dừng tra cứu" in r2.text
    r3 = lookup.handle(msg(payload="dossier:cancel"), {"flow": "dossier", "step": "await_phone4", "receipt": "x"})
    assert r3 is not None and r3.state is None
    # While waiting for the 4 digits, an unrelated question is left to the rest of the assistant.
    assert lookup.handle(msg("còn trợ cấp thai sản thì sao"), {"flow": "dossier", "step": "await_phone4"}) is None
    r4 = lookup.handle(msg("tôi không nhớ số"), {"flow": "dossier", "step": "await_phone4", "receipt": AN.receipt})
    assert r4 is not None and r4.state is None and "căn cước" in r4.text


def test_unknown_number_gets_help_and_is_logged(lookup: DossierLookup, store: Storage, settings: Settings) -> None:
    r = lookup.handle(msg("H41.22-990101-9999"), None)
    assert r is not None
    assert "chưa tìm thấy hồ sơ có số biên nhận H41.22-990101-9999" in r.text
    assert "Kiểm tra lại" in r.text and settings.department.dept_hotline in r.text and settings.department.one_stop_office in r.text
    assert [b.payload for b in r.buttons] == ["followup:start"]
    assert store.dossiers.unknown_receipts() == [("H41.22-990101-9999", 1)]


def test_rate_limit_per_chat_survives_restarts(
    source: FakeDossierSource, store: Storage, settings: Settings
) -> None:
    lk = DossierLookup(source, store.dossiers, limited(settings, lookup_limit_per_hour=3), clock=lambda: TODAY)
    for receipt in ("H41.22-241105-0012", "H41.22-000000-0001", "H41.22-000000-0002"):
        r = lk.handle(msg(receipt), None)
        assert r is not None and "tra cứu tối đa" not in r.text
    calls = len(source.calls)
    r = lk.handle(msg("H41.22-241106-0031"), None)
    assert r is not None and "tối đa 3 lần mỗi giờ" in r.text and "phút" in r.text and r.state is None
    assert len(source.calls) == calls  # the source was not even asked
    assert_private(r, NGOC)

    # A new instance (a restarted process) still sees the limit; another chat is not affected.
    lk2 = DossierLookup(source, Storage(store.engine).dossiers, limited(settings, lookup_limit_per_hour=3),
                        clock=lambda: TODAY)
    r = lk2.handle(msg("H41.22-241106-0031"), None)
    assert r is not None and "tối đa 3 lần" in r.text
    r = lk2.handle(msg("H41.22-241106-0031", chat="c9"), None)
    assert r is not None and "Thông tin hồ sơ" in r.text

    # An hour later the chat may look up again.
    with store.db.transaction() as s:
        s.execute(update(DossierLookupLog).values(created_at=utcnow() - timedelta(minutes=61)))
    r = lk2.handle(msg("H41.22-241106-0031"), None)
    assert r is not None and "Thông tin hồ sơ" in r.text


def test_source_down_gets_a_clear_message_and_does_not_count(
    source: FakeDossierSource, store: Storage, settings: Settings
) -> None:
    source.unavailable = True
    lk = DossierLookup(source, store.dossiers, limited(settings, lookup_limit_per_hour=1), clock=lambda: TODAY)
    for _ in range(3):
        r = lk.handle(msg("H41.22-241105-0012"), None)
        assert r is not None and "tạm thời không phản hồi" in r.text and settings.department.dept_hotline in r.text
    source.unavailable = False
    r = lk.handle(msg("H41.22-241105-0012"), None)
    assert r is not None and "Thông tin hồ sơ" in r.text


def test_http_source_outage_in_the_dialogue(store: Storage, settings: Settings) -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectTimeout("down", request=request)

    src = HttpDossierSource("https://motcua.example/{receipt}", {}, client=httpx.Client(transport=httpx.MockTransport(down)))
    lk = DossierLookup(src, store.dossiers, settings, clock=lambda: TODAY)
    r = lk.handle(msg("H41.22-241105-0012"), None)
    assert r is not None and "hệ thống một cửa điện tử của tỉnh đang tạm thời không phản hồi" in r.text


def test_lookup_on_imported_dossiers_and_no_personal_data_in_logs(
    store: Storage, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    import_dossiers(store.dossiers, DATA / "messy.csv")
    lk = DossierLookup(LocalDossierSource(store.dossiers), store.dossiers, settings, clock=lambda: TODAY)
    with caplog.at_level(logging.DEBUG):
        r = lk.handle(msg("hồ sơ H41.22-241106-0031 của tôi"), None)
        assert r is not None and "Trần T. B. N." in r.text
        r = lk.handle(msg("4321"), r.state)
        assert r is not None and "Bổ sung bản sao hộ chiếu có chứng thực" in r.text
        lk.handle(msg("H41.22-990101-9999"), None)
    logged = "\n".join(rec.getMessage() for rec in caplog.records)
    assert "0987654321" not in logged and "Trần Thị Bích Ngọc" not in logged
    assert "receipt number not found" in logged and "990101" not in logged  # an unknown number is not logged


@pytest.mark.parametrize("typed", ["H41 22 241105 0012", "h41 22-241105-0012", "hồ sơ H41 22 241105 0012 của tôi"])
def test_receipt_typed_with_spaces_is_read_right(lookup: DossierLookup, typed: str) -> None:
    r = lookup.handle(msg(typed), None)
    assert r is not None and "Thông tin hồ sơ số H41.22-241105-0012" in r.text


def test_an_overdue_dossier_names_no_past_expected_date(source: FakeDossierSource, store: Storage,
                                                        settings: Settings) -> None:
    late = DossierLookup(source, store.dossiers, settings, clock=lambda: datetime(2026, 11, 30, 9, 0))
    r = late.handle(msg("H41.22-241105-0012"), None)
    assert r is not None and "đã quá hạn 727 ngày" in r.text
    assert "dự kiến" not in r.text and "hẹn lại ngày trả" in r.text
