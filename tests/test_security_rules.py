"""The bot detector's and security/http's rules on their compiled values (the gateway-level
behaviour is in tests/test_botdetector.py and tests/test_secure_headers.py)."""

from __future__ import annotations

from typing import Any

import pytest

from tidegate.components import botdetector, secure_headers
from tidegate.errors import ConfigValueError
from tidegate.messages import Request, Response

BOT = ("extra_config", "security/bot-detector")
HTTP = ("extra_config", "security/http")


def _detector(**section: Any) -> botdetector.Detector:
    return botdetector.Detector(botdetector.parse(section, BOT))


def test_allow_is_exact_then_deny_then_patterns_anywhere() -> None:
    d = _detector(allow=["Pingdom.com_bot_version_1.1"], deny=["a"],
                  patterns=["(Pingdom.com_bot_version_).*", "(facebookexternalhit)/.*"])
    assert not d.is_bot("Pingdom.com_bot_version_1.1")
    assert d.is_bot("Pingdom.com_bot_version_1.14")    # allow is exact
    assert d.is_bot("a") and not d.is_bot("ab")
    assert d.is_bot("Mozilla facebookexternalhit/1.2")  # unanchored, as Go's MatchString
    assert not d.is_bot("")
    assert _detector(empty_user_agent_is_bot=True).is_bot("")


def test_the_cache_keeps_verdicts_up_to_its_size() -> None:
    d = _detector(deny=["x"], cache_size=2)
    assert [d.is_bot(ua) for ua in ("x", "y", "z", "x")] == [True, False, False, True]
    assert len(d._cache) == 2


@pytest.mark.parametrize("pattern", [
    "(?=lookahead)", "(a)\\1", "a++", "\\Z", "\\C", "a{1001}", "(unclosed"])
def test_patterns_go_refuses_are_config_errors(pattern: str) -> None:
    with pytest.raises(ConfigValueError) as err:
        botdetector.parse({"patterns": ["ok.*", pattern]}, BOT)
    assert err.value.path == (*BOT, "patterns", 1)
    assert "not a valid Go (RE2) regular expression" in str(err.value)


def test_go_syntax_python_lacks_is_accepted() -> None:
    d = _detector(patterns=[r"\pL+bot", "[[:digit:]]{3}crawler", r"(?i)SPIDER\z"])
    assert d.is_bot("éébot") and d.is_bot("x123crawler") and d.is_bot("a spider")
    assert not d.is_bot("spider!")


def _request(*headers: tuple[str, str], method: str = "GET", target: str = "/a?b=1"
             ) -> Request:
    path, _, query = target.partition("?")
    return Request(method, target, path, query, [(k.lower(), v) for k, v in headers], b"",
                   "127.0.0.1", "1.1")


def _secure(**section: Any) -> secure_headers.Secure:
    return secure_headers.Secure(secure_headers.parse(section, HTTP))


def test_bad_host_is_500_as_secure_answers() -> None:
    s = _secure(allowed_hosts=["api.example.com"])
    verdict = s.process(_request(("Host", "evil.test")))
    assert isinstance(verdict, Response)
    assert (verdict.status, verdict.body) == (500, b"Bad Host\n")
    assert s.process(_request(("Host", "API.example.com"))) == []
    proxied = _secure(allowed_hosts=["api.example.com"], host_proxy_headers=["X-Forwarded-Host"])
    assert proxied.process(_request(("Host", "10.0.0.1"), ("X-Forwarded-Host", "api.example.com"))
                           ) == []
    regex = _secure(allowed_hosts=[r"[a-z]+\.example\.com"], allowed_hosts_are_regex=True)
    assert regex.process(_request(("Host", "api.example.com"))) == []
    assert isinstance(regex.process(_request(("Host", "api.example.com.evil"))), Response)
    assert _secure(allowed_hosts=["a.test"], is_development=True).process(
        _request(("Host", "b.test"))) == []


def test_remembered_host_verdicts_are_each_hosts_own() -> None:
    """Verdicts are remembered per Host value: asked again, every host gets its first answer
    (plain hosts case-insensitively, patterns case-sensitively, as secure), and the value
    remembered is the one checked (the proxy header's, when one is configured)."""
    plain = _secure(allowed_hosts=["api.example.com"])
    regex = _secure(allowed_hosts=[r"api\.example\.com"], allowed_hosts_are_regex=True)
    proxied = _secure(allowed_hosts=["api.example.com"], host_proxy_headers=["X-Forwarded-Host"])
    for _ in range(3):
        assert plain.process(_request(("Host", "API.example.com"))) == []
        assert isinstance(plain.process(_request(("Host", "evil.test"))), Response)
        assert regex.process(_request(("Host", "api.example.com"))) == []
        assert isinstance(regex.process(_request(("Host", "API.example.com"))), Response)
        assert proxied.process(_request(("Host", "evil.test"),
                                        ("X-Forwarded-Host", "api.example.com"))) == []
        assert isinstance(proxied.process(_request(("Host", "api.example.com"),
                                                   ("X-Forwarded-Host", "evil.test"))), Response)


def test_ssl_redirect_and_sts() -> None:
    s = _secure(ssl_redirect=True, ssl_host="secure.test", sts_seconds=300,
                sts_include_subdomains=True, ssl_proxy_headers={"X-Forwarded-Proto": "https"})
    verdict = s.process(_request(("Host", "a.test")))
    assert isinstance(verdict, Response) and verdict.status == 301
    assert ("Location", "https://secure.test/a?b=1") in verdict.headers
    assert verdict.body == b'<a href="https://secure.test/a?b=1">Moved Permanently</a>.\n\n'
    assert s.process(_request(("Host", "a.test"), ("X-Forwarded-Proto", "https"))) == [
        ("Strict-Transport-Security", "max-age=300; includeSubDomains")]
    # a request on a TLS listener is HTTPS without any proxy header
    on_tls = _request(("Host", "a.test"))
    on_tls.tls = True
    assert s.process(on_tls) == [("Strict-Transport-Security", "max-age=300; includeSubDomains")]
    # STS only over HTTPS, unless forced
    assert _secure(sts_seconds=300).process(_request()) == []
    assert _secure(sts_seconds=300, force_sts_header=True).process(_request()) == [
        ("Strict-Transport-Security", "max-age=300")]


def test_headers_and_a_fresh_nonce_per_request() -> None:
    s = _secure(frame_deny=True, content_type_nosniff=True, browser_xss_filter=True,
                referrer_policy="same-origin", content_security_policy="script-src $NONCE")
    first, second = s.process(_request()), s.process(_request())
    assert isinstance(first, list) and isinstance(second, list)
    assert first[:4] == [("X-Frame-Options", "DENY"), ("X-Content-Type-Options", "nosniff"),
                         ("X-XSS-Protection", "1; mode=block"),
                         ("Referrer-Policy", "same-origin")]
    assert first[4][0] == "Content-Security-Policy"
    assert first[4][1].startswith("script-src 'nonce-") and first[4] != second[4]
    assert _secure(frame_deny=True, custom_frame_options_value="SAMEORIGIN").process(
        _request()) == [("X-Frame-Options", "SAMEORIGIN")]


@pytest.mark.parametrize(("section", "key", "text"), [
    ({"allowed_hosts": ["(bad"], "allowed_hosts_are_regex": True}, ("allowed_hosts", 0),
     "not a valid Go (RE2) regular expression"),
    ({"sts_seconds": "300"}, ("sts_seconds",), "must be an integer"),
    ({"ssl_proxy_headers": {"X-Forwarded-Proto": True}}, ("ssl_proxy_headers",
                                                          "X-Forwarded-Proto"), "string"),
])
def test_bad_security_http_values_are_located(section: dict[str, Any], key: tuple[Any, ...],
                                              text: str) -> None:
    with pytest.raises(ConfigValueError) as err:
        secure_headers.parse(section, HTTP)
    assert err.value.path == (*HTTP, *key)
    assert text in str(err.value)
