"""The Kubernetes manifests (deploy/kubernetes/): the shard each pod would take, as the
producer works it out from what Kubernetes gives the pod (its name, the pod-index label
through the downward API, an Indexed Job's completion index). Schemas and policies are
checked by scripts/check-manifests (kubernetes-validate --strict, checkov)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from producer.settings import Shard, replica_index
from tests.conftest import ROOT

MANIFESTS = ROOT / "deploy" / "kubernetes"


def load(name: str) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((MANIFESTS / name).read_text())
    return document


def container(workload: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]["containers"][0]
    return spec


def env_of(workload: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container(workload)["env"]}


def shards(workload: dict[str, Any], pods: int) -> list[Shard]:
    """What each pod of the workload would take: pod k as Kubernetes starts it."""
    env = env_of(workload)
    kind, name = workload["kind"], workload["metadata"]["name"]
    taken = []
    for k in range(pods):
        given = {"KUBERNETES_SERVICE_HOST": "10.96.0.1"}
        if kind == "Job":  # set by Kubernetes in every pod of an Indexed Job
            given["JOB_COMPLETION_INDEX"] = str(k)
            hostname = f"{name}-{k}-x7kq2"
        else:
            hostname = f"{name}-{k}"
            if "POD_INDEX" in env:  # the label apps.kubernetes.io/pod-index, k
                given["POD_INDEX"] = str(k)

        def index(host: str = hostname, environ: dict[str, str] = given) -> int | None:
            return replica_index(lambda: host, lambda _h: "not-asked-1", environ)

        taken.append(Shard.parse(env["SYNTHSTREAM_SHARD"], index))
    return taken


@pytest.mark.parametrize(("name", "count"), [("statefulset.yaml", "replicas"),
                                             ("job-backfill.yaml", "completions")])  # fmt: skip
def test_each_pod_takes_its_own_shard_and_together_all(name: str, count: str) -> None:
    workload = load(name)
    pods = workload["spec"][count]
    taken = shards(workload, pods)
    assert [s.index for s in taken] == list(range(pods))
    assert {s.count for s in taken} == {pods}, f"auto/N must say N = {count}"
    if workload["kind"] == "Job":
        assert workload["spec"]["completionMode"] == "Indexed"
    else:  # the downward API gives the pod-index label
        field = env_of(workload)["POD_INDEX"]["fieldRef"]["fieldPath"]
        assert field == "metadata.labels['apps.kubernetes.io/pod-index']"
    # One pod more than N is refused with the line that says what to change.
    with pytest.raises(ValueError, match=f"replica {pods + 1} but"):
        shards({**workload, "spec": {**workload["spec"], count: pods + 1}}, pods + 1)


def test_probes_and_scrapes_reach_the_port_the_settings_serve() -> None:
    settings = load("configmap.yaml")["data"]
    port = int(settings["SYNTHSTREAM_METRICS__PORT"])
    assert settings["SYNTHSTREAM_METRICS__HOST"] == "0.0.0.0"
    service = load("service.yaml")
    assert service["metadata"]["annotations"]["prometheus.io/port"] == str(port)
    for name in ("statefulset.yaml", "job-backfill.yaml"):
        c = container(load(name))
        assert c["ports"] == [{"name": "metrics", "containerPort": port}]
        for probe in ("livenessProbe", "readinessProbe"):
            assert c[probe]["httpGet"] == {"path": "/healthz", "port": "metrics"}
        assert c["securityContext"]["readOnlyRootFilesystem"] is True
        assert {m["mountPath"] for m in c["volumeMounts"]} >= {"/tmp", "/data"}
    assert settings["SYNTHSTREAM_OUT"].startswith("/data/")  # a writable volume


def test_the_settings_are_settings_synthstream_knows() -> None:
    from producer.config import env_names

    known = set(env_names())
    given = set(load("configmap.yaml")["data"]) | set(load("secret.yaml")["stringData"])
    for name in ("statefulset.yaml", "job-backfill.yaml"):
        given |= set(env_of(load(name)))
    ours = {n for n in given if n.startswith("SYNTHSTREAM_")}
    assert ours - known == set()
    assert kustomized() >= {p.name for p in MANIFESTS.glob("*.yaml")} - {"kustomization.yaml"}


def kustomized() -> set[str]:
    return set(load("kustomization.yaml")["resources"])
