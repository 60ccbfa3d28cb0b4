"""TLS contexts made before the fork (llmstep/local/forkserver/tls.py), one each to a step's first callers."""

from __future__ import annotations

import os

import pytest
from forkserver_cases import _Contexts, _run, _tls_contexts, _tls_contexts_for_own_cas
from langchain_core.runnables import RunnableLambda

from llmstep.local import forkserver


def test_model_steps_get_tls_contexts_the_server_made_before_the_fork(tmp_path, fresh_servers):
    pytest.importorskip("httpcore2", reason="the installed openai does not use httpcore2")
    first = _run(RunnableLambda(_tls_contexts), tmp_path)
    assert first == {
        "prepared": 0,
        "distinct": True,
        "same_trust": True,
    }  # the control: nothing was prepared before the lesson
    learned = _run(RunnableLambda(_tls_contexts), tmp_path)  # the same server, which imported httpcore2 after step one
    assert learned == {**first, "prepared": forkserver.TLS_CONTEXTS}
    forkserver._close_shared(stop=True)
    assert _run(RunnableLambda(_tls_contexts), tmp_path) == learned  # a new server, taught by the lessons file


def test_a_prepared_tls_context_goes_to_one_caller_asking_for_the_default(tmp_path, bundle):
    make = _Contexts()
    handing = forkserver._handing_out(make, 2, [str(bundle), str(tmp_path / "absent")])
    assert make.made == [((), False, {}), ((), False, {})]  # made at once, ignoring this process's environment
    first, second = handing(), handing(_trust_env=True)
    assert first is not second and len(make.made) == 2
    handing()  # used up: made afresh, as without a server
    assert make.made[-1] == ((), True, {})


@pytest.mark.parametrize("case", ["own CA file", "own CA directory", "other arguments", "changed CA file"])
def test_a_caller_gets_a_new_tls_context_when_the_prepared_ones_may_differ(tmp_path, monkeypatch, bundle, case):
    make = _Contexts()
    handing = forkserver._handing_out(make, 2, [str(bundle)])
    args: tuple = ()
    if case == "own CA file":  # the step's environment (its request's) names its own CAs
        forkserver.tls.for_step({"SSL_CERT_FILE": str(bundle)})
    elif case == "own CA directory":
        forkserver.tls.for_step({"SSL_CERT_DIR": str(tmp_path)})
    elif case == "other arguments":
        args = ("verify",)
    else:
        bundle.write_text("CAs, one more\n")
        os.utime(bundle, ns=(1, 1))
    handing(*args)
    assert len(make.made) == 3 and len(handing.prepared) == 2
    if case.startswith("own"):  # a caller that ignores the environment asks for what was prepared
        handing(_trust_env=False)
        assert len(make.made) == 3 and len(handing.prepared) == 1


def test_a_tls_context_that_cannot_be_made_leaves_the_library_as_it_was():
    def broken(**kwargs):
        raise OSError("no CA bundle")

    assert forkserver._handing_out(broken, 2, []) is broken


def test_a_step_naming_its_own_ca_file_gets_contexts_the_server_made_for_it(tmp_path, monkeypatch, fresh_servers):
    """A machine whose environment names its CA bundle (SSL_CERT_FILE, passed on to local steps)
    made every model step build its two contexts itself: the server prepares them for that file."""
    pytest.importorskip("httpcore2", reason="the installed openai does not use httpcore2")
    import shutil

    import certifi

    bundle = tmp_path / "own-ca.pem"
    shutil.copy(certifi.where(), bundle)  # a real CA file, not this machine's
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    _run(RunnableLambda(_tls_contexts), tmp_path)  # teaches the server httpcore2
    got = _run(RunnableLambda(_tls_contexts_for_own_cas), tmp_path)
    assert got == {"prepared": forkserver.TLS_CONTEXTS, "taken": 1, "trusts_own": True}


def test_contexts_prepared_for_a_steps_cas_go_only_to_a_step_naming_them(tmp_path, bundle):
    make, made_for = _Contexts(), []

    def make_for(cas):
        made_for.append(cas)
        return object()

    handing = forkserver._handing_out(make, 2, [str(bundle)], make_for=make_for)
    own = ("cafile", str(bundle))
    handing.prepare(own)
    handing.prepare(own)  # once per CAs
    assert made_for == [own, own]
    forkserver.tls.for_step({"SSL_CERT_FILE": str(bundle)})
    first, second = handing(), handing(_trust_env=True)
    assert first is not second and len(make.made) == 2 and not handing.pools[own][0]  # both prepared ones, no new
    forkserver.tls.for_step({"SSL_CERT_DIR": str(tmp_path)})  # other CAs: nothing prepared for them
    handing()
    assert make.made[-1] == ((), True, {}) and len(make.made) == 3
    forkserver.tls.for_step({"SSL_CERT_FILE": str(bundle)})
    handing.prepare(("capath", str(tmp_path)))
    handing.pools[own][0].append(object())
    bundle.write_text("CAs, changed\n")
    os.utime(bundle, ns=(1, 1))
    handing()  # the file changed since: made afresh
    assert len(make.made) == 4


def test_contexts_for_cas_that_cannot_load_are_not_prepared(tmp_path, bundle):
    def broken(cas):
        raise OSError("not a CA file")

    handing = forkserver._handing_out(_Contexts(), 2, [], make_for=broken)
    handing.prepare(("cafile", str(bundle)))
    assert handing.pools[("cafile", str(bundle))][0] == []
