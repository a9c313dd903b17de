"""The Berth CrossGuard policy pack.

The Pulumi CLI starts it as ``python -u -m pulumi.policy <engine address> .`` from this directory
(via its ``pulumi-analyzer-policy-python`` shim); ``PolicyPack(...)`` then serves the Analyzer gRPC
service on a free localhost port, prints the port on stdout and blocks.
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
