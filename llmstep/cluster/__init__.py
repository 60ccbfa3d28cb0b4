"""Real clusters: the transports (the Kubernetes API, the Argo Server), Argo submission and its
handles, the Tekton PipelineRun handle, KubernetesRunnable and as_runnable."""
