"""What decides a run's float rounding, recorded with every result (README, "Reproducibility").

Numbers are bitwise reproducible only where all of this is equal: the CPU (its model, and the ISA
oneDNN, ATen and the BLAS pick on it, or are limited to by the environment), torch's thread count,
the device and the library versions (``records.library_versions``). Two records whose
``rounding`` differs may differ in the last float32 bits of every feature and hence, through
near-tied scores, in metrics (README gives the sizes measured).
"""
from __future__ import annotations

import functools
import os
import platform
import tempfile

#: environment variables that limit or pin the kernels oneDNN, MKL, OpenBLAS and ATen choose
ISA_VARIABLES = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS", "MKL_CBWR",
                 "ATEN_CPU_CAPABILITY", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def rounding_context(device: str = "cpu") -> dict:
    """{cpu, onednn_isa, aten_capability, blas, torch_threads, device, isa_limits}: what decides
    the rounding of this process's computations (``device``: where the extractor ran)."""
    import torch
    out = {"cpu": cpu_model(), "onednn_isa": onednn_isa(),
           "aten_capability": torch.backends.cpu.get_cpu_capability(),
           "blas": blas_kernels(), "torch_threads": torch.get_num_threads(), "device": device,
           "isa_limits": {v: os.environ[v] for v in ISA_VARIABLES if v in os.environ}}
    if device.startswith("cuda") and torch.cuda.is_available():
        out["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return out


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``; ``platform.processor()`` elsewhere)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@functools.lru_cache(maxsize=1)
def onednn_isa() -> str:
    """The instruction set oneDNN runs on, as oneDNN itself reports it (its verbose header,
    printed once per process on the first primitive run in verbose mode: read from file
    descriptor 1 around a tiny convolution); "unknown" when it cannot be read. Never raises: a
    result is recorded whatever this probe meets."""
    try:
        import torch
        if not torch.backends.mkldnn.is_available():
            return "unavailable"
        text = _onednn_verbose_header(torch)
    except Exception:   # noqa: BLE001 -- a closed fd 1, a verbose mode that cannot be set, ...
        return "unknown"
    for line in text.splitlines():
        if ",cpu,isa:" in line:
            return line.split(",cpu,isa:", 1)[1].strip()
    return "unknown"


def _onednn_verbose_header(torch) -> str:
    import sys
    x, conv = torch.randn(1, 32, 64, 64), torch.nn.Conv2d(32, 32, 3)
    with tempfile.TemporaryFile() as f, torch.no_grad():
        sys.stdout.flush()
        _flush_c_stdout()          # what C printed before belongs to the real stdout
        saved = os.dup(1)
        try:
            os.dup2(f.fileno(), 1)
            try:
                with torch.backends.mkldnn.verbose(torch.backends.mkldnn.VERBOSE_ON):
                    conv(x)
            finally:
                _flush_c_stdout()  # oneDNN's lines into the file, before fd 1 is restored
                os.dup2(saved, 1)
        finally:
            os.close(saved)
        f.seek(0)
        return f.read().decode(errors="replace")


def _flush_c_stdout() -> None:
    """oneDNN prints with C's buffered stdout: flush it before file descriptor 1 is restored."""
    try:
        import ctypes
        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError, TypeError):   # TypeError: no CDLL(None) on Windows
        pass


def blas_kernels() -> list[str]:
    """numpy's / scipy's BLAS libraries with the kernel architecture they picked, e.g.
    ``openblas 0.3.31 SkylakeX``."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    return sorted({" ".join(str(x) for x in (i.get("internal_api"), i.get("version"),
                                              i.get("architecture")) if x)
                   for i in threadpool_info() if i.get("user_api") == "blas"})
