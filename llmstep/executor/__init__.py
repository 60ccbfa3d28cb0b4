"""``llmstep exec``: every step's entry point (main), the run of one payload (step), and the
Tekton staging of its files (staging). It imports only what a step needs."""
