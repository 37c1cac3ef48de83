"""``GET /console`` over HTTP: the page and every file it loads, with their media types, cache
validators and a Content-Security-Policy that keeps the page to this server; no served file
names anything outside it. (tests/test_console_browser.py runs the page itself.)"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from graph.server.console import CONTENT_SECURITY_POLICY, FOLDER, MEDIA_TYPES, addresses, graphiql_asset_hosts
from graph.server.settings import Settings
from tests.browser import console_server
from tests.conftest import UNTHROTTLED
from tests.live import LiveServer

FILES = Path(__file__).parent.parent / "graph" / FOLDER
#: what the page references: src and href in HTML, imports in modules, url() in styles
REFERENCES = re.compile(
    r"""(?:\b(?:src|href)=["']([^"']+)["'])|(?:\bfrom\s+["']([^"']+)["'])|(?:\bimport\s*\(\s*["']([^"']+)["'])"""
    r"""|(?:\burl\(\s*["']?([^"')]+))|(?:@import\s+["']([^"']+)["'])"""
)
#: anything with a scheme (http:, https:, ws:, data:, javascript: …) or protocol-relative (//host)
OUTSIDE = re.compile(r"""[a-z][a-z0-9+.-]*://|["'(]\s*//[^/]|["'(]\s*(?:data|javascript|blob):""", re.IGNORECASE)
#: the one URL-shaped string a file may hold: the SVG namespace, a name that is never fetched
SVG_NAMESPACE = 'xmlns="http://www.w3.org/2000/svg"'


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server with the console; the console reads no database, so one kind is enough."""
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('console') / 'console.db'}"
    live = console_server(Settings(database_url=url, limits=UNTHROTTLED))
    yield live
    live.stop()


def served(site: LiveServer) -> dict[str, str]:
    """Every path the page loads, found by following its references from ``/console``; its text."""
    found: dict[str, str] = {}
    waiting = ["/console"]
    while waiting:
        path = waiting.pop()
        if path in found:
            continue
        response = site.http.get(path)
        assert response.status_code == 200, (path, response.status_code)
        found[path] = response.text
        for match in REFERENCES.finditer(response.text):
            reference = next(group for group in match.groups() if group)
            if reference.startswith("#"):
                continue
            assert not OUTSIDE.search(f'"{reference}'), f"{path} refers outside the server: {reference}"
            if reference.startswith("./"):
                reference = "/console/" + reference.removeprefix("./")
            if reference.startswith("/console"):
                waiting.append(reference)
    return found


def test_the_page_is_html_with_a_policy_that_keeps_it_to_this_server(site: LiveServer):
    response = site.http.get("/console")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    policy = dict(part.strip().split(" ", 1) for part in response.headers["content-security-policy"].split(";"))
    assert policy["default-src"] == "'none'"
    for directive in ("script-src", "style-src", "img-src", "connect-src"):
        assert policy[directive] == "'self'", directive
    assert policy["frame-ancestors"] == policy["base-uri"] == policy["form-action"] == "'none'"
    assert "unsafe" not in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["etag"]
    assert "<title>Support console</title>" in response.text
    assert site.http.get("/console/").text == response.text


def test_every_file_the_page_loads_is_served_in_its_media_type_with_the_policy(site: LiveServer):
    pages = served(site)
    on_disk = {f"/console/{path.name}" for path in FILES.iterdir() if path.suffix in MEDIA_TYPES}
    # the page reaches every file of the folder (index.html as /console): none is dead weight
    assert set(pages) - {"/console"} == on_disk - {"/console/index.html"}
    for path in pages:
        response = site.http.get(path)
        name = "index.html" if path == "/console" else path.rsplit("/", 1)[1]
        assert response.headers["content-type"] == MEDIA_TYPES[Path(name).suffix], path
        assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY, path
        assert response.headers["x-content-type-options"] == "nosniff", path
        assert response.content == (FILES / name).read_bytes(), path
    modules = [path for path in pages if path.endswith(".js")]
    assert "/console/app.js" in modules and "/console/graphql.js" in modules


def test_no_served_file_names_anything_outside_the_server(site: LiveServer):
    pages = served(site)
    for path, text in pages.items():
        outside = OUTSIDE.search(text.replace(SVG_NAMESPACE, ""))
        assert outside is None, f"{path}: {text[max(0, outside.start() - 60) : outside.end() + 60]!r}"
    # the page names no other host in any form (GraphiQL's CDN is only mentioned, not loaded)
    for path, text in pages.items():
        for match in REFERENCES.finditer(text):
            reference = next(group for group in match.groups() if group)
            assert reference.startswith(("/", "./", "#")), (path, reference)


def test_a_browser_that_holds_the_file_gets_304(site: LiveServer):
    for path in ("/console", "/console/app.js", "/console/console.css"):
        first = site.http.get(path)
        tag = first.headers["etag"]
        again = site.http.get(path, headers={"If-None-Match": tag})
        assert again.status_code == 304 and again.content == b"", path
        assert again.headers["etag"] == tag and again.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        weak = site.http.get(path, headers={"If-None-Match": f'"other", W/{tag}'})
        assert weak.status_code == 304, path
        stale = site.http.get(path, headers={"If-None-Match": '"not-this-version"'})
        assert stale.status_code == 200 and stale.content == first.content, path
    tags = {site.http.get(path).headers["etag"] for path in ("/console", "/console/app.js", "/console/queue.js")}
    assert len(tags) == 3  # each file has a validator of its own


@pytest.mark.parametrize(
    "path",
    [
        "/console/nothing.js",
        "/console/__init__.py",
        "/console/..%2Fserver%2Fconsole.py",
        "/console/../server/console.py",
        "/console/sub/app.js",
    ],
)
def test_only_the_console_files_are_served(site: LiveServer, path: str):
    response = site.http.get(path)
    assert response.status_code == 404, (path, response.status_code)
    assert "def " not in response.text and "import" not in response.text


def test_head_answers_like_get_without_the_body(site: LiveServer):
    got = site.http.get("/console/app.js")
    head = site.http.head("/console/app.js")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-type"] == got.headers["content-type"]
    assert head.headers["etag"] == got.headers["etag"]
    assert site.http.post("/console").status_code == 405


def test_the_page_and_serve_say_where_graphiql_loads_from(site: LiveServer):
    graphiql = site.http.get("/graphql", headers={"Accept": "text/html"})
    assert graphiql.status_code == 200
    loaded = set(re.findall(r"""(?:src|href)=["']https://([^/"']+)/""", graphiql.text))
    assert loaded and sorted(loaded) == graphiql_asset_hosts()
    page = site.http.get("/console").text
    for host in loaded:
        assert host in page  # said in words on the console, never loaded by it
    port = int(site.url.rsplit(":", 1)[1])
    console, graphiql_line = addresses("127.0.0.1", port)
    assert console == f"agent console at {site.url}/console"
    assert graphiql_line.startswith(f"GraphiQL at {site.url}/graphql (") and all(h in graphiql_line for h in loaded)
    assert site.http.get(console.rsplit(" ", 1)[1]).status_code == 200
    assert addresses("0.0.0.0", 8000, graphiql=False) == ["agent console at http://127.0.0.1:8000/console"]
    assert addresses("::1", 8000)[0] == "agent console at http://[::1]:8000/console"
