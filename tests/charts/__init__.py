"""Tests of the Helm charts, install manifests, Dockerfiles and skaffold config."""
