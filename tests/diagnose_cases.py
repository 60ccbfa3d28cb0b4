"""Evidence and model answers the diagnosis tests share: a manifest full of planted secrets, and an
in-memory cluster whose pod lacks a Secret's key."""

from __future__ import annotations

ANSWER = {
    "summary": "The image 'invalid' cannot be pulled.",
    "root_cause": "Deployment web uses image invalid, which does not exist.",
    "evidence": ['Failed to pull image "invalid"'],
    "fix_steps": [{"description": "Use a real image", "command": "kubectl set image deployment/web web=nginx:1.27"}],
    "confidence": 0.9,
}
SECRETS = [
    "sk-live-planted0123456789abcdef",
    "hunter2-db-password",
    "s3cretUrlPass",
    "ghp_abcdefghijklmnopqrstuvwxyz012345",
    "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC",
    "corp-token-998877",
]
MANIFEST = f"""apiVersion: apps/v1
kind: Deployment
metadata: {{name: web}}
spec:
  template:
    spec:
      containers:
      - name: web
        image: invalid
        env:
        - {{name: DB_PASSWORD, value: {SECRETS[1]}}}
        - {{name: DATABASE_URL, value: "postgres://app:{SECRETS[2]}@db:5432/app"}}
        - {{name: MODE, value: production}}
        args: ["--token={SECRETS[0]}", "--gh={SECRETS[3]}", "--extra=corp-token-998877"]
---
apiVersion: v1
kind: Secret
metadata: {{name: creds}}
stringData: {{OPENAI_API_KEY: {SECRETS[0]}}}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: keys}}
data:
  key.pem: |
    -----BEGIN PRIVATE KEY-----
    {SECRETS[4]}
    -----END PRIVATE KEY-----
  auth: "Authorization: Bearer abcdefghijklmnop"
"""

PLANTED = "sk-planted-literal-0123456789abcdef"


def needs_key_cluster(namespace="default", node="worker-1"):
    """pod/needs-key: its container reads API_KEY from Secret app-secrets, which lacks the key."""
    from kube_fake import FakeKubeClient
    from kubernetes import client as k

    cluster = FakeKubeClient(namespace)
    container = k.V1Container(
        name="checkout-api",
        image="registry.example.com/checkout:2.0",
        command=["/app/serve"],
        args=["--port", "8080"],
        env=[
            k.V1EnvVar(
                name="API_KEY",
                value_from=k.V1EnvVarSource(secret_key_ref=k.V1SecretKeySelector(name="app-secrets", key="API_KEY")),
            ),
            k.V1EnvVar(name="API_TOKEN", value=PLANTED),
            k.V1EnvVar(name="MODE", value="production"),
        ],
        resources=k.V1ResourceRequirements(limits={"memory": "256Mi"}),
        readiness_probe=k.V1Probe(http_get=k.V1HTTPGetAction(path="/healthz", port=8080)),
        volume_mounts=[k.V1VolumeMount(name="tls", mount_path="/tls")],
    )
    cluster.pods["needs-key"] = k.V1Pod(
        metadata=k.V1ObjectMeta(name="needs-key", namespace=namespace),
        spec=k.V1PodSpec(
            containers=[container],
            node_name=node,
            volumes=[k.V1Volume(name="tls", secret=k.V1SecretVolumeSource(secret_name="checkout-tls"))],
        ),
        status=k.V1PodStatus(
            phase="Pending",
            pod_ip="10.42.0.17",
            host_ip="192.168.7.21",
            container_statuses=[
                k.V1ContainerStatus(
                    name="checkout-api",
                    image="registry.example.com/checkout:2.0",
                    image_id="",
                    ready=False,
                    restart_count=0,
                    state=k.V1ContainerState(
                        waiting=k.V1ContainerStateWaiting(
                            reason="CreateContainerConfigError",
                            message=f"couldn't find key API_KEY in Secret {namespace}/app-secrets",
                        )
                    ),
                )
            ],
        ),
    )
    cluster.events.append(
        k.CoreV1Event(
            metadata=k.V1ObjectMeta(name="e1"),
            involved_object=k.V1ObjectReference(kind="Pod", name="needs-key"),
            type="Warning",
            reason="Failed",
            count=3,
            message=f"Error: couldn't find key API_KEY in Secret {namespace}/app-secrets; db at 10.43.12.5:5432 "
            f"and postgres.{namespace}.svc.cluster.local:5432 on node {node}",
        )
    )
    return cluster
