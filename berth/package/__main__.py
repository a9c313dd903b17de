"""``python -m berth.package ENGINE_ADDRESS``: Berth's component provider (what the engine starts
through the plugin folder's ``pulumi-resource-berth``)."""

from berth.package.provider import main

main()
