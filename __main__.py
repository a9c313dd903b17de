"""Berth: deploy a team's application stack to a Docker host or a Kubernetes cluster."""

from components.program import main

main()
