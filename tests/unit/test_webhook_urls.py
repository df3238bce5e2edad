"""Which webhook URLs are called: http(s) to public addresses only, unless private ones are allowed."""

from __future__ import annotations

import pytest

from api.settings import WebhookSettings
from api.webhook_urls import UnsafeUrl, check_url
from api.webhooks import backoff


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/hook",
        "file:///etc/passwd",
        "http:///nohost",
        "http://127.0.0.1:8000/hook",
        "http://localhost/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://172.16.5.4/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://0.0.0.0/hook",
        "http://100.64.0.1/hook",
        "http://user:secret@93.184.216.34/hook",
    ],
)
def test_unsafe_urls_are_refused(url: str) -> None:
    with pytest.raises(UnsafeUrl):
        check_url(url, allow_private=False)


def test_public_addresses_pass_and_private_ones_only_when_allowed() -> None:
    target = check_url("https://93.184.216.34/hooks/scribe?x=1", allow_private=False)
    assert target.addresses == ["93.184.216.34"] and target.port == 443
    assert target.url_for("93.184.216.34") == "https://93.184.216.34:443/hooks/scribe?x=1"
    local = check_url("http://127.0.0.1:8080/in", allow_private=True)
    assert local.addresses == ["127.0.0.1"] and local.url_for("127.0.0.1") == "http://127.0.0.1:8080/in"
    with pytest.raises(UnsafeUrl):
        check_url("ftp://127.0.0.1/in", allow_private=True)  # the scheme rule holds even then


def test_backoff_doubles_with_jitter_up_to_the_cap() -> None:
    settings = WebhookSettings(backoff_s=2, max_backoff_s=30)
    for attempt, base in [(1, 2), (2, 4), (3, 8), (4, 16), (5, 30), (9, 30)]:
        waits = [backoff(settings, attempt) for _ in range(200)]
        assert base * 0.5 <= min(waits) and max(waits) <= base * 1.5
        assert max(waits) - min(waits) > base * 0.3  # jittered, not fixed
