"""The store's clock from its answers' Date headers: bounded from both sides, stepped clocks
start again (a second reference for an agent's own clock, see test_receipts.py)."""

from __future__ import annotations

from draas.coordination.servertime import ServerTime, parse_date


def test_a_date_header_is_read_as_epoch_seconds_and_junk_as_nothing() -> None:
    assert parse_date("Tue, 01 Dec 2026 02:33:05 GMT") == 1796092385.0
    assert parse_date(None) is None
    assert parse_date("") is None
    assert parse_date("yesterday") is None


def test_answers_narrow_the_offset_to_well_under_a_second() -> None:
    st = ServerTime()
    assert st.offset() is None
    # The server is 600.3 s ahead; answers take 20 ms and arrive at various fractions.
    for i in range(12):
        sent = 1000.0 + i * 0.37
        received = sent + 0.02
        server = sent + 0.01 + 600.3
        st.answer(float(int(server)), received, 0.02)
    off = st.offset()
    assert off is not None and abs(off - 600.3) < 0.1, off


def test_one_answer_alone_is_within_its_second() -> None:
    st = ServerTime()
    st.answer(2000.0, 1999.6, 0.01)  # the server wrote somewhere in [2000, 2001)
    off = st.offset()
    assert off is not None and 0.4 <= off <= 1.41


def test_a_stepped_clock_starts_the_estimate_again() -> None:
    """Our clock fixed by NTP (600 s back): answers that contradict the old ones replace them."""
    st = ServerTime()
    for i in range(5):
        st.answer(1000.0 + i, 400.0 + i + 0.5, 0.01)  # we were 600 s behind the server
    before = st.offset()
    assert before is not None and abs(before - 600) < 1
    st.answer(1010.0, 1010.5, 0.01)
    after = st.offset()
    assert after is not None and abs(after) < 1


def test_answers_without_a_date_change_nothing() -> None:
    st = ServerTime()
    st.answer(None, 1000.0, 0.01)
    assert st.offset() is None
