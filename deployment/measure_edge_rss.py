"""RSS of `deepclf serve` serving a whole models folder (docs/deployment.md; the edge bundle's memory requests).

    .venv/bin/python deployment/measure_edge_rss.py MODELS_DIR [--threads 2] [--requests 200]

Writes the models.config `deepclf deploy edge` would (base paths pointed at MODELS_DIR), launches `deepclf serve`
with it (fp32, free ports), waits for /readyz, records the RSS, sends --requests single-image REST predictions to
every served version in turn and records the RSS after each, then stops the server with SIGTERM. Measured on the
development machine (2 vCPUs) for the edge example's shape (flowers_basic versions 1 and 2, flowers_augmented
version 1, each a copy of the converted 180x180 basic model), two runs: 119-120 MiB when ready, 266-268 MiB after
200 predictions per version; one version alone: 89 MiB ready, 150-151 MiB after 200 predictions.
"""

from __future__ import annotations

import argparse
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

from deepclf import protocol as P
from deepclf.deploy.edge import EdgeOptions
from deepclf.deploy.tfserving import models_config, scan_models
from deepclf.deploy.tfserving.options import MODELS_MOUNT, served_versions
from deepclf.serving.measure import rss_bytes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models_dir", type=Path)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    root = args.models_dir.resolve()
    models = scan_models(root)
    opts = EdgeOptions().config_options()
    config = models_config(models, opts).replace(f'base_path: "{MODELS_MOUNT}/', f'base_path: "{root}/')
    with tempfile.TemporaryDirectory() as tmp:
        config_file = Path(tmp) / "models.config"
        config_file.write_text(config)
        cmd = [
            sys.executable,
            "-m",
            "deepclf.cli",
            "serve",
            "--model_config_file",
            str(config_file),
            "--port",
            "0",
            "--rest_api_port",
            "0",
            "--format",
            "fp32",
            "--threads",
            str(args.threads),
            "--no_access_log",
        ]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert proc.stdout is not None  # a PIPE
            found = re.search(r"REST on (http://\S+);", proc.stdout.readline())
            assert found, "the server did not print its REST address"
            url = found[1]
            with httpx.Client() as s:
                while s.get(url + "/readyz", timeout=5).status_code != 200:
                    time.sleep(0.05)
                print(f"ready: {rss_bytes(proc.pid) / 2**20:.0f} MiB")
                for m in models:
                    size = m.manifest().input.shape
                    body = P.encode_predict_request(
                        {"image": np.random.default_rng(0).uniform(0, 255, (1, *size)).astype(np.float32)}
                    )
                    for v in served_versions(m, opts):
                        for _ in range(args.requests):
                            s.post(
                                f"{url}/v1/models/{m.name}/versions/{v}:predict", content=body, timeout=30
                            ).raise_for_status()
                        print(
                            f"after {args.requests} predictions on {m.name}/{v}: {rss_bytes(proc.pid) / 2**20:.0f} MiB"
                        )
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.communicate(timeout=60)
    return 0


if __name__ == "__main__":
    sys.exit(main())
