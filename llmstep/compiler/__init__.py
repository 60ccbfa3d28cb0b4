"""Runnable -> Plan: the decomposition rules (walk), llmstep.Step, naming, pickling, and the
compile-time checks for secrets and value types."""
