"""Every Kubernetes object of the prod stack validates against the v1.31 schemas (strict), and every
pod passes the namespace's Pod Security "restricted" level."""

from __future__ import annotations

import kubernetes_validate
import pytest

from .support import K8S_NAMESPACE, api_version_kind, k8s_objects, manifest, pod_templates, rec

K8S_VERSION = "1.31.0"


def _ids(recording):
    return [f"{r.type.split(':')[-1]}:{r.name}" for r in k8s_objects(recording)]


@pytest.fixture(scope="module")
def prod(recorded):
    return recorded("prod")


def test_api_version_kind_from_type_token():
    assert api_version_kind("kubernetes:core/v1:Secret") == ("v1", "Secret")
    assert api_version_kind("kubernetes:apps/v1:StatefulSet") == ("apps/v1", "StatefulSet")
    assert api_version_kind("kubernetes:networking.k8s.io/v1:NetworkPolicy") == ("networking.k8s.io/v1", "NetworkPolicy")


def test_every_prod_object_validates_strictly(prod):
    objects = k8s_objects(prod)
    assert len(objects) >= 25
    failures = {}
    for r in objects:
        try:
            kubernetes_validate.validate(manifest(r), K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            failures[f"{r.type}::{r.name}"] = f"{list(exc.path)}: {exc.message}"
    assert failures == {}


@pytest.mark.parametrize("environment", ["dev"])
def test_small_stack_of_every_component_validates(environment):
    r = rec(
        "kubernetes",
        environment=environment,
        databases={"pg": {"replica": True, "settings": {"max_connections": "50"}}, "docs": {"engine": "mongodb"}},
        caches={"cache": {}},
        services={
            "web": {"image": "a/web:1.0", "port": 8080, "uses": ["pg", "cache"], "autoscale": {"min": 2, "max": 4, "memory": 75},
                    "health": {"path": "/livez", "ready_path": "/readyz"}},
            "bot": {"image": "a/bot:1.0", "uses": ["docs"], "egress": True, "secret_env": {"T": {"generate": True}}},
        },
    )
    for r_ in k8s_objects(r):
        kubernetes_validate.validate(manifest(r_), K8S_VERSION, strict=True)


def test_strict_validation_is_not_vacuous(prod):
    """An unknown field in a recorded object is rejected, so the checks above do check."""
    deployment = next(r for r in prod.resources if r.type == "kubernetes:apps/v1:Deployment")
    m = manifest(deployment)
    m["spec"] = {**m["spec"], "replicaz": 3}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(m, K8S_VERSION, strict=True)


def test_namespace_enforces_restricted(prod):
    [ns] = prod.by_type(K8S_NAMESPACE)
    assert ns.inputs["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_every_pod_template_is_restricted(prod):
    templates = pod_templates(prod)
    assert len(templates) >= 5
    for name, tpl in templates:
        spec = tpl["spec"]
        pod_sc = spec.get("securityContext", {})
        assert pod_sc.get("runAsNonRoot") is True, name
        assert pod_sc.get("seccompProfile", {}).get("type") == "RuntimeDefault", name
        assert pod_sc.get("runAsUser", 1) != 0, name
        for c in spec["containers"] + spec.get("initContainers", []):
            sc = c.get("securityContext", {})
            where = f"{name}/{c['name']}"
            assert sc.get("allowPrivilegeEscalation") is False, where
            assert sc.get("capabilities", {}).get("drop") == ["ALL"], where
            assert set(sc.get("capabilities", {}).get("add", [])) <= {"NET_BIND_SERVICE"}, where
            assert sc.get("privileged") in (None, False), where
            res = c.get("resources", {})
            assert {"cpu", "memory"} <= set(res.get("requests", {})), where
            assert {"cpu", "memory"} <= set(res.get("limits", {})), where
        for v in spec.get("volumes", []):
            assert "hostPath" not in v, name
