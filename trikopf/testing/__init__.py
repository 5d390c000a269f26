"""Testing operators: run one inside a test's task group or as a subprocess, and wait for effects.

- :func:`open_operator` runs :func:`trikopf.operate` in the caller's event loop (no threads),
  returns once it is ready (its watchers have listed), and stops it gracefully on exit.
- :class:`OperatorProcess` (:func:`open_operator_process`) runs ``python -m trikopf ...`` as a
  subprocess, collects its log, waits for lines, and stops it with SIGINT.
- :func:`wait_for_object` waits, through a watch and with a deadline, until an object matches a
  condition: the way to assert on an operator's effects without sleeping.
- :mod:`trikopf.testing.pytest_plugin` has pytest fixtures for the embedded API server.

Typical use with the embedded API server::

    async with open_apiserver() as server:
        connection = load_kubeconfig(server.write_kubeconfig(tmp_path / "kubeconfig"))
        async with open_operator(registry, connection=connection) as operator:
            ...  # create objects, wait_for_object(...) on their status
"""

from __future__ import annotations

from trikopf.testing.kopf_runner import KopfRunner, OperatorFailed
from trikopf.testing.process import OperatorProcess, open_operator_process
from trikopf.testing.runner import RunningOperator, open_operator
from trikopf.testing.waiting import wait_for_object

__all__ = [
    "KopfRunner",
    "OperatorFailed",
    "OperatorProcess",
    "RunningOperator",
    "open_operator",
    "open_operator_process",
    "wait_for_object",
]
