"""Hostile or edited files: a pickle payload in a Workflow file, a Tekton set or a run record never
runs without --allow-pickle, whatever its (self-attested) digest says."""

from __future__ import annotations

import base64
import hashlib
import json
import pickle
from pathlib import Path

import pytest
import yaml
from conftest import exec_step, run_cli, write_step
from langchain_core.runnables import RunnableLambda

import llmstep


class _Crafted:
    """A pickle that creates a file when it is loaded (as a real attack would run os.system)."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _crafted_payload(text: str, marker: Path) -> str:
    payload = json.loads(text)
    blob = pickle.dumps(_Crafted(marker))
    payload.update(data=base64.b64encode(blob).decode(), sha256=hashlib.sha256(blob).hexdigest())  # its own digest
    return json.dumps(payload)


def _hostile_workflow(tmp_path: Path, marker: Path, escaped: bool = False) -> Path:
    doc = llmstep.compile(RunnableLambda(lambda x: x), allow_pickle=True).to_dict()
    for template in doc["spec"]["templates"]:
        for art in (template.get("inputs") or {}).get("artifacts") or []:
            if "raw" in art:
                art["raw"]["data"] = _crafted_payload(art["raw"]["data"], marker)
                if escaped:  # the same JSON to a parser, other text to a substring search
                    art["raw"]["data"] = art["raw"]["data"].replace('"llmstep"', '"\\u006clmstep"')
    path = tmp_path / "wf.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.mark.parametrize("escaped", [False, True], ids=["plain", "escaped-keys"])
def test_pickle_payload_from_a_workflow_file_refused_without_opt_in(tmp_path, escaped):
    marker = tmp_path / "pwned"
    result = run_cli("run", str(_hostile_workflow(tmp_path, marker, escaped)), "--input", '"x"', cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "step 'runnablelambda'" in result.stderr and "--allow-pickle" in result.stderr
    assert not marker.exists()
    runs = tmp_path / ".llmstep" / "runs"
    assert not runs.exists() or not any(runs.iterdir())  # refused before a record was made


def test_pickle_payload_from_a_tekton_file_refused_without_opt_in(tmp_path):
    marker = tmp_path / "pwned"
    docs = llmstep.compile(RunnableLambda(lambda x: x), allow_pickle=True).to_tekton()
    for doc in docs:
        for param in (doc.get("spec") or {}).get("params") or []:
            if isinstance(param.get("default"), str) and '"format"' in param["default"]:
                param["default"] = _crafted_payload(param["default"], marker)
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    result = run_cli("run", str(path), "--input", '"x"', cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "is a pickle payload" in result.stderr and "--allow-pickle" in result.stderr
    assert not marker.exists()


def test_pickle_payload_in_a_resumed_record_refused_without_opt_in(tmp_path):
    """A run record is a file too: an edited workflow.yaml must not run its pickle on --resume."""
    marker = tmp_path / "pwned"
    flag = tmp_path / "flag"
    script = tmp_path / "gate_chain.py"
    script.write_text(
        "from pathlib import Path\nfrom langchain_core.runnables import RunnableLambda\n"
        f"def gate(x):\n    if not Path({str(flag)!r}).exists():\n        raise RuntimeError('no flag')\n    return x\n"
        "chain = RunnableLambda(gate)\n"
    )
    failed = run_cli("run", "gate_chain.py:chain", "--allow-pickle", "--input", '"x"', cwd=tmp_path)
    assert failed.returncode == 1, failed.stderr
    [record] = (tmp_path / ".llmstep" / "runs").iterdir()
    wf = record / "workflow.yaml"
    doc = yaml.safe_load(wf.read_text())
    for template in doc["spec"]["templates"]:
        for art in (template.get("inputs") or {}).get("artifacts") or []:
            if "raw" in art:
                art["raw"]["data"] = _crafted_payload(art["raw"]["data"], marker)
    wf.write_text(yaml.safe_dump(doc))
    before = (record / "status.json").read_bytes()
    flag.write_text("ok")
    resumed = run_cli("run", "--resume", record.name, cwd=tmp_path)
    assert resumed.returncode == 2, resumed.stderr
    assert "is a pickle payload" in resumed.stderr and not marker.exists()
    assert (record / "status.json").read_bytes() == before  # refused before it touched the record


def test_step_told_to_refuse_pickles_refuses_one_however_it_arrived(tmp_path):
    """The runner's second line: each step of a file run is told to refuse a pickle payload, so
    one that reached it by a path no check saw (an earlier step's output) still never loads."""
    marker = tmp_path / "pwned"
    doc = llmstep.compile(RunnableLambda(lambda x: x), allow_pickle=True).to_dict()
    raw = next(
        a["raw"]["data"]
        for t in doc["spec"]["templates"]
        for a in (t.get("inputs") or {}).get("artifacts") or []
        if "raw" in a
    )
    data_dir = write_step(tmp_path / "d", json.loads(_crafted_payload(raw, marker)), json.dumps("x"))
    result = exec_step(data_dir, {"LLMSTEP_PICKLE": "refuse"})
    assert result.returncode == 2 and not marker.exists()
    assert "pickle payload" in json.loads((data_dir / "error.json").read_text())["message"]


def test_pickle_payload_from_a_file_runs_with_opt_in(tmp_path):
    doc = llmstep.compile(RunnableLambda(lambda x: x + "!"), allow_pickle=True).to_dict()
    path = tmp_path / "wf.yaml"
    path.write_text(yaml.safe_dump(doc))
    result = run_cli("run", str(path), "--input", '"x"', "--allow-pickle", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "x!"


@pytest.mark.parametrize(
    "name",
    [
        "PYTHONPATH",
        "PYTHONSTARTUP",
        "PYTHONHOME",
        "PYTHONUSERBASE",
        "PYTHONINSPECT",
        "PYTHONBREAKPOINT",
        "PYTHONWARNINGS",
        "PYTHONEXECUTABLE",
        "pythonpath",
        "LD_PRELOAD",
        "LD_LIBRARY_PATH",
        "LD_AUDIT",
        "DYLD_INSERT_LIBRARIES",
        "PATH",
        "HOME",
        "BASH_ENV",
        "ENV",
        "BASH_FUNC_ls%%",
        "PERL5LIB",
        "PERL5OPT",
        "NODE_OPTIONS",
        "RUBYOPT",
        "JAVA_TOOL_OPTIONS",
        "GCONV_PATH",
        "HOSTALIASES",
        "NETRC",
        "GIT_SSH_COMMAND",
        "OPENSSL_CONF",
        "SSL_CERT_FILE",
        "SSLKEYLOGFILE",
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
        "HTTPS_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "NO_PROXY",
        "OPENAI_BASE_URL",
        "OPENAI_API_BASE",
        "AZURE_OPENAI_ENDPOINT",
        "ANTHROPIC_BASE_URL",
        "HF_ENDPOINT",
        "LANGSMITH_TRACING",
        "LANGCHAIN_ENDPOINT",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "KUBECONFIG",
        "KUBERNETES_SERVICE_HOST",
        "LLMSTEP_DATA_DIR",
        "LLMSTEP_PICKLE",
    ],
)
def test_loader_interpreter_and_redirecting_variables_are_denied(name):
    from llmstep.local.trust import denied_env

    assert denied_env(name) and denied_env(name, from_secret=True)


def test_a_files_ordinary_variables_and_llmsteps_staged_values_are_not_denied():
    from llmstep import contract
    from llmstep.local.trust import denied_env

    for name in ("MODE", "REGION", "OPENAI_API_KEY", "DATABASE_URL", "NODE_ENV", "LANG", "TZ", "APP_HOSTNAME"):
        assert not denied_env(name), name
    assert not denied_env(contract.PAYLOAD_ENV) and not denied_env(contract.INPUT_ENV)
    assert denied_env(contract.INPUT_ENV, from_secret=True)  # a Secret's value as the chain input would be printed


def test_the_policy_of_a_users_own_chain_checks_nothing_and_a_files_checks_all():
    from llmstep.errors import WorkflowError
    from llmstep.local.trust import Policy

    own = Policy.of(False, (), {})
    own.check_env([("PYTHONPATH", False)], "t")
    own.check_endpoint("http://127.0.0.1:1/v1", "t")
    file = Policy.of(True, ["http://127.0.0.1:2/v1/"], {"OPENAI_BASE_URL": "http://127.0.0.1:1/v1/"})
    assert file.endpoints == ("http://127.0.0.1:1/v1", "http://127.0.0.1:2/v1")
    for url in ("http://127.0.0.1:1/v1", "http://127.0.0.1:2/v1/", "", None):
        file.check_endpoint(url, "t")
    with pytest.raises(WorkflowError, match=r"t sends your model key to 'https://api.openai.com/v1'.*--allow-endpoint"):
        file.check_endpoint("https://api.openai.com/v1", "t")
    with pytest.raises(WorkflowError, match="env PYTHONPATH is refused"):
        file.check_env([("MODE", False), ("PYTHONPATH", False)], "t")


def test_payload_fields_that_name_an_endpoint_are_checked_wherever_they_are():
    from llmstep.errors import WorkflowError
    from llmstep.local.trust import Policy

    file = Policy.of(True, (), {})
    for field in ("openai_api_base", "base_url", "azure_endpoint", "openai_proxy", "anthropic_api_url"):
        nested = {"lc": 1, "type": "constructor", "id": ["x", "Y"], "kwargs": {field: "http://127.0.0.1:3/v1"}}
        payload = {
            "llmstep": 2,
            "format": "lc",
            "name": "s",
            "data": {"lc": 1, "type": "constructor", "id": ["a"], "kwargs": {"bound": nested}},
        }
        with pytest.raises(WorkflowError, match=f"field {field}"):
            file.check_payloads([], {"input": json.dumps(payload)})  # a parameter holding a payload too
    file.check_payloads([], {"input": json.dumps({"llmstep": 2, "format": "lc", "data": {"text": "see http://x"}})})
