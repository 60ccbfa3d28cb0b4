"""One error root: every error llmstep raises on purpose is an LlmstepError."""

import llmstep


def test_every_error_has_one_root():
    for name in llmstep.__all__:
        obj = getattr(llmstep, name)
        if isinstance(obj, type) and issubclass(obj, Exception) and not issubclass(obj, Warning):
            assert issubclass(obj, llmstep.LlmstepError)
    assert issubclass(llmstep.CompileError, llmstep.LlmstepError)
