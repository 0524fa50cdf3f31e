"""The sample app as a person sees it: Debian's chromium (headless, kept off the
network) opens https://shop.test/ on each host through nginx and TLS - the
certificate checked against the test ACME CA's root, nothing skipped - adds a
note with the form, and sees it listed with the flash message. The page's CSS
and JS come from nginx with long cache lifetimes, the page runs under the
site's CSP without a violation, and a screenshot is left in .logs/ for a person
to look at."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, os.environ["FLASKSTACK_HARNESS"])
from testlib import PROJECT  # noqa: E402
from test_site import acme_root, current_release  # noqa: E402

testinfra_hosts = ["all"]

SITE = "shop.test"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# The flags that keep chromium off the network (no update, sync or
# background requests) and let it run headless as root in a test.
CHROMIUM_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run", "--window-size=1100,820")
LOAD_TIMEOUT = 30


def container_address(name: str) -> str:
    """The host's address on its docker network (the controller reaches it directly)."""
    out = subprocess.run(
        ["docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", name],
        capture_output=True, text=True, check=True, timeout=30).stdout.split()
    assert out, f"{name} has no address"
    return out[0]


@pytest.fixture(scope="module")
def browser(host, tmp_path_factory):
    """One chromium per host: it resolves shop.test to the host and trusts the
    ACME CA's root besides its own store (an NSS database in its own HOME)."""
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service  # noqa: PLC0415

    for binary in (CHROMIUM, CHROMEDRIVER, shutil.which("certutil")):
        assert binary and Path(binary).exists(), "run `make browser` (chromium, chromium-driver, libnss3-tools)"
    tmp_path = tmp_path_factory.mktemp("browser")
    home = tmp_path / "home"
    nssdb = home / ".pki" / "nssdb"
    nssdb.mkdir(parents=True)
    (tmp_path / "root.pem").write_text(acme_root(host))
    for argv in (["certutil", "-N", "-d", f"sql:{nssdb}", "--empty-password"],
                 ["certutil", "-A", "-d", f"sql:{nssdb}", "-n", "flaskstack-test-acme", "-t", "C,,",
                  "-i", str(tmp_path / "root.pem")]):
        subprocess.run(argv, check=True, capture_output=True, timeout=30)

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'profile'}")
    address = container_address(host.backend.get_hostname())
    options.add_argument(f"--host-resolver-rules=MAP {SITE} {address}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    service = Service(executable_path=CHROMEDRIVER, env={**os.environ, "HOME": str(home)},
                      log_output=str(tmp_path / "chromedriver.log"))
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(LOAD_TIMEOUT)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(driver, condition, what: str, timeout: float = 15):
    """Poll CONDITION(driver) until it returns something truthy (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition(driver)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}: {driver.current_url}")
        time.sleep(0.1)


def responses(driver) -> dict:
    """URL -> (status, lower-cased headers) of every response the browser received so far."""
    seen = {}
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.responseReceived":
            response = message["params"]["response"]
            seen[response["url"]] = (response["status"], {k.lower(): v for k, v in response["headers"].items()})
    return seen


def test_a_person_adds_a_note_in_the_browser(host, browser):
    from selenium.webdriver.common.by import By  # noqa: PLC0415

    name = host.backend.get_hostname()
    browser.get(f"https://{SITE}/")
    # A certificate error would show chromium's interstitial instead of the page.
    assert browser.title == "Notes · flaskstack sample", browser.title
    release = current_release(host)
    footer = browser.find_element(By.TAG_NAME, "footer").text
    assert f"release {release}" in footer and f"served by {name}" in footer, footer

    text = f"Written in chromium on {name} at {time.strftime('%H:%M:%S UTC', time.gmtime())}"
    field = browser.find_element(By.ID, "note-text")
    field.send_keys(text)
    # app.js ran (a script file, the CSP allows no inline one): the counter follows the field.
    wait_for(browser, lambda d: d.find_element(By.ID, "note-count").text.startswith(f"{len(text)} /"),
             "the character counter")
    browser.find_element(By.CSS_SELECTOR, "#note-form button[type=submit]").click()

    # Redirected to the home page (another request, maybe another worker): the
    # flash message set by the POST comes from the session in Redis.
    flash = wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, ".flash"), "the flash message")
    assert flash[0].text == "Note added."
    listed = [a.text for a in browser.find_elements(By.CSS_SELECTOR, "#notes li a")]
    assert listed and listed[0] == text, listed
    shot = PROJECT / ".logs" / f"site-browser-{name}.png"
    shot.parent.mkdir(exist_ok=True)
    assert browser.save_screenshot(str(shot))
    print(f"\n{name}: screenshot of the home page after adding a note: {shot}")

    cookies = {c["name"]: c for c in browser.get_cookies()}
    session = cookies.get("session")
    assert session and session["secure"] and session["httpOnly"] and session["sameSite"] == "Lax", cookies

    # The stylesheet and script: cache-busted names, served by nginx from the
    # release with a long immutable lifetime.
    seen = responses(browser)
    static = {url: answer for url, answer in seen.items() if "/static/" in url}
    assert {Path(url.split("?")[0]).name for url in static} >= {"app.css", "app.js"}, sorted(seen)
    for url, (status, headers) in static.items():
        assert "?v=" in url, url
        assert status == 200, (url, status)
        assert "immutable" in headers["cache-control"] and "max-age=" in headers["cache-control"], headers

    # The note's own page, then the flash is gone: shown once.
    browser.find_element(By.CSS_SELECTOR, "#notes li a").click()
    wait_for(browser, lambda d: "/notes/" in d.current_url, "the note page")
    assert text in browser.find_element(By.TAG_NAME, "main").text
    browser.get(f"https://{SITE}/")
    assert not browser.find_elements(By.CSS_SELECTOR, ".flash")

    violations = [e["message"] for e in browser.get_log("browser") if "Content Security Policy" in e["message"]]
    assert not violations, violations


def test_a_missing_page_is_an_html_page_in_the_browser(host, browser):
    from selenium.webdriver.common.by import By  # noqa: PLC0415

    browser.get(f"https://{SITE}/no-such-note")
    assert "404" in browser.find_element(By.TAG_NAME, "h1").text
    status = [answer[0] for url, answer in responses(browser).items() if url.endswith("/no-such-note")]
    assert status == [404], status


# Runs on the host: the form, fetched and posted through nginx on 443 as a
# browser behind a port mapping sends it (`make demo` maps 8443 to 443): Host
# and Referer carry the port. Prints the POST's status for each Referer origin.
FORM_BEHIND_A_PORT = r'''
import http.client, json, re, ssl, sys, urllib.parse, urllib.request
root = urllib.request.urlopen("https://localhost:15000/roots/0", timeout=10).read().decode()
ctx = ssl.create_default_context(cadata=root)
site = sys.argv[1]
def call(method, path, body=None, headers=None):
    conn = http.client.HTTPSConnection("shop.test", 443, context=ctx, timeout=10)
    conn.request(method, path, body=body, headers={"Host": site, **(headers or {})})
    answer = conn.getresponse()
    return answer, answer.read().decode()
answer, page = call("GET", "/")
cookie = answer.getheader("Set-Cookie").split(";")[0]
token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
statuses = {}
for origin in sys.argv[2:]:
    form = urllib.parse.urlencode({"csrf_token": token, "text": "posted behind a port mapping"})
    answer, _ = call("POST", "/notes", form, {"Cookie": cookie, "Referer": origin + "/",
                                              "Content-Type": "application/x-www-form-urlencoded"})
    statuses[origin] = answer.status
print(json.dumps(statuses))
'''


def test_forms_work_behind_a_port_mapping(host):
    # nginx passes the host the client asked for, port included: the app's
    # same-origin check of a form post (HTTPS) accepts its own origin and no other.
    statuses = json.loads(host.check_output(
        "python3 -c %s %s %s %s", FORM_BEHIND_A_PORT, f"{SITE}:8443",
        f"https://{SITE}:8443", f"https://{SITE}:9443"))
    assert statuses == {f"https://{SITE}:8443": 303, f"https://{SITE}:9443": 400}, statuses
