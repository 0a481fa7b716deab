"""Fast unit tests of pure logic: headers, query parsing, routing."""

from __future__ import annotations

import asyncio

import h11
import pytest

from berth.errors import NotFound
from berth.httpd import Headers, MethodNotAllowed, Request, Response, Router


def make_request(target: str, method: str = "GET", headers: list[tuple[bytes, bytes]] | None = None) -> Request:
    ev = h11.Request(method=method, target=target, headers=[(b"host", b"x"), *(headers or [])])
    return Request(None, ev, None)  # type: ignore[arg-type]


def test_headers_case_insensitive_and_multi_valued() -> None:
    h = Headers([("Content-Type", "application/json"), ("X-A", "1"), ("x-a", "2")])
    assert h.get("content-type") == "application/json"
    assert h.get("CONTENT-TYPE") == "application/json"
    assert h.get("missing") is None
    assert h.get("missing", "d") == "d"
    assert h.get_all("X-a") == ["1", "2"]
    assert list(h.items()) == [("content-type", "application/json"), ("x-a", "1"), ("x-a", "2")]
    assert "x-A" in h and "nope" not in h


def test_request_head_parsing() -> None:
    r = make_request("/v1.44/images/a%2Fb/json?all=1&filters=%7B%22a%22%3A1%7D&x=&x=2",
                     headers=[(b"X-Registry-Auth", b"e30=")])
    assert r.method == "GET"
    assert r.target == "/v1.44/images/a%2Fb/json?all=1&filters=%7B%22a%22%3A1%7D&x=&x=2"
    assert r.path == "/v1.44/images/a/b/json"
    assert r.query == {"all": ["1"], "filters": ['{"a":1}'], "x": ["", "2"]}
    assert r.arg("filters") == '{"a":1}'
    assert r.arg("x") == ""  # first value, as Go's FormValue
    assert r.arg("nope") is None and r.arg("nope", "d") == "d"
    assert r.headers.get("x-registry-auth") == "e30="


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1", True), ("true", True), ("True", True), ("yes", True), ("anything", True),
     ("", False), ("0", False), ("no", False), ("false", False), ("False", False), ("none", False),
     (" NONE ", False)],
)
def test_bool_arg_docker_rules(value: str, expected: bool) -> None:
    from urllib.parse import quote

    assert make_request(f"/x?b={quote(value)}").bool_arg("b") is expected
    assert make_request(f"/x?b={quote(value)}").bool_arg("b", default=True) is expected


def test_bool_arg_absent_is_default() -> None:
    r = make_request("/x?other=1")
    assert r.bool_arg("b") is False
    assert r.bool_arg("b", default=True) is True


def test_int_arg() -> None:
    r = make_request("/x?t=3&e=&bad=x")
    assert r.int_arg("t") == 3
    assert r.int_arg("e", 7) == 7
    assert r.int_arg("missing") is None
    from berth.errors import InvalidArgument

    with pytest.raises(InvalidArgument):
        r.int_arg("bad")


def _h(name: str):  # type: ignore[no-untyped-def]
    async def handler(request: Request) -> Response:
        return Response(200, [], name.encode())

    return handler


def resolve(router: Router, method: str, path: str) -> tuple[str, dict[str, str]]:
    handler, params = router.resolve(method, path)
    resp = asyncio.run(handler(make_request(path, method)))
    assert isinstance(resp.body, bytes)
    return resp.body.decode(), params


def test_router_static_patterns_and_specificity() -> None:
    r = Router()
    r.add("GET", "/images/json", _h("list"))
    r.add("GET", "/images/{name:.*}/json", _h("inspect"))
    r.add("POST", "/images/{name:.*}/push", _h("push"))
    r.add("DELETE", "/images/{name:.*}", _h("rmi"))
    r.add(["GET", "HEAD"], "/_ping", _h("ping"))
    r.add("GET", "/containers/{id}/json", _h("cinspect"))
    r.add("POST", "/containers/{id}/{verb}", _h("cverb"))
    r.add("POST", "/containers/{id}/start", _h("start"))
    r.add("GET", "/{anything}/special", _h("wild"))

    assert resolve(r, "GET", "/images/json") == ("list", {})
    assert resolve(r, "GET", "/images/localhost:5000/a/b/json") == ("inspect", {"name": "localhost:5000/a/b"})
    assert resolve(r, "POST", "/images/localhost:5000/busybox/push") == ("push", {"name": "localhost:5000/busybox"})
    # A static path with another method falls through to patterns: an image called "json".
    assert resolve(r, "DELETE", "/images/json") == ("rmi", {"name": "json"})
    # A more specific pattern path that does not take the method falls through too.
    assert resolve(r, "DELETE", "/images/a/json") == ("rmi", {"name": "a/json"})
    # More literal characters win regardless of registration order.
    assert resolve(r, "POST", "/containers/abc/start") == ("start", {"id": "abc"})
    assert resolve(r, "POST", "/containers/abc/stop") == ("cverb", {"id": "abc", "verb": "stop"})
    # Single-segment parameters do not match slashes.
    with pytest.raises(NotFound):
        r.resolve("GET", "/containers/a/b/json")
    # HEAD falls back to GET routes; patterns starting with a parameter are tried for any prefix.
    assert resolve(r, "HEAD", "/images/x/json") == ("inspect", {"name": "x"})
    assert resolve(r, "GET", "/images/special") == ("wild", {"anything": "images"})
    assert resolve(r, "GET", "/zzz/special") == ("wild", {"anything": "zzz"})

    with pytest.raises(MethodNotAllowed):
        r.resolve("POST", "/_ping")
    with pytest.raises(MethodNotAllowed):
        r.resolve("PUT", "/images/a/push")
    with pytest.raises(NotFound) as e:
        r.resolve("GET", "/nope")
    assert str(e.value) == "page not found"


def test_router_rejects_relative_pattern() -> None:
    with pytest.raises(ValueError):
        Router().add("GET", "x/y", _h("x"))
