"""rs/cors v1.11.1's rules, on the compiled policy (the gateway-level behaviour is in
tests/test_cors.py)."""

from __future__ import annotations

from typing import Any

import pytest

from tidegate.components.cors import Policy, SortedNames, parse
from tidegate.errors import ConfigValueError
from tidegate.messages import Request

PATH = ("extra_config", "security/cors")


def _policy(**section: Any) -> Policy:
    return Policy(parse(section, PATH))


def _req(method: str, *headers: tuple[str, str]) -> Request:
    return Request(method, "/x", "/x", "", [(k.lower(), v) for k, v in headers], b"",
                   "127.0.0.1", "1.1")


@pytest.mark.parametrize(("values", "accepted"), [
    (["content-type,origin"], True),
    (["content-type, origin"], True),       # one byte of whitespace around a name
    (["content-type,  origin"], False),     # two are too many
    (["origin,content-type"], False),       # not sorted
    (["Content-Type,Origin"], False),       # not lower-case (browsers send lower-case)
    (["content-type,content-type"], False),  # duplicates
    (["content-type,,origin"], True),        # empty elements are tolerated...
    ([","*17 + "origin"], False),            # ...up to 16
    (["content-type", "origin"], True),      # split over two header lines, still sorted
    (["x-pingother"], False),
    ([""], True),
])
def test_requested_header_lists_are_matched_as_rs_cors(values: list[str], accepted: bool) -> None:
    names = SortedNames(["origin", "authorization", "content-type"])
    assert names.accepts(values) is accepted


def test_origins_lower_case_and_one_wildcard_per_entry() -> None:
    policy = _policy(allow_origins=["https://*.Example.com", "http://a.test"])
    assert policy.origin_allowed("https://api.example.com")
    assert policy.origin_allowed("HTTP://A.TEST")
    assert not policy.origin_allowed("https://example.com.evil.test")
    assert not policy.origin_allowed("http://b.test")
    assert _policy(allow_origins=["http://a.test", "*"]).all_origins


def test_preflight_headers_echo_the_request() -> None:
    policy = _policy(allow_origins=["http://a.test"], allow_methods=["PUT"],
                     allow_headers=["X-Token"], allow_credentials=True, max_age="90s",
                     allow_private_network=True)
    headers = policy.preflight(_req("OPTIONS", ("Origin", "http://a.test"),
                                    ("Access-Control-Request-Method", "PUT"),
                                    ("Access-Control-Request-Headers", "x-token"),
                                    ("Access-Control-Request-Private-Network", "true")))
    assert headers == [
        ("Vary", "Origin, Access-Control-Request-Method, Access-Control-Request-Headers, "
                 "Access-Control-Request-Private-Network"),
        ("Access-Control-Allow-Origin", "http://a.test"),
        ("Access-Control-Allow-Methods", "PUT"),
        ("Access-Control-Allow-Headers", "x-token"),
        ("Access-Control-Allow-Credentials", "true"),
        ("Access-Control-Allow-Private-Network", "true"),
        ("Access-Control-Max-Age", "90"),
    ]


def test_actual_request_headers() -> None:
    policy = _policy(expose_headers=["content-length", "x-request-id"])
    assert policy.actual(_req("GET")) == [("Vary", "Origin")]
    assert policy.actual(_req("GET", ("Origin", "http://a.test"))) == [
        ("Vary", "Origin"), ("Access-Control-Allow-Origin", "*"),
        ("Access-Control-Expose-Headers", "Content-Length, X-Request-Id")]
    # a method not allowed gets no CORS headers (rs/cors checks it on actual requests too)
    assert policy.actual(_req("DELETE", ("Origin", "http://a.test"))) == [("Vary", "Origin")]


def test_max_age_is_cut_to_seconds_and_negative_means_zero() -> None:
    assert _policy(max_age="12h").max_age == "43200"
    assert _policy(max_age="1500ms").max_age == "1"
    assert _policy(max_age="500ms").max_age is None
    assert _policy(max_age="-1s").max_age == "0"


@pytest.mark.parametrize(("section", "key", "text"), [
    ({"allow_origins": "*"}, ("allow_origins",), "must be a list of strings"),
    ({"allow_methods": ["GET", 1]}, ("allow_methods", 1), "must be a string"),
    ({"max_age": 3600}, ("max_age",), "duration string"),
    ({"max_age": "12 hours"}, ("max_age",), "max_age: time: "),
    ({"options_success_status": 99}, ("options_success_status",), "between 200 and 999"),
    ({"allow_credentials": "true"}, ("allow_credentials",), "true or false"),
])
def test_values_krakend_would_skip_are_located_errors(section: dict[str, Any],
                                                      key: tuple[Any, ...], text: str) -> None:
    with pytest.raises(ConfigValueError) as err:
        parse(section, PATH)
    assert err.value.path == (*PATH, *key)
    assert text in str(err.value)
