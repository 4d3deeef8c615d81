//! The `icmpscope._core` extension module: a thin layer over `icmpscope-core`.
//! Parsing runs with the GIL released; tables leave through the Arrow PyCapsule interface.
use std::path::PathBuf;

use arrow_array::ffi_stream::FFI_ArrowArrayStream;
use arrow_array::{RecordBatch, RecordBatchIterator};
use arrow_schema::ffi::FFI_ArrowSchema;
use arrow_schema::SchemaRef;
use icmpscope_core::source::Limits;
use icmpscope_core::{reassembly, CaptureError, FileTables, Options};
use pyo3::create_exception;
use pyo3::exceptions::{PyFileNotFoundError, PyIsADirectoryError, PyOSError, PyPermissionError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyCapsule, PyDict};

create_exception!(_core, CaptureFormatError, PyValueError, "The input is not a pcap or pcapng capture.");

/// The one place where core errors become Python exceptions.
fn to_pyerr(error: CaptureError) -> PyErr {
    let message = error.to_string();
    match error {
        CaptureError::NotACapture { .. } => CaptureFormatError::new_err(message),
        CaptureError::Io { source, .. } => match source.kind() {
            std::io::ErrorKind::NotFound => PyFileNotFoundError::new_err(message),
            std::io::ErrorKind::PermissionDenied => PyPermissionError::new_err(message),
            std::io::ErrorKind::IsADirectory => PyIsADirectoryError::new_err(message),
            _ => PyOSError::new_err(message),
        },
    }
}

/// Record batches that any Arrow consumer (pyarrow, polars, duckdb) takes without a copy.
///
/// Written here rather than taken from pyo3-arrow: that crate also pulls numpy and arrow-cast,
/// and we only need the stream export.
#[pyclass(module = "icmpscope._core", frozen)]
struct ArrowTable {
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
}

#[pymethods]
impl ArrowTable {
    #[getter]
    fn num_rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }

    #[pyo3(signature = (requested_schema=None))]
    fn __arrow_c_stream__<'py>(&self, py: Python<'py>, requested_schema: Option<Bound<'py, PyAny>>) -> PyResult<Bound<'py, PyCapsule>> {
        let _ = requested_schema; // Our schema is fixed; consumers cast if they asked for another.
        let batches = RecordBatchIterator::new(self.batches.clone().into_iter().map(Ok), self.schema.clone());
        let stream = FFI_ArrowArrayStream::new(Box::new(batches));
        PyCapsule::new_with_value(py, stream, c"arrow_array_stream")
    }

    fn __arrow_c_schema__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyCapsule>> {
        let schema = FFI_ArrowSchema::try_from(self.schema.as_ref()).map_err(|e| PyValueError::new_err(e.to_string()))?;
        PyCapsule::new_with_value(py, schema, c"arrow_schema")
    }

    fn __len__(&self) -> usize {
        self.num_rows()
    }
}

fn table(batch: RecordBatch) -> ArrowTable {
    ArrowTable { schema: batch.schema(), batches: vec![batch] }
}

fn file_result<'py>(py: Python<'py>, t: FileTables) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("file", &t.name)?;
    d.set_item("icmp", table(t.icmp))?;
    d.set_item("fragments", table(t.fragments))?;
    d.set_item("datagrams", table(t.datagrams))?;
    d.set_item("stats", table(t.stats))?;
    d.set_item("errors", table(t.errors))?;
    d.set_item("warning", t.ended_early.map(|e| format!("{}: {}", t.name, e)))?;
    Ok(d)
}

/// Reads captures in parallel (one per core). Returns, in order, one dict of tables per file, or
/// the exception that file raised (the caller decides whether to raise it).
#[pyfunction]
#[pyo3(signature = (paths, *, timeout_v4=30.0, timeout_v6=60.0, max_reassembly_bytes=32 << 20, max_datagrams=65536, max_ext_headers=16, max_record_len=None, max_block_len=None, max_decompression_ratio=None))]
#[allow(clippy::too_many_arguments)]
fn read_files<'py>(
    py: Python<'py>,
    paths: Vec<PathBuf>,
    timeout_v4: f64,
    timeout_v6: f64,
    max_reassembly_bytes: usize,
    max_datagrams: usize,
    max_ext_headers: usize,
    max_record_len: Option<u64>,
    max_block_len: Option<u64>,
    max_decompression_ratio: Option<u64>,
) -> PyResult<Vec<Bound<'py, PyAny>>> {
    let defaults = Limits::default();
    let limits = Limits {
        max_record_len: max_record_len.unwrap_or(defaults.max_record_len),
        max_block_len: max_block_len.unwrap_or(defaults.max_block_len),
        max_decompression_ratio: max_decompression_ratio.unwrap_or(defaults.max_decompression_ratio),
    };
    let options = Options {
        reassembly: reassembly::Config {
            timeout_v4_ns: (timeout_v4 * 1e9) as i64,
            timeout_v6_ns: (timeout_v6 * 1e9) as i64,
            max_bytes: max_reassembly_bytes,
            max_datagrams,
        },
        max_ext_headers,
        limits,
    };
    let results = py.detach(|| icmpscope_core::read_files(&paths, options));
    results
        .into_iter()
        .map(|r| match r {
            Ok(t) => Ok(file_result(py, t)?.into_any()),
            Err(e) => Ok(to_pyerr(e).into_value(py).into_bound(py).into_any()),
        })
        .collect()
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(read_files, m)?)?;
    m.add_class::<ArrowTable>()?;
    m.add("CaptureFormatError", m.py().get_type::<CaptureFormatError>())?;
    Ok(())
}
