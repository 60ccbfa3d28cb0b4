"""Run rendered documents on this machine: an Argo Workflow or a Tekton PipelineRun, each step
a separate ``llmstep exec`` process (or container), with run records that can be shown and resumed."""
