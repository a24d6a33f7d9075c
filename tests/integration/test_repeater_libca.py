"""libca (pyepics) registers with the fleet's repeater: the measured cause of "CA client
library is unable to contact CA repeater after 50 tries" was a repeater that never confirmed
libca's zero-length registrations (caproto's); libca's own status shows the fix."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from stxm_ctrl.processes import ManagedProcess, free_tcp_port, port_is_free

CLIENT = textwrap.dedent(
    """
    import sys, time
    import epics
    epics.ca.initialize_libca()
    pv = epics.PV("NO:SUCH:PV")  # a search starts libca's UDP side and its registration
    pv.wait_for_connection(0.5)
    time.sleep(float(sys.argv[1]))
    sys.stdout.flush()
    epics.ca.libca.ca_client_status(epics.ca.current_context(), 10)
    """
)


@pytest.mark.parametrize(
    ("module", "registered"),
    [("sim_iocs.repeater", True), ("caproto.commandline.repeater", False)],
    ids=["fleet repeater", "caproto repeater (the cause)"],
)
def test_libca_is_registered_with_the_repeater(tmp_path, module, registered):
    port = free_tcp_port()
    env = {**os.environ, "EPICS_CA_REPEATER_PORT": str(port)}
    repeater = ManagedProcess("repeater", [sys.executable, "-m", module], tmp_path / "r.log", env)
    repeater.start()
    try:
        repeater.wait_ready(lambda: not port_is_free("127.0.0.1", port), 20)
        client_env = {
            **env,
            "EPICS_CA_ADDR_LIST": f"127.0.0.1:{free_tcp_port()}",
            "EPICS_CA_AUTO_ADDR_LIST": "NO",
        }
        result = subprocess.run(
            [sys.executable, "-c", CLIENT, "12"],
            capture_output=True,
            text=True,
            env=client_env,
            timeout=120,
        )
    finally:
        repeater.stop()
    status = [line for line in result.stdout.splitlines() if "repeater subscribe timer" in line]
    assert status, result.stdout + result.stderr
    assert ("registered=1" in status[0]) == registered, status[0]
