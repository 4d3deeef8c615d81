"""Type stubs for the compiled core (rust/python)."""
from typing import Any

class CaptureFormatError(ValueError): ...

class ArrowTable:
    """Record batches exported through the Arrow PyCapsule interface."""

    @property
    def num_rows(self) -> int: ...
    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object: ...
    def __arrow_c_schema__(self) -> object: ...
    def __len__(self) -> int: ...

def read_files(
    paths: list[str],
    *,
    timeout_v4: float = 30.0,
    timeout_v6: float = 60.0,
    max_reassembly_bytes: int = ...,
    max_datagrams: int = 65536,
    max_ext_headers: int = 16,
    max_record_len: int | None = None,
    max_block_len: int | None = None,
    max_decompression_ratio: int | None = None,
) -> list[dict[str, Any] | BaseException]: ...
