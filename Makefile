# Convenience targets; each runs a documented script.
.PHONY: image image-offline regenerate test

image:            ## build the step image (llmstep:<version>) with podman or docker
	images/build.sh

image-offline:    ## build it from a local Debian base and a wheelhouse (no registry during the build)
	images/base-debian.sh && images/build.sh --base localhost/llmstep-base:bookworm --wheelhouse

regenerate:       ## rewrite workflows/ and tekton/ from examples/
	python3 examples/regenerate.py

test:
	python3 -m pytest
