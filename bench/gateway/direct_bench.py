"""rollout-bench gateway, the direct side: the exec the gateway sends for the SDK's
commands.run("true") (`/bin/bash -c true`; the gateway drops bash's -l by default), through
the Python binding on one live sandbox. Prints one JSON line of samples (ms)."""
import json
import sys
import time

import rollout

sock, n = sys.argv[1], int(sys.argv[2])
with rollout.Client(socket=sock) as c:
    sb = c.open("default")
    for _ in range(10):
        sb.exec(["/bin/bash", "-c", "true"])
    ms = []
    for _ in range(n):
        t = time.perf_counter()
        r = sb.exec(["/bin/bash", "-c", "true"])
        ms.append((time.perf_counter() - t) * 1e3)
        assert r.exit_code == 0
    sb.close()
print(json.dumps({"direct_run_ms": ms}))
