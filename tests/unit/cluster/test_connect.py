"""Which transport a submission goes through, chosen from the settings as the argo CLI chooses it."""

from __future__ import annotations

from llmstep.cluster.argo_server import ArgoServer
from llmstep.cluster.connect import transport
from llmstep.cluster.transports import KubeApi


def test_transport_is_chosen_like_the_argo_cli(monkeypatch):
    server = transport(env={"ARGO_SERVER": "argo.example:2746", "ARGO_TOKEN": "t", "ARGO_INSECURE_SKIP_VERIFY": "true"})
    assert isinstance(server, ArgoServer) and server.host == "https://argo.example:2746/"
    assert server.service.token == "Bearer t" and server.service.verify_ssl is False
    plain = transport(env={"ARGO_SERVER": "localhost:2746", "ARGO_SECURE": "false", "ARGO_BASE_HREF": "/argo"})
    assert plain.host == "http://localhost:2746/argo/" and plain.service.verify_ssl is True
    assert isinstance(transport(client=object(), env={"ARGO_SERVER": "x:1"}), KubeApi)  # an explicit client wins
