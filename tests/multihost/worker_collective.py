"""Worker of the quick multi-process tests: a global sum over every process's devices.

``python worker_collective.py [FAIL_PROCESS]``: process ``FAIL_PROCESS`` (if given) exits with
status 3 before joining the job, as a process that fails to start.
"""

import os
import sys

# Before importing anything heavy: a process that fails to start fails at once.
if len(sys.argv) > 1 and os.environ.get("JAXPDE_PROCESS_ID") == sys.argv[1]:
    sys.exit(3)

from jaxpde import distributed  # noqa: E402

distributed.initialize()

import jax  # noqa: E402
import numpy as np  # noqa: E402
from jax.sharding import Mesh, NamedSharding, PartitionSpec  # noqa: E402

mesh = Mesh(np.asarray(jax.devices()), ("data",))
sharding = NamedSharding(mesh, PartitionSpec("data"))
# Process p contributes the rows 10p + (0, 1, ..., local devices - 1): the global sum is known.
rows = jax.local_device_count()
local = 10.0 * jax.process_index() + np.arange(rows, dtype=np.float32)
total = jax.jit(lambda x: x.sum(), out_shardings=NamedSharding(mesh, PartitionSpec()))(
    jax.make_array_from_process_local_data(sharding, local)
)
gathered = distributed.allgather_bytes(np.float64([jax.process_index() + 0.25]))
agree = distributed.all_agree(jax.process_index() == 0)
print(
    f"process {jax.process_index()} of {jax.process_count()}: devices {jax.device_count()} "
    f"sum {float(total)} gathered {gathered.tolist()} agree {agree}",
    flush=True,
)
