"""The server-rendered pages: notes, the form with its CSRF token, flash messages
kept in Redis sessions, error pages, cache-busted static files, no inline code."""
import hashlib
import re
import socket
from html.parser import HTMLParser

import pytest

from flaskstack_sample import __version__, create_app
from flaskstack_sample.api import LIST_CACHE_KEY
from flaskstack_sample.extensions import redis_client

SESSION_PREFIX = "flaskstack:session:"


def csrf_token(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF field in the page"
    return match.group(1)


def session_cookie(client):
    return client.get_cookie("session")


def add_note(client, text):
    token = csrf_token(client.get("/").get_data(as_text=True))
    return client.post("/notes", data={"text": text, "csrf_token": token})


class Inline(HTMLParser):
    """Collects what the CSP (default-src 'self') would block, and the asset tags."""

    def __init__(self):
        super().__init__()
        self.problems, self.scripts, self.styles = [], [], []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "style" in attrs or tag == "style":
            self.problems.append(f"inline style on <{tag}>")
        if any(name.startswith("on") for name in attrs):
            self.problems.append(f"inline event handler on <{tag}>")
        if tag == "script":
            self._in_script = True
            if "src" not in attrs:
                self.problems.append("inline <script>")
            else:
                self.scripts.append(attrs["src"])
        if tag == "link" and attrs.get("rel") == "stylesheet":
            self.styles.append(attrs["href"])

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script and data.strip():
            self.problems.append("script body")


def parse(html):
    parser = Inline()
    parser.feed(html)
    return parser


def test_the_home_page_lists_notes_newest_first_with_links(client):
    ids = [client.post("/api/notes", json={"text": text}).get_json()["id"] for text in ("old", "new <b>")]
    html = client.get("/").get_data(as_text=True)
    assert "<h1>" in html
    listing = re.search(r'<ul id="notes">(.*?)</ul>', html, re.S).group(1)
    links = re.findall(r'<li><a href="([^"]+)">([^<]*)</a>', listing)
    assert links == [(f"/notes/{ids[1]}", "new &lt;b&gt;"), (f"/notes/{ids[0]}", "old")]


def test_the_form_has_the_fields_the_browser_needs(client):
    response = client.get("/")
    assert response.status_code == 200 and response.mimetype == "text/html"
    assert "no-store" in response.headers["Cache-Control"]
    html = response.get_data(as_text=True)
    form = re.search(r'<form id="note-form" method="post" action="/notes">(.*?)</form>', html, re.S).group(1)
    assert re.search(r'<textarea name="text" id="note-text" maxlength="500"[^>]* required', form)
    assert csrf_token(form)
    assert '<button type="submit">' in form
    assert 'id="note-count"' in form


def test_the_footer_names_version_release_and_host(app, client):
    footer = re.search(r"<footer>(.*?)</footer>", client.get("/").get_data(as_text=True)).group(1)
    release = app.config["RELEASE"]
    assert footer == f"flaskstack-sample {__version__} · release {release} · served by {socket.gethostname()}"
    assert client.get("/health").get_json()["release"] == release


def test_a_submitted_note_is_stored_and_flashed_on_the_next_request(app, client):
    client.get("/api/notes")  # fills the listing cache
    with app.app_context():
        assert redis_client.client.exists(LIST_CACHE_KEY)
    response = add_note(client, "  from the form  ")
    assert response.status_code == 303 and response.headers["Location"] == "/"
    with app.app_context():
        assert not redis_client.client.exists(LIST_CACHE_KEY)  # same invalidation as the API
    assert client.get("/api/notes").get_json()["notes"][0]["text"] == "from the form"
    page = client.get("/").get_data(as_text=True)
    assert '<div class="flash" role="status">Note added.</div>' in page
    assert "from the form</a>" in page
    assert "Note added." not in client.get("/").get_data(as_text=True)  # shown once


def test_the_flash_survives_a_change_of_worker(app, migrated_db, redis_server, client):
    # Another process (worker or host) with its own app object reads the same session.
    add_note(client, "seen elsewhere")
    other = create_app("testing", {"DATABASE_URL": migrated_db, "REDIS_URL": redis_server["url"]})
    other_client = other.test_client()
    other_client.set_cookie("session", session_cookie(client).value)
    assert "Note added." in other_client.get("/").get_data(as_text=True)


@pytest.mark.parametrize("text", ["", "   ", "x" * 501])
def test_bad_input_is_shown_again_with_an_error(client, text):
    response = add_note(client, text)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert 'role="alert">Text must be 1-500 characters.</p>' in html
    assert 'id="note-form"' in html
    assert client.get("/api/notes").get_json()["notes"] == []


def test_a_missing_or_wrong_csrf_token_is_an_html_400(client):
    client.get("/")  # a session with a token exists
    for data in ({"text": "no token"}, {"text": "forged", "csrf_token": "not-the-token"}):
        response = client.post("/notes", data=data)
        assert response.status_code == 400
        assert response.mimetype == "text/html"
        assert "CSRF" in response.get_data(as_text=True)
    assert client.get("/api/notes").get_json()["notes"] == []


def test_the_json_api_is_exempt_from_csrf(client):
    assert client.post("/api/notes", json={"text": "no token needed"}).status_code == 201


def test_over_https_the_token_needs_a_same_origin_referrer(client):
    base = "https://shop.test"
    token = csrf_token(client.get("/", base_url=base).get_data(as_text=True))
    data = {"text": "over TLS", "csrf_token": token}
    assert client.post("/notes", data=data, base_url=base).status_code == 400
    response = client.post("/notes", data=data, base_url=base, headers={"Referer": f"{base}/"})
    assert response.status_code == 303


def test_a_note_page_and_its_404(client):
    note = client.post("/api/notes", json={"text": "one note"}).get_json()
    page = client.get(f"/notes/{note['id']}")
    assert page.status_code == 200 and "one note" in page.get_data(as_text=True)
    missing = client.get("/notes/999")
    assert missing.status_code == 404 and missing.mimetype == "text/html"
    assert "There is no note 999." in missing.get_data(as_text=True)


def test_browsers_get_html_errors_and_the_api_json_errors(client):
    for path in ("/no-such-page", "/health/nope"):
        response = client.get(path)
        assert response.status_code == 404 and response.mimetype == "text/html"
        html = response.get_data(as_text=True)
        assert "<h1>404 Not Found</h1>" in html and "<footer>" in html
    assert client.put("/").status_code == 405
    for path in ("/api/notes/999", "/api/no-such-thing"):
        response = client.get(path)
        assert response.status_code == 404
        assert response.get_json()["error"] == "Not Found"
    assert client.put("/api/notes").get_json()["error"] == "Method Not Allowed"


def test_a_page_error_is_an_html_500_without_details(app, client, monkeypatch):
    from flaskstack_sample import pages

    def broken(*args, **kwargs):
        raise RuntimeError("database exploded: password=hunter2")

    monkeypatch.setattr(pages.db.session, "get", broken)
    app.config["PROPAGATE_EXCEPTIONS"] = False  # as in production (TESTING re-raises)
    response = client.get("/notes/1")
    assert response.status_code == 500 and response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert "<h1>500 Internal Server Error</h1>" in html
    assert "hunter2" not in html and "Traceback" not in html


def test_static_urls_carry_the_content_hash(client):
    html = client.get("/").get_data(as_text=True)
    assets = parse(html)
    for url, name in ((assets.styles[0], "app.css"), (assets.scripts[0], "app.js")):
        path, query = url.split("?")
        assert path == f"/static/{name}"
        body = client.get(path).data
        assert query == "v=" + hashlib.sha256(body).hexdigest()[:12]
        assert client.get(url).status_code == 200
    assert b"note-count" in client.get("/static/app.js").data


def test_the_hash_changes_with_the_content_and_is_computed_once(migrated_db, redis_server, tmp_path):
    def app_with(content):
        app = create_app("testing", {"DATABASE_URL": migrated_db, "REDIS_URL": redis_server["url"]})
        app.static_folder = str(tmp_path)
        (tmp_path / "app.css").write_text(content)
        return app

    def url(app):
        with app.test_request_context("/"):
            from flask import url_for
            return url_for("static", filename="app.css")

    first = app_with("body { color: red; }")
    before = url(first)
    assert before == "/static/app.css?v=" + hashlib.sha256(b"body { color: red; }").hexdigest()[:12]
    second = app_with("body { color: blue; }")  # a new release: new processes
    assert url(second) != before
    assert url(first) == before  # one process keeps the hash it computed


def test_no_inline_script_or_style_in_any_page(client):
    note = client.post("/api/notes", json={"text": "style=evil <script>alert(1)</script>"}).get_json()
    add_note(client, "flash me")
    for path in ("/", f"/notes/{note['id']}", "/no-such-page", "/notes/999"):
        html = client.get(path).get_data(as_text=True)
        assert parse(html).problems == [], path
    response = client.post("/notes", data={"text": "no token"})
    assert parse(response.get_data(as_text=True)).problems == []


def test_the_session_lives_in_redis_with_safe_cookie_flags(app, client):
    response = client.get("/")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Expires=" in cookie
    sid = session_cookie(client).value
    with app.app_context():
        key = SESSION_PREFIX + sid
        assert redis_client.client.exists(key)
        ttl = redis_client.client.ttl(key)
    assert 0 < ttl <= app.config["PERMANENT_SESSION_LIFETIME"].total_seconds()
    assert len(sid) >= 32  # the cookie holds a random id, not the data
    assert "csrf" not in sid


def test_production_session_cookies_are_secure(monkeypatch, migrated_db, redis_server):
    monkeypatch.setenv("SECRET_KEY", "k" * 40)
    monkeypatch.setenv("DATABASE_URL", migrated_db)
    monkeypatch.setenv("REDIS_URL", redis_server["url"])
    app = create_app("production")
    cookie = app.test_client().get("/", base_url="https://shop.test").headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_no_session_for_health_api_and_static(app, client):
    def session_keys():
        with app.app_context():
            return sorted(redis_client.client.scan_iter(SESSION_PREFIX + "*"))

    requests = [("get", "/health"), ("get", "/health/ready"), ("get", "/api/notes"),
                ("post", "/api/notes"), ("get", "/api/stats"), ("get", "/api/nope"),
                ("get", "/static/app.css")]
    for method, path in requests:
        response = getattr(client, method)(path, json={"text": "x"} if method == "post" else None)
        assert "Set-Cookie" not in response.headers, path
    assert session_keys() == []
    # A browser that has a session sends its cookie everywhere: still no write there.
    client.get("/")
    keys = session_keys()
    assert len(keys) == 1
    with app.app_context():
        redis_client.client.expire(keys[0], 100)
    for method, path in requests:
        response = getattr(client, method)(path, json={"text": "x"} if method == "post" else None)
        assert "Set-Cookie" not in response.headers, path
    with app.app_context():
        assert redis_client.client.ttl(keys[0]) <= 100  # not refreshed, not rewritten
    assert session_keys() == keys


def test_without_redis_a_page_is_an_html_500_and_health_still_answers(migrated_db):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    app = create_app("testing", {"DATABASE_URL": migrated_db, "REDIS_URL": f"redis://127.0.0.1:{closed}/0"})
    app.config["PROPAGATE_EXCEPTIONS"] = False
    client = app.test_client()
    for cookie in (None, "x" * 43):  # a new visitor, and one whose session cannot be read
        if cookie:
            client.set_cookie("session", cookie)
        response = client.get("/")
        assert response.status_code == 500 and response.mimetype == "text/html"
        assert "Traceback" not in response.get_data(as_text=True)
    assert client.get("/health").status_code == 200
