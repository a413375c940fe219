"""`python -m gan ...`: `gan.cli` parses the arguments; the `worker` command goes to `gan.worker`
(the JSON job protocol), every other one to `gan.cli.run`. Choosing here keeps the two apart."""

import sys

from .cli import parse_args, run


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.command != "worker":
        return run(args)
    from . import worker
    free_cores = max(0, args.free_cores)
    if args.serve:
        return worker.run_server(max(0.1, args.idle_exit), free_cores=free_cores)
    return worker.run_worker(args.job, free_cores=free_cores)


if __name__ == "__main__":
    sys.exit(main())
