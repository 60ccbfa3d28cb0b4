"""llmstep/local/command.py: the one grammar of a step's command. Every command llmstep generates
follows it; hostile spellings of the same options (abbreviated, ``=``, repeated, other options,
paths out of the step's places) are refused, naming the argument."""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_core.prompts import PromptTemplate

import llmstep
from llmstep import contract
from llmstep.diagnose.settings import Diagnose
from llmstep.errors import WorkflowError
from llmstep.local.command import TEKTON_PLACES, check_paths, check_prefixes, parse
from llmstep.render import argo, tekton


def _generated() -> list[list[str]]:
    """Every step command the renderers write (Argo steps and exit handler, the WorkflowTemplate,
    the Tekton run and diagnose Tasks, KubernetesRunnable's)."""
    compiled = llmstep.compile(
        PromptTemplate.from_template("{q}"),
        on_failure=Diagnose(base_url="http://127.0.0.1:1/v1", redact=("-----BEGIN KEY",)),
    )
    commands = [
        t["container"]["command"] + t["container"].get("args", [])
        for t in compiled.to_dict()["spec"]["templates"]
        if "container" in t
    ]
    commands += [t["container"]["command"] for t in argo.diagnose_workflow_template("img")["spec"]["templates"]]
    for task in (tekton.run_task("img"), tekton.diagnose_task("img")):
        step = task["spec"]["steps"][0]
        commands.append(step["command"] + step["args"])
    commands.append(
        contract.exec_argv(contract.DATA_DIR)
        + [
            "--payload-env",
            contract.PAYLOAD_ENV,
            "--input-env",
            contract.INPUT_ENV,
            "--inputs",
            "input",
            "--log-records",
            "--stream",
        ]
    )
    return commands


def test_every_command_llmstep_generates_follows_the_grammar():
    commands = _generated()
    assert {c[1] for c in commands} == {"exec", "diagnose"} and len(commands) >= 5
    for argv in commands:
        command = parse(argv, "step")
        tekton_step = any("$(" in a for a in argv)
        root = contract.argv_data_dir(argv)
        check_prefixes(command, "step", TEKTON_PLACES if tekton_step else (root + "/",), None if tekton_step else root)


EXEC = ["llmstep", "exec", "--data-dir", "/llmstep"]
DIAGNOSE = ["llmstep", "diagnose", "workflow/x", "--workflow-failures", "[]"]


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["sh", "-c", "touch x"], "must run `llmstep exec ...` or `llmstep diagnose ...`"),
        (["llmstep", "compile", "x.py:chain"], "must run `llmstep exec"),
        (["python", "-m", "llmstep", "exec"], "must run `llmstep exec"),
        ([*EXEC, "--data", "/tmp/x"], "--data: spell the option in full (--data-dir)"),
        ([*EXEC, "--res", "preview=/llmstep/p"], "spell the option in full (--result)"),
        (["llmstep", "exec", "--data-dir=/tmp/x"], "write the value as a separate argument (--data-dir VALUE)"),
        ([*EXEC, "--result=preview=/tmp/x"], "separate argument (--result VALUE)"),
        ([*EXEC, "--data-dir", "/tmp/x"], "--data-dir is given twice"),
        ([*EXEC, "--debug"], "--debug is not an option llmstep generates"),
        ([*EXEC, "--", "--data-dir", "/tmp"], "-- is not an option"),
        ([*EXEC, "extra"], "takes no argument(s) besides its options"),
        ([*EXEC, "--result", "bashrc=/llmstep/x"], "expected NAME=PATH with NAME one of preview"),
        ([*EXEC, "--payload-env", "OPENAI_API_KEY"], "is not one of LLMSTEP_PAYLOAD"),
        ([*EXEC, "--input-env", "GITHUB_TOKEN"], "is not one of LLMSTEP_INPUT"),
        ([*EXEC, "--log-output", "yes"], "is not one of true, false"),
        ([*EXEC, "--inputs", "../x=y"], "SOURCE must be a step's name"),
        ([*EXEC, "--step-name", "--data-dir=/tmp/x"], "would be read as another option"),
        ([*EXEC, "--inputs", "a=x", "--data=/tmp/x"], "spell the option in full (--data-dir)"),
        ([*EXEC, "--step-name"], "--step-name needs a value"),
        ([*DIAGNOSE, "-f", "/etc/passwd"], "-f is not an option llmstep generates"),
        ([*DIAGNOSE, "--filename", "/etc/passwd"], "--filename is not an option"),
        ([*DIAGNOSE, "--kubeconfig", "/home/u/.kube/config"], "--kubeconfig is not an option"),
        ([*DIAGNOSE, "--api-key-env", "GITHUB_TOKEN"], "--api-key-env is not an option"),
        ([*DIAGNOSE, "--api-key-secret", "s/k"], "--api-key-secret is not an option"),
        ([*DIAGNOSE, "--webhook-env", "HOOK"], "--webhook-env is not an option"),
        ([*DIAGNOSE, "--output-d", "/tmp"], "spell the option in full (--output-dir)"),
        ([*DIAGNOSE, "--base-url=http://evil/v1"], "separate argument (--base-url VALUE)"),
        ([*DIAGNOSE, "--provider", "evil"], "is not one of openai, azure, compatible"),
        ([*DIAGNOSE, "pod/other"], "takes 1 argument(s)"),
        (["llmstep", "diagnose", "--workflow-failures", "[]"], "needs its target"),
    ],
)
def test_commands_outside_the_grammar_are_refused_naming_the_argument(argv, fragment):
    with pytest.raises(WorkflowError) as err:
        parse(argv, "task evil")
    assert str(err.value).startswith("task evil: ") and fragment in str(err.value)


@pytest.mark.parametrize(
    "argv",
    [
        ["llmstep", "exec"],  # the data directory would be the environment's or /llmstep on this machine
        [*EXEC, "--result", "preview=/home/user/.bashrc"],
        [*EXEC, "--link-root", "/llmstep/../../home"],
        [*DIAGNOSE, "--output-dir", "/home/user"],
        [*DIAGNOSE, "--summary-file", "/llmstep/../x"],
        [*DIAGNOSE, "--output", "report.md"],
        [*DIAGNOSE, "--api-key-file", "/home/user/.ssh/id_rsa"],
    ],
)
def test_argo_paths_outside_the_data_directory_are_refused_before_the_run(argv):
    with pytest.raises(WorkflowError, match="data directory|needs --data-dir"):
        check_prefixes(parse(argv, "t"), "t", ("/llmstep/",), "/llmstep")


@pytest.mark.parametrize("path", ["/home/user/.bashrc", "$(params.dir)/x", "$(workspaces.data.path)/../../x"])
def test_tekton_paths_begin_with_a_workspace_or_a_result(path):
    argv = ["llmstep", "exec", "--data-dir", "$(workspaces.data.path)/o", "--result", f"preview={path}"]
    with pytest.raises(WorkflowError, match=r"begins with \$\(workspaces\.\.\.\. or \$\(results\.\.\.\."):
        check_prefixes(parse(argv, "t"), "t", TEKTON_PLACES)


def test_substituted_paths_stay_in_the_step_places_symlinks_resolved(tmp_path):
    data, outside = tmp_path / "data", tmp_path / "home"
    data.mkdir()
    outside.mkdir()
    (data / "link").symlink_to(outside)
    ok = ["llmstep", "exec", "--data-dir", str(data), "--result", f"preview={data / 'p'}"]
    check_paths(parse(ok, "t"), "t", [data])
    for bad in (
        [*ok, "--link-root", str(data / "link")],
        [*ok, "--secrets-dir", f"{data}/../home"],
        ["llmstep", "exec", "--data-dir", "relative"],
    ):
        with pytest.raises(WorkflowError, match="outside the step's data directory and workspaces"):
            check_paths(parse(bad, "t"), "t", [data])


def test_empty_optional_paths_mean_not_set(tmp_path):
    argv = ["llmstep", "diagnose", "pipelinerun/x", "--output-dir", "", "--api-key-file", "", "--lang", ""]
    check_paths(parse(argv, "t"), "t", [Path(tmp_path)])
