# Copyright: flaskstack.deploy contributors
# MIT License (see galaxy.yml)
"""Filters of the cloud role: its firewall rules the way DigitalOcean's cloud
firewalls take them, and the VPCs of an account a new range would overlap."""

from __future__ import annotations

import ipaddress

WORLD = "0.0.0.0/0"


def digitalocean_firewall_rules(rules: list) -> list:
    """One DigitalOcean inbound rule per port of each rule {proto, ports, cidr_ip | group_name}.

    A group_name becomes a tag source (the cloud role tags droplets with the
    group names its firewalls use); the whole IPv4 internet also admits IPv6."""
    out = []
    for rule in rules:
        if "group_name" in rule:
            sources = {"tags": [rule["group_name"]]}
        elif rule.get("cidr_ip") == WORLD:
            sources = {"addresses": [WORLD, "::/0"]}
        else:
            sources = {"addresses": [rule["cidr_ip"]]}
        for port in rule["ports"]:
            out.append({"protocol": rule.get("proto", "tcp"), "ports": str(port), "sources": sources})
    return out


def vpcs_overlapping(vpcs: list, cidr: str) -> list:
    """The VPCs ({name, ip_range, region}) whose range overlaps cidr, as "name (range, region)".

    DigitalOcean refuses a VPC whose range overlaps any other VPC of the account, in
    any region; asking first lets the role refuse before it creates anything."""
    wanted = ipaddress.ip_network(cidr, strict=False)
    return [f"{vpc['name']} ({vpc['ip_range']}, {vpc.get('region', '?')})" for vpc in vpcs
            if ipaddress.ip_network(vpc["ip_range"], strict=False).overlaps(wanted)]


class FilterModule:
    """flaskstack.deploy cloud filters."""

    def filters(self):
        return {"digitalocean_firewall_rules": digitalocean_firewall_rules, "vpcs_overlapping": vpcs_overlapping}
