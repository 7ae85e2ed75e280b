"""The kernel launcher (fedhub-lab, in each centre's notebook environment) and the hub (fedhub)
ship apart, so each holds the protocol version they speak; they must agree. (That a real
launcher names it in every request, and that the hub refuses another, is shown by every kernel
test and by tests/test_kernels.py's refusal test.)"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from fedhub.kernels import LAUNCHER_PROTOCOL, PROTOCOL_HEADER

LAUNCHER = Path(__file__).resolve().parents[2] / "extensions/fedhub_lab/fedhub_lab/launcher/launcher.py"


def load_launcher():
    """The launcher module by its path: it needs only the standard library, as in a job."""
    spec = importlib.util.spec_from_file_location("fedhub_launcher_under_test", LAUNCHER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_launcher_and_the_hub_speak_the_same_protocol():
    launcher = load_launcher()
    assert (launcher.PROTOCOL, launcher.PROTOCOL_HEADER) == (LAUNCHER_PROTOCOL, PROTOCOL_HEADER)

