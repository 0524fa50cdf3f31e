# Copyright: flaskstack.deploy contributors
# MIT License (see galaxy.yml)
"""Filter that writes the cloud role's firewall rules the way DigitalOcean's
cloud firewalls take them."""

from __future__ import annotations

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


class FilterModule:
    """flaskstack.deploy cloud filters."""

    def filters(self):
        return {"digitalocean_firewall_rules": digitalocean_firewall_rules}
