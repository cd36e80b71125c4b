"""Ports of the embedded stack: the ones clients or data depend on stay fixed (taken = clear error);
auxiliary ones move when something took them meanwhile."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from deploy.embedded.processes import StackError
from deploy.embedded.stack import StackState, _port


def test_a_taken_auxiliary_port_is_chosen_anew_and_a_taken_fixed_port_is_an_error(tmp_path: Path) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        taken = blocker.getsockname()[1]
        state = StackState(run_dir=tmp_path, ports={"temporal_metrics": taken, "temporal": taken})

        moved = _port(state, "temporal_metrics", "temporal", movable=True)
        assert moved != taken and state.ports["temporal_metrics"] == moved
        with pytest.raises(StackError, match=f"port {taken} \\(temporal\\) is taken"):
            _port(state, "temporal", "temporal")
