"""``python -m llmstep.local.forkserver SOCKET PRELOAD LESSONS IDLE [PARENT]``: a fork server, as
:class:`~llmstep.local.forkserver.client.ForkServer` starts it (everything it needs in its arguments)."""

import sys

from llmstep.local.forkserver.server import _serve

_serve(
    sys.argv[1],
    [m for m in sys.argv[2].split(",") if m],
    sys.argv[3],
    float(sys.argv[4]),
    int(sys.argv[5]) if len(sys.argv) > 5 else 0,
)
