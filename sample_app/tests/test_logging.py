import json
import logging

from flaskstack_sample.logs import JsonFormatter


def _json_lines(capsys):
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]


def test_each_request_is_logged_as_json_with_its_id(capsys, client):
    response = client.get("/health", headers={"X-Request-ID": "abcdef0123456789"})
    assert response.headers["X-Request-ID"] == "abcdef0123456789"
    entries = [e for e in _json_lines(capsys) if e["message"] == "request"]
    assert entries[-1]["request_id"] == "abcdef0123456789"
    assert entries[-1]["path"] == "/health" and entries[-1]["status"] == 200


def test_a_request_without_a_usable_id_gets_a_fresh_one(client):
    first = client.get("/health", headers={"X-Request-ID": "bad id; with spaces"})
    second = client.get("/health")
    ids = {first.headers["X-Request-ID"], second.headers["X-Request-ID"]}
    assert len(ids) == 2 and all(len(i) == 32 for i in ids)


def test_proxy_fix_trusts_exactly_one_hop(capsys, client):
    client.get("/health", headers={"X-Forwarded-For": "198.51.100.7, 203.0.113.9",
                                   "X-Forwarded-Proto": "https"})
    entry = [e for e in _json_lines(capsys) if e["message"] == "request"][-1]
    # The last hop (added by nginx) is the client; the spoofable first one is ignored.
    assert entry["remote_addr"] == "203.0.113.9"


def test_the_logged_host_and_scheme_are_the_forwarded_ones(capsys, client):
    client.get("/health", headers={"X-Forwarded-Host": "shop.example.com:8443", "X-Forwarded-Port": "8443",
                                   "X-Forwarded-Proto": "https"})
    entry = [e for e in _json_lines(capsys) if e["message"] == "request"][-1]
    assert (entry["host"], entry["scheme"]) == ("shop.example.com:8443", "https")


def test_exceptions_are_one_json_line():
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("t", logging.ERROR, __file__, 1, "failed", None, __import__("sys").exc_info())
    line = JsonFormatter().format(record)
    assert "\n" not in line
    assert json.loads(line)["exception"].endswith("ValueError: boom")
