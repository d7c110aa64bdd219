"""Upstream scores and choice: evidence fades with its half-life, so a failed upstream is
avoided while the failure is fresh and asked again once it has faded."""

import random

import pytest

from appliers.dns.upstreams import UpstreamHealth

A, B, C, D = "a", "b", "c", "d"


@pytest.fixture
def health(clock) -> UpstreamHealth:
    return UpstreamHealth(clock=clock, half_life=10.0, failure_penalty=1.0, tie=0.002, rng=random.Random(7))


def test_one_or_two_upstreams_are_all_asked(health):
    health.record_failure(B)
    assert health.choose([A]) == [A]
    assert health.choose([A, B]) == [A, B]  # both, in the given order, whatever the scores


def test_the_best_two_of_several(health):
    for upstream, rtt in ((A, 0.050), (B, 0.001), (C, 0.020), (D, 0.001)):
        health.record_success(upstream, rtt)
    health.record_failure(D)
    assert health.choose([A, B, C, D]) == [B, C]
    assert health.score(B) == pytest.approx(0.001)
    assert health.score(D) == pytest.approx(1.001)


def test_scores_decay_with_the_half_life(health, clock):
    health.record_failure(A)
    assert health.score(A) == pytest.approx(1.0)
    clock.advance(10)
    assert health.score(A) == pytest.approx(0.5)
    clock.advance(20)
    assert health.score(A) == pytest.approx(0.125)
    health.record_failure(A)  # fresh evidence adds to the faded one
    assert health.score(A) == pytest.approx(1.125)


def test_a_recovered_upstream_regains_traffic(health, clock):
    for upstream in (A, B, C):
        health.record_success(upstream, 0.0005)
    health.record_failure(A)
    assert A not in health.choose([A, B, C])
    clock.advance(60)  # six half-lives: 1 s of penalty is down to 16 ms, still worse than 0.5 ms
    assert health.choose([A, B, C]) in ([B, C], [C, B])
    clock.advance(60)  # twelve: under one tie band, A is as good as the others again
    seen = {tuple(sorted(health.choose([A, B, C]))) for _ in range(50)}
    assert (A, B) in seen or (A, C) in seen
    health.record_success(A, 0.0005)  # it answered: it stays in rotation
    assert health.score(A) < 0.002


def test_failures_are_capped_so_a_long_outage_fades_in_bounded_time(clock):
    health = UpstreamHealth(clock=clock, half_life=10.0, max_failures=5.0)
    for _ in range(1000):
        health.record_failure(A)
    assert health.score(A) == pytest.approx(5.0)
    clock.advance(130)  # 13 half-lives
    assert health.score(A) < 0.001


def test_a_slow_upstream_we_stopped_asking_fades_back_to_unknown(health, clock):
    health.record_success(A, 0.2)
    health.record_success(A, 0.4)
    assert health.score(A) == pytest.approx(0.3)  # the average while the evidence is fresh
    clock.advance(10)  # weight 2 -> 1: still an average
    assert health.score(A) == pytest.approx(0.3)
    clock.advance(10)  # weight 0.5: less than one sample's worth, the estimate fades
    assert health.score(A) == pytest.approx(0.15)


def test_equals_share_the_load(health):
    for upstream in (A, B, C, D):
        health.record_success(upstream, 0.001)
    counts = {u: 0 for u in (A, B, C, D)}
    for _ in range(400):
        for chosen in health.choose([A, B, C, D]):
            counts[chosen] += 1
    assert all(150 < n < 250 for n in counts.values()), counts  # 200 each on average


def test_rank_orders_everyone(health):
    health.record_failure(A)
    health.record_success(B, 0.1)
    health.record_success(C, 0.001)
    assert health.rank([A, B, C]) == [C, B, A]
