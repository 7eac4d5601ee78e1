"""Router: KrakenD's path syntax, gin's priorities, 405s and redirects."""

from __future__ import annotations

import pytest

from tidegate.pipeline.router import Match, MethodNotAllowed, Redirect, RouteConflict, Router


@pytest.fixture
def router() -> Router[str]:
    r: Router[str] = Router()
    r.add("GET", "/users/{id}", "user")
    r.add("GET", "/users/new", "new-user")
    r.add("POST", "/users", "create")
    r.add("GET", "/static", "static")
    r.add("GET", "/a/{x}/b/{y}", "ab")
    r.add("GET", "/files/*", "files")
    r.add("GET", "/dir/", "dir")
    return r


def test_static_segment_wins_over_parameter(router: Router[str]) -> None:
    found = router.lookup("GET", "/users/new")
    assert isinstance(found, Match) and found.handler == "new-user"


def test_parameters_are_captured_by_name(router: Router[str]) -> None:
    found = router.lookup("GET", "/a/1/b/two")
    assert isinstance(found, Match)
    assert found.handler == "ab" and found.params == {"x": "1", "y": "two"}


def test_catch_all_takes_the_rest_of_the_path(router: Router[str]) -> None:
    found = router.lookup("GET", "/files/x/y/z.txt")
    assert isinstance(found, Match) and found.params == {"*": "x/y/z.txt"}


def test_other_method_on_existing_path_is_405(router: Router[str]) -> None:
    found = router.lookup("DELETE", "/users")
    assert isinstance(found, MethodNotAllowed) and found.allowed == ["POST"]


def test_unknown_path_is_not_found(router: Router[str]) -> None:
    assert router.lookup("GET", "/nope") is None
    assert router.lookup("GET", "/users/1/extra") is None


def test_trailing_slash_redirects_both_ways(router: Router[str]) -> None:
    assert router.lookup("GET", "/static/") == Redirect("/static")
    assert router.lookup("GET", "/dir") == Redirect("/dir/")


def test_wrong_case_redirects_to_the_declared_spelling(router: Router[str]) -> None:
    assert router.lookup("GET", "/StAtic") == Redirect("/static")
    assert router.lookup("GET", "/USERS/42") == Redirect("/users/42")


def test_empty_parameter_does_not_match(router: Router[str]) -> None:
    assert not isinstance(router.lookup("GET", "/users/"), Match)


def test_same_method_and_shape_is_a_conflict(router: Router[str]) -> None:
    with pytest.raises(RouteConflict, match=r"route GET /users/\{other\} is declared twice"):
        router.add("GET", "/users/{other}", "dup")


def test_catch_all_parent_without_slash_redirects() -> None:
    r: Router[str] = Router()
    r.add("GET", "/__debug/*", "debug")
    r.add("POST", "/__debug/*", "debug")
    assert r.lookup("GET", "/__debug") == Redirect("/__debug/")
    found = r.lookup("GET", "/__debug/")
    assert isinstance(found, Match) and found.params == {"*": ""}
