"""Roles, scopes and claims-to-text exactly as krakend-jose (jose.go) words and matches them."""

from __future__ import annotations

from tidegate.components.jwt.claims import (
    claim_params,
    claim_text,
    propagated_headers,
    roles_matcher,
    scopes_matcher,
)


def test_claim_text_prints_as_go_does() -> None:
    assert claim_text("a") == "a"
    assert claim_text(3) == "3"
    assert claim_text(3.0) == "3"
    assert claim_text(2.5) == "2.500000"  # %f
    assert claim_text(["a", 1, 2.5, True]) == "a,1,2.5,true"
    assert claim_text([]) == ""
    assert claim_text({"b": 1, "a": "<x>"}) == '{"a":"\\u003cx\\u003e","b":1}'
    assert claim_text(None) == "null"
    assert claim_text(False) == "false"


def test_propagated_headers_nested_missing_and_arrays() -> None:
    claims = {"sub": "u1", "realm": {"tier": 2}, "groups": ["a", "b"],
              "http://example.com/x.y": "url-claim"}
    pairs = (("sub", "X-Sub"), ("realm.tier", "X-Tier"), ("missing", "X-None"),
             ("groups", "X-Groups"), ("http://example.com/x.y", "X-Url"), ("realm.no", "X-No"))
    assert propagated_headers(pairs, False, claims) == [
        ("X-Sub", ["u1"]), ("X-Tier", ["2"]), ("X-None", [""]), ("X-Groups", ["a,b"]),
        ("X-Url", ["url-claim"]), ("X-No", [""])]
    assert propagated_headers((("groups", "X-Groups"),), True, claims) == [
        ("X-Groups", ["a", "b"])]


def test_roles_any_of_list_or_space_separated_and_nested() -> None:
    match = roles_matcher("roles", False, ["admin", "ops"])
    assert match({"roles": ["user", "ops"]})
    assert match({"roles": "user admin"})
    assert not match({"roles": ["user"]})
    assert not match({"roles": 1})
    assert not match({})
    assert roles_matcher("roles", False, [])({})  # nothing required
    nested = roles_matcher("realm_access.roles", True, ["admin"])
    assert nested({"realm_access": {"roles": ["admin"]}})
    assert not nested({"realm_access.roles": ["admin"]})
    flat = roles_matcher("realm_access.roles", False, ["admin"])
    assert flat({"realm_access.roles": ["admin"]})
    url = roles_matcher("https://example.com/roles", True, ["admin"])  # not split: http...
    assert url({"https://example.com/roles": ["admin"]})


def test_scopes_any_all_and_their_preconditions() -> None:
    any_of = scopes_matcher("scope", "any", ["read", "write"])
    all_of = scopes_matcher("scope", "all", ["read", "write"])
    assert any_of({"scope": "read"}) and not all_of({"scope": "read"})
    assert all_of({"scope": ["write", "read", "x"]})
    assert not any_of({"scope": []}) and not any_of({})
    assert scopes_matcher("", "all", ["read"])({})  # no scopes_key: no check (KrakenD)
    assert scopes_matcher("a.b", "all", ["r"])({"a": {"b": "r"}})


def test_url_pattern_params_are_top_level_claims() -> None:
    claims = {"sub": "u1", "n": 42.0, "http://example.com/custom": "v"}
    assert claim_params(("sub", "n", "http://example.com/custom", "missing"), claims) == {
        "JWT.sub": "u1", "JWT.n": "42", "JWT.http://example.com/custom": "v"}
