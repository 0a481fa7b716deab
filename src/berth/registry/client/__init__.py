"""The distribution-protocol client behind pull, push and login."""

from berth.registry.client.client import RegistryClient, Resolved, parse_challenge
from berth.registry.client.credentials import Credentials
from berth.registry.client.platform import Platform

__all__ = ["Credentials", "Platform", "RegistryClient", "Resolved", "parse_challenge"]
