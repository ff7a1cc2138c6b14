"""What decides the rounding, as recorded with every result."""
import json
import os
import platform
import subprocess
import sys

import pytest

from analysis.machine import rounding_context

CODE = "import json; from analysis.machine import rounding_context; print(json.dumps(rounding_context()))"


def context_under(env: dict) -> dict:
    out = subprocess.run([sys.executable, "-c", CODE], env=dict(os.environ, **env), capture_output=True,
                         text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_the_context_names_the_cpu_threads_and_kernels():
    c = rounding_context()
    assert c["cpu"] and c["torch_threads"] >= 1 and c["device"] == "cpu"
    assert c["aten_capability"] and isinstance(c["blas"], list)
    assert c["onednn_isa"] not in ("", "unknown")


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="AVX limits are x86's")
def test_an_isa_limit_is_what_onednn_reports_and_is_recorded():
    # oneDNN's own report follows the limit: the independent witness that the recorded ISA is real
    # (on a CPU without AVX-512 the limit changes nothing, and the report says AVX2 either way)
    c = context_under({"ONEDNN_MAX_CPU_ISA": "AVX2", "OMP_NUM_THREADS": "1"})
    assert c["isa_limits"]["ONEDNN_MAX_CPU_ISA"] == "AVX2" and c["torch_threads"] == 1
    assert "AVX2" in c["onednn_isa"] and "512" not in c["onednn_isa"]
