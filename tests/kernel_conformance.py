"""jupyter_kernel_test against a kernel at a FedHub centre, started through the fedhub-slurm
provisioner exactly as a notebook server starts it (kernelspec from FedHubKernelSpecManager).

Run by tests/test_kernels.py inside the notebook environment (where fedhub_lab is installed):

    FEDHUB_TEST_CENTRE=beta JUPYTERHUB_API_URL=... JUPYTERHUB_API_TOKEN=... JUPYTERHUB_USER=... \\
    FEDHUB_KERNEL_CENTRES='[...]' python -m unittest kernel_conformance -v
"""

from __future__ import annotations

import json
import os
import tempfile
import unittest

import jupyter_kernel_test

from fedhub_lab.provisioner.specs import FedHubKernelSpecManager

CENTRE = os.environ["FEDHUB_TEST_CENTRE"]
KERNEL = f"fedhub-{CENTRE}"

# jupyter_kernel_test starts kernels with jupyter_client's own spec manager: give it our spec
_specs = tempfile.mkdtemp(prefix="fedhub-kernelspecs-")
os.makedirs(os.path.join(_specs, "kernels", KERNEL))
with open(os.path.join(_specs, "kernels", KERNEL, "kernel.json"), "w") as f:
    json.dump(FedHubKernelSpecManager().get_kernel_spec(KERNEL).to_dict(), f)
os.environ["JUPYTER_PATH"] = _specs + os.pathsep + os.environ.get("JUPYTER_PATH", "")


class FedHubKernelConformance(jupyter_kernel_test.KernelTests):
    kernel_name = KERNEL
    language_name = "python"
    file_extension = ".py"
    code_hello_world = "print('hello, world')"
    code_stderr = "import sys; print('oops', file=sys.stderr)"
    completion_samples = [{"text": "zi", "matches": {"zip"}}]
    complete_code_samples = ["1", "print('x')"]
    incomplete_code_samples = ["for i in range(3):"]
    invalid_code_samples = ["import = 7q"]
    code_page_something = "zip?"
    code_generate_error = "raise ValueError('at the centre')"
    code_execute_result = [{"code": "6*7", "result": "42"}]
    code_display_data = [{"code": "from IPython.display import HTML, display; display(HTML('<b>b</b>'))",
                          "mime": "text/html"}]
    code_history_pattern = "6*?"
    # "range" is left out: a local ipykernel 7.4 fails jupyter_kernel_test 0.7's range check the
    # same way (it answers session 0 for the current session), so it says nothing about FedHub
    supported_history_operations = ("tail", "search")
    code_inspect_sample = "zip"
    code_clear_output = "from IPython.display import clear_output; clear_output()"

    def run_cell(self, code: str, timeout: float = 30, allow_stdin: bool = False) -> tuple[dict, list[dict]]:
        self.flush_channels()
        return self.execute_helper(code, timeout=timeout)

    def value_of(self, expression: str) -> str:
        reply, outputs = self.run_cell(f"print({expression})")
        self.assertEqual(reply["content"]["status"], "ok", reply["content"])
        return "".join(o["content"]["text"] for o in outputs if o["msg_type"] == "stream").strip()

    def test_where_the_kernel_runs(self):
        self.assertEqual(self.value_of("__import__('os').environ['SLURM_CLUSTER_NAME']"), CENTRE)

    def test_stdin_round_trip(self):
        self.flush_channels()
        msg_id = self.kc.execute("answer = input('Your name? ')", allow_stdin=True)
        request = self.kc.get_stdin_msg(timeout=30)
        self.assertEqual(request["content"]["prompt"], "Your name? ")
        self.kc.input("Ada")
        reply = self.kc.get_shell_msg(timeout=30)
        self.assertEqual(reply["parent_header"]["msg_id"], msg_id)
        self.assertEqual(self.value_of("answer"), "Ada")

    def test_interrupt_stops_the_loop_and_the_job_lives_on(self):
        job = self.value_of("__import__('os').environ['SLURM_JOB_ID']")
        self.flush_channels()
        msg_id = self.kc.execute("while True: pass")
        self.kc.get_iopub_msg(timeout=10)  # busy
        import time
        time.sleep(1)
        self.km.interrupt_kernel()
        reply = self.kc.get_shell_msg(timeout=30)
        self.assertEqual(reply["parent_header"]["msg_id"], msg_id)
        self.assertEqual(reply["content"]["status"], "error")
        self.assertEqual(reply["content"]["ename"], "KeyboardInterrupt")
        self.assertEqual(self.value_of("__import__('os').environ['SLURM_JOB_ID']"), job)

    def test_zz_restart_keeps_the_job_and_clears_the_variables(self):
        job = self.value_of("__import__('os').environ['SLURM_JOB_ID']")
        self.run_cell("kept = 1")
        self.km.restart_kernel()
        self.kc.wait_for_ready(timeout=60)
        self.assertEqual(self.value_of("'kept' in globals()"), "False")
        self.assertEqual(self.value_of("__import__('os').environ['SLURM_JOB_ID']"), job)


if __name__ == "__main__":
    unittest.main()
