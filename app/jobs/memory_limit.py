"""A memory ceiling for the training worker process, so one job cannot take the machine.

Call :func:`apply_memory_limit` first thing in the worker process (``app.jobs.worker.main``, next to ``os.nice``);
an allocation beyond the limit then fails at once instead of the machine swapping or the OOM killer picking a
victim. The issue's hostile model reached 13 GB in 57 s without one.

Mechanism: ``RLIMIT_DATA`` (Linux >= 4.7 counts every private writable mapping in it, so it covers malloc, numpy's
mmap'ed arrays and TensorFlow's allocator alike). Measured with ``python bench/memory_limit.py`` (Linux 6.18,
2 cores, Python 3.11, TensorFlow 2.21 CPU; MiB):

====================================================  =======  ======  =======  ==========
process                                               VmSize   VmData  VmRSS    VmHWM
====================================================  =======  ======  =======  ==========
after ``import tensorflow``                            1,233     418     628       628
blog config, 8 batches of 64 on 512 images             2,318     611     727       727
blog config through ``train()``, 60,000 + 10,000       2,816   1,192   1,264     1,288
  images, 20 batches of 64 and evaluation
same at batch 1536 (activation estimate 0.94 GB)       2,824   1,253   1,318     1,700
blog config, 8 batches, TF_NUM_*_THREADS=32            2,874   1,335     867       867
blog config, 8 batches, MALLOC_ARENA_MAX=2             1,424     602     712       712
====================================================  =======  ======  =======  ==========

TensorFlow 2.21 does not reserve a huge address space here (unlike the multi-GB reservations older releases and
GPU builds are known for), so both rlimits work on this machine:

- ``RLIMIT_AS`` 2-4 GiB: ``import tensorflow`` and the blog's run work at 3 GiB; ``np.ones`` of 8 GiB raises
  MemoryError in 0.2 s, ``tf.ones`` of 8 GiB raises ResourceExhaustedError at once; 4 conv layers of 512 1x1
  filters at batch 512 (3.3 GB of forward activations) raise ResourceExhaustedError at 3 GiB.
- ``RLIMIT_DATA`` 1-3 GiB: the same outcomes (import and the blog's run work at 1 GiB, the 60,000-image run at
  1.5 GiB, and at 3 GiB at batch 1536); the 512-filter model raised ResourceExhaustedError at 2 GiB and at 3 GiB
  aborted the process with ``std::bad_alloc`` (SIGABRT, exit -6) in 3 runs out of 3, 13-20 s after start (~7 s of
  it importing TensorFlow): a C++ allocation that TensorFlow does not turn into an exception. On an AMD EPYC host
  (same TensorFlow 2.21) both that model and the blog's CNN at batch 1536 under 900 MiB ended with a segmentation
  fault instead (exit -11, every run): an allocation failure TensorFlow's oneDNN kernels do not check. Either way
  the job ends within seconds, and the runner must report all three as "out of memory" (see
  :func:`is_out_of_memory` and :data:`CRASHED_AT_LIMIT`).

``RLIMIT_DATA`` is chosen because ``RLIMIT_AS`` also counts address space that costs no memory: VmSize exceeds
VmData by ~1.7 GB, of which ~0.9 GB is glibc's per-thread malloc arenas reserved as PROT_NONE (MALLOC_ARENA_MAX=2
removed it) and the rest shared libraries; glibc makes up to 8 arenas per core, so that gap grows with the machine.
Both grow with TensorFlow's thread pools (one intra-op and one inter-op thread per core, each with an 8 MiB stack
and its arena): 64 threads instead of 4 added 724 MiB of VmData without touching it; :func:`default_limit` allows
24 MiB per core beyond two.

cgroups: not usable here. ``/sys/fs/cgroup/unified`` (cgroup v2) offers only the ``hugetlb`` controller, and the
cgroup v1 memory hierarchy belongs to the sandbox that runs this machine. Where a v2 ``memory`` controller is
delegated (systemd ``Delegate=yes``, or ``systemd-run --user -p MemoryMax=3G``), it is the stronger choice: it
counts page cache and child processes too. An rlimit is per process and inherited by children.
"""

from __future__ import annotations

import logging
import os
import platform
import re
import resource
import signal
from dataclasses import dataclass

logger = logging.getLogger(__name__)

GIB = 2**30
MIB = 2**20
# Measured (module docstring): a 60,000-image run of the blog's config peaked at 1.3 GB RSS / 1.25 GB of VmData,
# and at batch 1536, the most the cost budget lets it have (~1 GB of activations, app/core/training_cost.py), it
# trained under 3 GiB while the hostile configurations failed within seconds.
BASE_LIMIT = 3 * GIB
PER_EXTRA_CORE = 24 * MIB  # two TensorFlow threads per core, each an 8 MiB stack plus its malloc arena
# What a process that ran out of memory leaves in its log: Python's, numpy's, TensorFlow's and C++'s words for it.
OUT_OF_MEMORY = re.compile(r"MemoryError|ResourceExhaustedError|bad_alloc|\bOOM\b")
ABORTED = -signal.SIGABRT  # returncode of a worker that hit the limit in C++ code (std::bad_alloc)
SEGMENTATION_FAULT = -signal.SIGSEGV  # ... in a oneDNN kernel that does not check its allocation
# The returncodes of a worker that crashed at its memory limit rather than raising an error.
CRASHED_AT_LIMIT = frozenset({ABORTED, SEGMENTATION_FAULT})


@dataclass(frozen=True)
class MemoryLimit:
    """The limit in force after :func:`apply_memory_limit`.

    Attributes:
        resource: ``RLIMIT_DATA`` or ``RLIMIT_AS``.
        max_bytes: the soft and hard limit set.
        previous: the (soft, hard) limits before.
    """

    resource: str
    max_bytes: int
    previous: tuple[int, int]


def default_limit(cpu_count: int | None = None) -> int:
    """The default memory limit of one training worker: 3 GiB plus 24 MiB per core beyond two.

    Args:
        cpu_count: cores TensorFlow will make threads for (default: ``os.cpu_count()``).

    Returns:
        Bytes.
    """
    cores = cpu_count if cpu_count is not None else (os.cpu_count() or 1)
    return BASE_LIMIT + PER_EXTRA_CORE * max(0, cores - 2)


def _kernel_version(release: str) -> tuple[int, int]:
    match = re.match(r"(\d+)\.(\d+)", release)
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


def apply_memory_limit(max_bytes: int, release: str | None = None) -> MemoryLimit:
    """Limit this process (and the children it starts) to ``max_bytes`` of data memory.

    Uses ``RLIMIT_DATA`` on Linux >= 4.7 and ``RLIMIT_AS`` elsewhere (older kernels count only ``brk`` in
    RLIMIT_DATA, which misses every mmap'ed array). Both soft and hard limits are set, so the job cannot raise
    them back; an existing lower hard limit is kept.

    Args:
        max_bytes: the ceiling (see :func:`default_limit`).
        release: the kernel release to decide by (default: ``platform.release()``; a parameter for tests).

    Returns:
        What was set.

    Raises:
        ValueError: ``max_bytes`` is not positive.
    """
    if max_bytes <= 0:
        raise ValueError("max_bytes must be positive")
    release = release if release is not None else platform.release()
    use_data = platform.system() == "Linux" and _kernel_version(release) >= (4, 7)
    name = "RLIMIT_DATA" if use_data else "RLIMIT_AS"
    which = getattr(resource, name)
    previous = resource.getrlimit(which)
    hard = previous[1]
    limit = max_bytes if hard == resource.RLIM_INFINITY else min(max_bytes, hard)
    resource.setrlimit(which, (limit, limit))
    logger.info("training worker memory limited to %.2f GiB (%s)", limit / GIB, name)
    return MemoryLimit(name, limit, previous)


def is_out_of_memory(error: BaseException) -> bool:
    """True if ``error`` is what an allocation beyond the limit raises.

    MemoryError (numpy, Python) or TensorFlow's ResourceExhaustedError (matched by name: this module must not
    import TensorFlow), or an error whose message says ``bad_alloc``/``OOM``.

    Args:
        error: the exception a job ended with.

    Returns:
        Whether to report the job as out of memory.
    """
    if isinstance(error, MemoryError):
        return True
    names = {cls.__name__ for cls in type(error).__mro__}
    return "ResourceExhaustedError" in names or bool(OUT_OF_MEMORY.search(str(error)))
