"""Chain references (llmstep/cli/refs.py): ``path/to/file.py:attr`` and ``package.module:attr``,
to a Runnable or a function returning one; every bad reference says what is wrong."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from langchain_core.prompts import ChatPromptTemplate

import llmstep
from llmstep.cli.refs import ReferenceError_, is_reference, load_reference, reference_name
from llmstep.errors import LlmstepError

PROMPT = "from langchain_core.prompts import ChatPromptTemplate\n"


@pytest.fixture(autouse=True)
def _isolated_imports(tmp_path, monkeypatch):
    """Each test loads its files from its own folder; the folders and modules it adds to the
    interpreter go away after it (a file reference is cached by the path as given)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        if name.startswith(("llmstep_user_", "refs_case_")):
            del sys.modules[name]


def write(path: str, text: str) -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    return target


# ---------------------------------------------------------------- file references


def test_a_file_reference_gives_the_runnable_the_file_defines():
    write("chain.py", PROMPT + "chain = ChatPromptTemplate.from_template('Q: {question}')\n")
    chain = load_reference("chain.py:chain")
    assert isinstance(chain, ChatPromptTemplate)
    assert chain.invoke({"question": "why"}).to_string() == "Human: Q: why"


def test_a_file_reference_in_a_folder_imports_its_sibling_modules():
    write("app/prompts.py", PROMPT + "def make():\n    return ChatPromptTemplate.from_template('sibling {x}')\n")
    write("app/chain.py", "from prompts import make\nchain = make()\n")
    assert load_reference("app/chain.py:chain").invoke({"x": "1"}).to_string() == "Human: sibling 1"


def test_code_from_a_file_is_named_by_the_path_as_given_never_the_machines(tmp_path):
    # functions pickled by value carry their file name: it must not name this machine's folders
    write(
        "sub/steps.py",
        "from langchain_core.runnables import RunnableLambda\n"
        "def shout(x):\n    return x.upper()\n"
        "chain = RunnableLambda(shout)\n",
    )
    chain = load_reference("sub/steps.py:chain")
    assert chain.invoke("hi") == "HI"
    assert chain.func.__code__.co_filename == "sub/steps.py"
    module = sys.modules[chain.func.__module__]
    assert module.__file__ == "sub/steps.py"
    assert chain.func.__module__.startswith("llmstep_user_steps_")
    assert str(tmp_path) not in chain.func.__code__.co_filename + module.__file__


def test_a_file_is_executed_once_for_every_reference_into_it():
    write(
        "chain.py",
        PROMPT + "from pathlib import Path\n"
        "with open('loads.txt', 'a') as f:\n    f.write('x')\n"
        "a = ChatPromptTemplate.from_template('a {x}')\n"
        "b = ChatPromptTemplate.from_template('b {x}')\n",
    )
    a, b = load_reference("chain.py:a"), load_reference("chain.py:b")
    assert (a.invoke({"x": 1}).to_string(), b.invoke({"x": 1}).to_string()) == ("Human: a 1", "Human: b 1")
    assert Path("loads.txt").read_text() == "x"


def test_a_function_is_called_with_no_arguments_for_its_runnable():
    write("chain.py", PROMPT + "def make_chain():\n    return ChatPromptTemplate.from_template('made {x}')\n")
    chain = load_reference("chain.py:make_chain")
    assert chain.invoke({"x": "here"}).to_string() == "Human: made here"


def test_a_dotted_attribute_is_followed_from_the_module():
    write(
        "chain.py",
        PROMPT + "class Chains:\n    class rag:\n        answer = ChatPromptTemplate.from_template('rag {x}')\n",
    )
    assert load_reference("chain.py:Chains.rag.answer").invoke({"x": 2}).to_string() == "Human: rag 2"


def test_a_dict_of_runnables_is_given_as_it_is():
    # compile() makes a RunnableParallel of it, as LangChain does in a chain
    write("chain.py", PROMPT + "chain = {'a': ChatPromptTemplate.from_template('{x}')}\n")
    chain = load_reference("chain.py:chain")
    assert type(chain) is dict and list(chain) == ["a"]
    assert llmstep.compile(chain).plan.steps[0].name == "a-chatprompttemplate"


def test_a_file_named_without_py_is_loaded_as_a_file():
    write("chainfile", PROMPT + "chain = ChatPromptTemplate.from_template('no suffix {x}')\n")
    assert load_reference("chainfile:chain").invoke({"x": 0}).to_string() == "Human: no suffix 0"


# ---------------------------------------------------------------- module references


def test_a_module_reference_imports_the_module(tmp_path, monkeypatch):
    write("lib/refs_case_pkg/__init__.py", "")
    write("lib/refs_case_pkg/chains.py", PROMPT + "chain = ChatPromptTemplate.from_template('pkg {x}')\n")
    monkeypatch.syspath_prepend(str(tmp_path / "lib"))
    chain = load_reference("refs_case_pkg.chains:chain")
    assert chain.invoke({"x": 3}).to_string() == "Human: pkg 3"
    assert "refs_case_pkg.chains" in sys.modules


def test_a_missing_module_is_named(monkeypatch):
    with pytest.raises(ReferenceError_) as caught:
        load_reference("refs_case_nosuch.chains:chain")
    assert str(caught.value) == "cannot import refs_case_nosuch.chains: No module named 'refs_case_nosuch'"


def test_a_module_that_raises_while_importing_is_a_reference_error(tmp_path, monkeypatch):
    write("lib/refs_case_broken.py", "raise ValueError('no model configured')\n")
    write("lib/refs_case_typo.py", "chain = (\n")
    monkeypatch.syspath_prepend(str(tmp_path / "lib"))
    with pytest.raises(
        ReferenceError_, match=r"^refs_case_broken raised while loading: ValueError: no model configured$"
    ):
        load_reference("refs_case_broken:chain")
    with pytest.raises(ReferenceError_, match=r"^refs_case_typo raised while loading: SyntaxError: "):
        load_reference("refs_case_typo:chain")


@pytest.mark.parametrize("code", ["0", "3", "'usage: chain.py ARGS'", ""])
def test_a_module_that_exits_while_loading_is_a_reference_error_naming_it(tmp_path, monkeypatch, code):
    """sys.exit(0) on import ended llmstep as a success with no output."""
    body = PROMPT + "chain = ChatPromptTemplate.from_template('{q}')\nimport sys\n" + f"sys.exit({code})\n"
    write("exits_on_load.py", body)
    write("lib/refs_case_exits.py", body)
    monkeypatch.syspath_prepend(str(tmp_path / "lib"))
    shown = repr(eval(code)) if code else "None"
    for ref, named in [("exits_on_load.py:chain", "exits_on_load.py"), ("refs_case_exits:chain", "refs_case_exits")]:
        with pytest.raises(ReferenceError_, match=re.escape(f"{named} called sys.exit({shown}) while loading")) as err:
            load_reference(ref)
        assert "if __name__ == '__main__'" in str(err.value)


def test_a_function_that_exits_is_a_reference_error():
    write("exits_in_build.py", "import sys\ndef build():\n    sys.exit(0)\n")
    with pytest.raises(ReferenceError_, match=r"calling build\(\) raised SystemExit"):
        load_reference("exits_in_build.py:build")


def test_the_cli_reports_a_module_that_exits_as_bad_input_not_a_silent_success(tmp_path):
    write("exits_cli.py", "import sys\nsys.exit(0)\n")
    for command in (["compile", "exits_cli.py:chain"], ["run", "exits_cli.py:chain", "--input", "1"]):
        result = subprocess.run(
            [sys.executable, "-m", "llmstep", *command], capture_output=True, text=True, timeout=120, cwd=tmp_path
        )
        assert result.returncode == 2, result.stderr
        assert "exits_cli.py called sys.exit(0) while loading, so it defines no chain" in result.stderr


def test_the_cli_reports_a_module_that_raises_as_bad_input_not_an_internal_error(tmp_path):
    write("refs_case_cli.py", "raise ValueError('no model configured')\n")
    source = str(Path(llmstep.__file__).resolve().parent.parent)  # the llmstep under test
    result = subprocess.run(
        [sys.executable, "-m", "llmstep", "compile", "refs_case_cli:chain"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([source, str(tmp_path)])},
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr == "llmstep: error: refs_case_cli raised while loading: ValueError: no model configured\n"


# ---------------------------------------------------------------- bad references


@pytest.mark.parametrize("ref", ["chain.py", "chain.py:", ":chain", ""])
def test_a_text_that_is_not_a_reference_says_how_to_write_one(ref):
    with pytest.raises(ReferenceError_) as caught:
        load_reference(ref)
    assert str(caught.value) == f"{ref!r} is not a chain reference; use path/to/file.py:attr or package.module:attr"


def test_a_missing_file_is_named():
    with pytest.raises(ReferenceError_, match=r"^no such file: app/missing\.py$"):
        load_reference("app/missing.py:chain")


def test_a_file_that_raises_is_named_with_its_error_and_loads_once_fixed():
    write("broken.py", "raise ValueError('boom')\n")
    with pytest.raises(ReferenceError_, match=r"^broken\.py raised while loading: ValueError: boom$"):
        load_reference("broken.py:chain")
    assert not [n for n in sys.modules if n.startswith("llmstep_user_broken_")]  # not half loaded
    write("broken.py", PROMPT + "chain = ChatPromptTemplate.from_template('fixed {x}')\n")
    assert load_reference("broken.py:chain").invoke({"x": 1}).to_string() == "Human: fixed 1"


@pytest.mark.parametrize("attr", ["nope", "Chains.nope"])
def test_a_missing_attribute_is_named_with_the_module(attr):
    write("chain.py", "class Chains:\n    pass\n")
    with pytest.raises(ReferenceError_) as caught:
        load_reference(f"chain.py:{attr}")
    assert str(caught.value) == f"chain.py has no attribute {attr!r}"


def test_a_function_that_raises_is_named_with_its_error():
    write("chain.py", "def make():\n    raise RuntimeError('no model')\n")
    with pytest.raises(ReferenceError_) as caught:
        load_reference("chain.py:make")
    assert str(caught.value) == (
        "chain.py:make: calling make() raised RuntimeError: no model (it must take no arguments and return a Runnable)"
    )
    assert isinstance(caught.value.__cause__, RuntimeError)


def test_a_function_that_needs_arguments_says_it_must_take_none():
    write("chain.py", "def make(model):\n    return model\n")
    with pytest.raises(ReferenceError_, match=r"calling make\(\) raised TypeError: .*it must take no arguments"):
        load_reference("chain.py:make")


@pytest.mark.parametrize("attr, kind", [("number", "int"), ("text", "str"), ("make_text", "str"), ("items", "list")])
def test_what_is_not_a_runnable_is_named_with_its_type(attr, kind):
    write("chain.py", "number = 3\ntext = 'prompt'\nitems = [1]\ndef make_text():\n    return 'prompt'\n")
    with pytest.raises(ReferenceError_) as caught:
        load_reference(f"chain.py:{attr}")
    assert str(caught.value) == f"chain.py:{attr} is a {kind}, not a Runnable (or a function returning one)"


def test_a_reference_error_is_an_llmstep_error_the_cli_exits_2_with():
    assert issubclass(ReferenceError_, LlmstepError)
    assert ReferenceError_("x").exit_code == 2


# ---------------------------------------------------------------- is_reference and reference_name


@pytest.mark.parametrize(
    "text, expected",
    [
        ("chain.py:chain", True),
        ("examples/qa.py:make_chain", True),
        ("pkg.module:Chains.rag", True),
        ("chainfile:chain", True),
        ("workflow.yaml", False),
        ("workflows/qa.yaml", False),
        ("chain.py:", False),
        (":chain", False),
        ("chain.py:not-an-attr", False),
        ("http://host/x", False),
    ],
)
def test_is_reference_tells_a_reference_from_a_document_file(text, expected):
    assert is_reference(text) is expected


@pytest.mark.parametrize(
    "ref, name",
    [
        ("examples/qa.py:chain", "qa"),
        ("examples/qa.py:main", "qa"),
        ("examples/qa.py:build", "qa"),
        ("examples/qa.py:make_chain", "qa"),
        ("examples/qa.py:summarize", "qa-summarize"),
        ("pkg.sub.chains:chain", "chains"),
        ("pkg.chains:Chains.rag", "chains-rag"),
        ("My_Chains.py:chain", "my-chains"),
        ("a" * 60 + ".py:chain", "a" * 50),
        ("x" * 49 + "_y.py:chain", "x" * 49),  # cut at 50, never ending in '-'
        ("___.py:chain", None),
    ],
)
def test_reference_name_is_a_workflow_name_from_the_file_or_module(ref, name):
    assert reference_name(ref) == name
    if name is not None:
        assert re.fullmatch(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?", name) and len(name) <= 50


# ---------------------------------------------------------------- value types (--value-type)


VALUES = (
    "from dataclasses import dataclass\nfrom langchain_core.runnables import RunnableLambda\n"
    "@dataclass\nclass Verdict:\n    ok: bool\n"
    "class Plain:\n    pass\n"
    "chain = RunnableLambda(lambda t: Verdict(ok=bool(t)))\n"
)


def test_a_value_type_names_the_class_the_chain_uses_however_the_file_is_spelled():
    from llmstep.cli.refs import load_classes

    write("app/chain.py", VALUES)
    chain = load_reference("app/chain.py:chain")
    [same] = load_classes(["./app/../app/chain.py:Verdict"], "--value-type")
    assert type(chain.invoke("x")) is same  # one module, so compile declares the class the steps return


def test_a_value_type_from_a_module():
    from llmstep.cli.refs import load_classes

    write("refs_case_models.py", "import enum\nclass Color(enum.Enum):\n    RED = 'red'\n")
    sys.path.insert(0, os.getcwd())
    [color] = load_classes(["refs_case_models:Color"], "--value-type")
    assert color.RED.value == "red"


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("Verdict", "--value-type 'Verdict': name a class as package.module:Class or path/to/file.py:Class"),
        ("chain.py:Nothing", "--value-type 'chain.py:Nothing': chain.py has no attribute 'Nothing'"),
        ("chain.py:chain", "--value-type 'chain.py:chain' is a RunnableLambda, not a class"),
        ("missing.py:Verdict", "no such file: missing.py"),
    ],
)
def test_a_bad_value_type_says_what_is_wrong(ref, message):
    from llmstep.cli.refs import load_classes

    write("chain.py", VALUES)
    with pytest.raises(ReferenceError_, match=re.escape(message)):
        load_classes([ref], "--value-type")
