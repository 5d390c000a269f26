"""An embedded Kubernetes API server: in memory, in process, speaking the real HTTP API.

It imports no operator code. Start it in-process with :func:`open_apiserver` or as
``python -m trikopf.apiserver --port 0 --kubeconfig PATH``; see ``docs/apiserver.md``.
"""

from __future__ import annotations

from trikopf.apiserver.faults import Faults, RequestLog, RequestRecord
from trikopf.apiserver.server import ApiServer, open_apiserver

__all__ = ["ApiServer", "Faults", "RequestLog", "RequestRecord", "open_apiserver"]
