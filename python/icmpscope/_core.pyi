"""Type stubs for the compiled core (rust/python)."""
from typing import Any, Callable, Union

class CaptureFormatError(ValueError): ...

class ArrowTable:
    """Record batches exported through the Arrow PyCapsule interface."""

    @property
    def num_rows(self) -> int: ...
    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object: ...
    def __arrow_c_schema__(self) -> object: ...
    def __len__(self) -> int: ...
    @staticmethod
    def concat(tables: list[ArrowTable]) -> ArrowTable:
        """The tables' batches one after another (same schema), without a copy."""

# timeout_v4, timeout_v6, max_reassembly_bytes, max_datagrams, max_ext_headers, max_tunnel_depth,
# max_record_len, max_block_len, max_decompression_ratio, flows, max_flows
Options = dict[str, float | int]

# A capture: a local path; (name, size, open_at(offset[, length]) -> binary file object) for one
# that opens at any offset (split like a local file); (name, binary file object) for a stream read once.
# Anything with ``__arrow_c_stream__`` holding one column (a polars Series).
ArrowStreamable = Any

SourceArg = Union[str, tuple[str, int, Callable[..., Any]], tuple[str, Any]]

def read_files(
    sources: list[SourceArg], options: Options, *, threads: int | None = None
) -> list[dict[str, Any] | BaseException]: ...
def empty_table(table: str) -> ArrowTable: ...
def trailing_counts(groups: ArrowStreamable, ts: ArrowStreamable, window: int, *, sums: ArrowStreamable | None = None,
                    distinct: ArrowStreamable | None = None) -> ArrowTable:
    """Per row (rows in time order): the rows of its group (u64 ids) within ``(ts - window, ts]``
    (``ts``, ``window``: int64 nanoseconds), or the sum of ``sums``, or the distinct values of
    ``distinct`` (u64) there. One column, ``count`` (u64)."""
def episodes(hot_groups: ArrowStreamable, hot_ts: ArrowStreamable, groups: ArrowStreamable, ts: ArrowStreamable,
             window: int) -> ArrowTable:
    """The episode of each row (time order) made by its group's hot times (time order). One
    column, ``episode`` (null: none)."""
def at_least(groups: ArrowStreamable, least: int, *, weights: ArrowStreamable | None = None) -> ArrowTable:
    """Per row: whether its group (u64 ids; null is one group) may total ``least`` rows (or
    ``weights``, u64) or more: true for every row of each group that does, and a few others
    (groups share hashed counters). One column, ``kept`` (bool)."""

class Scanner:
    def __init__(
        self, sources: list[SourceArg], table: str, options: Options, *, batch_rows: int = 65536, columns: list[str] | None = None
    ) -> None: ...
    def next_batch(self) -> ArrowTable | None: ...
    def take_warnings(self) -> list[str]: ...
