"""The micro-batches of a run, prepared ahead of the step that trains on them.

    plan -> [a background thread: collate -> leave out ranking pairs -> count -> pin -> copy] -> fit

While the device computes micro-batch k, a thread collates micro-batch k+1 on the host, reads what
the step needs to know about it (its counts and shape) from host tensors, and copies it to the
device: from page-locked memory on a side stream, so that neither the copy nor the host waits for
the device. `fit` then only queues work; it reads nothing back until a log point.

`micro_batches` yields exactly what collating in the loop would give, in the same order (a test
holds it to that), whatever `ahead` is.
"""

import queue
import threading
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal, TypeVar

import torch

from rmcore.model.batching import Batch, Example, collate
from rmcore.model.rows import SharePolicy
from rmcore.training.summary import TokenSummary


@dataclass(frozen=True, kw_only=True)
class Counts:
    """What one micro-batch's forward computes, read on the host."""

    tokens: int
    """Real tokens (a shared prompt counts once)."""
    padded: int
    """Positions: rows x width."""
    alone: int
    """Tokens its sequences hold each encoded alone."""
    shape: tuple[int, int]
    """(rows, width)."""


@dataclass(frozen=True, kw_only=True)
class MicroBatch:
    """A collated micro-batch on the training device, the pairs its rankings imply left out (the
    pairwise loss never sees them; the rankings feed the listwise loss)."""

    batch: Batch
    counts: Counts
    ready: torch.cuda.Event | None = None
    """Recorded on the copy stream after the copy; the compute stream waits for it (CUDA)."""

    def on_stream(self) -> Batch:
        """The batch, safe to use on the current stream: on CUDA the stream waits (on the device, not
        the host) for the copy, and the allocator keeps the copy's memory until the stream is done."""
        if self.ready is None:
            return self.batch
        stream = torch.cuda.current_stream(self.batch.input_ids.device)
        stream.wait_event(self.ready)
        return self.batch.recorded_on(stream)


@dataclass(frozen=True, kw_only=True)
class Collation:
    """How micro-batches are collated: pad id and side, shared-prompt policy, width buckets."""

    pad_id: int
    padding_side: Literal["left", "right"]
    share: SharePolicy | None
    width_multiple: int

    def __call__(self, examples: Sequence[Example]) -> Batch:
        return collate(examples, self.pad_id, self.padding_side, self.share, self.width_multiple)


def prepared(examples: Sequence[Example], collation: Collation, device: torch.device) -> MicroBatch:
    """One micro-batch collated, counted and on `device` (copied from pinned memory on a side stream
    on CUDA: call it from the thread that is not launching the step's kernels)."""
    host = collation(examples).without_ranking_pairs()
    counts = Counts(
        tokens=host.tokens, padded=host.padded_tokens, alone=host.sequence_tokens, shape=host.shape
    )
    if device.type != "cuda":
        return MicroBatch(batch=host.to(device), counts=counts)
    stream = _copy_stream(device)
    with torch.cuda.stream(stream):
        moved = host.pin_memory().to(device, non_blocking=True)
        ready = torch.cuda.Event()
        ready.record(stream)
    return MicroBatch(batch=moved, counts=counts, ready=ready)


_COPY_STREAMS: dict[torch.device, torch.cuda.Stream] = {}


def _copy_stream(device: torch.device) -> torch.cuda.Stream:
    """The side stream that copies micro-batches to `device`, one per device for the process."""
    if device not in _COPY_STREAMS:
        _COPY_STREAMS[device] = torch.cuda.Stream(device)
    return _COPY_STREAMS[device]


def micro_batches(
    jobs: Sequence[Sequence[Example]], collation: Collation, device: torch.device, ahead: int
) -> Generator[MicroBatch]:
    """Each job's micro-batch, prepared, in order: up to `ahead` of them ahead of the consumer by a
    background thread (0: each prepared when it is asked for, in the caller's thread)."""
    work = (prepared(job, collation, device) for job in jobs)
    return work if ahead == 0 else in_background(lambda: work, ahead, device)


T = TypeVar("T")
_DONE = object()


def in_background(make: Callable[[], Iterator[T]], ahead: int, device: torch.device) -> Generator[T]:
    """The items of `make()`, produced by a daemon thread at most `ahead` items ahead of the consumer.

    An exception in the thread is raised in the consumer, at the item where it happened. A consumer
    that stops early (a `break`, an exception, garbage collection) stops the thread: it is told by
    closing this generator, and the thread ends at its next item.
    """
    items: queue.Queue[object] = queue.Queue(maxsize=ahead)
    stop = threading.Event()

    def produce() -> None:
        if device.type == "cuda":
            torch.cuda.set_device(device)  # the current device is per thread
        try:
            for item in make():
                while not stop.is_set():
                    try:
                        items.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            items.put(_DONE)
        except Exception as error:  # noqa: BLE001  not handled here: the consumer raises it
            items.put(_Failure(error))

    thread = threading.Thread(target=produce, name="rmcore-feed", daemon=True)
    thread.start()
    try:
        while (item := items.get()) is not _DONE:
            if isinstance(item, _Failure):
                raise item.error
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        while thread.is_alive():
            try:
                items.get(timeout=0.1)
            except queue.Empty:
                continue
        thread.join()


@dataclass(frozen=True)
class _Failure:
    error: Exception


@dataclass
class TokenCount:
    """What a process's forwards computed, micro-batch by micro-batch."""

    encoded: int = 0
    """Real tokens through the model (a shared prompt counts once)."""
    padded: int = 0
    """Positions computed, padding included: rows x width, summed over micro-batches."""
    alone: int = 0
    """Tokens the same sequences hold each encoded alone (a shared prompt counts once per response)."""
    shapes: set[tuple[int, int]] = field(default_factory=set)
    """The distinct (rows, width) the forwards ran."""

    def add(self, counts: Counts) -> None:
        """Count one micro-batch."""
        self.encoded += counts.tokens
        self.padded += counts.padded
        self.alone += counts.alone
        self.shapes.add(counts.shape)

    def summary(self, total: Callable[[float], float]) -> TokenSummary:
        """tokens_encoded, tokens_padded, padding (share of computed positions that were padding) and
        shared_prompt_saving (share of tokens that encoding prompts once saved); `total` sums a count
        over the processes that share the work (training ranks)."""
        encoded, padded, alone = (total(float(n)) for n in (self.encoded, self.padded, self.alone))
        return TokenSummary(
            tokens_encoded=int(encoded),
            tokens_padded=int(padded),
            padding=1.0 - encoded / padded if padded else 0.0,
            shared_prompt_saving=1.0 - encoded / alone if alone else 0.0,
        )
