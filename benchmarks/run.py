"""llmstep's performance suite: what users pay around their model calls, as ratios to baselines
measured in the same run.

    python benchmarks/run.py            # the table, and benchmarks/results.json
    python benchmarks/run.py --quick    # fewer repetitions, for a smoke run
    python benchmarks/run.py --only compile,size   # some sections: startup, local, parallel, batch, compile, size, image, cluster
    python benchmarks/run.py --out FILE            # the report there (default benchmarks/results.json, or
                                                   # benchmarks/results-partial.json with --only)
    python benchmarks/run.py --smoke               # every section once at a small scale: its own checks
                                                   # run (the Hera baselines build the same Workflow, the
                                                   # batch's results come back in order), timings are not
                                                   # judged; the benchmark test runs this

Figures (goals from the performance issue):
  1. step start-up: `llmstep exec` of a prompt step vs `python -c "import langchain_core.prompts"`
     (<= 1.3x); of a ChatOpenAI step against a local server vs `python -c "import langchain_openai"`
     (<= 1.2x)
  2. local run overhead: a 5-step chain with the offline model, run_local vs a python -c that
     imports the chain and invokes it once (<= 1.5x); per-step overhead after the first (<= 100 ms)
  3. parallelism: 8 branches whose model answers after 1 s (local wall time <= 2.0 s)
  4. compile scale: 1,000-step chain to Argo YAML and to Tekton (<= 2 s each), growth
     1,000 vs 100 steps (<= 12x), vs the same DAG built with Hera alone (<= 1.5x)
  5. document size: Argo bytes per step beyond the payload (<= 1.5 KB); the largest chain that fits;
     a payload used by several steps is stored once
  6. batch: 200 inputs through prompt | model (1 s) | parser in one local batch run, parallelism 8
     (<= 1.3x of 200 x 1 s / 8)
  image (when podman and the image are present): size (<= 250 MB), container start to output.json
  7. cluster (on the test cluster of tests/cluster, started with `python tests/cluster/cluster.py
     start`): submit to Succeeded of the 3-step qa chain on the real Argo controller vs the same
     3-task DAG of plain containers running `true`, built with Hera alone (<= 1.3x); pods created
     per chain step (1)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "benchmarks"), str(ROOT / "tests")]

import timing  # noqa: E402
from timing import Figure, command, median_seconds, python, table  # noqa: E402

RUNS = 5
SMOKE = False
"""``--smoke``: each section at a small scale, so its checks run in seconds (timings mean nothing)."""


class BenchmarkBroken(Exception):
    """A section's own check failed: what it measures is no longer what it says it measures."""


def check(ok: bool, message: str) -> None:
    if not ok:
        raise BenchmarkBroken(message)


def _step_dir(tmp: Path, payload: dict, input_text: str) -> Path:
    d = Path(tempfile.mkdtemp(dir=tmp))
    (d / "runnable.json").write_text(json.dumps(payload))
    (d / "input.json").write_text(input_text)
    return d


def startup(tmp: Path) -> list[Figure]:
    from chains import qa_prompt
    from langchain_openai import ChatOpenAI
    from openai_server import FakeOpenAI

    import llmstep
    from llmstep import serde

    env = {"PATH": os.environ["PATH"], "HOME": str(tmp)}
    exec_argv = [sys.executable, "-m", "llmstep", "exec", "--data-dir"]
    prompt = llmstep.compile(qa_prompt()).plan.steps[0].payload
    prompt_dir = _step_dir(tmp, prompt, json.dumps({"question": "q"}))
    t_prompt = median_seconds(command([*exec_argv, str(prompt_dir)], env=env), RUNS)
    t_prompt_base = median_seconds(python("import langchain_core.prompts", env=env), RUNS)
    t_prompt_class = median_seconds(python("from langchain_core.prompts import ChatPromptTemplate", env=env), RUNS)
    figures = [
        Figure(
            "1 start-up: prompt step",
            t_prompt,
            t_prompt_base,
            "s",
            "<= 1.3x",
            t_prompt <= 1.3 * t_prompt_base,
            note=f"importing ChatPromptTemplate alone takes {t_prompt_class:.3f} s "
            f"({t_prompt / t_prompt_class:.2f}x); langchain_core.prompts resolves its names lazily",
        )
    ]
    with FakeOpenAI() as server:
        model = llmstep.compile(ChatOpenAI(model="m", api_key="sk-bench", base_url=server.url)).plan.steps[0].payload
        value = serde.dumps_value(qa_prompt().invoke({"question": "q"}))
        model_dir = _step_dir(tmp, model, value)
        model_env = {**env, "OPENAI_API_KEY": "sk-bench"}
        t_model = median_seconds(command([*exec_argv, str(model_dir)], env=model_env), RUNS)
        t_model_base = median_seconds(python("import langchain_openai", env=env), RUNS)
    figures.append(
        Figure("1 start-up: model step", t_model, t_model_base, "s", "<= 1.2x", t_model <= 1.2 * t_model_base)
    )
    return figures


def local_overhead(tmp: Path) -> list[Figure]:
    chain_file = tmp / "five.py"
    chain_file.write_text(
        "from langchain_core.output_parsers import StrOutputParser\n"
        "from langchain_core.prompts import ChatPromptTemplate\n"
        "from langchain_core.runnables import RunnablePassthrough\n"
        "from llmstep.offline import OfflineChatModel\n"
        "def chain(n=5):\n"
        "    p = ChatPromptTemplate.from_template('{question}')\n"
        "    steps = [p, OfflineChatModel(), StrOutputParser(), ChatPromptTemplate.from_template('again: {x}'),\n"
        "             OfflineChatModel()]\n"
        "    c = {'question': RunnablePassthrough()} | steps[0]\n"
        "    for s in steps[1:n]:\n"
        "        c = c | ({'x': RunnablePassthrough()} | s if isinstance(s, ChatPromptTemplate) else s)\n"
        "    return c\n"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp)}
    runs = tmp / "runs"
    run_code = f"import five, llmstep; llmstep.compile(five.chain(5)).run_local('q', runs_dir={str(runs)!r})"
    t5 = median_seconds(python(run_code, env=env), RUNS)
    base = median_seconds(python("import five; five.chain(5).invoke('q')", env=env), RUNS)
    per_step = statistics.median(_per_step_after_first(record) for record in runs.iterdir())
    fresh = iter(range(RUNS + 1))  # cold: each run with an empty cache, and a server only for itself

    def cold() -> None:
        cache = tmp / f"cold-cache-{next(fresh)}"
        python(run_code, env={**env, "XDG_CACHE_HOME": str(cache), "LLMSTEP_FORKSERVER_IDLE": "0"})()

    t5_cold = median_seconds(cold, RUNS)
    return [
        Figure(
            "2 local run: 5-step chain",
            t5,
            base,
            "s",
            "<= 1.5x",
            t5 <= 1.5 * base,
            note="a new process each run, as `llmstep run` or a script: the fork server and the rendered "
            "Workflow from the run before are still there (the default)",
        ),
        Figure(
            "2 local run: 5-step chain, nothing warm",
            t5_cold,
            base,
            "s",
            "-",
            None,
            note="a new process each run with an empty cache and a fork server of its own "
            "(LLMSTEP_FORKSERVER_IDLE=0): the first run after a change or a reboot",
        ),
        Figure(
            "2 local run: per-step overhead",
            per_step * 1000,
            None,
            "ms",
            "<= 100 ms",
            per_step <= 0.1,
            note="from the run records: (last step's end - second step's start) / 4; the steps do no work",
        ),
    ]


def _per_step_after_first(record: Path) -> float:
    from datetime import datetime

    nodes = sorted(json.loads((record / "status.json").read_text())["nodes"].values(), key=lambda n: n["startedAt"])

    def t(stamp: str) -> float:
        return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()

    return (t(nodes[-1]["finishedAt"]) - t(nodes[1]["startedAt"])) / (len(nodes) - 1)


def parallelism(tmp: Path) -> list[Figure]:
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import ChatPromptTemplate
    from langchain_core.runnables import RunnableParallel
    from langchain_openai import ChatOpenAI
    from openai_server import FakeOpenAI

    import llmstep

    warm_runs = 1 if SMOKE else 3
    with FakeOpenAI(delay=0.2 if SMOKE else 1.0) as server:
        llm = ChatOpenAI(model="m", api_key="sk-bench", base_url=server.url, max_retries=0)
        branch = ChatPromptTemplate.from_template("{q}") | llm | StrOutputParser()
        chain = {f"b{i}": branch for i in range(8)}
        compiled = llmstep.compile(chain)
        secrets = {"OPENAI_API_KEY": "sk-bench"}
        expected = {f"b{i}": "echo: x" for i in range(8)}
        outputs: list = []
        wall = median_seconds(
            lambda: outputs.append(compiled.run_local({"q": "x"}, secrets=secrets, runs_dir=tmp / "par")), warm_runs
        )
        check(all(o == expected for o in outputs), f"the parallel branches' outputs are not the map's: {outputs[-1]!r}")
        in_process = RunnableParallel(chain)
        inproc = median_seconds(lambda: in_process.invoke({"q": "x"}), warm_runs)
        # a new process: as `llmstep run` or a script, with the fork server of the process before
        code = (
            "from langchain_core.prompts import ChatPromptTemplate; from langchain_openai import ChatOpenAI; "
            "from langchain_core.output_parsers import StrOutputParser; import llmstep; "
            f"llm = ChatOpenAI(model='m', api_key='sk-bench', base_url={server.url!r}, max_retries=0); "
            "b = ChatPromptTemplate.from_template('{q}') | llm | StrOutputParser(); "
            "chain = {f'b{i}': b for i in range(8)}; "
        )
        env = {**os.environ, "OPENAI_API_KEY": "sk-bench"}
        cold = median_seconds(
            python(code + f"llmstep.compile(chain).run_local({{'q': 'x'}}, runs_dir={str(tmp / 'cold')!r})", env), RUNS
        )
        cold_base = median_seconds(
            python(
                code + "from langchain_core.runnables import RunnableParallel; "
                "RunnableParallel(chain).invoke({'q': 'x'})",
                env,
            ),
            RUNS,
        )
    return [
        Figure(
            "3 parallelism: 8 x 1 s model",
            wall,
            inproc,
            "s",
            "<= 2.0 s",
            wall <= 2.0,
            note="baseline: the same map invoked in-process; runs after the first in a process (warm fork server)",
        ),
        Figure(
            "3 parallelism: in a new process",
            cold,
            cold_base,
            "s",
            "-",
            None,
            note="baseline: a new process that invokes the map in-process",
        ),
    ]


def batch(tmp: Path) -> list[Figure]:
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import ChatPromptTemplate
    from langchain_openai import ChatOpenAI
    from openai_server import FakeOpenAI

    import llmstep

    latency, count, width = (0.05, 16, 4) if SMOKE else (1.0, 200, 8)
    with FakeOpenAI(delay=latency) as server:
        llm = ChatOpenAI(model="m", api_key="sk-bench", base_url=server.url, max_retries=0)
        compiled = llmstep.compile(ChatPromptTemplate.from_template("{q}") | llm | StrOutputParser())
        inputs = [{"q": f"question {i}"} for i in range(count)]
        secrets = {"OPENAI_API_KEY": "sk-bench"}
        results: list = []
        wall = median_seconds(
            lambda: results.append(
                compiled.run_local_batch(inputs, parallelism=width, secrets=secrets, runs_dir=tmp / "batch")
            ),
            1,
            warmup=0,
        )
    check(results[-1] == [f"echo: question {i}" for i in range(count)], "batch results out of order")
    ideal = count * latency / width
    return [
        Figure(
            f"6 batch: {count} x 3 steps, parallelism {width}",
            wall,
            ideal,
            "s",
            "<= 1.3x",
            wall <= 1.3 * ideal,
            note=f"baseline: {count} x {latency:g} s model latency / {width} (one run)",
        )
    ]


def _linear_chain(n: int):
    from langchain_core.prompts import PromptTemplate

    from llmstep.offline import OfflineChatModel

    # every step a different Runnable, so each gets its own template (identical ones would share)
    chain = PromptTemplate.from_template("{q}")
    for i in range(n - 1):
        chain = chain | (OfflineChatModel(prefix=f"m{i}") if i % 2 == 0 else PromptTemplate.from_template(f"{{q}} {i}"))
    return chain


def _hera_template(name: str, payload: str, last: bool):
    """One step's container template as Hera objects, field for field as llmstep renders it."""
    from hera.workflows import Artifact, Container, NoneArchiveStrategy, Parameter, RawArtifact
    from hera.workflows.models import ValueFrom

    from llmstep.render.argo import INPUT_MODE

    d = "/llmstep"
    outputs = [
        Parameter(name="preview", value_from=ValueFrom(path=f"{d}/preview.txt", default="(none)")),
        Parameter(name="usage", value_from=ValueFrom(path=f"{d}/usage.json", default="{}")),
        Artifact(name="output", path=f"{d}/output.json", archive=NoneArchiveStrategy()),
    ]
    if last:
        outputs.append(Parameter(name="output", value_from=ValueFrom(path=f"{d}/output.json")))
    return Container(
        name=name,
        annotations={"llmstep.dev/runnable": "r", "llmstep.dev/path": "p"},
        labels={"app.kubernetes.io/managed-by": "llmstep", "llmstep.dev/step": name},
        image="llmstep:0.1.0",
        command=["llmstep", "exec", "--data-dir", d],
        inputs=[
            RawArtifact(name="payload", path=f"{d}/runnable.json", data=payload),
            Artifact(name="input", path=f"{d}/input.json", mode=INPUT_MODE),
        ],
        outputs=outputs,
    )


def _hera_input(previous: str | None):
    from hera.workflows import Artifact, RawArtifact

    if previous is None:
        return RawArtifact(name="input", data="{{workflow.parameters.input}}")
    return Artifact(name="input", from_=f"{{{{tasks.{previous}.outputs.artifacts.output}}}}")


def _hera_workflow(payloads: list[tuple[str, str, str]], **fields):
    from hera.workflows import Parameter, Workflow

    return Workflow(
        generate_name="x-",
        entrypoint="main",
        labels={"app.kubernetes.io/managed-by": "llmstep", "llmstep.dev/chain": "x"},
        annotations={
            "workflows.argoproj.io/title": "x",
            "workflows.argoproj.io/description": "x",
            "llmstep.dev/output-task": payloads[-1][1],
        },
        arguments=[Parameter(name="input", description="the chain input, as JSON")],
        **fields,
    )


def _hera_objects(payloads: list[tuple[str, str, str]]) -> dict:
    """The same Workflow built directly with Hera objects, no DSL, given each step's (template
    name, task name, payload text already serialized) for a linear chain."""
    from hera.workflows import DAG, Task

    last = len(payloads) - 1
    templates = [_hera_template(name, payload, i == last) for i, (name, _, payload) in enumerate(payloads)]
    tasks = [
        Task(
            name=task,
            template=name,
            arguments=[_hera_input(payloads[i - 1][1] if i else None)],
            depends=payloads[i - 1][1] if i else None,
        )
        for i, (name, task, _) in enumerate(payloads)
    ]
    return _hera_workflow(payloads, templates=[DAG(name="main", tasks=tasks), *templates]).to_dict()


def _hera_dsl(payloads: list[tuple[str, str, str]]) -> dict:
    """The same Workflow written with Hera's with-block DSL, tasks chained with ``>>``."""
    from hera.workflows import DAG, Task

    last = len(payloads) - 1
    with _hera_workflow(payloads) as workflow:
        templates = [_hera_template(name, payload, i == last) for i, (name, _, payload) in enumerate(payloads)]
        with DAG(name="main"):
            previous = None
            for template, (_, task, _) in zip(templates, payloads, strict=True):
                current = Task(name=task, template=template, arguments=[_hera_input(previous and previous.name)])
                if previous is not None:
                    previous >> current
                previous = current
    return workflow.to_dict()


def _shape(doc: object, path: str = "") -> set[str]:
    """Every key path of a document (list positions dropped): two documents of one shape match."""
    if isinstance(doc, dict):
        return {p for k, v in doc.items() for p in {f"{path}.{k}"} | _shape(v, f"{path}.{k}")}
    if isinstance(doc, list):
        return {p for v in doc for p in _shape(v, path + "[]")}
    return set()


def _paused(fn, *args):
    """``fn(*args)`` with the cyclic collector paused, as llmstep renders."""
    from llmstep.render import paused_gc

    with paused_gc():
        return fn(*args)


def _argo_dict(chain) -> dict:
    """Compile, render and check, as ``compiled.to_dict()`` does, but without the 1 MiB guard: a
    1,000-step chain is over Argo's object limit (figure 5), and the cost is what is measured."""
    import llmstep
    from llmstep.render.argo import build_workflow
    from llmstep.render.argo_checks import check_workflow

    doc = _paused(lambda plan: build_workflow(plan).to_dict(), llmstep.compile(chain).plan)
    check_workflow(doc)
    return doc


def _argo_yaml(chain) -> str:
    """``_argo_dict`` and YAML, as ``to_yaml()`` does."""
    from llmstep.yamlio import dump_yaml

    return _paused(dump_yaml, _argo_dict(chain))


def compile_scale() -> list[Figure]:
    import llmstep
    from llmstep.payloads import payload_text

    big, small = (20, 10) if SMOKE else (1000, 100)
    reps = 1 if SMOKE else 5
    c1000, c100 = _linear_chain(big), _linear_chain(small)
    payloads = [(s.name, s.display, payload_text(s.payload)) for s in llmstep.compile(c1000).plan.steps]
    ours = _shape(_argo_dict(c1000))
    for baseline, build in (("Hera objects", _hera_objects), ("Hera's with-block DSL", _hera_dsl)):
        theirs = _shape(build(payloads))
        check(
            theirs == ours,
            f"the baseline of {baseline} no longer builds the same Workflow: only llmstep's has "
            f"{sorted(ours - theirs)}, only the baseline's has {sorted(theirs - ours)}",
        )
    argo = median_seconds(lambda: _argo_yaml(c1000), reps)
    argo100 = median_seconds(lambda: _argo_yaml(c100), 9 if reps > 1 else 1)  # short: more runs for a steady median
    tekton = median_seconds(lambda: llmstep.compile(c1000).to_tekton_yaml(), reps)
    reps = min(reps, 3)
    to_dict = median_seconds(lambda: _argo_dict(c1000), reps)
    dsl = median_seconds(lambda: _hera_dsl(payloads), reps)
    objects = median_seconds(lambda: _hera_objects(payloads), reps)
    objects_paused = median_seconds(lambda: _paused(_hera_objects, payloads), reps)
    same = "the same Workflow, key for key, from payload texts already serialized"
    return [
        Figure(f"4 compile: {big:,} steps to Argo YAML", argo, None, "s", "<= 2 s", argo <= 2.0),
        Figure(f"4 compile: {big:,} steps to Tekton YAML", tekton, None, "s", "<= 2 s", tekton <= 2.0),
        Figure(f"4 compile: growth {big:,} vs {small} steps", argo, argo100, "s", "<= 12x", argo <= 12 * argo100),
        Figure(
            "4 compile: vs Hera with-block DSL (dict)",
            to_dict,
            dsl,
            "s",
            "<= 1.5x",
            to_dict <= 1.5 * dsl,
            note="measured: compiled.to_dict() (LangChain serialization, build, checks); baseline: Hera's "
            f"with-block DSL, tasks chained with >>, building {same}",
        ),
        Figure(
            "4 compile: vs Hera objects, no DSL (dict)",
            to_dict,
            objects,
            "s",
            "<= 1.5x",
            to_dict <= 1.5 * objects,
            note=f"baseline: Hera Container/Task/DAG objects passed as lists, building {same}. llmstep pauses the "
            "cyclic collector while it renders; the baselines run as written. With the collector paused for "
            f"Hera too: {objects_paused:.3f} s ({to_dict / objects_paused:.2f}x)",
        ),
    ]


def document_size() -> list[Figure]:
    import llmstep
    from llmstep.payloads import payload_text

    sizes = {}
    for n in (10, 100):
        compiled = llmstep.compile(_linear_chain(n))
        total = len(compiled.to_yaml().encode())
        payloads = sum(len(payload_text(s.payload).encode()) for s in compiled.plan.steps)
        sizes[n] = (total, payloads)
    per_step = ((sizes[100][0] - sizes[100][1]) - (sizes[10][0] - sizes[10][1])) / 90
    whole_per_step = (sizes[100][0] - sizes[10][0]) / 90
    fits = int((1024 * 1024 - (sizes[10][0] - 10 * whole_per_step)) // whole_per_step)
    # one branch used eight times: its three Runnables' payloads appear once each, not 24 times
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import PromptTemplate

    from llmstep.offline import OfflineChatModel

    branch = PromptTemplate.from_template("{q}") | OfflineChatModel() | StrOutputParser()
    shared = llmstep.compile({f"b{i}": branch for i in range(8)})
    copies = sum(
        1
        for t in shared.to_dict()["spec"]["templates"]
        for a in (t.get("inputs") or {}).get("artifacts") or []
        if a["name"] == "payload"
    )
    return [
        Figure(
            "5 size: Argo bytes per step beyond payload",
            per_step,
            None,
            "B",
            "<= 1536 B",
            per_step <= 1536,
            note=f"a prompt/model step costs {whole_per_step:.0f} B with its payload; about {fits} such steps "
            "fit Argo's 1 MiB object limit",
        ),
        Figure(
            "5 size: payload copies, 8 branches x 3 steps",
            copies,
            len(shared.plan.steps),
            "",
            "<= 4",
            copies <= 4,
            note="baseline: one copy per step; the 3 Runnables of the branch are stored once each, the "
            "map's output step keeps its own template",
        ),
    ]


def image(tmp: Path) -> list[Figure]:
    if shutil.which("podman") is None:
        return [Figure("image", 0, None, "", "", None, note="skipped: podman is not installed")]
    tag = os.environ.get("LLMSTEP_BENCH_IMAGE", "localhost/llmstep:0.1.0")
    inspect = subprocess.run(
        ["podman", "image", "inspect", tag, "--format", "{{.Size}}"], capture_output=True, text=True
    )
    if inspect.returncode != 0:
        return [Figure("image", 0, None, "", "", None, note=f"skipped: no image {tag} (images/build.sh)")]
    size_mb = int(inspect.stdout.strip()) / 1e6
    from chains import qa_prompt

    import llmstep

    d = _step_dir(tmp, llmstep.compile(qa_prompt()).plan.steps[0].payload, json.dumps({"question": "q"}))
    os.chmod(d, 0o777)
    run = ["podman", "run", "--rm", "--read-only", "--network", "none", "-v", f"{d}:/llmstep", tag]
    start = median_seconds(command(run), 3)
    noop = median_seconds(command(["podman", "run", "--rm", "--network", "none", "--entrypoint", "true", tag]), 3)
    return [
        Figure("image: size", size_mb, None, "MB", "<= 250 MB", size_mb <= 250),
        Figure(
            "image: start to output.json (prompt)",
            start,
            noop,
            "s",
            "<= 1 s",
            start <= 1.0,
            note="baseline: the same container running `true`",
        ),
    ]


def _until_done(custom, name: str, namespace: str) -> str:
    while True:
        wf = custom.get_namespaced_custom_object("argoproj.io", "v1alpha1", namespace, "workflows", name)
        phase = (wf.get("status") or {}).get("phase")
        if phase in ("Succeeded", "Failed", "Error"):
            return phase
        time.sleep(0.2)


def cluster() -> list[Figure]:
    sys.path.insert(0, str(ROOT / "tests" / "cluster"))
    from cluster import Cluster

    k8s = Cluster()
    if not k8s.running():
        return [
            Figure(
                "cluster",
                0,
                None,
                "",
                "",
                None,
                note="skipped: no test cluster (python tests/cluster/cluster.py start)",
            )
        ]
    from chains import qa_chain
    from hera.workflows import DAG, Container, Workflow
    from kubernetes import client, config

    import llmstep

    config.load_kube_config(str(k8s.kubeconfig))
    custom, core = client.CustomObjectsApi(), client.CoreV1Api()
    namespace = "argo"
    compiled = llmstep.compile(qa_chain(), name="bench-qa")

    def llmstep_run() -> str:
        run = compiled.submit({"question": "How fast?"}, namespace=namespace, client=client)
        if _until_done(custom, run.name, namespace) != "Succeeded":
            raise RuntimeError(f"benchmark workflow {run.name} did not succeed")
        return run.name

    with Workflow(generate_name="bench-true-", entrypoint="main", namespace=namespace) as baseline:
        true = Container(name="true", image=k8s.step_image, command=["true"])
        with DAG(name="main"):
            true(name="a") >> true(name="b") >> true(name="c")
    baseline_doc = baseline.to_dict()

    def hera_run() -> None:
        name = custom.create_namespaced_custom_object("argoproj.io", "v1alpha1", namespace, "workflows", baseline_doc)[
            "metadata"
        ]["name"]
        if _until_done(custom, name, namespace) != "Succeeded":
            raise RuntimeError(f"baseline workflow {name} did not succeed")

    runs = 1 if SMOKE else max(2, RUNS // 2)
    ours = median_seconds(llmstep_run, runs)
    theirs = median_seconds(hera_run, runs)
    name = llmstep_run()
    pods = core.list_namespaced_pod(namespace, label_selector=f"workflows.argoproj.io/workflow={name}").items
    per_step = len(pods) / len(compiled.plan.steps)
    check(per_step > 0, f"no pods found for workflow {name} (label workflows.argoproj.io/workflow)")
    return [
        Figure(
            "7 cluster: qa submit to Succeeded vs Hera DAG of `true`",
            ours,
            theirs,
            "s",
            "<= 1.3x",
            ours / theirs <= 1.3,
            note="the real Argo controller v4.0 of tests/cluster",
        ),
        Figure("7 cluster: pods per chain step", per_step, None, "", "1", per_step == 1),
        *_tekton(k8s, client, compiled),
    ]


def _tekton(k8s, client, compiled) -> list[Figure]:
    """The qa chain's PipelineRun from create to Succeeded, against a Pipeline of three tasks
    running `true` in the same image, with the same kind of data workspace (a volumeClaimTemplate
    each task mounts), so both pay for the volume and differ only in what the steps do."""
    from llmstep.cluster.tekton import done, succeeded
    from llmstep.cluster.transports import KubeApi
    from llmstep.render.tekton import data_claim

    namespace = "default"  # prepared by cluster.py with tekton/rbac.yaml, as the README says
    custom = client.CustomObjectsApi()
    if not any(
        s.metadata.name == "llm-credentials" for s in client.CoreV1Api().list_namespaced_secret(namespace).items
    ):
        client.CoreV1Api().create_namespaced_secret(
            namespace,
            client.V1Secret(
                metadata=client.V1ObjectMeta(name="llm-credentials"), string_data={"OPENAI_API_KEY": "sk-bench-unused"}
            ),
        )

    def until_done(name: str) -> None:
        while True:
            run = custom.get_namespaced_custom_object("tekton.dev", "v1", namespace, "pipelineruns", name)
            if done(run):
                if (succeeded(run) or {}).get("status") != "True":
                    raise RuntimeError(f"benchmark pipelinerun {name} did not succeed: {succeeded(run)}")
                return
            time.sleep(0.2)

    def llmstep_run() -> None:
        until_done(compiled.submit({"question": "How fast?"}, engine="tekton", namespace=namespace, client=client).name)

    task = {"workspaces": [{"name": "data"}], "steps": [{"name": "true", "image": k8s.step_image, "command": ["true"]}]}
    tasks = [
        {
            "name": n,
            "taskSpec": task,
            "workspaces": [{"name": "data", "workspace": "data"}],
            **({"runAfter": [prev]} if prev else {}),
        }
        for n, prev in (("a", None), ("b", "a"), ("c", "b"))
    ]
    KubeApi(client).apply(
        namespace,
        {
            "apiVersion": "tekton.dev/v1",
            "kind": "Pipeline",
            "metadata": {"name": "bench-true"},
            "spec": {"workspaces": [{"name": "data"}], "tasks": tasks},
        },
    )
    baseline = {
        "apiVersion": "tekton.dev/v1",
        "kind": "PipelineRun",
        "metadata": {"generateName": "bench-true-"},
        "spec": {
            "pipelineRef": {"name": "bench-true"},
            "workspaces": [{"name": "data", "volumeClaimTemplate": {"spec": data_claim()["spec"]}}],
        },
    }

    def true_run() -> None:
        until_done(
            custom.create_namespaced_custom_object("tekton.dev", "v1", namespace, "pipelineruns", baseline)["metadata"][
                "name"
            ]
        )

    runs = 1 if SMOKE else max(2, RUNS // 2)
    ours = median_seconds(llmstep_run, runs)
    theirs = median_seconds(true_run, runs)
    return [
        Figure(
            "7 cluster: qa PipelineRun to Succeeded vs a Pipeline of three `true` tasks",
            ours,
            theirs,
            "s",
            "<= 1.3x",
            ours / theirs <= 1.3,
            note="the real Tekton controller v1.15 of tests/cluster",
        )
    ]


SECTIONS = ("startup", "compile", "size", "local", "parallel", "batch", "image", "cluster")


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="benchmarks/run.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer repetitions, for a smoke run of the timings")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="every chosen section once at a small scale: its own checks run, timings are not judged",
    )
    parser.add_argument(
        "--only", default="", metavar="SECTIONS", help=f"comma-separated sections to run, of: {', '.join(SECTIONS)}"
    )
    parser.add_argument("--out", default="", metavar="FILE", help="where to write the report (JSON)")
    args = parser.parse_args(argv)
    unknown = [n for n in args.only.split(",") if n and n not in SECTIONS]
    if unknown:
        parser.error(f"--only: no section {', '.join(unknown)}; the sections are {', '.join(SECTIONS)}")
    return args


def main(argv: list[str]) -> int:
    global RUNS, SMOKE
    args = _arguments(argv)
    if args.quick:
        RUNS = 2
    if args.smoke:
        RUNS, SMOKE, timing.WARMUP = 1, True, 0
    tmp = Path(tempfile.mkdtemp(prefix="llmstep-bench-"))
    started = time.time()
    figures: list[Figure] = []
    only = args.only
    try:
        # compile and size first: measured in a process that has not yet run hundreds of steps
        sections = {
            "startup": lambda: startup(tmp),
            "compile": compile_scale,
            "size": document_size,
            "local": lambda: local_overhead(tmp),
            "parallel": lambda: parallelism(tmp),
            "batch": lambda: batch(tmp),
            "image": lambda: image(tmp),
            "cluster": cluster,
        }
        chosen = [n for n in SECTIONS if not only or n in only.split(",")]
        for name in chosen:
            try:
                new = sections[name]()
            except BenchmarkBroken as exc:
                print(f"benchmark section {name!r} is broken: {exc}", file=sys.stderr)
                return 1
            figures += new
            for figure in new:
                print(table([figure]).splitlines()[2], flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print()
    print(table(figures))
    full = not only and not SMOKE  # only a full run's figures replace the committed results.json
    out = (
        Path(args.out).resolve()
        if args.out
        else ROOT / "benchmarks" / ("results.json" if full else "results-partial.json")
    )
    out.write_text(
        json.dumps(
            {
                "seconds": round(time.time() - started, 1),
                "python": sys.version.split()[0],
                "cores": os.cpu_count(),
                "smoke": SMOKE,
                "figures": [
                    {
                        "name": f.name,
                        "value": f.value,
                        "baseline": f.baseline,
                        "ratio": f.ratio,
                        "unit": f.unit,
                        "goal": f.goal,
                        "met": f.ok,
                        "note": f.note,
                    }
                    for f in figures
                ],
            },
            indent=1,
        )
        + "\n"
    )
    print(f"\nwrote {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
