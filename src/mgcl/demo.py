"""``mgcl demo``: the whole pipeline on a seeded synthetic sound-event set, fully offline.

synthetic audio (mgcl.data.synthetic) -> aisfx embeddings (cached) -> few-shot protocol
(K support clips per class drawn per seed, the rest is the query) -> results table.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

#: Methods compared by the demo, cheapest first.
DEMO_METHODS = ("prototype", "tip_adapter", "mgcl", "mgcl_f")


def run_demo(
    workdir: Path,
    n_per_class: int = 16,
    shots: Sequence[int] = (1, 2, 4, 8),
    seeds: int = 3,
    seed: int = 0,
    batch_size: int = 16,
    methods: Sequence[str] = DEMO_METHODS,
    backbone_name: str = "aisfx",
) -> int:
    from mgcl.backbones import get_backbone
    from mgcl.cli import embed_rows, report_failures, support_views
    from mgcl.data.manifest import read_manifest
    from mgcl.data.synthetic import make_dataset
    from mgcl.evaluate import encode_labels, format_table, method_specs, protocol_support_rows, run_protocol, summarise
    from mgcl.progress import progress_bar

    t0 = time.perf_counter()
    workdir = Path(workdir)
    manifest = make_dataset(workdir / f"synthetic-seed{seed}-n{n_per_class}", n_per_class=n_per_class, seed=seed)
    rows = read_manifest(manifest)
    labels = [r.label for r in rows]
    n_classes = len(set(labels))
    print(f"synthetic set: {len(rows)} clips, {n_classes} classes ({manifest})")
    t1 = time.perf_counter()

    backbone = get_backbone(backbone_name)
    res = embed_rows(backbone, [r.path for r in rows], workdir / "features", batch_size)
    if res.errors:
        report_failures(res)
        return 1
    t2 = time.perf_counter()
    print(
        f"embedded with {backbone.name}: {res.computed} computed, cache hits: {res.cache_hits} "
        f"({res.seconds:.1f} s)"
    )

    feats = res.stacked()
    y, classes = encode_labels(labels)
    views = support_views(backbone, [r.path for r in rows], method_specs(list(methods)),
                          protocol_support_rows(y, shots, seeds, classes=classes), workdir / "features", batch_size)
    if views is not None:
        print(f"audio views of the support clips: {views.computed} computed, cache hits: {views.cache_hits}")
    t_views = time.perf_counter()
    n_runs = len(methods) * len(shots) * seeds
    with progress_bar(n_runs, "evaluating", unit="run") as update:
        runs, _ = run_protocol(feats, labels, list(methods), list(shots), seeds, progress=update, views=views)
    t3 = time.perf_counter()
    print(f"\nfew-shot accuracy (%) on {len(rows)} synthetic clips, {n_classes}-way, "
          f"mean ± std over {seeds} seeds (chance {100 / n_classes:.1f}):\n")
    print(format_table(summarise(runs)))
    print(f"\ntime: generate {t1 - t0:.1f} s, embed {t2 - t1:.1f} s, audio views {t_views - t2:.1f} s, "
          f"evaluate {t3 - t_views:.1f} s, total {t3 - t0:.1f} s")
    return 0
