"""Signing in to /ui: the master key only, a signed HttpOnly SameSite=Strict cookie,
nothing reachable without it, sign-out, and the cookie accepted by admin reads only."""

from __future__ import annotations

import httpx

from nemorouter.gateway.ui_session import COOKIE, LIFETIME_S, Sessions
from nemorouter.serving import BackgroundGateway

from .conftest import MASTER_KEY

PAGES = ["/ui", "/ui/jobs", "/ui/jobs/some%2Fjob", "/ui/keys", "/ui/events"]


def sign_in(base: str, key: str = MASTER_KEY, **form: str) -> httpx.Response:
    return httpx.post(f"{base}/ui/login", data={"key": key, **form}, follow_redirects=False)


def test_tokens_are_signed_and_expire() -> None:
    sessions = Sessions(MASTER_KEY)
    token = sessions.issue(now=1000.0)
    assert sessions.valid(token, now=1000.0 + LIFETIME_S - 1)
    assert not sessions.valid(token, now=1000.0 + LIFETIME_S)
    assert Sessions(MASTER_KEY).valid(token, now=1001.0)  # any worker with the same key
    assert not Sessions("another-master-key").valid(token, now=1001.0)
    version, expires, nonce, signature = token.split(".")
    forged = f"{version}.{int(expires) + 10**6}.{nonce}.{signature}"
    assert not sessions.valid(forged, now=1001.0)
    for junk in ("", "x", "a.b.c", "v1.x.y.z", token + "x"):
        assert not sessions.valid(junk, now=1001.0)
    assert MASTER_KEY not in token


def test_pages_need_a_session(dash_gateway: BackgroundGateway) -> None:
    base = dash_gateway.url
    for path in PAGES:
        answer = httpx.get(f"{base}{path}", follow_redirects=False)
        assert answer.status_code == 303, path
        assert answer.headers["location"].startswith("/ui/login?next=/ui")
    forged = httpx.get(f"{base}/ui", cookies={COOKIE: "v1.9999999999.x.y"}, follow_redirects=False)
    assert forged.status_code == 303
    assert httpx.get(f"{base}/admin/jobs", cookies={COOKIE: "junk"}).status_code == 401
    login = httpx.get(f"{base}/ui/login")
    assert login.status_code == 200
    assert 'type="password"' in login.text and 'method="post"' in login.text


def test_wrong_key_is_refused(dash_gateway: BackgroundGateway) -> None:
    base = dash_gateway.url
    for key in ("", "sk-wrong", MASTER_KEY + "x", MASTER_KEY[:-1]):
        answer = sign_in(base, key)
        assert answer.status_code == 401
        assert "That is not the master key." in answer.text
        assert "set-cookie" not in answer.headers
    # A query-string key is never read: the form body is the only way in.
    answer = httpx.post(f"{base}/ui/login?key={MASTER_KEY}", follow_redirects=False)
    assert answer.status_code == 401


def test_sign_in_cookie_pages_and_sign_out(dash_gateway: BackgroundGateway) -> None:
    base = dash_gateway.url
    answer = sign_in(base, next="/ui/jobs")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/ui/jobs"
    cookie = answer.headers["set-cookie"]
    flags = {part.strip().lower() for part in cookie.split(";")}
    assert {"httponly", "samesite=strict", "path=/"} <= flags
    assert f"max-age={LIFETIME_S}" in flags
    assert "secure" not in flags  # plain http on loopback; set on https
    assert MASTER_KEY not in cookie and MASTER_KEY not in answer.headers["location"]

    with httpx.Client(base_url=base, cookies=answer.cookies, follow_redirects=False) as browser:
        for path in PAGES:
            page = browser.get(path)
            assert page.status_code == 200, path
            assert "script-src 'self'" in page.headers["content-security-policy"]
            assert page.headers["cache-control"] == "no-store"
        assert 'data-job-id="some/job"' in browser.get("/ui/jobs/some%2Fjob").text
        assert browser.get("/ui/login").headers["location"] == "/ui"
        # The cookie reads the admin API as the bearer key does...
        assert browser.get("/admin/jobs").json() == {"jobs": []}
        assert browser.get("/admin/keys").status_code == 200
        assert browser.get("/admin/budgets").status_code == 200
        # ...but never changes anything: writes still need the bearer key.
        assert browser.post("/admin/keys", json={"name": "x"}).status_code == 401
        assert browser.post("/admin/teams", json={"name": "x"}).status_code == 401

        out = browser.post("/ui/logout")
        assert (out.status_code, out.headers["location"]) == (303, "/ui/login")
        assert "max-age=0" in out.headers["set-cookie"].lower()
        browser.cookies.clear()
        browser.cookies.update(out.cookies)
        assert browser.get("/ui").status_code == 303
        assert browser.get("/admin/jobs").status_code == 401


def test_static_files_and_redirect_guard(dash_gateway: BackgroundGateway) -> None:
    base = dash_gateway.url
    for name in ("chart.js", "app.js", "format.js", "style.css"):
        assert httpx.get(f"{base}/ui/static/{name}").status_code == 200, name
    for target in ("https://evil.example/", "//evil.example/ui", "/admin/jobs"):
        answer = sign_in(base, next=target)
        assert answer.headers["location"] == "/ui", target


def test_cross_site_posts_are_refused(dash_gateway: BackgroundGateway) -> None:
    base = dash_gateway.url
    foreign = {"origin": "https://evil.example"}
    answer = httpx.post(f"{base}/ui/login", data={"key": MASTER_KEY}, headers=foreign)
    assert answer.status_code == 403
    assert "set-cookie" not in answer.headers
    assert httpx.post(f"{base}/ui/logout", headers=foreign).status_code == 403
    own = {"origin": base}
    assert sign_in(base).status_code == 303
    assert httpx.post(f"{base}/ui/logout", headers=own, follow_redirects=False).status_code == 303
