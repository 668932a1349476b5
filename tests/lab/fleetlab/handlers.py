"""Imports every module that registers SSM operations (see api.install)."""
from . import baselines, commands, compliance, inventory, nodes, windows  # noqa: F401
