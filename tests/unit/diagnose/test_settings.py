"""llmstep/diagnose/settings.py: the one home of the diagnosis settings; both engines render
every field of ``Diagnose`` from it, and its defaults are the defaults everywhere."""

import json

import pytest
from langchain_core.prompts import PromptTemplate

import llmstep
from llmstep.cli.main import _parser
from llmstep.diagnose import llm, settings
from llmstep.diagnose.settings import Diagnose, compile_patterns
from llmstep.errors import LlmstepError
from llmstep.render import argo, tekton

AZURE = Diagnose(
    model="gpt-x",
    lang="Deutsch",
    prompt="audit",
    provider="azure",
    azure_endpoint="https://example.invalid",
    azure_deployment="dep",
    api_version="2099-01-01",
    redact=("ticket-[0-9]+", "acct=\\w+"),
)


def _argo_command(on_failure):
    doc = llmstep.compile(PromptTemplate.from_template("{q}"), name="d", on_failure=on_failure).to_dict()
    template = next(t for t in doc["spec"]["templates"] if t["name"] == "diagnose")
    return template["container"]["command"], template["container"]["env"]


def _tekton_params(on_failure):
    docs = llmstep.compile(PromptTemplate.from_template("{q}"), name="d", on_failure=on_failure).to_tekton()
    pipeline = next(d for d in docs if d["kind"] == "Pipeline")
    task = next(t for t in pipeline["spec"]["finally"] if t["name"] == "diagnose")
    return {p["name"]: p["value"] for p in task["params"]}


def test_every_setting_reaches_the_argo_exit_handler():
    command, env = _argo_command(AZURE)
    for flag, value in [
        ("--model", "gpt-x"),
        ("--lang", "Deutsch"),
        ("--prompt", "audit"),
        ("--provider", "azure"),
        ("--azure-endpoint", "https://example.invalid"),
        ("--azure-deployment", "dep"),
        ("--api-version", "2099-01-01"),
    ]:
        assert command[command.index(flag) + 1] == value, flag
    assert [command[i + 1] for i, part in enumerate(command) if part == "--redact"] == list(AZURE.redact)
    assert [e["name"] for e in env] == [settings.AZURE_KEY]


def test_every_setting_reaches_the_tekton_finally_task():
    params = _tekton_params(AZURE)
    assert {
        k: params[k]
        for k in (
            "model",
            "lang",
            "prompt",
            "provider",
            "azure-endpoint",
            "azure-deployment",
            "api-version",
            "key-name",
        )
    } == {
        "model": "gpt-x",
        "lang": "Deutsch",
        "prompt": "audit",
        "provider": "azure",
        "azure-endpoint": "https://example.invalid",
        "azure-deployment": "dep",
        "api-version": "2099-01-01",
        "key-name": settings.AZURE_KEY,
    }
    assert params["redact"] == list(AZURE.redact)


def test_both_engines_pass_the_same_options():
    """The Tekton params and the Argo flags are the same settings, Diagnose.options()."""
    d = Diagnose(base_url="http://127.0.0.1:9/v1", lang="fr")
    command, _ = _argo_command(d)
    params = _tekton_params(d)
    for name, value in d.options().items():
        assert command[command.index(f"--{name}") + 1] == value == params[name]


def test_the_defaults_are_the_settings_defaults_everywhere():
    d = Diagnose()
    assert (d.model, d.provider, d.prompt, d.api_version) == (
        settings.MODEL,
        settings.PROVIDER,
        settings.PROMPT,
        settings.API_VERSION,
    )
    model = llm.Model(api_key="k")
    assert (model.model, model.provider, model.api_version) == (settings.MODEL, settings.PROVIDER, settings.API_VERSION)
    args = _parser().parse_args(["diagnose", "pod/x"])
    assert (args.model, args.provider, args.prompt) == (settings.MODEL, settings.PROVIDER, settings.PROMPT)
    assert args.api_version is None  # unset: $OPENAI_API_VERSION, else settings.API_VERSION (as a local step reads it)
    task = tekton.diagnose_task("img")
    defaults = {p["name"]: p.get("default") for p in task["spec"]["params"]}
    assert (defaults["model"], defaults["provider"], defaults["prompt"], defaults["api-version"]) == (
        settings.MODEL,
        settings.PROVIDER,
        settings.PROMPT,
        settings.API_VERSION,
    )
    template = argo.diagnose_workflow_template("img")
    params = {p["name"]: p.get("value") for p in template["spec"]["templates"][0]["inputs"]["parameters"]}
    assert (params["model"], params["provider"], params["prompt"], params["base-url"]) == (
        settings.MODEL,
        settings.PROVIDER,
        settings.PROMPT,
        settings.OPENAI_URL,
    )


def test_key_for_each_provider():
    assert settings.key_for("openai") == settings.key_for("compatible") == "OPENAI_API_KEY"
    assert settings.key_for("azure") == "AZURE_OPENAI_API_KEY"
    assert Diagnose(provider="azure").key == "AZURE_OPENAI_API_KEY"


def test_a_bad_redact_pattern_fails_at_compile_time_naming_it():
    with pytest.raises(LlmstepError, match=r"Diagnose\(redact=\.\.\.\): '\(' is not a valid regular expression"):
        Diagnose(redact=("(",))


def test_options_leave_unset_settings_out_and_add_the_api_version_only_for_azure():
    assert Diagnose().options() == {"prompt": "diagnose", "provider": "openai", "model": settings.MODEL}
    assert Diagnose(provider="azure").options()["api-version"] == settings.API_VERSION
    assert json.dumps(Diagnose().args()) == json.dumps(
        ["--prompt", "diagnose", "--provider", "openai", "--model", settings.MODEL]
    )


def test_settings_import_no_other_diagnosis_module():
    import subprocess
    import sys

    code = (
        "import sys, llmstep.diagnose.settings, llmstep.render.tekton; "
        "print(sorted(m for m in sys.modules if m.startswith('llmstep.diagnose')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['llmstep.diagnose', 'llmstep.diagnose.settings']"


def test_the_configured_endpoint_and_where_keys_may_go():
    from llmstep.diagnose import settings

    assert settings.configured_endpoint("openai", {}) is None
    assert settings.configured_endpoint("compatible", {"OPENAI_API_BASE": "http://b/v1"}) == "http://b/v1"
    both = {"OPENAI_BASE_URL": "http://a/v1/", "OPENAI_API_BASE": "http://b/v1"}
    assert settings.configured_endpoint("openai", both) == "http://a/v1/"  # LangChain's order
    assert settings.configured_endpoint("azure", both) is None
    assert settings.endpoints({}) == (settings.OPENAI_URL,)
    assert settings.endpoints({**both, "AZURE_OPENAI_ENDPOINT": "https://x.openai.azure.com/"}) == (
        "http://a/v1",
        "https://x.openai.azure.com",
    )


@pytest.mark.parametrize("pattern", ["", "x*", "a|", r"\b", "^", "(?m)$", r"\s*", "(?=a)", "(corp)?"])
def test_a_pattern_that_matches_the_empty_string_is_refused(pattern):
    with pytest.raises(llmstep.LlmstepError, match="matches the empty string") as caught:
        compile_patterns([pattern])
    assert caught.value.exit_code == 2 and repr(pattern) in str(caught.value)
    with pytest.raises(llmstep.LlmstepError, match=r"Diagnose\(redact=...\)"):
        llmstep.Diagnose(redact=(pattern,))


def test_patterns_that_match_something_are_kept():
    assert [p.pattern for p in compile_patterns([r"corp-token-\d+", "x+", r"\w+"])] == [r"corp-token-\d+", "x+", r"\w+"]
