"""Pure parts of the edge agent, with injected clocks and seeded generators."""

from __future__ import annotations

import random
import re

import pytest

from edge_agent.batching import Batcher
from edge_agent.clock import ClockTracker
from edge_agent.privacy import REDACTED, Pseudonymiser, Scrubber
from edge_agent.rules import RateRule, RuleEngine, ThresholdRule
from edge_agent.sendstate import SendState, TokenBucket
from edge_agent.units import convert
from runtime.backoff import Backoff

CASE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
S = 1_000_000  # one second in microseconds


# ---------------------------------------------------------------------------------------------- units
@pytest.mark.parametrize(
    ("value", "unit", "expected", "canonical"),
    [
        (2.0, "kPa", 15.0012, "mm[Hg]"),
        (20.0, "cm[H2O]", 14.7106, "mm[Hg]"),
        (12.0, "mm[Hg]", 12.0, "mm[Hg]"),
        (0.25, "A", 250.0, "mA"),
        (98.6, "[degF]", 37.0, "Cel"),
        (1500.0, "mL/min", 1.5, "L/min"),
        (7.0, "furlong", 7.0, "furlong"),  # unknown: passes through with its own unit
    ],
)
def test_unit_conversion(value: float, unit: str, expected: float, canonical: str) -> None:
    got, got_unit = convert(value, unit)
    assert got == pytest.approx(expected, abs=1e-3)
    assert got_unit == canonical


def test_unit_conversion_keeps_missing_values() -> None:
    assert convert(None, "kPa") == (None, "mm[Hg]")


# ---------------------------------------------------------------------------------------------- privacy
def test_pseudonym_is_stable_keyed_and_a_valid_case_id() -> None:
    a = Pseudonymiser(key=b"k" * 32)
    b = Pseudonymiser(key=b"q" * 32)
    assert a("C-2026-0042") == a("C-2026-0042") == a(" C-2026-0042 ")
    assert a("C-2026-0042") != b("C-2026-0042") != a("C-2026-0043")
    assert CASE_ID.match(a("C-2026-0042"))
    assert "0042" not in a("C-2026-0042")


def test_pseudonym_key_must_be_long_enough() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        Pseudonymiser(key=b"short")


def test_scrubber_redacts_every_pattern() -> None:
    scrub = Scrubber([r"MRN\d{6}", r"\b\d{3}-\d{2}-\d{4}\b"])
    text = scrub("pt MRN123456 ssn 123-45-6789 ok")
    assert text == f"pt {REDACTED} ssn {REDACTED} ok"
    assert scrub.leaks(text) == []


# ---------------------------------------------------------------------------------------------- clock
def test_clock_offset_is_a_robust_median() -> None:
    tracker = ClockTracker()
    rng = random.Random(7)
    reading = None
    for i in range(100):
        gw = 1_000 * S + i * 100_000
        late = 40_000 if rng.random() < 0.2 else 0  # a fifth of the lines arrive 40 ms late
        reading = tracker.observe(device_us=gw - 5 * S, gateway_us=gw + late)
        assert not reading.jump
    assert reading is not None and reading.offset_us == 5 * S


def test_steady_fast_device_clock_is_not_a_jump() -> None:
    """Simulators run device time at --speed 10: a steady rate, not a discontinuity."""
    tracker = ClockTracker(jump_threshold_us=2 * S)
    rng = random.Random(3)
    gw = 0
    for i in range(500):
        gw += rng.randint(5_000, 20_000)  # bursty arrival
        assert not tracker.observe(device_us=10 * gw, gateway_us=gw + 1).jump, f"reading {i}"
    assert tracker.rate == pytest.approx(10, rel=0.05)


@pytest.mark.parametrize("step_us", [60 * S, -30 * S])
def test_clock_step_is_flagged_once(step_us: int) -> None:
    tracker = ClockTracker(jump_threshold_us=2 * S)
    flags = []
    for i in range(40):
        gw = 1_000 * S + i * 100_000
        dev = gw - 3 * S + (step_us if i >= 20 else 0)
        flags.append(tracker.observe(device_us=dev, gateway_us=gw).jump)
    assert flags.count(True) == 1 and flags[20]
    assert tracker.observe(device_us=1_000 * S + 40 * 100_000 - 3 * S + step_us,
                           gateway_us=1_000 * S + 40 * 100_000).offset_us == 3 * S - step_us


# ---------------------------------------------------------------------------------------------- rules
def test_threshold_rule_needs_the_duration_and_clears() -> None:
    rule = ThresholdRule(metric="pressure_mmhg", code="OVERPRESSURE", above=15.0, for_s=5.0, severity="high")
    engine = RuleEngine((rule,))
    changes = []
    values = [12] * 3 + [16] * 70 + [14] * 3  # 10 Hz: 7 s above 15
    for i, v in enumerate(values):
        changes += engine.evaluate(device_id="ins-1", device_type="insufflator", ts_us=i * 100_000,
                                   values={"pressure_mmhg": float(v)})
    assert [(c.raised, c.ts_us) for c in changes] == [(True, 53 * 100_000), (False, 73 * 100_000)]
    assert changes[0].severity == "high" and changes[0].code == "OVERPRESSURE"


def test_short_excursion_raises_nothing_and_rules_match_device_type() -> None:
    engine = RuleEngine((ThresholdRule(metric="p", code="X", above=15.0, for_s=5.0, device_type="insuff*"),))
    out = []
    for i, v in enumerate([16.0] * 10 + [10.0]):
        out += engine.evaluate(device_id="a", device_type="insufflator", ts_us=i * S // 10, values={"p": v})
    for i in range(100):
        out += engine.evaluate(device_id="b", device_type="esu", ts_us=i * S, values={"p": 99.0})
    assert out == []


def test_rate_of_change_rule() -> None:
    engine = RuleEngine((RateRule(metric="t", code="RISE", max_rate_per_s=1.0),))
    series = [20.0, 20.5, 25.0, 25.2, 25.3]  # one reading per second: 4.5/s at the third
    changes = [c for i, v in enumerate(series)
               for c in engine.evaluate(device_id="d", device_type="x", ts_us=i * S, values={"t": v})]
    assert [(c.raised, c.ts_us) for c in changes] == [(True, 2 * S), (False, 3 * S)]


# ---------------------------------------------------------------------------------------------- batching
def test_batch_seals_when_full() -> None:
    b = Batcher(max_rows=3, max_age_us=S)
    sealed = [x for i in range(7) for x in b.add("d", i, {"m": float(i)}, now_us=0)]
    assert [x.ts_us for x in sealed] == [(0, 1, 2), (3, 4, 5)]
    assert b.pending_rows() == 1


def test_batch_seals_on_age_with_injected_clock() -> None:
    b = Batcher(max_rows=100, max_age_us=200_000)
    b.add("d", 1, {"m": 1.0}, now_us=1_000_000)
    assert b.due(1_199_999) == []
    assert b.next_due_us() == 1_200_000
    (batch,) = b.due(1_200_000)
    assert batch.sealed_us == 1_200_000 and batch.ts_us == (1,)


def test_metric_appearing_mid_batch_is_backfilled() -> None:
    b = Batcher(max_rows=10, max_age_us=S)
    b.add("d", 1, {"a": 1.0}, now_us=0)
    b.add("d", 2, {"a": 2.0, "b": 5.0}, now_us=0)
    (batch,) = b.drain(0)
    assert batch.metrics == {"a": (1.0, 2.0), "b": (None, 5.0)}


def test_clock_jump_starts_a_flagged_batch() -> None:
    b = Batcher(max_rows=10, max_age_us=S)
    b.add("d", 1, {"a": 1.0}, now_us=0)
    (before,) = b.add("d", 99 * S, {"a": 2.0}, now_us=0, clock_jump=True)
    (after,) = b.drain(0)
    assert not before.clock_jump and before.ts_us == (1,)
    assert after.clock_jump and after.ts_us == (99 * S,)


# ---------------------------------------------------------------------------------------------- backoff
def test_backoff_is_capped_and_jittered_with_injected_rng() -> None:
    backoff = Backoff(base_s=0.2, cap_s=5.0, rng=random.Random(42))
    delays = [backoff.next_delay() for _ in range(12)]
    for attempt, delay in enumerate(delays):
        ceiling = min(5.0, 0.2 * 2**attempt)
        assert ceiling / 2 <= delay <= ceiling
    assert len(set(delays)) == len(delays)
    backoff.reset()
    assert 0.1 <= backoff.next_delay() <= 0.2
    again = Backoff(base_s=0.2, cap_s=5.0, rng=random.Random(42))
    assert [again.next_delay() for _ in range(12)] == delays  # seeded: reproducible


# ---------------------------------------------------------------------------------------------- sending
def test_token_bucket_paces_the_backlog() -> None:
    bucket = TokenBucket(rate_per_s=100.0, burst=10.0, now_us=0)
    assert bucket.take(50, 0) == 0
    assert bucket.take(50, 50_000) == 5
    assert bucket.take(50, 10 * S) == 10  # capped at the burst


def test_stalled_stream_is_resent_only_without_progress() -> None:
    state = SendState.begin(mark_id=0, ack_timeout_us=2 * S, replay_rate=100.0, now_us=0)
    for seq in range(1, 6):
        state.sent(stream="d", seq=seq, row_id=seq, now_us=0)
    assert state.stalled(1 * S) == []
    assert state.acked(stream="d", seq=3, now_us=1 * S)  # progress restarts the timer
    assert state.stalled(2 * S) == []
    assert state.stalled(3 * S) == [("d", 3, 5)]
    assert state.stalled(3 * S) == []  # timer restarted after a go-back
    assert not state.acked(stream="d", seq=2, now_us=4 * S)  # watermarks never go back
    assert state.acked(stream="d", seq=5, now_us=4 * S)
    assert state.stalled(100 * S) == []


def test_repeated_resends_of_a_stream_back_off_until_its_watermark_moves() -> None:
    """Ingest away for long: the broker keeps the records queued for its session, so re-sending every
    timeout would only pile up copies there. Waits double (2, 4, 8, 16, 16 s with a 2 s timeout, cap 8x)."""
    state = SendState.begin(mark_id=0, ack_timeout_us=2 * S, replay_rate=100.0, now_us=0)
    state.sent(stream="d", seq=1, row_id=1, now_us=0)
    resent_at = [t for t in range(60) if state.stalled(t * S)]
    assert resent_at == [2, 6, 14, 30, 46]
    assert state.acked(stream="d", seq=1, now_us=60 * S)  # progress: back to one timeout
    state.sent(stream="d", seq=2, row_id=2, now_us=60 * S)
    assert [t for t in range(60, 70) if state.stalled(t * S)] == [62, 66]
