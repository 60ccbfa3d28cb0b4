"""A Workflow or Tekton file from elsewhere is data: run with the real CLI (``llmstep run FILE``), on
both engines, with and without the fork server, it never runs code, writes outside its record, or
sends a key to an endpoint the user did not configure, without an opt-in. Each hostile file is
refused with exit 2 and a message naming the step and the field, and nothing it aimed at happened:
the marker file is not there, the loopback server (standing in for an attacker's endpoint) got no
request, the key is nowhere in the output or the record."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from chains import openai_chain
from conftest import run_cli
from langchain_core.prompts import PromptTemplate
from openai_server import FakeOpenAI

import llmstep

KEY = "sk-hostile-file-key-0123456789abcdef"
CLEAN = {"OPENAI_BASE_URL": "", "OPENAI_API_BASE": "", "AZURE_OPENAI_ENDPOINT": "", "LLMSTEP_FORKSERVER_IDLE": "0"}
ENGINES = ["argo", "tekton"]
FORK = [pytest.param([], id="fork-server"), pytest.param(["--no-fork-server"], id="cold")]


def _docs(engine: str, chain: Any = None) -> list[dict[str, Any]]:
    compiled = llmstep.compile(chain if chain is not None else PromptTemplate.from_template("{q}"))
    return [compiled.to_dict()] if engine == "argo" else compiled.to_tekton()


def _write(tmp_path: Path, docs: list[dict[str, Any]]) -> Path:
    path = tmp_path / "hostile.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    return path


def _step_containers(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The step containers (Argo) or Task steps (Tekton) that run ``llmstep exec``."""
    found = []
    for doc in docs:
        spec = doc.get("spec") or {}
        found += [t["container"] for t in spec.get("templates") or [] if "container" in t]
        for task in [*(spec.get("tasks") or []), *(spec.get("finally") or [])]:
            found += (task.get("taskSpec") or {}).get("steps") or []
        found += spec.get("steps") or []
    return [c for c in found if "exec" in (c.get("command") or [])[:2]]


def _edit_payloads(docs: list[dict[str, Any]], edit: Callable[[dict[str, Any]], None]) -> None:
    """Apply ``edit`` to every llmstep payload (a raw artifact's data, a Tekton param), in place."""

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        if isinstance(node, str) and node.lstrip().startswith("{") and '"llmstep"' in node:
            payload = json.loads(node)
            edit(payload)
            return json.dumps(payload)
        return node

    for i, doc in enumerate(docs):
        docs[i] = walk(doc)


def _run(tmp_path: Path, path: Path, *args: str, env: dict[str, str] | None = None):
    return run_cli(
        "run", str(path), "--input", '{"q": "hi", "question": "hi"}', *args, cwd=tmp_path, env={**CLEAN, **(env or {})}
    )


def _no_record(tmp_path: Path) -> None:
    runs = tmp_path / ".llmstep" / "runs"
    assert not runs.exists() or not any(runs.iterdir()), "refused before a record was made"


# ---------------------------------------------------------------- the environment


def _planted(tmp_path: Path) -> tuple[Path, Path]:
    """A folder with start-up code (as a file's raw artifact would fill one), and its marker."""
    marker, folder = tmp_path / "pwned", tmp_path / "planted"
    folder.mkdir()
    for name in ("sitecustomize.py", "usercustomize.py", "startup.py"):
        (folder / name).write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    return folder, marker


@pytest.mark.parametrize("fork", FORK)
@pytest.mark.parametrize("engine", ENGINES)
def test_a_file_cannot_make_a_step_load_code_through_its_environment(tmp_path, engine, fork):
    folder, marker = _planted(tmp_path)
    for name, value in (
        ("PYTHONPATH", str(folder)),
        ("PYTHONSTARTUP", str(folder / "startup.py")),
        ("PYTHONUSERBASE", str(folder)),
        ("LD_PRELOAD", str(folder / "x.so")),
    ):
        docs = _docs(engine)
        for container in _step_containers(docs):
            container.setdefault("env", []).append({"name": name, "value": value})
        result = _run(tmp_path, _write(tmp_path, docs), *fork)
        assert result.returncode == 2, (name, result.stderr)
        assert f"env {name} is refused in a document from a file" in result.stderr
        assert "could make the step load code" in result.stderr and "prompttemplate" in result.stderr
        assert not marker.exists()
        _no_record(tmp_path)


def test_a_raw_artifact_named_like_a_startup_module_never_runs(tmp_path):
    """The whole attack in one Argo file: the step's own data directory holds sitecustomize.py (a
    raw input artifact) and PYTHONPATH points there (the step's working directory is its folder)."""
    marker = tmp_path / "pwned"
    [doc] = _docs("argo")
    for template in doc["spec"]["templates"]:
        if "container" in template:
            template["inputs"]["artifacts"].append(
                {"name": "boot", "path": "/llmstep/sitecustomize.py", "raw": {"data": f"open({str(marker)!r}, 'w')\n"}}
            )
            template["container"]["env"] = [{"name": "PYTHONPATH", "value": "data"}]
    for fork in ([], ["--no-fork-server"]):
        result = _run(tmp_path, _write(tmp_path, [doc]), *fork)
        assert result.returncode == 2, result.stderr
        assert "env PYTHONPATH is refused" in result.stderr and not marker.exists()


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(
    ("name", "from_secret", "why"),
    [
        ("BASH_ENV", False, "load code"),
        ("NODE_OPTIONS", False, "load code"),
        ("GCONV_PATH", False, "load code"),
        ("HTTPS_PROXY", False, "send data elsewhere"),
        ("https_proxy", False, "send data elsewhere"),
        ("SSLKEYLOGFILE", False, "send data elsewhere"),
        ("REQUESTS_CA_BUNDLE", False, "send data elsewhere"),
        ("OPENAI_BASE_URL", False, "says where the model is"),
        ("LANGSMITH_ENDPOINT", False, "send data elsewhere"),
        ("LLMSTEP_DATA_DIR", False, "load code or send data"),
        ("PYTHONPATH", True, "load code"),
        ("KUBECONFIG", True, "send data elsewhere"),
        ("HOME", False, "load code"),
    ],
)
def test_loader_interpreter_and_redirecting_variables_are_refused(tmp_path, engine, name, from_secret, why):
    docs = _docs(engine)
    entry = (
        {"name": name, "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}
        if from_secret
        else {"name": name, "value": "/tmp/elsewhere"}
    )
    for container in _step_containers(docs):
        container.setdefault("env", []).append(entry)
    result = _run(tmp_path, _write(tmp_path, docs), env={"k": "secret-value-123456"})
    assert result.returncode == 2, result.stderr
    assert f"env {name} is refused" in result.stderr and why in result.stderr
    _no_record(tmp_path)


@pytest.mark.parametrize("engine", ENGINES)
def test_a_files_own_variables_still_reach_its_steps(tmp_path, engine):
    chain = llmstep.Step(PromptTemplate.from_template("{q}"), env={"MODE": "fast"})
    result = _run(tmp_path, _write(tmp_path, _docs(engine, chain)))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "hi"


# ---------------------------------------------------------------- the arguments


def _hostile_args(engine: str, target: Path) -> list[list[str]]:
    """Spellings that would make a step write ``target`` (a file the attacker names)."""
    if engine == "argo":
        return [
            ["--result", f"preview={target}"],
            [f"--data-dir={target.parent}"],
            ["--data", str(target.parent)],
            ["--data-d", str(target.parent)],
            ["--link-root", "/llmstep/../../.."],
            ["--data-dir", str(target.parent)],
            ["--result", "preview=/llmstep/../../../x"],
        ]
    return [
        ["--result", f"preview={target}"],
        ["--result", f"sha256=$(workspaces.data.path)/../../{target.name}"],
        [f"--result=preview={target}"],
        ["--res", f"preview={target}"],
        ["--link-root", str(target.parent)],
        ["--secrets-dir", "/home"],
        ["--data", str(target.parent)],
    ]


@pytest.mark.parametrize("engine", ENGINES)
def test_step_arguments_never_point_outside_the_record(tmp_path, engine):
    target = tmp_path / "home" / ".bashrc"
    target.parent.mkdir()
    for hostile in _hostile_args(engine, target):
        docs = _docs(engine)
        for container in _step_containers(docs):
            key = "args" if "args" in container else "command"
            container[key] = container[key] + hostile
        result = _run(tmp_path, _write(tmp_path, docs))
        assert result.returncode == 2, (hostile, result.stderr)
        assert "task " in result.stderr or "template" in result.stderr, result.stderr
        assert any(
            s in result.stderr
            for s in (
                "outside the step's data directory",
                "spell the option in full",
                "separate argument",
                "is given twice",
            )
        ), (hostile, result.stderr)
        assert not any(target.parent.iterdir()), hostile
        _no_record(tmp_path)


def _diagnose_docs(engine: str, *extra: str) -> list[dict[str, Any]]:
    """A chain whose failure handler runs ``llmstep diagnose`` with ``extra`` arguments."""
    compiled = llmstep.compile(PromptTemplate.from_template("{q}"), on_failure=llmstep.Diagnose())
    docs = [compiled.to_dict()] if engine == "argo" else compiled.to_tekton()
    for doc in docs:
        spec = doc.get("spec") or {}
        for container in (
            [t["container"] for t in spec.get("templates") or [] if "container" in t]
            + [s for task in spec.get("finally") or [] for s in (task.get("taskSpec") or {}).get("steps") or []]
            + list(spec.get("steps") or [])
        ):
            if container.get("command", [])[:2] == ["llmstep", "diagnose"]:
                key = "args" if "args" in container else "command"
                argv = list(container[key])
                if extra and extra[0] in argv and len(extra) == 2:  # the Task's own option: its value replaced
                    argv[argv.index(extra[0]) + 1] = extra[1]
                else:
                    argv += list(extra)
                container[key] = argv
    return docs


@pytest.mark.parametrize("engine", ENGINES)
def test_a_diagnose_step_never_reads_local_files_or_another_key(tmp_path, engine):
    docs = [
        d for d in _diagnose_docs("tekton") if d.get("kind") == "Task" and d["metadata"]["name"] == "llmstep-diagnose"
    ]
    assert docs  # the diagnose Task is in the set
    secret_file = tmp_path / "id_rsa"
    secret_file.write_text("-----BEGIN PRIVATE KEY-----")
    for extra in (
        ["-f", str(secret_file)],
        ["--filename", str(secret_file)],
        ["--kubeconfig", str(secret_file)],
        ["--api-key-env", "GITHUB_TOKEN"],
        ["--webhook-env", "HOOK"],
        ["--output-dir", str(tmp_path)],
        ["--summary-file", str(tmp_path / "s")],
        ["--output", str(tmp_path / "r")],
        ["--out", "x"],
    ):
        result = _run(tmp_path, _write(tmp_path, _diagnose_docs(engine, *extra)))
        assert result.returncode == 2, (extra, result.stderr)
        assert extra[0] in result.stderr, result.stderr
        _no_record(tmp_path)


# ---------------------------------------------------------------- where the key goes


def _aimed_at(url: str) -> Callable[[dict[str, Any]], None]:
    def edit(payload: dict[str, Any]) -> None:
        data = payload["data"]
        if data.get("id", [""])[-1] == "ChatOpenAI":
            data["kwargs"]["openai_api_base"] = url

    return edit


@pytest.mark.parametrize("fork", FORK)
@pytest.mark.parametrize("engine", ENGINES)
def test_a_payload_never_sends_the_key_to_its_own_endpoint(tmp_path, engine, fork):
    with FakeOpenAI(reply="configured") as configured, FakeOpenAI(reply="attacker") as attacker:
        docs = _docs(engine, openai_chain())
        _edit_payloads(docs, _aimed_at(attacker.url))
        path = _write(tmp_path, docs)
        env = {"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": configured.url}
        refused = _run(tmp_path, path, *fork, env=env)
        assert refused.returncode == 2, refused.stderr
        assert f"sends your model key to '{attacker.url}'" in refused.stderr and "openai_api_base" in refused.stderr
        assert f"--allow-endpoint {attacker.url}" in refused.stderr and configured.url in refused.stderr
        assert attacker.requests == [] and configured.requests == []
        _no_record(tmp_path)
        allowed = _run(tmp_path, path, *fork, "--allow-endpoint", attacker.url, env=env)
        assert allowed.returncode == 0, allowed.stderr
        assert allowed.stdout.strip().startswith("attacker")
        assert [r["headers"]["authorization"] for r in attacker.requests] == [f"Bearer {KEY}"]


def test_without_a_configured_endpoint_only_the_providers_own_is_allowed(tmp_path):
    with FakeOpenAI() as attacker:
        docs = _docs("argo", openai_chain())
        _edit_payloads(docs, _aimed_at(attacker.url))
        refused = _run(tmp_path, _write(tmp_path, docs), env={"OPENAI_API_KEY": KEY})
        assert refused.returncode == 2 and "https://api.openai.com/v1" in refused.stderr
        assert attacker.requests == []


@pytest.mark.parametrize("engine", ENGINES)
def test_a_diagnose_step_never_sends_the_key_to_the_files_endpoint(tmp_path, engine):
    with FakeOpenAI() as attacker:
        result = _run(
            tmp_path, _write(tmp_path, _diagnose_docs(engine, "--base-url", attacker.url)), env={"OPENAI_API_KEY": KEY}
        )
        assert result.returncode == 2, result.stderr
        assert "--base-url sends your model key to" in result.stderr and "--allow-endpoint" in result.stderr
        assert attacker.requests == []


def test_a_diagnose_endpoint_from_a_parameter_is_refused_when_substituted(tmp_path):
    """Tekton's diagnose Task takes --base-url from a param: refused once substituted, before the
    step starts; the run fails with the reason and the server gets nothing."""
    with FakeOpenAI() as attacker:
        compiled = llmstep.compile(
            PromptTemplate.from_template("{q}") | (lambda x: 1 / 0), allow_pickle=True, on_failure=llmstep.Diagnose()
        )
        docs = compiled.to_tekton()
        for doc in docs:
            for task in (doc.get("spec") or {}).get("finally") or []:
                task["params"] = [p for p in task.get("params") or [] if p["name"] != "base-url"]
                task["params"].append({"name": "base-url", "value": attacker.url})
        result = _run(
            tmp_path,
            _write(tmp_path, docs),
            "--allow-pickle",
            env={"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"},
        )
        assert result.returncode == 1, result.stderr
        assert attacker.requests == []
        show = run_cli("show", "--json", next((tmp_path / ".llmstep" / "runs").iterdir()).name, cwd=tmp_path)
        assert "--base-url sends your model key to" in show.stdout and "--allow-endpoint" in show.stdout


# ---------------------------------------------------------------- secrets read by a prompt


def _reads_the_key(payload: dict[str, Any]) -> None:
    data = payload["data"]
    if data.get("id", [""])[-1] == "PromptTemplate":
        data["kwargs"]["template"] = {"lc": 1, "type": "secret", "id": ["OPENAI_API_KEY"]}
        data["kwargs"]["input_variables"] = []
        payload["secrets"] = ["OPENAI_API_KEY"]


@pytest.mark.parametrize("engine", ENGINES)
def test_a_prompt_that_reads_a_secret_never_prints_or_records_it(tmp_path, engine):
    docs = _docs(engine)
    _edit_payloads(docs, _reads_the_key)
    for container in _step_containers(docs):
        container.setdefault("env", []).append(
            {
                "name": "OPENAI_API_KEY",
                "valueFrom": {"secretKeyRef": {"name": "llm-credentials", "key": "OPENAI_API_KEY"}},
            }
        )
    result = _run(tmp_path, _write(tmp_path, docs), env={"OPENAI_API_KEY": KEY})
    assert result.returncode == 2, result.stderr
    assert "reads the secret OPENAI_API_KEY outside a model's credential field" in result.stderr
    assert KEY not in result.stdout + result.stderr
    _no_record(tmp_path)


def test_a_step_refuses_a_secret_outside_a_credential_field_however_the_payload_arrived(tmp_path):
    """The step's own line (a payload that reached it by a path no check saw): it never loads it."""
    from conftest import exec_step, write_step

    docs = _docs("argo")
    _edit_payloads(docs, _reads_the_key)
    [doc] = docs
    raw = next(
        a["raw"]["data"]
        for t in doc["spec"]["templates"]
        for a in (t.get("inputs") or {}).get("artifacts") or []
        if "raw" in a
    )
    for place in ("template", "partial"):
        payload = json.loads(raw)
        if place == "partial":
            payload["data"]["kwargs"].update(
                template="{x}", partial_variables={"x": payload["data"]["kwargs"]["template"]}
            )
        data_dir = write_step(tmp_path / place, payload, json.dumps({}))
        result = exec_step(data_dir, {"OPENAI_API_KEY": KEY})
        assert result.returncode == 2, result.stderr
        assert KEY not in result.stdout + result.stderr and not (data_dir / "output.json").exists()
        error = (data_dir / "error.json").read_text()
        assert "reads the secret OPENAI_API_KEY" in error and KEY not in error


def test_a_step_refuses_a_payload_naming_another_endpoint_however_it_arrived(tmp_path):
    """The step's own line, as for pickles: a file's step is told the endpoints its payload may name
    (LLMSTEP_ENDPOINTS), so a payload that reached it by a path no check saw sends nothing."""
    from conftest import exec_step, write_step

    with FakeOpenAI() as attacker, FakeOpenAI(reply="configured") as configured:
        docs = _docs("argo", openai_chain())
        _edit_payloads(docs, _aimed_at(attacker.url))
        [doc] = docs
        raw = next(
            a["raw"]["data"]
            for t in doc["spec"]["templates"]
            for a in (t.get("inputs") or {}).get("artifacts") or []
            if "raw" in a and "ChatOpenAI" in a["raw"]["data"]
        )
        data_dir = write_step(tmp_path / "d", json.loads(raw), json.dumps("hi"))
        env = {"OPENAI_API_KEY": KEY, "LLMSTEP_ENDPOINTS": configured.url}
        result = exec_step(data_dir, env)
        assert result.returncode == 2, result.stderr
        assert "openai_api_base sends the model key to" in (data_dir / "error.json").read_text()
        assert attacker.requests == [] and configured.requests == []
        allowed = exec_step(data_dir, {**env, "LLMSTEP_ENDPOINTS": f"{configured.url}\n{attacker.url}"})
        assert allowed.returncode == 0, allowed.stderr
        assert [r["headers"]["authorization"] for r in attacker.requests] == [f"Bearer {KEY}"]


def test_the_readme_says_what_is_enforced():
    from llmstep.local.trust import ALLOW_ENDPOINT

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    section = readme[readme.index("**A Workflow or Tekton file from elsewhere is data.**") :]
    for promise in (
        ALLOW_ENDPOINT,
        "spelled in full",
        "`--result NAME=PATH`",
        "`PYTHON*`",
        "`LD_*`",
        "`OPENAI_BASE_URL`",
        "credential field",
        "exits 2 before any step runs",
    ):
        assert promise in section, promise
