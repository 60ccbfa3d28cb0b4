"""Which transport a submission goes through, chosen from the settings as the argo CLI chooses:
the one given, the Argo Server, or the Kubernetes API. It sits above both transports, which know
nothing of each other."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llmstep.cluster.argo_server import ArgoServer
from llmstep.cluster.transports import KubeApi, Transport, kube_client


def transport(
    *,
    client: Any = None,
    transport: Transport | None = None,
    kubeconfig: str | None = None,
    context: str | None = None,
    argo_server: str | None = None,
    token: str | None = None,
    verify: bool | str | None = None,
    client_certs: tuple[str, str] | None = None,
    env: Mapping[str, str] | None = None,
) -> Transport:
    """The transport the settings name, as the argo CLI chooses it: ``transport`` when given (a
    ``FakeCluster``, say); the Argo Server when ``argo_server`` (or ``ARGO_SERVER`` in ``env``, the
    settings the entry point read) names one; else the Kubernetes API."""
    env = env or {}
    if transport is not None:
        return transport
    server = argo_server or env.get("ARGO_SERVER")
    if client is not None or not server:
        return KubeApi(client or kube_client(kubeconfig, context))
    if "://" not in server:  # the argo CLI's ARGO_SERVER is host:port; ARGO_SECURE picks the scheme
        secure = env.get("ARGO_SECURE", "true").lower() != "false"
        server = f"{'https' if secure else 'http'}://{server}{env.get('ARGO_BASE_HREF', '')}"
    if verify is None:
        verify = env.get("ARGO_INSECURE_SKIP_VERIFY", "false").lower() != "true"
    return ArgoServer(server, token=token or env.get("ARGO_TOKEN"), verify=verify, client_certs=client_certs)
