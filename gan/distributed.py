"""Training on several GPUs or machines: processes started by PyTorch's launcher (torchrun).

`torchrun --nproc-per-node N -m gan train ...` starts N copies of the same command; each learns
from its own random crops and they agree, step by step, on one set of weights:
- gradients are averaged over all processes before every optimizer step (one all-reduce per
  optimizer: the generator's methods are called several ways per step - colour path, texture
  path, encoder - which DistributedDataParallel's forward hooks do not follow);
- weights are copied from rank 0 once, after they are built or loaded, and compared again at the
  end (rank 0's are written; a rank whose weights differ is reported);
- rank 0 decides, once per step, whether the budget is spent or any process was asked to stop,
  and what fraction of the budget has passed (the learning-rate schedule): every process stops
  at the same step, so none waits forever for the others;
- rank 0 alone reads and writes the work folder and the style file (checkpoint, previews,
  painted keyframes), and sends what it read (the checkpoint to resume) to the others: the
  work folder need only exist on rank 0's machine. Its refusals and failures reach every rank.

Without a launcher (no RANK and WORLD_SIZE in the environment) the group is `Processes()`,
whose collectives do nothing: training runs exactly as it always did. torchrun with one process
makes a group of one, which trains the same weights bit for bit (tests/gan/test_distributed.py).
"""

from __future__ import annotations

import json
import os
import re
import time
from typing import Any, Callable, Iterable

import torch

from . import device as device_mod
from .fileio import atomic_write
from .protocol import CancelledError, Reporter, UserError


class StoppedWithRankZero(CancelledError):
    """Raised on the other ranks when rank 0 stopped (refused, failed or was cancelled): rank 0
    reports why; the others stop quietly (their reporter drops it, see RankReporter)."""


class LostContact(UserError):
    """A collective failed: another process crashed, was killed or cannot be reached."""


def launched() -> tuple[int, int, int] | None:
    """(rank, local_rank, world_size) when started by torchrun (or any launcher that sets
    torch's env:// variables), else None."""
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return None
    try:
        rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    except ValueError:
        raise UserError("RANK, WORLD_SIZE and LOCAL_RANK must be whole numbers (they are set by "
                        "torchrun)") from None
    if not 0 <= rank < world:
        raise UserError(f"RANK={rank} does not fit WORLD_SIZE={world}")
    return rank, local_rank, world


class Processes:
    """The group of training processes; one process alone when not launched by torchrun."""

    rank = 0
    local_rank = 0
    world = 1
    backend = ""

    @property
    def main(self) -> bool:
        """The process that reads and writes files and reports progress."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1 or bool(self.backend)

    def close(self) -> None:
        if self.backend and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()

    # - collectives (no-ops for one process) -
    def _collective(self, what: str, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except RuntimeError as exc:  # gloo/nccl: a peer died, hung up or timed out
            raise LostContact(f"lost contact with the other training processes while {what} "
                              f"({_reason(exc)}): one of them failed or was stopped") from None

    def broadcast_modules(self, modules: Iterable[torch.nn.Module]) -> None:
        """Rank 0's parameters and buffers, copied into every rank's modules."""
        if not self.active:
            return
        for module in modules:
            for tensor in (*module.parameters(), *module.buffers()):
                self._collective("copying the weights", lambda: torch.distributed.broadcast(
                    tensor.data, 0))

    def average_gradients(self, parameters: Iterable[torch.nn.Parameter]) -> None:
        """Replace every gradient by its mean over the ranks, in one all-reduce. A parameter
        without a gradient on some ranks counts as zero there; one without a gradient on every
        rank keeps none (the optimizer then skips it, as it does in one process)."""
        if not self.active:
            return
        params = list(parameters)
        if not params:
            return
        device = params[0].device
        parts = [(p.grad.detach().reshape(-1).float() if p.grad is not None
                  else torch.zeros(p.numel(), device=device)) for p in params]
        parts.append(torch.tensor([float(p.grad is not None) for p in params], device=device))
        flat = torch.cat(parts)
        self._collective("averaging gradients", lambda: torch.distributed.all_reduce(flat))
        has_grad = flat[-len(params):].tolist()  # one device sync, not one per parameter
        flat = flat[:-len(params)].div_(self.world)
        offset = 0
        for n, p in enumerate(params):
            mean = flat[offset:offset + p.numel()].view(p.shape)
            offset += p.numel()
            if has_grad[n] <= 0:
                continue
            if p.grad is None:
                p.grad = mean.to(p.dtype)
            else:
                p.grad.copy_(mean)

    def agree_to_stop(self, fraction: float, finished: bool, cancelled: bool, device
                      ) -> tuple[float, bool, bool]:
        """Rank 0's budget fraction and finished flag; cancelled if any rank was asked to stop."""
        if not self.active:
            return fraction, finished, cancelled
        mine = [fraction, float(finished), 0.0] if self.main else [0.0, 0.0, 0.0]
        mine[2] = float(cancelled)
        flat = torch.tensor(mine, dtype=torch.float64, device=device)
        self._collective("agreeing on the next step",
                         lambda: torch.distributed.all_reduce(flat))
        fraction, finished, cancelled = flat.tolist()
        return fraction, finished > 0, cancelled > 0

    def ranks_that_drifted(self, modules: Iterable[torch.nn.Module], device) -> list[int]:
        """The ranks whose weights differ from rank 0's (none, when gradients were averaged and
        every optimizer saw the same numbers; GPUs of different kinds may round differently)."""
        if not self.active:
            return []
        sums = [float(t.detach().double().abs().sum()) for m in modules for t in m.parameters()]
        mine = torch.tensor(sums, dtype=torch.float64, device=device)
        everyone = [torch.empty_like(mine) for _ in range(self.world)]
        self._collective("comparing the weights",
                         lambda: torch.distributed.all_gather(everyone, mine))
        return [rank for rank, theirs in enumerate(everyone) if not torch.equal(theirs, mine)
                and rank != self.rank] if self.main else []

    def from_main(self, work: Callable[[], Any], send: Callable[[Any], Any] = lambda x: x) -> Any:
        """Run `work` on rank 0 only and give every rank the outcome: its result (`send(result)`
        is what goes to the other ranks; they get StoppedWithRankZero when it raised)."""
        if not self.active:
            return work()
        if self.main:
            try:
                result = work()
            except BaseException:
                try:  # tell the others, then report the real error here
                    self._collective("stopping the others",
                                     lambda: torch.distributed.broadcast_object_list([None], 0))
                    self._settle()
                except LostContact:
                    pass
                raise
            message = [("ok", send(result))]
            self._collective("sending rank 0's results",
                             lambda: torch.distributed.broadcast_object_list(message, 0))
            self._settle()
            return result
        message = [None]
        self._collective("waiting for rank 0",
                         lambda: torch.distributed.broadcast_object_list(message, 0))
        self._settle()
        if message[0] is None:
            raise StoppedWithRankZero("rank 0 stopped the training (its message says why)")
        return message[0][1]

    def _settle(self) -> None:
        """Wait until every rank has its copy of a broadcast. Rank 0's send may return before
        the others have read it; after the last from_main every rank shuts its connections
        down, and none should do so while another still reads from them (docs/decisions.md,
        "session 10": a run's end once died there, in gloo's C++ threads)."""
        self._collective("waiting for the others", torch.distributed.barrier)


class _Group(Processes):
    def __init__(self, rank: int, local_rank: int, world: int, backend: str):
        self.rank, self.local_rank, self.world, self.backend = rank, local_rank, world, backend


def start(device_name: str) -> tuple[Processes, torch.device]:
    """The training processes and this one's device: one process (and device.pick_device's
    choice) without a launcher; with torchrun, process group `nccl` on CUDA (one GPU per process,
    by LOCAL_RANK) or `gloo` on the CPU."""
    where = launched()
    device = device_mod.pick_device(device_name)
    if where is None:
        return Processes(), device
    rank, local_rank, world = where
    if device.type == "mps":
        raise UserError("training on several processes runs on CUDA GPUs or the CPU, not Apple "
                        "MPS: use --device cpu, or start one process without torchrun")
    if device.type == "cuda":
        count = torch.cuda.device_count()
        if local_rank >= count:
            raise UserError(f"process LOCAL_RANK={local_rank} has no GPU of its own: this machine "
                            f"has {count}; start at most {count} processes per machine "
                            "(torchrun --nproc-per-node)")
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    backend = "nccl" if device.type == "cuda" else "gloo"
    try:
        torch.distributed.init_process_group(backend)
    except (RuntimeError, ValueError) as exc:
        raise UserError(f"rank {rank} could not join the other training processes "
                        f"({backend}: {_reason(exc)})") from None
    return _Group(rank, local_rank, world, backend), device


def _reason(exc: BaseException) -> str:
    """The gist of a backend's error: its first sentence, without the C++ source location
    ("[.../gloo/transport/tcp/pair.cc:553] Connection closed by peer [127.0.0.1]:1713. This is
    typically caused by ...")."""
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    text = re.sub(r"^\[[^\]]*\.\w+:\d+\]\s*", "", text)
    return re.split(r"\.(?:\s|$)", text, maxsplit=1)[0][:300] or type(exc).__name__


def seed_for(seed: int, rank: int) -> tuple[int, Any]:
    """(torch seed, numpy seed) of a rank: rank 0 uses `seed` itself (so that its draws are one
    process's), the others seeds derived from (seed, rank), so that each sees other crops."""
    if rank == 0:
        return seed, seed
    import numpy as np

    sequence = np.random.SeedSequence([seed, rank])
    return int(sequence.generate_state(1, np.uint64)[0] >> np.uint64(1)), sequence


class RankReporter(Reporter):
    """Under torchrun: rank 0 reports as one process would; the others only their own errors,
    prefixed with their rank (rank 0 says why a training stopped). Each rank's last error also
    goes to torchrun's error file, so that torchrun's failure summary shows that line instead
    of a link to its documentation."""

    def __init__(self, inner: Reporter, rank: int):
        self.inner = inner
        self.rank = rank

    def emit(self, event: str, **fields: Any) -> None:
        if event == "error":
            if self.rank:
                fields["message"] = f"rank {self.rank}: {fields.get('message')}"
            _write_error_file(str(fields.get("message")))
            self.inner.emit(event, **fields)
        elif self.rank == 0:
            self.inner.emit(event, **fields)


def rank_reporter(reporter: Reporter) -> Reporter:
    """`reporter` for this process: a RankReporter when launched by torchrun."""
    try:
        where = launched()
    except UserError:
        where = None  # reported as the job starts
    return reporter if where is None else RankReporter(reporter, where[0])


def _write_error_file(message: str) -> None:
    """torchrun's error file (TORCHELASTIC_ERROR_FILE), in the layout that its @record decorator
    writes; the summary shows "py_callstack", here the one line instead of a traceback."""
    path = os.environ.get("TORCHELASTIC_ERROR_FILE")
    if not path:
        return
    data = json.dumps({"message": {"message": message, "extraInfo": {
        "py_callstack": message, "timestamp": str(int(time.time()))}}}).encode()
    try:
        atomic_write(path, lambda handle: handle.write(data), overwrite=True)
    except OSError:
        pass  # the summary then shows torchrun's own text; the error line is printed anyway
