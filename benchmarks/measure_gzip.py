"""Size and time of gzip on REST predict bodies (docs/results/2026-11-27-clients.md).

python benchmarks/measure_gzip.py PHOTOS_FOLDER
"""

import gzip
import sys
import time
import zlib
from pathlib import Path

from deepclf.preprocessing import preprocess_batch
from deepclf.protocol import encode_predict_request

photos = sorted(Path(sys.argv[1]).glob("*/*.jpg"))
for n in (8, 32):
    body = encode_predict_request({"image": preprocess_batch(photos[:n], (180, 180))})
    t = time.perf_counter()
    gz = gzip.compress(body, compresslevel=1)
    tc = time.perf_counter() - t
    t = time.perf_counter()
    zlib.decompressobj(wbits=31).decompress(gz)
    td = time.perf_counter() - t
    print(
        f"{n} images: {len(body) / 1e6:.1f} MB JSON -> {len(gz) / 1e6:.1f} MB gzip; compress {tc * 1e3:.0f} ms, inflate {td * 1e3:.0f} ms"
    )
