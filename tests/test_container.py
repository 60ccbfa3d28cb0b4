"""Local runs inside the real step image (--isolation container), compared with process runs.

Needs podman; skipped with the reason when it is absent. CI installs podman, writes its own
podman config (images/podman-env.sh), makes a Debian base image without a registry
(images/base-debian.sh) and sets LLMSTEP_TEST_BASE_IMAGE, so there these tests run.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from chains import qa_prompt
from conftest import CONTAINER_MARKS, ROOT, run_cli
from langchain_core.runnables import RunnableLambda

import llmstep

pytestmark = CONTAINER_MARKS


@pytest.fixture(scope="module")
def image(step_image):
    return step_image


def test_example_chain_in_containers_equals_process_run(image, tmp_path):
    args = ["run", f"{ROOT}/examples/parallel.py:chain", "--image", image, "--input", '{"topic": "pods"}', "--json"]
    in_process = run_cli(*args, cwd=tmp_path)
    in_containers = run_cli(*args, "--isolation", "container", cwd=tmp_path, timeout=600)
    assert in_process.returncode == 0, in_process.stderr
    assert in_containers.returncode == 0, in_containers.stderr
    assert json.loads(in_containers.stdout)["output"] == json.loads(in_process.stdout)["output"]


def test_tekton_run_in_containers(image, tmp_path):
    chain = llmstep.compile(qa_prompt() | llmstep.OfflineChatModel(), image=image)
    out = chain.run_local({"question": "tekton box"}, engine="tekton", isolation="container", runs_dir=tmp_path / "r")
    assert out.content == "offline answer: tekton box"


def test_container_is_locked_down_like_the_pod(image, tmp_path):
    def inspect(x):
        import os
        import pathlib

        try:
            pathlib.Path("/usr/llmstep-probe").write_text("x")
            writable_root = True
        except OSError:
            writable_root = False
        return {
            "uid": os.getuid(),
            "nets": sorted(os.listdir("/sys/class/net")),
            "writable_root": writable_root,
            "key": os.environ.get("OPENAI_API_KEY"),
        }

    compiled = llmstep.compile(RunnableLambda(inspect), allow_pickle=True, image=image)
    out = compiled.run_local(1, isolation="container", runs_dir=tmp_path / "r", secrets={"OPENAI_API_KEY": "sk-no"})
    assert out == {"uid": 10001, "nets": ["lo"], "writable_root": False, "key": None}


def test_missing_image_is_a_clear_error(tmp_path):
    result = run_cli(
        "run",
        f"{ROOT}/examples/qa.py:chain",
        "--image",
        "localhost/llmstep-missing:0",
        "--isolation",
        "container",
        "--input",
        '{"question": "q"}',
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "not in podman's store" in result.stderr and "images/build.sh" in result.stderr


def test_model_step_in_a_container_reaches_the_model_on_the_host_network(image, tmp_path):
    from langchain_core.output_parsers import StrOutputParser
    from langchain_openai import ChatOpenAI
    from openai_server import FakeOpenAI

    with FakeOpenAI() as server:  # stands in for the OpenAI API, on this machine's loopback
        llm = ChatOpenAI(model="m", api_key="sk-placeholder", base_url=server.url, max_retries=0)
        compiled = llmstep.compile(qa_prompt() | llm | StrOutputParser(), image=image)
        out = compiled.run_local(
            {"question": "boxed"},
            isolation="container",
            runs_dir=tmp_path / "r",
            secrets={"OPENAI_API_KEY": "sk-container-secret"},
        )
    assert out == "echo: boxed"
    assert server.requests[0]["headers"]["authorization"] == "Bearer sk-container-secret"


def test_extra_ca_bundle_is_trusted_in_the_image(tmp_path):
    pem = tmp_path / "corp-ca.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=llmstep-test-proxy-ca",
            "-keyout",
            str(tmp_path / "k.pem"),
            "-out",
            str(pem),
        ],
        check=True,
        capture_output=True,
    )
    tag = "localhost/llmstep-test-ca:latest"
    build = subprocess.run(
        [
            str(ROOT / "images" / "build.sh"),
            "--engine",
            "podman",
            "--tag",
            tag,
            "--base",
            os.environ["LLMSTEP_TEST_BASE_IMAGE"],
            "--wheelhouse",
            "--extra-ca",
            str(pem),
        ],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert build.returncode == 0, build.stderr[-2000:]
    line = pem.read_text().strip().splitlines()[1]
    found = subprocess.run(
        [
            "podman",
            "run",
            "--rm",
            "--network",
            "none",
            "--entrypoint",
            "grep",
            tag,
            "-c",
            line,
            "/etc/ssl/certs/ca-certificates.crt",
        ],
        capture_output=True,
        text=True,
    )
    assert found.stdout.strip() == "1", found.stderr
    env = subprocess.run(
        ["podman", "run", "--rm", "--network", "none", "--entrypoint", "printenv", tag, "SSL_CERT_FILE"],
        capture_output=True,
        text=True,
    )
    assert env.stdout.strip() == "/etc/ssl/certs/ca-certificates.crt"
