"""The supported subset of Argo that the local runner runs: a field outside it, or an invalid value
in an edited Workflow, is refused with its path before a run starts (never a crash half way,
never a record left Running)."""

from __future__ import annotations

import copy

import pytest
import yaml
from chains import openai_chain, qa_chain, qa_prompt
from conftest import run_cli

import llmstep
from llmstep.errors import WorkflowError
from llmstep.local.argo_doc import check_declared, declared_parameters, parse, substitute


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda d: d["spec"].update(parallelism=-1), "spec.parallelism must be a whole number"),
        (lambda d: d["spec"]["templates"][1].update(parallelism="many"), "spec.templates[1].parallelism must be"),
        (
            lambda d: d["spec"]["templates"][1].update(retryStrategy={"limit": "abc"}),
            "spec.templates[1].retryStrategy.limit must be",
        ),
        (
            lambda d: d["spec"]["templates"][1].update(activeDeadlineSeconds="soon"),
            "spec.templates[1].activeDeadlineSeconds must be",
        ),
        (
            lambda d: d["spec"]["templates"][1].update(retryStrategy={"limit": 1, "backoff": {"duration": "later"}}),
            "spec.templates[1].retryStrategy.backoff.duration: 'later' is not a duration",
        ),
        (
            lambda d: d["spec"]["templates"][1].update(retryStrategy={"limit": 1, "backoff": {"factor": "x"}}),
            "spec.templates[1].retryStrategy.backoff.factor must be a whole number of at least 0, found 'x'",
        ),
        (lambda d: d["spec"]["templates"][0].update(failFast="no"), "spec.templates[0].failFast must be true or false"),
    ],
)
def test_invalid_workflow_field_refused_with_its_path_before_the_run(tmp_path, mutate, fragment):
    doc = llmstep.compile(qa_chain()).to_dict()
    mutate(doc)
    path = tmp_path / "edited.yaml"
    path.write_text(yaml.safe_dump(doc))
    result = run_cli("run", str(path), "--input", '{"question": "q"}', cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert fragment in result.stderr and "internal error" not in result.stderr
    assert not (tmp_path / ".llmstep" / "runs").exists()  # refused up front: no record, none left Running


def test_artifact_from_a_path_outside_the_run_refused(tmp_path):
    (tmp_path / "private.txt").write_text('"a file of yours"')
    doc = llmstep.compile(qa_chain()).to_dict()
    task = doc["spec"]["templates"][0]["dag"]["tasks"][1]
    task["arguments"]["artifacts"][0]["from"] = str(tmp_path / "private.txt")  # was {{tasks.ChatPromptTemplate...}}
    path = tmp_path / "edited.yaml"
    path.write_text(yaml.safe_dump(doc))
    result = run_cli("run", str(path), "--input", '{"question": "q"}', cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert (
        "spec.templates[0].dag.tasks[1].arguments.artifacts[0].from must name an artifact of this run" in result.stderr
    )
    assert not (tmp_path / ".llmstep" / "runs").exists()


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda d: d["spec"]["templates"][1].update(volumes=[]), "spec.templates[1].volumes is not supported"),
        (
            lambda d: d["spec"]["templates"][0]["dag"]["tasks"][0].update(withItems=[1, 2]),
            "aggregated outputs of a task with withParam",
        ),
        (
            lambda d: d["spec"]["templates"][0]["dag"]["tasks"][0].update(continueOn={"failed": True}),
            "continueOn is not supported",
        ),
        (lambda d: d["spec"]["templates"][1]["container"].update(command=["sh", "-c"]), "must run `llmstep exec"),
        (
            lambda d: d["spec"]["templates"][1]["container"].update(args=["{{workflow.creationTimestamp}}"]),
            "creationTimestamp",
        ),
        (lambda d: d.update(kind="CronWorkflow"), "expected an Argo Workflow"),
    ],
)
def test_hand_edited_yaml_outside_the_subset_is_rejected_clearly(tmp_path, mutate, fragment):
    doc = llmstep.compile(qa_chain()).to_dict()
    mutate(doc)
    path = tmp_path / "edited.yaml"
    path.write_text(yaml.safe_dump(doc))
    result = run_cli("run", str(path), "--input", '{"question": "q"}', cwd=tmp_path)
    assert result.returncode == 2
    assert fragment in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / ".llmstep").exists()  # rejected up front: nothing ran


# ---------------------------------------------------------------- the subset, checked in process


def _doc(compiled=None):
    return copy.deepcopy((compiled or llmstep.compile(qa_chain())).to_dict())


def _with_item(doc):
    """The batch Workflow's fan-out by a literal list (withItems) whose items' fields are used."""
    task = doc["spec"]["templates"][0]["dag"]["tasks"][0]
    del task["withParam"]
    task["withItems"] = [{"question": "a"}, {"question": "b"}]
    task["arguments"]["parameters"][0]["value"] = '{"question": "{{item.question}}"}'
    return doc


def _decorated(doc):
    """Fields that only place or decorate pods: accepted, with no local effect."""
    doc["spec"].update(
        serviceAccountName="runner",
        nodeSelector={"pool": "cpu"},
        tolerations=[],
        parallelism="3",
        podMetadata={"labels": {"team": "ml"}},
        ttlStrategy={"secondsAfterCompletion": 60},
    )
    step = doc["spec"]["templates"][1]
    step["metadata"]["labels"]["cost-center"] = "42"
    step["container"].update(imagePullPolicy="IfNotPresent", resources={"limits": {"memory": "1Gi"}})
    return doc


@pytest.mark.parametrize(
    "make",
    [
        lambda: _doc(),
        lambda: _doc(llmstep.compile(qa_chain(), data="parameters")),
        lambda: llmstep.compile(qa_chain()).to_batch_dict(parallelism=2),  # withParam, {{item}}, a DAG calling a DAG
        lambda: _with_item(llmstep.compile(qa_chain()).to_batch_dict(parallelism=2)),
        lambda: _doc(
            llmstep.compile(qa_chain(), on_failure=llmstep.Diagnose())
        ),  # onExit, when, workflow.status/failures
        lambda: _doc(
            llmstep.compile(llmstep.Step(qa_prompt(), retries=2, timeout="1m", resources={"cpu": "1"}) | qa_chain())
        ),
        lambda: _decorated(_doc()),
    ],
    ids=["sequence", "parameters", "batch", "with-items", "exit-handler", "step-settings", "pod-placement"],
)
def test_what_llmstep_generates_is_inside_the_subset(make):
    parse(make())  # raises WorkflowError naming the field otherwise


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda d: d["spec"].pop("templates"), "spec.templates is missing: the document has nothing to run"),
        (
            lambda d: d["spec"].update(volumeClaimTemplates=[]),
            "spec.volumeClaimTemplates is not supported by the local runner",
        ),
        (lambda d: d["spec"]["arguments"].update(artifacts=[]), "spec.arguments.artifacts is not supported"),
        (
            lambda d: d["spec"]["templates"][0]["dag"]["tasks"][0].update(when="{{workflow.creationTimestamp}} != x"),
            "spec.templates[0].dag.tasks[0].when uses {{workflow.creationTimestamp}}, which the local runner does not support",
        ),
        (lambda d: d["spec"]["templates"][0]["dag"]["tasks"][1].update(depends="Nope"), "Nope"),  # llmstep's own checks
    ],
)
def test_a_field_outside_the_subset_is_refused_naming_it(mutate, fragment):
    doc = _doc()
    mutate(doc)
    with pytest.raises(WorkflowError) as err:
        parse(doc)
    assert fragment in str(err.value)


def test_parameters_given_to_a_run_must_be_declared_and_every_variable_needs_a_value():
    check_declared(["input"], ["input"], "the Workflow")
    with pytest.raises(WorkflowError, match=r"parameter 'extra' is not declared in the Workflow \(input\)$"):
        check_declared(["input"], ["input", "extra"], "the Workflow")
    with pytest.raises(WorkflowError, match=r"--inputs needs a batch Workflow \(llmstep compile --batch N\)"):
        check_declared(["input"], ["inputs"], "the Workflow")
    assert (
        substitute("{{inputs.parameters.input}} and {{ item }}", {"inputs.parameters.input": "x", "item": "y"}, "t")
        == "x and y"
    )
    with pytest.raises(WorkflowError, match=r"^task a: \{\{item\}\} has no value here$"):
        substitute("{{item}}", {}, "task a")


# ---------------------------------------------------------------- the typed Workflow parse returns


def test_parse_reads_every_field_the_run_uses_into_types():
    chain = openai_chain()
    compiled = llmstep.compile(
        llmstep.Step(chain.first, retries=2, timeout="1m") | chain.middle[0] | chain.last, on_failure=llmstep.Diagnose()
    )
    doc = compiled.to_dict()
    workflow = parse(doc)
    assert workflow.document is doc and workflow.entrypoint == doc["spec"]["entrypoint"]
    assert workflow.on_exit == doc["spec"]["onExit"] and workflow.namespace == "default"
    assert [p.name for p in workflow.parameters] == ["input"] and workflow.batch is False
    assert workflow.output_task == doc["metadata"]["annotations"]["llmstep.dev/output-task"]
    dag = workflow.template(workflow.entrypoint).dag
    assert dag is not None and dag.fail_fast is True
    first, second = dag.tasks[0], dag.tasks[1]
    assert (
        second.deps == (first.name,)
        and second.artifacts[0].source == f"{{{{tasks.{first.name}.outputs.artifacts.output}}}}"
    )
    step = workflow.template(first.template)
    assert step.dag is None and step.container is not None
    assert step.container.argv[:2] == ("llmstep", "exec") and step.container.needs_network is False
    assert step.retry.limit == 2 and step.deadline == 60.0
    assert [a.name for a in step.artifacts] == ["payload", "input"] and step.artifacts[0].raw is not None
    model = workflow.template(dag.tasks[1].template)
    assert model.container is not None and model.container.needs_network  # the model's key, from its Secret
    assert [e.name for e in model.container.env if e.value_from] == ["OPENAI_API_KEY"]
    assert workflow.images == [t["container"]["image"] for t in doc["spec"]["templates"] if "container" in t]


def test_the_batch_workflow_parses_with_its_fan_out_and_nested_dag():
    doc = llmstep.compile(qa_chain()).to_batch_dict(parallelism=2)
    workflow = parse(doc)
    assert workflow.batch is True
    fan = workflow.template(workflow.entrypoint).dag.tasks[0]
    assert fan.with_param is not None and fan.with_items is None
    assert workflow.template(fan.template).dag is not None  # each item runs the chain's DAG
    assert workflow.parallelism == 2 and workflow.template(workflow.entrypoint).parallelism == 2
    assert parse(_with_item(doc)).template(workflow.entrypoint).dag.tasks[0].with_items == (
        {"question": "a"},
        {"question": "b"},
    )


def test_a_workflow_argument_that_is_not_text_is_passed_as_json_and_overrides_win():
    doc = _doc()
    doc["spec"]["arguments"]["parameters"][0]["value"] = {"question": "q"}
    workflow = parse(doc)
    assert workflow.arguments({}) == {"input": '{"question": "q"}'}
    assert workflow.arguments({"input": '"given"'}) == {"input": '"given"'}
    del doc["spec"]["arguments"]["parameters"][0]["value"]
    with pytest.raises(WorkflowError, match=r"parameter 'input' has no value: pass -p input="):
        parse(doc).arguments({})


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda d: d["spec"].pop("entrypoint"), "spec.entrypoint is missing: name the template the run starts with"),
        (lambda d: d["spec"]["arguments"]["parameters"][0].pop("name"), "spec.arguments.parameters[0].name is missing"),
    ],
)
def test_a_value_the_run_would_trip_on_is_refused_when_parsed(mutate, fragment):
    doc = _doc()
    doc["spec"]["templates"][1]["container"].setdefault("env", [])
    mutate(doc)
    with pytest.raises(WorkflowError) as err:
        parse(doc)
    assert fragment in str(err.value)


def test_declared_parameters_reads_a_workflow_for_any_engine_without_checking_it():
    doc = _doc()
    doc["spec"]["templates"][1]["script"] = {"source": "echo"}  # outside the local subset, fine on a cluster
    assert declared_parameters(doc) == ["input"]
    assert declared_parameters({"spec": {"arguments": []}}) == [] and declared_parameters({}) == []


def _with_templates(*extra, entrypoint="again"):
    doc = llmstep.compile(qa_chain()).to_dict()
    doc["spec"]["templates"].extend(copy.deepcopy(list(extra)))
    doc["spec"]["entrypoint"] = entrypoint
    return doc


def _dag(name, *tasks):
    return {"name": name, "dag": {"tasks": list(tasks)}}


@pytest.mark.parametrize(
    ("templates", "cycle"),
    [
        ([_dag("again", {"name": "a", "template": "again"})], "again -> again"),
        (
            [_dag("again", {"name": "b", "template": "other"}), _dag("other", {"name": "a", "template": "again"})],
            "again -> other -> again",
        ),
        # a conditional call elsewhere does not make the unconditional loop end
        (
            [
                _dag(
                    "again",
                    {"name": "x", "template": "chatprompttemplate", "when": "1 == 2"},
                    {"name": "b", "template": "other", "dependencies": ["x"]},
                ),
                _dag("other", {"name": "a", "template": "again"}),
            ],
            "again -> other -> again",
        ),
    ],
)
def test_a_template_that_always_calls_itself_is_refused_naming_the_loop(templates, cycle):
    with pytest.raises(WorkflowError, match="calls itself") as err:
        parse(_with_templates(*templates))
    assert f"({cycle})" in str(err.value) and "when" in str(err.value)


@pytest.mark.parametrize(
    "task", [{"name": "a", "template": "again", "when": "1 == 1"}, {"name": "a", "template": "again", "withItems": [1]}]
)
def test_a_recursion_a_task_can_end_is_argo_s_recursion_and_parses(task):
    workflow = parse(_with_templates(_dag("again", task)))
    assert workflow.template("again").dag is not None


def test_a_dependency_cycle_is_refused_before_the_run_in_argo_s_words(tmp_path):
    doc = llmstep.compile(qa_chain()).to_dict()
    tasks = doc["spec"]["templates"][0]["dag"]["tasks"]
    tasks[0]["depends"] = "StrOutputParser"
    path = tmp_path / "cycle.yaml"
    path.write_text(yaml.safe_dump(doc))
    result = run_cli("run", str(path), "--input", '{"question": "q"}', cwd=tmp_path, timeout=60)
    assert result.returncode == 2, result.stderr
    assert (
        "templates.main.tasks dependency cycle detected: "
        "ChatPromptTemplate->StrOutputParser->OfflineChatModel->ChatPromptTemplate"
    ) in result.stderr
    assert not (tmp_path / ".llmstep" / "runs").exists()  # refused up front: no record left Pending
