"""A small, stateful fake of the DigitalOcean v2 API for tests (standard library only).

Serves what community.digitalocean 1.27.0 calls from digital_ocean_sshkey(_info), _vpc(_info), _tag,
_droplet(_info), _firewall(_info) and the community.digitalocean.digitalocean inventory plugin, and what
the cloud role calls with ansible.builtin.uri (projects, reserved IPs, domains and records):
  GET /v2/account;  GET|POST /v2/account/keys;  GET|PUT|DELETE /v2/account/keys/{id|fingerprint}
  GET|POST /v2/vpcs;  GET|PUT|DELETE /v2/vpcs/{id};  GET /v2/vpcs/{id}/members
  GET|POST /v2/tags;  GET|DELETE /v2/tags/{name};  POST|DELETE /v2/tags/{name}/resources
  GET (?tag_name= ?name=)|POST /v2/droplets;  GET|DELETE /v2/droplets/{id}
  POST /v2/droplets/{id}/actions;  GET /v2/droplets/{id}/actions/{action_id}
  GET|POST /v2/firewalls;  GET|PUT|DELETE /v2/firewalls/{id};  POST|DELETE /v2/firewalls/{id}/droplets
  GET|POST /v2/projects;  GET|DELETE /v2/projects/{id|default}
  GET|POST /v2/reserved_ips;  GET|DELETE /v2/reserved_ips/{ip};  POST /v2/reserved_ips/{ip}/actions;
  GET /v2/reserved_ips/{ip}/actions/{action_id}
  GET|POST /v2/domains;  GET|DELETE /v2/domains/{name};  GET (?type= ?name=)|POST /v2/domains/{name}/records;
  GET|PUT|PATCH|DELETE /v2/domains/{name}/records/{id}
What it models, as the API reference (docs.digitalocean.com/reference/api/api-reference/, cited below as
"API reference #anchor") and the product docs describe (each rule has its reference beside it below):
Bearer auth (401 for a missing or wrong token),
page/per_page pagination (default 20, max 200, absolute links.pages URLs, meta.total), 422
unprocessable_entity for bad input (unknown region/size/image/SSH key, bad hostname or tag, VPC range
overlapping any other VPC of the account, in any region, duplicate or malformed SSH key, firewall `tags`
that do not exist, a reserved IP asked for both or neither of droplet_id and region, a second reserved IP
for a droplet, an A record whose data is not IPv4, a TTL under 30 s), 403 deleting a default VPC or one
with members, 412 deleting a project that holds resources or the default project, 404 not_found, 204
without body for deletes.
VPCs: a new account has none (default_vpcs=False); the first VPC made in a region becomes its default
(default_vpcs=True: every known region has one from the start). A droplet is created "new" with no
networks and is "active" after its first GET /v2/droplets/{id} (reads_while_new=1; 0: the first GET shows
"active"); actions on a "new" droplet get 422; actions are in-progress when posted, completed when read.
Projects: one default project ("first-project") that droplets, domains and reserved IPs without a
project_id land in. Reserved IPs: created for a region (in project_id, else the default project) or for
a droplet (in the droplet's project); assigned and unassigned by actions; a destroyed droplet's reserved
IP stays, unassigned. Domains: a new one gets SOA and three NS records; records' names are relative
("@" for the apex) and ?name= takes the fully qualified name.
Firewall rules come back as the API stores them (ports "all" -> "0", ICMP ports "0", empty keys left
out). Addresses: VPC range (private), public_addresses (default 203.0.113.10-254), reserved_addresses
(default 192.0.2.10-254), 2001:db8::/32 (IPv6).
For tests: add_droplet, add_ssh_key, add_domain, add_record, add_reserved_ip seed what somebody else made
in the account; delete_droplet_now destroys a droplet behind the role's back; read-only views droplets,
ssh_keys, vpcs, firewalls, tags, projects, reserved_ips, domains, domain_records, requests.
Not covered: other endpoints (regions, sizes, images, project resources, volumes, load balancers, the
legacy /v2/floating_ips...), rate limits (e.g. 12 reserved IPs per 60 s), droplet and reserved IP limits,
a reserved IP among the droplet's own networks, tag case-insensitivity, VPC ranges DigitalOcean reserves
for itself, the delay before a deleted droplet leaves its VPC. Some 422 messages are not documented and
are approximated.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import ipaddress
import itertools
import json
import re
import threading
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

REGIONS = {slug: {"name": name, "slug": slug, "available": True, "sizes": [], "features": [
    "backups", "ipv6", "metadata", "install_agent", "storage", "image_transfer"]}
    for slug, name in (("fra1", "Frankfurt 1"), ("ams3", "Amsterdam 3"), ("nyc3", "New York 3"), ("lon1", "London 1"))}
DEFAULT_VPC_RANGES = {"fra1": "10.114.0.0/20", "ams3": "10.110.0.0/20", "nyc3": "10.108.0.0/20",
                      "lon1": "10.106.0.0/20"}
SIZES = {slug: {"slug": slug, "memory": mem, "vcpus": cpu, "disk": disk, "transfer": tb, "price_monthly": usd,
                "price_hourly": round(usd / 672, 5), "regions": list(REGIONS), "available": True,
                "description": "Basic"}
         for slug, mem, cpu, disk, tb, usd in (
             ("s-1vcpu-1gb", 1024, 1, 25, 1.0, 6), ("s-1vcpu-2gb", 2048, 1, 50, 2.0, 12),
             ("s-2vcpu-2gb", 2048, 2, 60, 3.0, 18), ("s-2vcpu-4gb", 4096, 2, 80, 4.0, 24),
             ("s-4vcpu-8gb", 8192, 4, 160, 5.0, 48))}
for _region in REGIONS.values():
    _region["sizes"] = list(SIZES)
IMAGES = {slug: {"id": image_id, "name": name, "distribution": distro, "slug": slug, "public": True,
                 "regions": list(REGIONS), "created_at": "2024-01-01T00:00:00Z", "min_disk_size": 10,
                 "type": "base", "size_gigabytes": 1.5, "description": "", "tags": [], "status": "available"}
          for slug, image_id, distro, name in (
              ("debian-12-x64", 147000001, "Debian", "12 x64"), ("debian-13-x64", 147000002, "Debian", "13 x64"),
              ("ubuntu-24-04-x64", 147000003, "Ubuntu", "24.04 (LTS) x64"))}
KEY_TYPES = ("ssh-rsa", "ssh-dss", "ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384",
             "ecdsa-sha2-nistp521")
HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
TAG_NAME = re.compile(r"[A-Za-z0-9_:-]{1,255}")
RESOURCE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]{0,254}")  # firewall and VPC names
ROUTES = [(re.compile("/v2/" + rx), name) for rx, name in (
    ("account", "account"), ("account/keys", "keys"), ("account/keys/([^/]+)", "key"),
    ("vpcs", "vpcs"), ("vpcs/([^/]+)", "vpc"), ("vpcs/([^/]+)/members", "vpc_members"),
    ("tags", "tags"), ("tags/([^/]+)", "tag"), ("tags/([^/]+)/resources", "tag_resources"),
    ("droplets", "droplets"), (r"droplets/(\d+)", "droplet"), (r"droplets/(\d+)/actions", "actions"),
    (r"droplets/(\d+)/actions/(\d+)", "action"), ("firewalls", "firewalls"),
    ("firewalls/([^/]+)", "firewall"), ("firewalls/([^/]+)/droplets", "firewall_droplets"),
    ("projects", "projects"), ("projects/([^/]+)", "project"), ("reserved_ips", "reserved_ips"),
    (r"reserved_ips/([\d.]+)", "reserved_ip"), (r"reserved_ips/([\d.]+)/actions", "reserved_ip_actions"),
    (r"reserved_ips/([\d.]+)/actions/(\d+)", "reserved_ip_action"), ("domains", "domains"),
    ("domains/([^/]+)", "domain"), ("domains/([^/]+)/records", "records"), (r"domains/([^/]+)/records/(\d+)", "record"))]
IPV4 = re.compile(r"((25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(25[0-5]|2[0-4]\d|1?\d?\d)")
DOMAIN_NAME = re.compile(r"(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}")


class ApiError(Exception):
    def __init__(self, status, ident, message):
        super().__init__(message)
        self.status, self.ident, self.message = status, ident, message


def invalid(message):
    return ApiError(422, "unprocessable_entity", message)


NOT_FOUND = ApiError(404, "not_found", "The resource you were accessing could not be found.")


def lookup(store, key):
    if key not in store:
        raise NOT_FOUND
    return store[key]


def now():
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def fingerprint(public_key):
    """MD5 fingerprint of an OpenSSH public key, as DigitalOcean shows it; 422 if it is not one."""
    parts = public_key.split() if isinstance(public_key, str) else []
    if len(parts) < 2 or parts[0] not in KEY_TYPES:
        raise invalid("Key invalid type, we support " + ", ".join(f"'{t}'" for t in KEY_TYPES))
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except ValueError:
        blob = b""
    if blob[4:4 + int.from_bytes(blob[:4], "big")] != parts[0].encode():
        raise invalid("Key invalid, key should be of the form 'type key [comment]'")
    digest = hashlib.md5(blob).hexdigest()
    return ":".join(digest[i:i + 2] for i in range(0, 32, 2))


class FakeDigitalOcean:
    """FakeDigitalOcean(token).start() returns "http://127.0.0.1:PORT/v2": pass it as `baseurl`."""

    def __init__(self, token="fake-token", host="127.0.0.1", port=0, default_vpcs=False, reads_while_new=1,
                 public_addresses=None, reserved_addresses=None):
        # reads_while_new: GETs of a droplet by id that still show "new" (0: the first one shows "active")
        # default_vpcs: start with a default VPC in every known region (an account that has had droplets);
        #   False (the default): no VPC anywhere, as in a new account - the first VPC made in a region is its default
        # public_addresses / reserved_addresses: IPv4 addresses handed out in order to new droplets (public
        #   interface) and new reserved IPs; default 203.0.113.10-254 and 192.0.2.10-254 (TEST-NET-3 and -1)
        self.token, self._address, self.url, self._reads_while_new = token, (host, port), None, reads_while_new
        self._lock, self._server = threading.RLock(), None
        self._requests, self._mutations = [], 0
        self._droplets, self._keys, self._vpcs, self._firewalls, self._tags, self._actions = {}, {}, {}, {}, {}, {}
        self._projects, self._reserved, self._domains, self._records = {}, {}, {}, {}
        self._droplet_ids, self._key_ids = itertools.count(500000001), itertools.count(41000001)
        self._action_ids, self._hosts_used = itertools.count(2000000001), {}
        self._record_ids = itertools.count(300000001)
        self._public_ips = iter(public_addresses) if public_addresses is not None else (
            f"203.0.113.{n % 245 + 10}" for n in itertools.count())
        self._reserved_ips = iter(reserved_addresses) if reserved_addresses is not None else (
            f"192.0.2.{n % 245 + 10}" for n in itertools.count())
        # Every account has one default project that cannot be deleted; resources not assigned elsewhere
        # land in it (docs.digitalocean.com/products/projects/details/features/: "default project")
        self._default_project = self._add_project("first-project", "My default project", "", is_default=True)["id"]
        for region in REGIONS if default_vpcs else ():
            self._add_vpc(f"default-{region}", region, DEFAULT_VPC_RANGES[region], "")

    # ---- seeding, for tests: resources somebody else made in the same account ----
    def add_droplet(self, name, tags=(), region="fra1", size="s-1vcpu-1gb", image="debian-12-x64"):
        """An active droplet in the region's default VPC (made if none), like one made in the control panel."""
        with self._lock:
            status, body = self.post_droplets({}, {"name": name, "region": region, "size": size, "image": image,
                                                   "tags": list(tags)})
            self._droplets[body["droplet"]["id"]]["status"] = "active"
            return self._show(self._droplets[body["droplet"]["id"]])

    def add_ssh_key(self, name, public_key):
        with self._lock:
            return self.post_keys({}, {"name": name, "public_key": public_key})[1]["ssh_key"]

    def add_domain(self, name):
        with self._lock:
            return self.post_domains({}, {"name": name})[1]["domain"]

    def add_record(self, domain, name, data, kind="A", ttl=1800):
        """A record of a domain (name relative to the domain, "@" for the apex), as another tool made it."""
        with self._lock:
            return self.post_records(domain, {}, {"type": kind, "name": name, "data": data, "ttl": ttl})[1][
                "domain_record"]

    def add_reserved_ip(self, region="fra1", droplet_id=None):
        """A reserved IP of the default project (assigned to droplet_id if given)."""
        with self._lock:
            body = {"droplet_id": droplet_id} if droplet_id else {"region": region}
            return self._show_rip(self._reserved[self.post_reserved_ips({}, body)[1]["reserved_ip"]["ip"]])

    def delete_droplet_now(self, droplet_id):
        """The droplet is destroyed outside the role (lost host, control panel)."""
        with self._lock:
            self.delete_droplet(droplet_id, {}, {})

    # ---- lifecycle, and read-only views for tests ----
    def start(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, payload = fake._dispatch(self.command, self.path, self.headers.get("Authorization"), raw)
                self.send_response(status)
                if payload is not None:
                    body = json.dumps(payload).encode()
                    self.send_header("Content-Type", "application/json; charset=utf-8")
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if payload is not None:
                    self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(self._address, Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.url = f"http://{self._address[0]}:{self._server.server_address[1]}/v2"
        return self.url

    def stop(self):
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def _view(self, snapshot):
        with self._lock:
            return copy.deepcopy(snapshot(self))

    droplets = property(lambda self: self._view(lambda s: {i: s._show(d) for i, d in s._droplets.items()}))
    ssh_keys = property(lambda self: self._view(lambda s: s._keys))
    vpcs = property(lambda self: self._view(lambda s: s._vpcs))
    firewalls = property(lambda self: self._view(lambda s: {i: s._show_fw(f) for i, f in s._firewalls.items()}))
    tags = property(lambda self: self._view(lambda s: sorted(s._tags)))
    projects = property(lambda self: self._view(lambda s: s._projects))
    reserved_ips = property(lambda self: self._view(lambda s: {ip: s._show_rip(r) for ip, r in s._reserved.items()}))
    domains = property(lambda self: self._view(lambda s: sorted(s._domains)))
    domain_records = property(lambda self: self._view(lambda s: {d: sorted(s._records[d].values(), key=lambda r: r["id"])
                                                                 for d in s._domains}))
    requests = property(lambda self: self._view(lambda s: s._requests))  # [(method, path without the query)]
    mutating_requests = property(lambda self: self._mutations)  # POST/PUT/PATCH/DELETE received

    def clear_requests(self):
        with self._lock:
            self._requests, self._mutations = [], 0

    # ---- HTTP plumbing ----
    def _dispatch(self, method, target, auth, raw):
        url = urlsplit(target)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        with self._lock:
            self._requests.append((method, url.path))
            self._mutations += method != "GET"
            try:
                # "Authorization: Bearer TOKEN" on every request, else 401 (API reference #section/Authentication)
                if auth != f"Bearer {self.token}":
                    raise ApiError(401, "Unauthorized", "Unable to authenticate you")
                try:
                    body = json.loads(raw) if raw.strip() else None
                except ValueError:
                    raise ApiError(400, "bad_request", "the request body is not valid JSON") from None
                for pattern, name in ROUTES:
                    match = pattern.fullmatch(url.path)
                    handler = match and getattr(self, f"{method.lower()}_{name}", None)
                    if handler:
                        body = body if isinstance(body, dict) else {}
                        return handler(*map(unquote, match.groups()), query=query, body=body)
                raise NOT_FOUND
            except ApiError as err:
                return err.status, {"id": err.ident, "message": err.message}

    def _page(self, key, items, query, path):
        # per_page 20 by default, at most 200; links.pages with absolute URLs, meta.total
        # (API reference #section/Introduction/Links-and-Pagination)
        try:
            per_page, page = min(max(int(query.get("per_page", 20)), 1), 200), max(int(query.get("page", 1)), 1)
        except ValueError:
            raise ApiError(400, "bad_request", "page and per_page must be integers") from None
        last, pages = max(1, -(-len(items) // per_page)), {}
        link = lambda p: f"{self.url}/{path}?" + urlencode(dict(query, page=p, per_page=per_page))  # noqa: E731
        if page > 1:
            pages.update(first=link(1), prev=link(min(page - 1, last)))
        if page < last:
            pages.update(next=link(page + 1), last=link(last))
        return 200, {key: items[(page - 1) * per_page:page * per_page],
                     "links": {"pages": pages} if pages else {}, "meta": {"total": len(items)}}

    def get_account(self, query, body):
        return 200, {"account": {"droplet_limit": 25, "floating_ip_limit": 3, "volume_limit": 100,
                                 "email": "fake@example.com", "uuid": "3f2b1c1e9a6d4b0f8e7d6c5b4a392817",
                                 "email_verified": True, "status": "active", "status_message": ""}}

    # ---- SSH keys ----
    def _find_key(self, ref, required=False):
        key = next((k for k in self._keys.values() if str(ref) in (str(k["id"]), k["fingerprint"])), None)
        if key is None and required:
            raise NOT_FOUND
        return key

    def get_keys(self, query, body):
        return self._page("ssh_keys", list(self._keys.values()), query, "account/keys")

    def post_keys(self, query, body):
        # name and public_key required; a key already in the account is refused
        # (API reference #operation/sshKeys_create)
        if not str(body.get("name") or "").strip():
            raise invalid("Name can't be blank")
        if self._find_key(fingerprint(body.get("public_key"))):
            raise invalid("SSH Key is already in use on your account")
        key = {"id": next(self._key_ids), "fingerprint": fingerprint(body["public_key"]),
               "public_key": body["public_key"].strip(), "name": body["name"]}
        self._keys[key["id"]] = key
        return 201, {"ssh_key": key}

    def get_key(self, ref, query, body):
        return 200, {"ssh_key": self._find_key(ref, required=True)}

    def put_key(self, ref, query, body):
        key = self._find_key(ref, required=True)
        if "name" in body and not str(body["name"] or "").strip():
            raise invalid("Name can't be blank")
        key["name"] = body.get("name", key["name"])
        return 200, {"ssh_key": key}

    def delete_key(self, ref, query, body):
        del self._keys[self._find_key(ref, required=True)["id"]]
        return 204, None

    # ---- VPCs ----
    def _add_vpc(self, name, region, ip_range, description):
        # "The first VPC network you create in a region becomes the default VPC network for that region"
        # (docs.digitalocean.com/products/networking/vpc/details/features/, default VPC networks)
        default = not any(v["region"] == region for v in self._vpcs.values())
        vpc_id = str(uuid.uuid4())
        self._vpcs[vpc_id] = {"id": vpc_id, "urn": f"do:vpc:{vpc_id}", "name": name, "description": description,
                              "region": region, "ip_range": ip_range, "default": default, "created_at": now()}
        return self._vpcs[vpc_id]

    def _check_vpc(self, body, vpc_id=None):
        name = body.get("name")
        if not isinstance(name, str) or not RESOURCE_NAME.fullmatch(name):
            raise invalid("name may only contain alphanumeric characters, dashes, and periods")
        if any(v["name"] == name and v["id"] != vpc_id for v in self._vpcs.values()):
            raise invalid(f"a VPC named {name} already exists")
        if len(str(body.get("description") or "")) > 255:
            raise invalid("description is too long (maximum is 255 characters)")

    def _free_range(self, wanted):
        taken = [ipaddress.ip_network(v["ip_range"]) for v in self._vpcs.values()]
        candidates = [ipaddress.ip_network(wanted)] + [ipaddress.ip_network(f"10.{i}.0.0/20") for i in range(120, 250)]
        return str(next(n for n in candidates if not any(n.overlaps(other) for other in taken)))

    def get_vpcs(self, query, body):
        return self._page("vpcs", list(self._vpcs.values()), query, "vpcs")

    def post_vpcs(self, query, body):
        self._check_vpc(body)
        region = body.get("region")
        if region not in REGIONS:
            raise invalid(f"region {region} is not a valid region")
        # ranges may not overlap with any other VPC network of the account, in any region
        # (docs.digitalocean.com/products/networking/vpc/details/limits/)
        taken = [ipaddress.ip_network(v["ip_range"]) for v in self._vpcs.values()]
        if body.get("ip_range"):
            try:
                net = ipaddress.ip_network(body["ip_range"])
            except ValueError:
                raise invalid(f"ip_range {body['ip_range']} is not a valid CIDR network") from None
            if net.version != 4 or not net.is_private or not 16 <= net.prefixlen <= 28:
                raise invalid("ip_range must be a private IPv4 range between /16 and /28")
            clash = next((v for v in self._vpcs.values() if net.overlaps(ipaddress.ip_network(v["ip_range"]))), None)
            if clash:
                raise invalid(f"ip_range {net} overlaps with VPC network {clash['name']} ({clash['ip_range']}, "
                              f"{clash['region']}) of this account")
        else:
            net = ipaddress.ip_network(self._free_range("10.120.0.0/20"))
        return 201, {"vpc": self._add_vpc(body["name"], region, str(net), body.get("description") or "")}

    def get_vpc(self, vpc_id, query, body):
        return 200, {"vpc": lookup(self._vpcs, vpc_id)}

    def put_vpc(self, vpc_id, query, body):
        vpc = lookup(self._vpcs, vpc_id)
        self._check_vpc(body, vpc_id)
        vpc.update(name=body.get("name", vpc["name"]), description=body.get("description", vpc["description"]))
        if body.get("default") is True:
            for other in self._vpcs.values():
                other["default"] = other is vpc if other["region"] == vpc["region"] else other["default"]
        elif body.get("default") is False and vpc["default"]:
            raise invalid("the default VPC can not be unset; make another VPC the default instead")
        return 200, {"vpc": vpc}

    def delete_vpc(self, vpc_id, query, body):
        # a region's default VPC cannot be deleted (only another VPC made default first), nor one with
        # members: 403 (API reference #operation/vpcs_delete)
        if lookup(self._vpcs, vpc_id)["default"]:
            raise ApiError(403, "forbidden", "Can not delete default VPC")
        if any(d["vpc_uuid"] == vpc_id for d in self._droplets.values()):
            raise ApiError(403, "forbidden", "Can not delete VPC with members")
        del self._vpcs[vpc_id]
        return 204, None

    def get_vpc_members(self, vpc_id, query, body):
        lookup(self._vpcs, vpc_id)
        members = [{"urn": f"do:droplet:{d['id']}", "name": d["name"], "created_at": d["created_at"]}
                   for d in self._droplets.values() if d["vpc_uuid"] == vpc_id]
        return self._page("members", members, query, f"vpcs/{vpc_id}/members")

    # ---- tags ----
    def _show_tag(self, name):
        tagged = [d["id"] for d in self._droplets.values() if name in d["tags"]]
        count = {"count": len(tagged), "last_tagged_uri": f"{self.url}/droplets/{tagged[-1]}" if tagged else ""}
        return {"name": name, "resources": dict(count, droplets=dict(count), **{
            kind: {"count": 0} for kind in ("images", "volumes", "volume_snapshots", "databases")})}

    def _require_tags(self, names, create):
        for name in names:
            if not isinstance(name, str) or not TAG_NAME.fullmatch(name):
                raise invalid(f"tag {name!r} may only contain letters, numbers, colons, dashes and underscores")
            if name not in self._tags and not create:
                raise invalid(f"tag {name} does not exist")
        for name in names:
            self._tags.setdefault(name, now())

    def get_tags(self, query, body):
        return self._page("tags", [self._show_tag(t) for t in self._tags], query, "tags")

    def post_tags(self, query, body):
        # tag names: letters, numbers, colons, dashes and underscores, up to 255 (API reference #operation/tags_create)
        if body.get("name") in self._tags:
            raise invalid(f"tag {body['name']} already exists")
        self._require_tags([body.get("name")], create=True)
        return 201, {"tag": self._show_tag(body["name"])}

    def get_tag(self, name, query, body):
        if name not in self._tags:
            raise NOT_FOUND
        return 200, {"tag": self._show_tag(name)}

    def delete_tag(self, name, query, body):
        if self._tags.pop(name, None) is None:
            raise NOT_FOUND
        for holder in itertools.chain(self._droplets.values(), self._firewalls.values()):
            holder["tags"] = [t for t in holder["tags"] if t != name]
        return 204, None

    def _resources(self, name, body):
        if name not in self._tags:
            raise NOT_FOUND
        resources = body.get("resources") or []
        if not resources or any(r.get("resource_type") != "droplet" for r in resources):
            raise invalid("resources must be a non-empty list of droplet resources")
        return [self._droplet(r.get("resource_id")) for r in resources]

    def post_tag_resources(self, name, query, body):
        for droplet in self._resources(name, body):
            droplet["tags"] += [name] if name not in droplet["tags"] else []
        return 204, None

    def delete_tag_resources(self, name, query, body):
        for droplet in self._resources(name, body):
            droplet["tags"] = [t for t in droplet["tags"] if t != name]
        return 204, None

    # ---- droplets ----
    def _droplet(self, droplet_id):
        try:
            return self._droplets[int(droplet_id)]
        except (KeyError, TypeError, ValueError):
            raise NOT_FOUND from None

    def _show(self, d):
        networks = {"v4": [], "v6": []}
        if d["status"] != "new":  # addresses are assigned while the droplet is provisioned
            netmask = str(ipaddress.ip_network(self._vpcs[d["vpc_uuid"]]["ip_range"]).netmask)
            networks["v4"] = [
                {"ip_address": d["public_ip"], "netmask": "255.255.255.0", "gateway": "203.0.113.1", "type": "public"},
                {"ip_address": d["private_ip"], "netmask": netmask, "gateway": "", "type": "private"}]
            if d["ipv6"]:
                networks["v6"] = [{"ip_address": d["ipv6"], "netmask": 64, "gateway": "2001:db8::1", "type": "public"}]
        size = SIZES[d["size"]]
        return {"id": d["id"], "name": d["name"], "memory": size["memory"], "vcpus": size["vcpus"],
                "disk": size["disk"], "locked": False, "status": d["status"], "kernel": None,
                "created_at": d["created_at"], "features": list(d["features"]), "backup_ids": [],
                "next_backup_window": None, "snapshot_ids": [], "volume_ids": [], "image": IMAGES[d["image"]],
                "size": size, "size_slug": d["size"], "networks": networks, "tags": list(d["tags"]),
                "region": REGIONS[d["region"]], "vpc_uuid": d["vpc_uuid"]}

    def get_droplets(self, query, body):
        tag, name = query.get("tag_name"), query.get("name")
        found = [self._show(d) for d in self._droplets.values()
                 if (tag is None or tag in d["tags"]) and (name is None or d["name"] == name)]
        return self._page("droplets", found, query, "droplets")

    def post_droplets(self, query, body):
        # name, region, size, image required; a droplet without vpc_uuid joins its region's default VPC
        # (API reference #operation/droplets_create)
        name, region, size, image = (body.get(k) for k in ("name", "region", "size", "image"))
        if not isinstance(name, str) or len(name) > 253 or not all(HOST_LABEL.fullmatch(p) for p in name.split(".")):
            raise invalid("Name Only valid hostname characters are allowed. (a-z, A-Z, 0-9, . and -)")
        if region not in REGIONS:
            raise invalid("You specified an invalid region for Droplet creation.")
        if size not in SIZES:
            raise invalid("You specified an invalid size for Droplet creation.")
        image = next((slug for slug, img in IMAGES.items() if str(image) in (slug, str(img["id"]))), None)
        if image is None:
            raise invalid("You specified an invalid image for Droplet creation.")
        unknown = [str(k) for k in body.get("ssh_keys") or [] if self._find_key(k) is None]
        if unknown:
            raise invalid(f"{', '.join(unknown)} are invalid key identifiers for Droplet creation.")
        if body.get("vpc_uuid"):
            vpc = self._vpcs.get(body["vpc_uuid"])
            if vpc is None or vpc["region"] != region:
                raise invalid(f"vpc_uuid {body['vpc_uuid']} is not a VPC network in {region}")
        else:
            vpc = next((v for v in self._vpcs.values() if v["region"] == region and v["default"]), None) \
                or self._add_vpc(f"default-{region}", region, self._free_range(DEFAULT_VPC_RANGES[region]), "")
        tags = list(dict.fromkeys(body.get("tags") or []))
        self._require_tags(tags, create=True)  # tags named at creation are created if missing
        self._hosts_used[vpc["id"]] = host = self._hosts_used.get(vpc["id"], 1) + 1
        droplet_id = next(self._droplet_ids)
        self._droplets[droplet_id] = droplet = {
            "id": droplet_id, "name": name, "region": region, "size": size, "image": image, "status": "new", "reads": 0,
            "created_at": now(), "tags": tags, "vpc_uuid": vpc["id"],
            "features": ["droplet_agent", "private_networking"] + [
                f for f in ("monitoring", "backups", "ipv6") if body.get(f)],
            "private_ip": str(ipaddress.ip_network(vpc["ip_range"]).network_address + host),
            "public_ip": next(self._public_ips), "project_id": self._default_project,
            "ipv6": f"2001:db8::{droplet_id:x}" if body.get("ipv6") else None}
        action = self._new_action(droplet, "create")
        return 202, {"droplet": self._show(droplet), "links": {"actions": [
            {"id": action["id"], "rel": "create", "href": f"{self.url}/actions/{action['id']}"}]}}

    def get_droplet(self, droplet_id, query, body):
        droplet = self._droplet(droplet_id)
        droplet["reads"] += 1
        if droplet["status"] == "new" and droplet["reads"] > self._reads_while_new:
            droplet["status"] = "active"  # provisioning is over once it has been looked at
        return 200, {"droplet": self._show(droplet)}

    def delete_droplet(self, droplet_id, query, body):
        del self._droplets[self._droplet(droplet_id)["id"]]
        # a reserved IP stays in the account, unassigned, when its droplet is destroyed
        # (docs.digitalocean.com/products/networking/reserved-ips/details/features/)
        for reserved in self._reserved.values():
            reserved["droplet_id"] = None if reserved["droplet_id"] == int(droplet_id) else reserved["droplet_id"]
        for firewall in self._firewalls.values():
            firewall["droplet_ids"] = [i for i in firewall["droplet_ids"] if i != int(droplet_id)]
        return 204, None

    def _new_action(self, droplet, kind):
        action = {"id": next(self._action_ids), "status": "in-progress", "type": kind, "started_at": now(),
                  "completed_at": None, "resource_id": droplet["id"], "resource_type": "droplet",
                  "region_slug": droplet["region"]}
        self._actions[action["id"]] = action
        return dict(action)

    def post_actions(self, droplet_id, query, body):
        droplet, kind = self._droplet(droplet_id), body.get("type")
        effects = {"power_on": "active", "power_off": "off", "shutdown": "off", "reboot": "active",
                   "power_cycle": "active", "resize": "off"}
        if kind not in effects:
            raise invalid(f"{kind} is not a valid action type")
        if droplet["status"] == "new":
            raise invalid("Droplet already has a pending event.")
        if kind == "resize":
            if body.get("size") not in SIZES or droplet["status"] != "off":
                raise invalid("Droplet must be powered off and the size must be valid to resize.")
            droplet["size"] = body["size"]
        droplet["status"] = effects[kind]
        return 201, {"action": self._new_action(droplet, kind)}

    def get_action(self, droplet_id, action_id, query, body):
        action = self._actions.get(int(action_id))
        if action is None or action["resource_id"] != int(droplet_id):
            raise NOT_FOUND
        action.update(status="completed", completed_at=action["completed_at"] or now())
        return 200, {"action": action}

    # ---- firewalls ----
    def _show_fw(self, f):
        return dict(copy.deepcopy(f), status="succeeded")

    def _rules(self, rules, side):
        out = []
        for rule in rules or []:
            protocol, ports = rule.get("protocol"), str(rule.get("ports") or "")
            bounds = ports.split("-") if re.fullmatch(r"\d{1,5}(-\d{1,5})?", ports) else None
            if protocol not in ("tcp", "udp", "icmp"):
                raise invalid(f"protocol {protocol!r} is not one of tcp, udp, icmp")
            if protocol != "icmp" and ports != "all" and not (bounds and 0 < int(bounds[0]) <= int(bounds[-1]) < 65536):
                raise invalid(f"ports {ports!r} must be a port, a range like 8000-9000, or all")
            target = {}
            for key in ("addresses", "droplet_ids", "load_balancer_uids", "kubernetes_ids", "tags"):
                values = list((rule.get(side) or {}).get(key) or [])
                try:
                    [ipaddress.ip_network(a, strict=False) for a in values if key == "addresses"]
                    values = [int(v) for v in values] if key == "droplet_ids" else values
                except (TypeError, ValueError):
                    raise invalid(f"{side}.{key} contains an invalid value") from None
                target.update({key: values} if values else {})
            if not target:
                raise invalid(f"every rule needs {side} (addresses, droplet_ids, load_balancer_uids or tags)")
            out.append({"protocol": protocol, "ports": "0" if protocol == "icmp" or ports == "all" else ports,
                        side: target})
        return out

    def _firewall_fields(self, body):
        name = body.get("name")
        if not isinstance(name, str) or not RESOURCE_NAME.fullmatch(name):
            raise invalid("name must start with a letter or digit and contain only letters, digits, . and -")
        inbound = self._rules(body.get("inbound_rules"), "sources")
        outbound = self._rules(body.get("outbound_rules"), "destinations")
        if not inbound and not outbound:
            raise invalid("a firewall must contain at least one inbound or outbound rule")
        tags = list(dict.fromkeys(body.get("tags") or []))
        self._require_tags(tags, create=False)  # "Tag names must exist in order to be referenced"
        return {"name": name, "inbound_rules": inbound, "outbound_rules": outbound, "tags": tags,
                "droplet_ids": [self._droplet(i)["id"] for i in body.get("droplet_ids") or []]}

    def get_firewalls(self, query, body):
        return self._page("firewalls", [self._show_fw(f) for f in self._firewalls.values()], query, "firewalls")

    def post_firewalls(self, query, body):
        firewall = dict(self._firewall_fields(body), id=str(uuid.uuid4()), created_at=now(), pending_changes=[])
        self._firewalls[firewall["id"]] = firewall
        return 202, {"firewall": dict(self._show_fw(firewall), status="waiting")}

    def get_firewall(self, firewall_id, query, body):
        return 200, {"firewall": self._show_fw(lookup(self._firewalls, firewall_id))}

    def put_firewall(self, firewall_id, query, body):
        firewall = lookup(self._firewalls, firewall_id)
        firewall.update(self._firewall_fields(body))  # PUT replaces rules, droplets and tags
        return 200, {"firewall": dict(self._show_fw(firewall), status="waiting")}

    def delete_firewall(self, firewall_id, query, body):
        del self._firewalls[lookup(self._firewalls, firewall_id)["id"]]
        return 204, None

    def post_firewall_droplets(self, firewall_id, query, body):
        firewall = lookup(self._firewalls, firewall_id)
        added = [self._droplet(i)["id"] for i in body.get("droplet_ids") or []]
        firewall["droplet_ids"] += [i for i in dict.fromkeys(added) if i not in firewall["droplet_ids"]]
        return 204, None

    def delete_firewall_droplets(self, firewall_id, query, body):
        firewall = lookup(self._firewalls, firewall_id)
        removed = [self._droplet(i)["id"] for i in body.get("droplet_ids") or []]
        firewall["droplet_ids"] = [i for i in firewall["droplet_ids"] if i not in removed]
        return 204, None

    # ---- projects (API reference #tag/Projects) ----
    def _add_project(self, name, purpose, description, environment=None, is_default=False):
        project_id = str(uuid.uuid4())
        self._projects[project_id] = {
            "id": project_id, "owner_uuid": "3f2b1c1e9a6d4b0f8e7d6c5b4a392817", "owner_id": 2, "name": name,
            "description": description, "purpose": purpose, "environment": environment, "is_default": is_default,
            "created_at": now(), "updated_at": now()}
        return self._projects[project_id]

    def _project(self, ref):
        if ref == "default":
            return self._projects[self._default_project]
        return lookup(self._projects, ref)

    def _project_resources(self, project_id):
        return [f"do:droplet:{d['id']}" for d in self._droplets.values() if d["project_id"] == project_id] + [
            f"do:reservedip:{r['ip']}" for r in self._reserved.values() if r["project_id"] == project_id] + [
            f"do:domain:{name}" for name, d in self._domains.items() if d["project_id"] == project_id]

    def get_projects(self, query, body):
        return self._page("projects", list(self._projects.values()), query, "projects")

    def post_projects(self, query, body):
        # name (max 175) and purpose (max 255) are required; environment one of three values
        # (API reference #operation/projects_create)
        name, purpose, environment = body.get("name"), body.get("purpose"), body.get("environment")
        if not isinstance(name, str) or not name.strip() or len(name) > 175:
            raise invalid("name is required and may be at most 175 characters")
        if not isinstance(purpose, str) or not purpose.strip() or len(purpose) > 255:
            raise invalid("purpose is required and may be at most 255 characters")
        if environment not in (None, "Development", "Staging", "Production"):
            raise invalid("environment must be one of Development, Staging, Production")
        if len(str(body.get("description") or "")) > 255:
            raise invalid("description may be at most 255 characters")
        project = self._add_project(name, purpose, body.get("description") or "", environment)
        return 201, {"project": project}

    def get_project(self, ref, query, body):
        return 200, {"project": self._project(ref)}

    def delete_project(self, ref, query, body):
        # "a project must not have any resources assigned to it ... or you will receive a 412 error"
        # (API reference #operation/projects_delete);
        # the default project cannot be deleted either
        project = self._project(ref)
        if project["is_default"] or self._project_resources(project["id"]):
            raise ApiError(412, "precondition_failed", "cannot delete a project with resources or the default project")
        del self._projects[project["id"]]
        return 204, None

    # ---- reserved IPs (API reference #tag/Reserved-IPs) ----
    def _show_rip(self, r):
        droplet = self._droplets.get(r["droplet_id"]) if r["droplet_id"] else None
        return {"ip": r["ip"], "region": REGIONS[r["region"]], "droplet": self._show(droplet) if droplet else None,
                "locked": False, "project_id": r["project_id"]}

    def _rip(self, ip):
        return lookup(self._reserved, ip)

    def _assignable(self, droplet, region):
        if droplet["region"] != region:
            raise invalid(f"Droplet {droplet['id']} is not in {region}, the reserved IP's region")
        if droplet["status"] == "new":
            raise invalid("Droplet already has a pending event.")
        if any(r["droplet_id"] == droplet["id"] for r in self._reserved.values()):
            # one reserved IP per droplet (docs.digitalocean.com/products/networking/reserved-ips/details/limits/)
            raise invalid(f"Droplet {droplet['id']} already has a reserved IP")
        return droplet["id"]

    def get_reserved_ips(self, query, body):
        return self._page("reserved_ips", [self._show_rip(r) for r in self._reserved.values()], query, "reserved_ips")

    def post_reserved_ips(self, query, body):
        # either droplet_id (assigned, in the droplet's project) or region (reserved to it, in project_id or the
        # default project) - not both, not neither (API reference #operation/reservedIPs_create; doctl compute
        # reserved-ip create: --project-id, "When using --droplet-id, it is assigned to the project containing
        # the Droplet")
        if bool(body.get("droplet_id")) == bool(body.get("region")):
            raise invalid("a reserved IP is created either for a droplet_id or for a region")
        if body.get("project_id"):
            project_id = self._project(body["project_id"])["id"]
        droplet = self._droplet(body["droplet_id"]) if body.get("droplet_id") else None
        region = droplet["region"] if droplet else body["region"]
        if region not in REGIONS:
            raise invalid(f"region {region} is not a valid region")
        if not body.get("project_id"):
            project_id = droplet["project_id"] if droplet else self._default_project
        record = {"ip": next(self._reserved_ips), "region": region, "project_id": project_id,
                  "droplet_id": self._assignable(droplet, region) if droplet else None}
        self._reserved[record["ip"]] = record
        return 202, {"reserved_ip": self._show_rip(record), "links": {}}

    def get_reserved_ip(self, ip, query, body):
        return 200, {"reserved_ip": self._show_rip(self._rip(ip))}

    def delete_reserved_ip(self, ip, query, body):
        # 204; the address leaves the account (API reference #operation/reservedIPs_delete)
        del self._reserved[self._rip(ip)["ip"]]
        return 204, None

    def post_reserved_ip_actions(self, ip, query, body):
        # type assign (droplet_id, same region) or unassign; 201 with an action
        # (API reference #operation/reservedIPsActions_post)
        record, kind = self._rip(ip), body.get("type")
        if kind == "assign":
            droplet = self._droplet(body.get("droplet_id"))
            if record["droplet_id"] == droplet["id"]:
                raise invalid(f"the reserved IP is already assigned to Droplet {droplet['id']}")
            record["droplet_id"] = self._assignable(droplet, record["region"])
        elif kind == "unassign":
            if record["droplet_id"] is None:
                raise invalid("the reserved IP is not assigned")
            record["droplet_id"] = None
        else:
            raise invalid(f"{kind} is not a valid action type (assign, unassign)")
        action = {"id": next(self._action_ids), "status": "in-progress", "type": f"{kind}_ip", "started_at": now(),
                  "completed_at": None, "resource_id": int(ipaddress.ip_address(ip)), "resource_type": "reserved_ip",
                  "region_slug": record["region"], "ip": ip}
        self._actions[action["id"]] = action
        return 201, {"action": {k: v for k, v in action.items() if k != "ip"}}

    def get_reserved_ip_action(self, ip, action_id, query, body):
        action = self._actions.get(int(action_id))
        if action is None or action.get("ip") != ip:
            raise NOT_FOUND
        action.update(status="completed", completed_at=action["completed_at"] or now())
        return 200, {"action": {k: v for k, v in action.items() if k != "ip"}}

    # ---- domains and records (API reference #tag/Domains,
    #      #tag/Domain-Records) ----
    def _domain(self, name):
        return lookup(self._domains, name.lower())

    def get_domains(self, query, body):
        return self._page("domains", [{"name": n, "ttl": 1800, "zone_file": ""} for n in self._domains], query,
                          "domains")

    def post_domains(self, query, body):
        name = str(body.get("name") or "").lower()
        if not DOMAIN_NAME.fullmatch(name):
            raise invalid("Name is invalid")
        if name in self._domains:
            raise invalid("Name already exists")
        self._domains[name], self._records[name] = {"project_id": self._default_project}, {}
        # a new domain gets its SOA and DigitalOcean's three NS records; an A record at the apex if ip_address
        # (API reference #operation/domains_create)
        for kind, data in [("SOA", "1800")] + [("NS", f"ns{i}.digitalocean.com") for i in (1, 2, 3)] + (
                [("A", body["ip_address"])] if body.get("ip_address") else []):
            self.post_records(name, {}, {"type": kind, "name": "@", "data": data, "ttl": 1800}, internal=True)
        return 201, {"domain": {"name": name, "ttl": 1800, "zone_file": None}}

    def get_domain(self, name, query, body):
        self._domain(name)
        return 200, {"domain": {"name": name.lower(), "ttl": 1800, "zone_file": ""}}

    def delete_domain(self, name, query, body):
        self._domain(name)
        del self._domains[name.lower()], self._records[name.lower()]
        return 204, None

    def get_records(self, domain, query, body):
        # ?name= takes the fully qualified name (sub.example.com, or example.com for "@"); ?type= one type
        # (API reference #operation/domains_list_records)
        self._domain(domain)
        domain = domain.lower()
        fqdn = lambda r: domain if r["name"] == "@" else f"{r['name']}.{domain}"  # noqa: E731
        found = [r for r in self._records[domain].values()
                 if query.get("type") in (None, r["type"]) and query.get("name") in (None, fqdn(r))]
        return self._page("domain_records", found, query, f"domains/{domain}/records")

    def _record_fields(self, body, record=None):
        merged = dict(record or {}, **{k: v for k, v in body.items() if v is not None})
        kind, name, data, ttl = (merged.get(k) for k in ("type", "name", "data", "ttl"))
        if kind not in ("A", "AAAA", "CAA", "CNAME", "MX", "NS", "SOA", "SRV", "TXT"):
            raise invalid("Type is invalid")
        if not isinstance(name, str) or not (name == "@" or re.fullmatch(r"(\*|[A-Za-z0-9_]([A-Za-z0-9_-]{0,62}))"
                                                                     r"(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,62}))*", name)):
            raise invalid("Name is invalid")
        if kind == "A" and not (isinstance(data, str) and IPV4.fullmatch(data)):
            raise invalid("Data needs to be an IPv4 address")
        if ttl is None:
            ttl = 1800
        # "ttl ... minimum 30" (API reference #operation/domains_create_record)
        if not isinstance(ttl, int) or ttl < 30:
            raise invalid("TTL must be at least 30 seconds")
        return {"type": kind, "name": name.lower(), "data": data, "ttl": ttl, "priority": merged.get("priority"),
                "port": merged.get("port"), "weight": merged.get("weight"), "flags": merged.get("flags"),
                "tag": merged.get("tag")}

    def post_records(self, domain, query, body, internal=False):
        self._domain(domain)
        if body.get("type") == "SOA" and not internal:
            raise invalid("SOA records can not be created")
        record = dict(self._record_fields(body), id=next(self._record_ids))
        self._records[domain.lower()][record["id"]] = record
        return 201, {"domain_record": dict(record)}

    def _record(self, domain, record_id):
        self._domain(domain)
        return lookup(self._records[domain.lower()], int(record_id))

    def get_record(self, domain, record_id, query, body):
        return 200, {"domain_record": self._record(domain, record_id)}

    def put_record(self, domain, record_id, query, body):
        record = self._record(domain, record_id)
        record.update(self._record_fields(body, record))
        return 200, {"domain_record": dict(record)}

    patch_record = put_record

    def delete_record(self, domain, record_id, query, body):
        del self._records[domain.lower()][self._record(domain, record_id)["id"]]
        return 204, None
