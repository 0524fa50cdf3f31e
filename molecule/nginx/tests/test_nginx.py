"""Behaviour of nginx converged with flaskstack.deploy.nginx, probed with
clients on the host itself (Python's ssl and http.client)."""

from __future__ import annotations

import json
import os
import sys
import time

sys.path.insert(0, os.environ["FLASKSTACK_HARNESS"])
from testlib import converge  # noqa: E402

testinfra_hosts = ["all"]

PROBE = r'''
import http.client, json, socket, ssl, sys
mode, args = sys.argv[1], sys.argv[2:]
def ctx(minv=None, maxv=None, alpn=None):
    c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    c.check_hostname = False
    c.verify_mode = ssl.CERT_NONE
    if minv: c.minimum_version = getattr(ssl.TLSVersion, minv)
    if maxv: c.maximum_version = getattr(ssl.TLSVersion, maxv)
    if alpn: c.set_alpn_protocols(alpn)
    try: c.set_ciphers("ALL:@SECLEVEL=0")
    except ssl.SSLError: pass
    return c
if mode == "tls":
    name, version = args
    try:
        with socket.create_connection(("127.0.0.1", 443), 5) as s:
            with ctx(version, version, ["h2", "http/1.1"]).wrap_socket(s, server_hostname=name) as t:
                print(json.dumps({"ok": True, "version": t.version(), "alpn": t.selected_alpn_protocol()}))
    except (ssl.SSLError, OSError) as e:
        print(json.dumps({"ok": False, "error": str(e)}))
elif mode == "get":
    scheme, host, path = args[:3]
    count = int(args[3]) if len(args) > 3 else 1
    extra = json.loads(args[4]) if len(args) > 4 else {}
    results = []
    for _ in range(count):
        try:
            if scheme == "https":  # the name resolves to this host (/etc/hosts); SNI = name
                conn = http.client.HTTPSConnection(host.split(":")[0], 443, timeout=5, context=ctx())
            else:
                conn = http.client.HTTPConnection("127.0.0.1", 80, timeout=5)
            conn.request("GET", path, headers={"Host": host, **extra})
            r = conn.getresponse()
            results.append({"status": r.status, "headers": {k.lower(): v for k, v in r.getheaders()},
                            "body": r.read().decode(errors="replace")})
        except (OSError, http.client.HTTPException) as e:
            results.append({"status": None, "error": type(e).__name__ + ": " + str(e)})
    print(json.dumps(results))
'''


def probe(host, *args):
    result = host.run("python3 -c %s " + " ".join(["%s"] * len(args)), PROBE, *args)
    assert result.rc == 0, result.stderr
    return json.loads(result.stdout)


def get(host, scheme, name, path, count=1, headers=None):
    return json.loads(host.check_output("python3 -c %s get %s %s %s %s %s", PROBE, scheme, name, path, str(count),
                                        json.dumps(headers or {})))


def test_tls_versions(host):
    for version in ("TLSv1", "TLSv1_1"):
        assert not probe(host, "tls", "shop.test", version)["ok"], version
    for version, label in (("TLSv1_2", "TLSv1.2"), ("TLSv1_3", "TLSv1.3")):
        outcome = probe(host, "tls", "shop.test", version)
        assert outcome["ok"] and outcome["version"] == label, outcome


def test_http2_negotiated(host):
    assert probe(host, "tls", "www.shop.test", "TLSv1_3")["alpn"] == "h2"


def test_security_headers(host):
    response = get(host, "https", "shop.test", "/")[0]
    headers = response["headers"]
    assert response["status"] == 200
    assert headers["strict-transport-security"] == "max-age=63072000; includeSubDomains"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "strict-origin-when-cross-origin"
    assert "default-src 'self'" in headers["content-security-policy"]
    assert headers["server"] == "nginx"  # no version


def test_proxy_headers_reach_the_app(host):
    echoed = json.loads(get(host, "https", "shop.test", "/orders?x=1")[0]["body"])
    assert echoed["path"] == "/orders?x=1"
    headers = echoed["headers"]
    assert headers["host"] == "shop.test"
    assert headers["x-forwarded-proto"] == "https"
    assert headers["x-real-ip"] == "127.0.0.1"
    assert headers["x-forwarded-for"] == "127.0.0.1"
    assert len(headers["x-request-id"]) == 32


def test_a_clients_own_forwarding_headers_never_reach_the_app(host):
    """The host, port and scheme the app sees are what nginx accepted; other forwarding
    headers apps read are dropped."""
    spoofed = {"X-Forwarded-Host": "evil.example", "X-Forwarded-Port": "6666", "X-Forwarded-Proto": "http",
               "Forwarded": "host=evil.example;proto=http", "X-Forwarded-Prefix": "/evil",
               "X-Forwarded-Ssl": "off", "X-Forwarded-Protocol": "http"}
    headers = json.loads(get(host, "https", "shop.test", "/orders", headers=spoofed)[0]["body"])["headers"]
    assert (headers["x-forwarded-host"], headers["x-forwarded-port"], headers["x-forwarded-proto"]) == (
        "shop.test", "443", "https"), headers
    assert not {"forwarded", "x-forwarded-prefix", "x-forwarded-ssl", "x-forwarded-protocol"} & set(headers), headers
    # the host a client asked for keeps its port (a port mapping such as `make demo`'s 8443)
    mapped = json.loads(get(host, "https", "shop.test:8443", "/orders")[0]["body"])["headers"]
    assert (mapped["host"], mapped["x-forwarded-host"], mapped["x-forwarded-port"]) == (
        "shop.test:8443", "shop.test:8443", "8443"), mapped


def test_http_redirects_to_https_except_acme(host):
    redirect = get(host, "http", "shop.test", "/login?next=/")[0]
    assert redirect["status"] == 301
    assert redirect["headers"]["location"] == "https://shop.test/login?next=/"
    with host.sudo():
        host.check_output("echo token-body > /var/www/acme/.well-known/acme-challenge/probe-token")
    challenge = get(host, "http", "shop.test", "/.well-known/acme-challenge/probe-token")[0]
    assert challenge["status"] == 200 and challenge["body"].strip() == "token-body"


def test_unknown_host_rejected(host):
    assert get(host, "http", "evil.test", "/")[0]["status"] is None  # 444: connection closed
    assert not probe(host, "tls", "evil.test", "TLSv1_3")["ok"]  # handshake refused


def test_static_from_disk_with_cache_headers(host):
    response = get(host, "https", "shop.test", "/static/app.css")[0]
    assert response["status"] == 200
    assert response["body"] == "body { color: #222; }\n"  # the file, not the app's echo
    assert "max-age=31536000" in response["headers"]["cache-control"]
    assert "expires" in response["headers"]
    assert response["headers"]["x-content-type-options"] == "nosniff"  # headers kept in the location


def test_api_rate_limited(host):
    statuses = [r["status"] for r in get(host, "https", "shop.test", "/api/items", 20)]
    assert statuses[0] == 200
    assert 429 in statuses, statuses
    assert statuses.count(200) <= 1 + 5 + 2  # the burst plus what the rate refills meanwhile


def test_broken_config_fails_and_old_config_keeps_serving(host):
    master = host.file("/run/nginx.pid").content_string.strip()
    result = converge(host.backend.get_hostname(), {"nginx_site_extra_directives": "this_is_not_nginx on;"})
    assert result.returncode != 0
    assert "unknown directive" in result.stdout + result.stderr
    with host.sudo():
        assert "this_is_not_nginx" not in host.file("/etc/nginx/sites-enabled/app.conf").content_string
        assert host.run("nginx -t").rc == 0
    assert get(host, "https", "shop.test", "/")[0]["status"] == 200
    assert host.file("/run/nginx.pid").content_string.strip() == master


def answer_after_reload(host, status, path="/"):
    """The first answer with STATUS after a reload (old workers finish first): a bounded poll."""
    for _ in range(50):
        answer = get(host, "https", "shop.test", path)[0]
        if answer["status"] == status:
            break
        time.sleep(0.2)
    return answer


def test_errors_nginx_answers_itself_name_no_server_version_or_internals(host):
    """A missing static file, the rate limit and an unreachable backend get the role's own
    pages; the Server header carries no version."""
    answers = {"404": get(host, "https", "shop.test", "/static/missing.css")[0]}
    answers["429"] = [r for r in get(host, "https", "shop.test", "/api/items", 20) if r["status"] == 429][0]
    # The backend's socket disappears and a reload drops the kept-alive upstream
    # connections: nginx cannot connect (502).
    with host.sudo():
        host.check_output("mv /run/flaskstack-test/app.sock /run/flaskstack-test/app.sock.away && systemctl reload nginx")
    try:
        answers["502"] = answer_after_reload(host, 502)
    finally:
        with host.sudo():
            host.check_output("mv /run/flaskstack-test/app.sock.away /run/flaskstack-test/app.sock && systemctl reload nginx")
    titles = {"404": "Not found", "429": "Too many requests", "502": "Temporarily unavailable"}
    for status, answer in answers.items():
        assert answer["status"] == int(status)
        assert f"<title>{titles[status]}</title>" in answer["body"]
        assert "nginx" not in answer["body"].lower()
        assert answer["headers"]["server"] == "nginx"  # server_tokens off: no version
        assert answer["headers"]["x-content-type-options"] == "nosniff"
    assert answer_after_reload(host, 200)["status"] == 200
