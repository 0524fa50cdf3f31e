"""Certificates from a real ACME server (pebble), validated over HTTP-01
through nginx, renewed without a restart."""

from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.environ["FLASKSTACK_HARNESS"])
from testlib import converge, only_on  # noqa: E402

testinfra_hosts = ["all"]

NAMES = ["shop.test", "www.shop.test"]

# Runs on the host: fetch pebble's issuing root over its management API
# (trusted through letsencrypt_acme_ca_certificate), then handshake with
# nginx as a client that trusts only that root.
CLIENT = r'''
import json, socket, ssl, sys, urllib.request
root = urllib.request.urlopen("https://localhost:15000/roots/0", timeout=10).read().decode()
out = {}
for name in sys.argv[1:]:
    ctx = ssl.create_default_context(cadata=root)
    try:
        with socket.create_connection(("127.0.0.1", 443), 5) as s:
            with ctx.wrap_socket(s, server_hostname=name) as t:
                cert = t.getpeercert()
                out[name] = {"ok": True, "serial": cert["serialNumber"],
                             "san": sorted(v for k, v in cert["subjectAltName"] if k == "DNS")}
    except (ssl.SSLError, OSError) as e:
        out[name] = {"ok": False, "error": str(e)}
print(json.dumps(out))
'''


def served(host, names=NAMES):
    return json.loads(host.check_output("python3 -c %s " + " ".join(["%s"] * len(names)), CLIENT, *names))


def test_certificate_from_the_acme_ca_for_all_names(host):
    for name, outcome in served(host).items():
        assert outcome["ok"], f"{name}: {outcome}"
        assert outcome["san"] == sorted(NAMES)


def test_second_converge_requested_nothing(host):
    """converge + idempotence ran: still exactly one certificate in the lineage."""
    with host.sudo():
        issued = host.check_output("ls /etc/letsencrypt/archive/shop.test/ | grep -c '^cert'")
    assert issued == "1"


def test_http_redirects_and_challenge_path_is_served(host):
    with host.sudo():
        host.check_output("echo ok-token > /var/www/acme/.well-known/acme-challenge/t1")
    script = ("import http.client as h\n"
              "c=h.HTTPConnection('127.0.0.1',80,timeout=5)\n"
              "c.request('GET','/x',headers={'Host':'shop.test'}); r=c.getresponse(); r.read()\n"
              "print(r.status, r.getheader('location'))\n"
              "c=h.HTTPConnection('127.0.0.1',80,timeout=5)\n"
              "c.request('GET','/.well-known/acme-challenge/t1',headers={'Host':'shop.test'}); r=c.getresponse()\n"
              "print(r.status, r.read().decode().strip())\n")
    lines = host.check_output("python3 -c %s", script).splitlines()
    assert lines == ["301 https://shop.test/x", "200 ok-token"]


def test_renewal_timer_and_hook(host):
    assert host.service("certbot.timer").is_enabled
    hook = host.file("/etc/letsencrypt/renewal-hooks/deploy/50-flaskstack-nginx")
    assert hook.exists and hook.mode == 0o755


def test_forced_renewal_serves_new_certificate_without_restart(host):
    before = served(host)["shop.test"]["serial"]
    master = host.file("/run/nginx.pid").content_string.strip()
    with host.sudo():
        renew = host.run("certbot renew --force-renewal --cert-name shop.test --no-random-sleep-on-renew")
    assert renew.rc == 0, renew.stdout + renew.stderr
    after = served(host)
    assert all(outcome["ok"] for outcome in after.values()), after
    assert after["shop.test"]["serial"] != before
    assert host.file("/run/nginx.pid").content_string.strip() == master
    with host.sudo():
        assert "reloaded nginx" in host.check_output("journalctl -t flaskstack-letsencrypt --no-pager -o cat")


def test_a_name_that_does_not_reach_the_host_stops_before_the_ca(host):
    """A name whose DNS points at a server that does not serve it (here: resolves to this host's
    loopback, where nginx serves no such name and closes the connection) is waited for a bounded
    time, then named with what it resolves to - and the CA is never asked. The wait and the refusal are
    the role's own tasks (an HTTP fetch of a token by name from the host): run on one release."""
    only_on(host, "letsencrypt-trixie", "the reach check")
    with host.sudo():
        host.check_output("grep -q ' stray.shop.test$' /etc/hosts || echo '127.0.0.1 stray.shop.test' >> /etc/hosts")
        issued = host.check_output("ls /etc/letsencrypt/archive/shop.test/ | grep -c '^cert'")
    result = converge(host.backend.get_hostname(), {"letsencrypt_domains": NAMES + ["stray.shop.test"],
                                                    "letsencrypt_reach_timeout": 10})
    said = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0
    assert "stray.shop.test resolves to 127.0.0.1" in said and "letsencrypt_reach_timeout" in said, said[-2000:]
    assert "Request the certificate from the CA" not in said
    with host.sudo():
        assert host.check_output("ls /etc/letsencrypt/archive/shop.test/ | grep -c '^cert'") == issued
        assert host.check_output("ls -A /var/www/acme/.well-known/acme-challenge/ | grep -cv '^t1$' || true") == "0"


def test_changing_the_names_reissues(host):
    """A converge with one more name gets a new certificate covering all three."""
    names = NAMES + ["api.shop.test"]
    result = converge(host.backend.get_hostname(), {"letsencrypt_domains": names, "nginx_server_names": names})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    for name, outcome in served(host, names).items():
        assert outcome["ok"], f"{name}: {outcome}"
        assert outcome["san"] == sorted(names)
