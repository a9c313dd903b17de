"""Berth's CrossGuard policy pack (``pulumi preview --policy-pack $(berth policy-pack)``). The pack
itself is this directory: ``PulumiPolicy.yaml`` and ``__main__.py``; the rules are in ``rules/``."""
