"""What a diagnosis keeps of a spec: per container the fields that explain a failure (image, command,
env references, resources, probes, mounts), the pod's placement and identity, and its volumes."""

from __future__ import annotations

from llmstep.diagnose.spec import pod_template, trimmed_pod_spec

POD = {
    "containers": [
        {
            "name": "app",
            "image": "shop:2",
            "env": [{"name": "KEY", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}],
            "terminationMessagePath": "/dev/termination-log",
            "ports": [],
            "resources": {},
        }
    ],
    "serviceAccountName": "shop",
    "dnsPolicy": "ClusterFirst",
    "schedulerName": "default-scheduler",
    "nodeSelector": {},
    "volumes": [{"name": "tls", "secret": {"secretName": "shop-tls"}}],
}


def test_the_pod_template_of_a_workload_is_found_where_its_kind_keeps_it():
    assert pod_template({"replicas": 2, "template": {"spec": POD}}) is POD  # Deployment, ReplicaSet, Job, ...
    assert (
        pod_template({"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {"spec": POD}}}}) is POD
    )  # CronJob
    assert pod_template({"containers": []}) is None and pod_template({"template": "not a mapping"}) is None


def test_a_trimmed_spec_keeps_what_explains_a_failure_and_drops_the_rest():
    assert trimmed_pod_spec(POD) == {
        "containers": [
            {"name": "app", "image": "shop:2", "env": POD["containers"][0]["env"]}
        ],  # empty and noise dropped
        "serviceAccountName": "shop",
        "volumes": [{"name": "tls", "secret": {"secretName": "shop-tls"}}],
    }
    init = {"initContainers": [{"name": "migrate", "image": "shop:2", "command": ["migrate"]}], "containers": []}
    assert trimmed_pod_spec(init) == {
        "initContainers": [{"name": "migrate", "image": "shop:2", "command": ["migrate"]}]
    }
