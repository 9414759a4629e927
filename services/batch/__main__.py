"""`python -m services.batch score`: score a partitioned Parquet dataset with a served model on
Dask (a scheduler's address, or a local cluster on this machine).

    python -m services.batch score --model cancer-rf --input data/ --output scored/ \\
        [--scheduler tcp://scheduler:8786] [--workers 4] [--id-column customer_id]

Needs the `batch` extra (dask[dataframe,distributed]); every Dask worker needs the model store
(BENTOML_HOME) and this package, and loads the model through the verifying loader.
"""

import argparse
import json
import sys
import time
from collections.abc import Sequence
from typing import Any


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m services.batch",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    score = commands.add_parser("score", help="score a Parquet file or dataset directory")
    score.add_argument("--model", required=True, help="name or name:version in the model store")
    score.add_argument("--input", required=True, help="a Parquet file, or a directory of them")
    score.add_argument("--output", required=True, help="directory for part-NNNNN.parquet")
    score.add_argument("--scheduler", help="Dask scheduler address (default: a local cluster)")
    score.add_argument("--workers", type=int, default=None, help="local cluster workers")
    score.add_argument("--chunk-rows", type=int, default=16_384)
    score.add_argument("--id-column", default=None, help="copied into the result")
    score.add_argument("--range-policy", choices=("reject", "flag"), default="reject")
    args = parser.parse_args(argv)

    from dask.distributed import Client, LocalCluster

    from services.batch.distributed import FileReport, score_dataset
    from services.errors import AppError

    def progress(report: FileReport, done: int, total: int) -> None:
        print(
            f"[{done}/{total}] {report.source}: {report.rows:,} rows, {report.failed:,} "
            f"failed (worker pid {report.worker_pid})",
            file=sys.stderr,
            flush=True,
        )

    cluster: Any = None
    if args.scheduler:
        client = Client(args.scheduler)  # type: ignore[no-untyped-call]
    else:
        cluster = LocalCluster(  # type: ignore[no-untyped-call]
            n_workers=args.workers, threads_per_worker=1, processes=True
        )
        client = Client(cluster)  # type: ignore[no-untyped-call]
    started = time.perf_counter()
    try:
        reports = score_dataset(
            client,
            source=args.input,
            output=args.output,
            tag=args.model,
            policy=args.range_policy,
            chunk_rows=args.chunk_rows,
            id_column=args.id_column,
            progress=progress,
        )
    except AppError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.details:
            print(json.dumps(exc.details, indent=2), file=sys.stderr)
        return 2
    finally:
        client.close()  # type: ignore[no-untyped-call]
        if cluster is not None:
            cluster.close()
    rows = sum(report.rows for report in reports)
    seconds = time.perf_counter() - started
    print(
        json.dumps(
            {
                "model": reports[0].model if reports else args.model,
                "files": len(reports),
                "rows": rows,
                "failed": sum(report.failed for report in reports),
                "seconds": round(seconds, 2),
                "output": args.output,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
