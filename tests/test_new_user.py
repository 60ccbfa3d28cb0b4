"""What a new user hit (issue: values between steps and the rough edges): each test fails on the
code before the fix."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml
from argo_server import TOKEN, FakeArgoServer
from chains import qa_chain
from conftest import chain_module, run_cli
from kube_fake import kubeconfig as kube_kubeconfig

import llmstep


def test_version():
    out = run_cli("--version")
    assert out.returncode == 0 and out.stdout.strip() == f"llmstep {llmstep.__version__}"


def test_runs_and_show_have_json_and_the_runs_dir_is_explained(tmp_path):
    chain_module(tmp_path, "from chains import qa_chain\nchain = qa_chain()\n")
    ran = run_cli("run", "mychain.py:chain", "--input", '{"question": "listed"}', "--json", cwd=tmp_path)
    run_id = json.loads(ran.stdout)["run"]
    runs = json.loads(run_cli("runs", "--json", cwd=tmp_path).stdout)
    assert [(r["run"], r["phase"], r["steps"]) for r in runs] == [(run_id, "Succeeded", 3)]
    shown = json.loads(run_cli("show", run_id, "--json", cwd=tmp_path).stdout)
    assert shown["output"] == "offline answer: listed" and set(shown["steps"]) == {
        "ChatPromptTemplate",
        "OfflineChatModel",
        "StrOutputParser",
    }
    assert shown["steps"]["StrOutputParser"]["output"] == "offline answer: listed"
    one = json.loads(run_cli("show", run_id, "StrOutputParser", "--json", cwd=tmp_path).stdout)
    assert one["phase"] == "Succeeded" and one["output"] == "offline answer: listed"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    listed = run_cli("runs", "--json", cwd=elsewhere, env={"LLMSTEP_RUNS_DIR": str(tmp_path / ".llmstep" / "runs")})
    assert [r["run"] for r in json.loads(listed.stdout)] == [run_id]
    helped = " ".join(run_cli("runs", "--help").stdout.split())
    assert "LLMSTEP_RUNS_DIR" in helped and "per directory" in helped


def test_input_given_twice_is_refused(tmp_path):
    chain_module(tmp_path, "from chains import qa_chain\nchain = qa_chain()\n")
    out = run_cli(
        "run", "mychain.py:chain", "--input", '{"question": "a"}', "-p", 'input={"question": "b"}', cwd=tmp_path
    )
    assert out.returncode == 2 and "give the input once: --input JSON or -p input=JSON, not both" in out.stderr


@pytest.mark.parametrize("image", ["bad image", "UPPER:tag:x", "repo/name:", "a//b", "name@sha256:short"])
def test_bad_image_references_are_refused(tmp_path, image):
    chain_module(tmp_path, "from chains import qa_chain\nchain = qa_chain()\n")
    out = run_cli("compile", "mychain.py:chain", "--image", image, cwd=tmp_path)
    assert out.returncode == 2 and "must be an image reference" in out.stderr and repr(image) in out.stderr
    with pytest.raises(llmstep.CompileError, match="image must be an image reference"):
        llmstep.compile(qa_chain(), image=image)
    with pytest.raises(llmstep.CompileError, match=r"Step\(image=...\) must be an image reference"):
        llmstep.Step(qa_chain(), image=image)


@pytest.mark.parametrize(
    "image",
    [
        "llmstep:0.1.0",
        "ghcr.io/team/llmstep:0.1",
        "localhost:5000/x/y",
        "registry.example.com/a/b@sha256:" + "a" * 64,
        "busybox",
    ],
)
def test_good_image_references_pass(image):
    assert llmstep.compile(qa_chain(), image=image).plan.image == image


def test_compile_documents_what_it_raises_and_run_local_is_quiet_unless_asked(tmp_path, capfd):
    assert "Raises:" in llmstep.compile.__doc__ and "CompileError" in llmstep.compile.__doc__
    assert "Raises:" in llmstep.Compiled.run_local.__doc__
    compiled = llmstep.compile(qa_chain())
    assert compiled.run_local({"question": "q"}, runs_dir=tmp_path / "r") == "offline answer: q"
    assert capfd.readouterr().err == ""
    compiled.run_local({"question": "q"}, runs_dir=tmp_path / "r", progress=True)
    err = capfd.readouterr().err
    assert "ChatPromptTemplate succeeded" in err and "succeeded" in err


def _batch_file(tmp_path, body: str) -> None:
    (tmp_path / "b.py").write_text("from langchain_core.runnables import RunnableLambda\n" + body)
    out = run_cli("compile", "b.py:chain", "--allow-pickle", "--batch", "2", "-o", "batch.yaml", cwd=tmp_path)
    assert out.returncode == 0, out.stderr


def test_the_batch_workflow_takes_a_plain_json_list(tmp_path):
    _batch_file(
        tmp_path, "chain = RunnableLambda(lambda d: d['question'].upper()) | RunnableLambda(lambda s: s + '!')\n"
    )
    doc = yaml.safe_load((tmp_path / "batch.yaml").read_text())
    [param] = doc["spec"]["arguments"]["parameters"]
    assert param["name"] == "inputs" and "JSON list" in param["description"]
    out = run_cli(
        "run", "batch.yaml", "--allow-pickle", "-p", 'inputs=[{"question": "a"}, {"question": "b c"}]', cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr
    assert [json.loads(line) for line in out.stdout.splitlines()] == [
        {"index": 0, "output": "A!"},
        {"index": 1, "output": "B C!"},
    ]


def test_a_batch_of_strings_and_of_llmstep_values(tmp_path):
    _batch_file(tmp_path, "chain = RunnableLambda(lambda s: [type(s).__name__, s]) | RunnableLambda(lambda x: x)\n")
    out = run_cli("run", "batch.yaml", "--allow-pickle", "-p", 'inputs=["plain text", "x y"]', cwd=tmp_path)
    assert [json.loads(line)["output"] for line in out.stdout.splitlines()] == [["str", "plain text"], ["str", "x y"]]
    (tmp_path / "in.jsonl").write_text('"3"\n3\n[1, 2]\n')  # a string that is JSON: --inputs wraps it
    out = run_cli("run", "b.py:chain", "--allow-pickle", "--inputs", "in.jsonl", cwd=tmp_path)
    assert [json.loads(line)["output"] for line in out.stdout.splitlines()] == [
        ["str", "3"],
        ["int", 3],
        ["list", [1, 2]],
    ]


@pytest.mark.parametrize("bad", ["not json", '{"question": "not a list"}'])
def test_a_bad_batch_value_ends_the_run_and_says_why(tmp_path, bad):
    _batch_file(tmp_path, "chain = RunnableLambda(str) | RunnableLambda(str)\n")
    out = run_cli("run", "batch.yaml", "--allow-pickle", "-p", f"inputs={bad}", cwd=tmp_path)
    assert out.returncode == 2 and "withParam must be a JSON list" in out.stderr
    [run] = json.loads(run_cli("runs", "--json", cwd=tmp_path).stdout)
    assert run["phase"] == "Error"  # never left Running


def test_resume_says_which_code_runs_and_can_take_the_current_code(tmp_path):
    (tmp_path / "r.py").write_text(
        "from langchain_core.runnables import RunnableLambda\n"
        "def second(x):\n    raise RuntimeError('a bug')\n"
        "chain = RunnableLambda(lambda x: x + 1) | RunnableLambda(second)\n"
    )
    failed = run_cli("run", "r.py:chain", "--allow-pickle", "--input", "1", "--json", cwd=tmp_path)
    run_id = json.loads(failed.stdout)["run"]
    again = run_cli("run", "--resume", run_id, "--allow-pickle", cwd=tmp_path)
    assert again.returncode == 1
    assert (
        "with the code recorded when it started" in again.stderr
        and f"llmstep run REF --resume {run_id}" in again.stderr
    )
    (tmp_path / "r.py").write_text(
        (tmp_path / "r.py").read_text().replace("raise RuntimeError('a bug')", "return x * 10")
    )
    fixed = run_cli("run", "r.py:chain", "--resume", run_id, "--allow-pickle", cwd=tmp_path)
    assert fixed.returncode == 0, fixed.stderr
    assert "with the current code of r.py:chain" in fixed.stderr and fixed.stdout.strip() == "20"
    shown = json.loads(run_cli("show", run_id, "--json", cwd=tmp_path).stdout)
    assert shown["phase"] == "Succeeded" and shown["output"] == 20
    (tmp_path / "r.py").write_text("from langchain_core.runnables import RunnableLambda\nchain = RunnableLambda(str)\n")
    changed = run_cli("run", "r.py:chain", "--resume", run_id, "--allow-pickle", cwd=tmp_path)
    assert changed.returncode == 2 and "the chain's steps changed" in changed.stderr


def test_submit_and_result_use_the_kubeconfig_contexts_namespace(tmp_path):
    """FakeArgoServer stands in for the Argo Server; the namespace is the one kubectl would use."""
    from llmstep.cluster.transports import default_namespace

    kubeconfig = kube_kubeconfig(tmp_path, "team-a")
    assert default_namespace(kubeconfig) == "team-a" and default_namespace(kubeconfig, "other") == "other-ns"
    with FakeArgoServer(qa_chain(), token=TOKEN) as server:
        env = {"ARGO_SERVER": server.url, "ARGO_TOKEN": TOKEN, "KUBECONFIG": kubeconfig}
        chain_module(tmp_path, "from chains import qa_chain\nchain = qa_chain()\n")
        out = run_cli("submit", "mychain.py:chain", "--input", '{"question": "ns"}', "--wait", cwd=tmp_path, env=env)
        assert out.returncode == 0, out.stderr
        assert "Namespace: team-a" in out.stderr
        assert server.requests[0]["path"].startswith("/api/v1/workflows/team-a")
        name = out.stderr.split("Name: ")[1].split()[0]
        again = run_cli("result", name, cwd=tmp_path, env=env)
        assert again.returncode == 0 and again.stdout.strip() == "offline answer: ns"
        run = llmstep.compile(qa_chain()).submit(
            {"question": "py"}, argo_server=server.url, token=TOKEN, kubeconfig=kubeconfig, context="other"
        )
        assert run.namespace == "other-ns"


def test_submit_passes_plain_json_input_as_plain_json():
    with FakeArgoServer(qa_chain(), token=TOKEN) as server:
        llmstep.compile(qa_chain()).submit({"question": "plain"}, namespace="argo", argo_server=server.url, token=TOKEN)
        [param] = server.requests[0]["body"]["workflow"]["spec"]["arguments"]["parameters"]
        assert json.loads(param["value"]) == {"question": "plain"}  # what argo submit -p input= would pass


def test_the_executor_reads_a_non_json_chain_input_as_text(tmp_path):
    compiled = llmstep.compile(qa_chain())
    (tmp_path / "qa.yaml").write_text(compiled.to_yaml())
    out = subprocess.run(
        [sys.executable, "-m", "llmstep", "run", "qa.yaml", "-p", "input=hello there"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "offline answer: hello there"


VERDICT_CHAIN = """
from dataclasses import dataclass
from langchain_core.runnables import RunnableLambda
from models import Level

@dataclass
class Verdict:
    ok: bool
    level: Level

def judge(text):
    return Verdict(ok=len(text) > 2, level=Level.HIGH)

def judge_annotated(text) -> Verdict:
    return Verdict(ok=len(text) > 2, level=Level.HIGH)

def explain(v):
    return f"{v.ok} {v.level.value}"

chain = RunnableLambda(judge) | RunnableLambda(explain)
annotated = RunnableLambda(judge_annotated) | RunnableLambda(explain)
levels = RunnableLambda(lambda t: Level.HIGH) | RunnableLambda(lambda level: level.value)
"""


def test_an_undeclared_value_class_is_declared_on_the_command_line(tmp_path):
    """The error's fix (value_types=) has a CLI form, --value-type MODULE:CLASS or FILE.py:CLASS,
    repeatable, and the error names it and the return annotation that also declares the class."""
    (tmp_path / "models.py").write_text("import enum\n\nclass Level(enum.Enum):\n    HIGH = 'high'\n")
    (tmp_path / "vchain.py").write_text(VERDICT_CHAIN)
    run = ("run", "--allow-pickle", "--input", '"hello"')
    failed = run_cli(*run, "vchain.py:chain", cwd=tmp_path)
    assert failed.returncode == 1
    told = " ".join(failed.stderr.split())  # the class of Verdict's field, from a module: by its name
    assert "compile(chain, value_types=[Level]), on the command line --value-type models:Level," in told
    assert "annotate the return type of the function that returns it (def f(...) -> Level)" in told
    failed = run_cli(*run, "vchain.py:chain", "--value-type", "models:Level", cwd=tmp_path)
    assert failed.returncode == 1
    told = " ".join(failed.stderr.split())  # a class of the chain's file: by the file's path
    assert "on the command line --value-type path/to/file.py:Verdict, or annotate" in told
    ok = run_cli(*run, "vchain.py:chain", "--value-type", "vchain.py:Verdict", cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == "True high"
    annotated = run_cli(*run, "vchain.py:annotated", cwd=tmp_path)  # the annotation declares it
    assert annotated.returncode == 0, annotated.stderr
    assert annotated.stdout.strip() == "True high"
    # a module's class (MODULE:CLASS), and the option repeated
    levels = run_cli(
        *run, "vchain.py:levels", "--value-type", "models:Level", "--value-type", "./vchain.py:Verdict", cwd=tmp_path
    )
    assert levels.returncode == 0, levels.stderr
    assert levels.stdout.strip() == "high"
    compiled = run_cli(
        "compile", "vchain.py:chain", "--allow-pickle", "--value-type", "vchain.py:Verdict", cwd=tmp_path
    )
    assert compiled.returncode == 0, compiled.stderr
    assert ":Verdict" in compiled.stdout and ":Level" in compiled.stdout  # declared, with the class its field names
    bad = run_cli("compile", "vchain.py:chain", "--allow-pickle", "--value-type", "vchain.py:judge", cwd=tmp_path)
    assert bad.returncode == 2 and "--value-type 'vchain.py:judge' is a function, not a class" in bad.stderr
    plain = run_cli(
        "compile", "vchain.py:chain", "--allow-pickle", "--value-type", "vchain.py:RunnableLambda", cwd=tmp_path
    )
    assert plain.returncode == 2 and "not a pydantic model, a dataclass or an Enum" in plain.stderr
