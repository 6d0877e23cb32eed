"""A trigger's token bucket, and its share when several gateways hold the limit together."""

from hookflow_gateway.ratelimit import RateLimiter, retry_after_header


class Clock:
    """Time that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_then_the_rate() -> None:
    clock = Clock()
    limiter = RateLimiter("g1", heartbeat_interval=5, clock=clock)
    assert [limiter.retry_after("k", rate=2, burst=3) for _ in range(3)] == [0, 0, 0]
    wait = limiter.retry_after("k", rate=2, burst=3)
    assert wait == 0.5  # one token comes every half second
    assert retry_after_header(wait) == "1"
    clock.now += 0.5
    assert limiter.retry_after("k", rate=2, burst=3) == 0
    clock.now += 60  # a long quiet spell refills up to the burst, no more
    assert [limiter.retry_after("k", rate=2, burst=3) for _ in range(4)][-1] > 0


def test_triggers_have_buckets_of_their_own() -> None:
    limiter = RateLimiter("g1", heartbeat_interval=5, clock=Clock())
    assert limiter.retry_after("a", rate=1, burst=1) == 0
    assert limiter.retry_after("a", rate=1, burst=1) > 0
    assert limiter.retry_after("b", rate=1, burst=1) == 0
    limiter.forget("a")
    assert limiter.retry_after("a", rate=1, burst=1) == 0, "a deleted trigger's bucket is gone"


def test_each_gateway_takes_its_share_of_the_limit() -> None:
    clock = Clock()
    limiter = RateLimiter("g1", heartbeat_interval=5, clock=clock)
    limiter.peer_alive("g2")
    limiter.peer_alive("g1")  # its own heartbeat does not count twice
    assert limiter.gateways() == 2
    taken = sum(limiter.retry_after("k", rate=10, burst=10) == 0 for _ in range(10))
    assert taken == 5, "half the burst here, half on the other gateway"
    clock.now += 16  # three heartbeats missed: the peer is gone
    assert limiter.gateways() == 1
    limiter.peer_alive("g3")
    limiter.peer_gone("g3")  # a gateway that says it stops leaves at once
    assert limiter.gateways() == 1
