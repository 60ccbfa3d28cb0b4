"""Names that Argo, Tekton and Kubernetes accept: the patterns and limits, pure data.

Hera does not check names, and the API server rejects them late. Template, task and Tekton
names must be DNS labels (``^[a-z0-9]([-a-z0-9]*[a-z0-9])?$``, at most 63 characters); Argo DAG
task names (what the UI shows) may use capitals: ``^[a-zA-Z0-9][-a-zA-Z0-9]*$``. The compiler
gives names within them (:mod:`llmstep.compiler.naming`) and the renderers' checks hold every
document to them.
"""

from __future__ import annotations

import re

MAX = 63
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
TASK_NAME = re.compile(r"^[a-zA-Z0-9][-a-zA-Z0-9]*$")

RESERVED = frozenset({"input", "main", "exit-handler", "diagnose"})
"""Names the renderers use themselves, so no step may take them."""

GENERATED_SUFFIX = 5
"""Characters the API server appends to a ``generateName`` (every Argo Workflow and Tekton run)."""
BATCH_INFIX = "-batch-"
"""A batch Workflow's ``generateName`` is ``NAME-batch-``."""
CHAIN_NAME_MAX = MAX - len(BATCH_INFIX) - GENERATED_SUFFIX
"""A chain's name leaves room for ``-batch-`` and the 5 generated characters: every Workflow
name it leads to stays a DNS label (63), which Argo needs for its pod labels."""
