"""What the Python language host runs for this folder (``RunPlugin``): the same provider as the
executable ``pulumi-resource-berth`` beside it, under the Python that Berth is installed in (which
need not be the language host's), with the engine's arguments."""

import os
import sys

launcher = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pulumi-resource-berth")
os.execv(launcher, [launcher, *sys.argv[1:]])
