"""The Pulumi program: read and validate config, build the stack, export its outputs."""

from __future__ import annotations

import gc
import os

import pulumi

from .spec import load_spec, stack_prefix
from .stack import build

#: ``BERTH_GC=default`` keeps the interpreter's garbage collector settings during evaluation (to
#: compare, or to look for a leak); anything else, or unset, switches the collector off.
GC_ENV = "BERTH_GC"


def collector_off_for_evaluation() -> bool:
    """Switch Python's cyclic garbage collector off for the rest of this program's evaluation.

    Why: evaluating a stack creates tens of thousands of Outputs, futures and asyncio tasks that all
    stay alive until the program ends (the SDK keeps them until every resource is registered). The
    collector, at its default thresholds, scans that growing heap again and again and frees almost
    nothing: it took about half the CPU time of a 200-service evaluation (bench/results.md), for
    Berth and for a flat program alike. Raising the thresholds does not help much (a young-generation
    collection costs about as much per object at any threshold); not collecting does.
    Why it is safe: ``pulumi up`` runs the program once in a process of its own that exits after it,
    and the cyclic garbage an evaluation leaves (mostly the SDK's per-call closures) grows with the
    stack, not with time: about a tenth more peak memory (a 200-service Kubernetes stack: 182 MiB
    instead of 169; 1000 services: 540 instead of 478, bench/results.md). Reference counting still
    frees everything else at once. ``berth.record``
    (tests, ``berth render``) restores the collector after each recording. Only Berth's entry point
    does this: components used from a hand-written program leave the program's settings alone.

    Returns whether the collector was switched off.
    """
    if os.environ.get(GC_ENV) == "default":
        return False
    gc.disable()
    return True


def main() -> None:
    collector_off_for_evaluation()
    spec = load_spec()  # raises ConfigError (a clean message, no traceback) before any resource exists
    outputs = build(spec, stack_prefix(spec.name))
    for key, value in outputs.items():
        pulumi.export(key, value)
