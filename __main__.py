"""Berth: deploy a team's application stack to a Docker host or a Kubernetes cluster."""
import berth

berth.main()
