"""The ``llmstep`` command line: main (the parser, errors to exit codes), and one module per
group of commands."""
