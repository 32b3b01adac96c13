"""Latency benchmarking of bundles on the target machine (`edge-sdk bench`).

    from edge_sdk.bench import BenchConfig, run_bench, write_report
    record = run_bench(BenchConfig("bundle/", device="cpu", batches=(1, 8), budget_ms=500, units_per_cycle=60))
    write_report(record, "bench-out/")        # bench.json, bench.md, PNG plots

Modules: ``config`` (options, presets), ``inputs`` (random or real images), ``runner`` (timing
loop, record), ``stats`` (percentiles, budget verdict, bootstrap), ``memory`` (peak RSS, device
memory), ``environment`` (machine, versions, bundle checksum), ``report`` (JSON, Markdown),
``plots`` (PNG), ``compare`` (two records side by side).
"""

from edge_sdk.bench.compare import compare_records, format_table
from edge_sdk.bench.config import PRESETS, BenchConfig, BenchError
from edge_sdk.bench.report import load_record, markdown, write_report
from edge_sdk.bench.runner import SCHEMA, SCHEMA_VERSION, STAGES, run_bench

__all__ = ["BenchConfig", "BenchError", "PRESETS", "run_bench", "write_report", "load_record", "markdown",
           "compare_records", "format_table", "SCHEMA", "SCHEMA_VERSION", "STAGES"]
