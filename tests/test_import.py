import subprocess
import sys

import pysm
import pysm.cuda


def test_import_without_gpu_reports_reason():
    # On machines without a driver this must not raise; it reports zero devices and why.
    n = pysm.cuda.device_count()
    assert n >= 0
    if n == 0:
        assert pysm.cuda.unavailable_reason()
        assert not pysm.cuda.is_available()


def test_no_link_time_driver_dependency():
    # The extension must not need libcuda / libnvcuvid / libcudart at load time.
    so = pysm._core.__file__
    out = subprocess.run(["ldd", so], capture_output=True, text=True).stdout
    for lib in ("libcuda.so", "libnvcuvid", "libnvidia-encode", "libcudart.so"):
        assert lib not in out, f"{so} links {lib}:\n{out}"


def test_driver_library_report_names_every_attempt():
    libs = pysm.cuda.driver_libraries()
    assert set(libs) == {"libcuda", "libnvcuvid", "libnvidia-encode"}
    for name, (loaded, loaded_name, report) in libs.items():
        if not loaded:
            assert ".so.1" in report and ".so:" in report or ".so " in report or report.count(".so") >= 2


def test_error_hierarchy_subclasses_builtins():
    from pysm import errors

    assert issubclass(errors.ConfigError, ValueError)
    assert issubclass(errors.ModelNotFoundError, FileNotFoundError)
    assert issubclass(errors.SourceError, OSError)
    assert issubclass(errors.TimeoutError, TimeoutError)
    assert issubclass(errors.ExpiredViewError, ReferenceError)
    assert issubclass(errors.OutOfRangeError, IndexError)
    for cls in (errors.ConfigError, errors.SourceError, errors.DecodeError, errors.InferenceError,
                errors.PipelineError, errors.CudaError):
        assert issubclass(cls, pysm.Error)


def test_import_in_fresh_interpreter_is_quiet():
    r = subprocess.run([sys.executable, "-c", "import pysm; print(pysm.__version__)"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == pysm.__version__


def test_extension_exports_only_its_init_symbol():
    # Nothing of the static core / static CUDA runtime / CCCL may be visible to (or merged with)
    # other libraries in the process; see CMakeLists.txt.
    import shutil

    if shutil.which("nm") is None:
        import pytest

        pytest.skip("nm is not installed")
    so = pysm._core.__file__
    out = subprocess.run(["nm", "-D", "--defined-only", so], capture_output=True, text=True).stdout
    names = [line.split()[-1] for line in out.splitlines() if line.strip()]
    assert names == ["PyInit__core"], names[:20]


def test_torch_imports_after_pysm_native_code_ran():
    # On a GPU host this crashed (STB_GNU_UNIQUE CUB statics merged with torch's).
    import pytest

    pytest.importorskip("torch")
    code = ("import pysm, pysm.cuda, pysm._native._core as c; pysm.cuda.device_count(); "
            "c.nvenc_info(); import torch; torch.ops.aten.add; print('ok')")
    r = subprocess.run([sys.executable, "-X", "faulthandler", "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-3000:]
