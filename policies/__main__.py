"""The Berth CrossGuard policy pack.

The Pulumi CLI (v3.274) starts a Python pack through the language host's ``RunPlugin`` RPC: the
``pulumi-language-python`` plugin runs ``python -u -m pulumi.policy <engine address> <pack dir>`` with
this directory as working directory (and the stack's config in ``PULUMI_CONFIG``); ``pulumi.policy`` runs
this file, and ``PolicyPack(...)`` serves the Analyzer gRPC service on a free localhost port, prints the
port on stdout and blocks.
"""

import os
import sys

# runpy puts this directory on sys.path when the CLI runs it; importing `rules` from elsewhere
# (a test running this file) needs the same.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pulumi_policy import EnforcementLevel, PolicyPack  # noqa: E402

from rules import all_policies  # noqa: E402

PolicyPack(
    name="berth-security",
    description="Security and safety rules for Berth stacks on Docker and Kubernetes.",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=all_policies(),
)
