"""The key store and the shared rate counters, on real SQLite files."""

from __future__ import annotations

import time

from limits import RateLimitItemPerSecond
from limits.strategies import FixedWindowRateLimiter
from sqlalchemy import Engine, create_engine, text

from api.keys import KeyStore, split_key
from api.ratelimit import RateLimiter, SqlStorage
from api.settings import LimitSettings
from schemas import KeyLimits


def test_only_the_exact_active_key_verifies(engine: Engine) -> None:
    keys = KeyStore(engine)
    record, key = keys.create("alice", limits=KeyLimits(requests_per_minute=7))
    _other, other = keys.create("bob")
    found = keys.verify(key)
    assert found is not None and found.id == record.id and found.limits.requests_per_minute == 7
    key_id, secret = split_key(key) or ("", "")
    _other_id, other_secret = split_key(other) or ("", "")
    for wrong in (
        f"sfk_{key_id}_{other_secret}",
        f"sfk_{key_id}_{secret[:-1]}",
        f"sfk_{key_id}_",
        f"sfk_ffffffffffff_{secret}",
        secret,
        "",
        "sfk_",
    ):
        assert keys.verify(wrong) is None, wrong
    keys.revoke(record.id)
    assert keys.verify(key) is None
    assert [k.name for k in keys.list()] == ["bob"]
    with engine.connect() as db:
        stored = " ".join(str(v) for row in db.execute(text("SELECT * FROM api_keys")) for v in row)
    assert secret not in stored and key_id in stored


def test_counters_are_shared_by_storages_on_one_database_and_expire(engine: Engine) -> None:
    other = create_engine(engine.url)  # another process's pool, as an API replica has
    one, two = SqlStorage(engine), SqlStorage(other)
    assert [one.incr("k", 1), two.incr("k", 1), one.incr("k", 1, amount=3)] == [1, 2, 5]
    assert two.get("k") == 5 and two.get_expiry("k") > time.time()
    time.sleep(1.1)
    assert two.get("k") == 0 and one.incr("k", 1) == 1
    window = FixedWindowRateLimiter(two)
    item = RateLimitItemPerSecond(2)
    assert [window.hit(item, "x") for _ in range(3)] == [True, True, False]
    other.dispose()


def test_a_key_s_own_limits_override_the_defaults(engine: Engine) -> None:
    limiter = RateLimiter(LimitSettings(requests_per_minute=100, audio_minutes_per_day=1), engine)
    keys = KeyStore(engine)
    strict, _ = keys.create("strict", limits=KeyLimits(requests_per_minute=1, audio_minutes_per_day=10))
    loose, _ = keys.create("loose")
    assert limiter.request(strict) is None
    exceeded = limiter.request(strict)
    assert exceeded is not None and exceeded.limit == "requests_per_minute" and 0 < exceeded.retry_after_s <= 60
    assert all(limiter.request(loose) is None for _ in range(10))
    assert limiter.audio(strict, 590) is None  # 10 minutes of its own
    assert limiter.audio(loose, 61) is not None  # 1 minute by default
    assert limiter.audio(loose, 60) is None  # the refusal above cost nothing
