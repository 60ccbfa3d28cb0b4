"""Real clusters: one transport interface (the Kubernetes API, the Argo Server, a cluster in
memory for tests), Argo submission and its handles, the Tekton PipelineRun handle,
KubernetesRunnable and as_runnable."""
