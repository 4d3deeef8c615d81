//! The `icmpscope._core` extension module: a thin layer over `icmpscope-core`.
//! Parsing runs with the GIL released; tables leave through the Arrow PyCapsule interface.
//! Captures that Python opens (file objects, objects in stores through fsspec) are read by
//! chunks, the GIL taken for each read only.
use std::io::{self, Read};
use std::path::PathBuf;

use arrow_array::ffi_stream::FFI_ArrowArrayStream;
use arrow_array::{Array, ArrayRef, Int64Array, NullArray, RecordBatch, RecordBatchIterator, UInt64Array};
use arrow_schema::ffi::FFI_ArrowSchema;
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use std::sync::Arc;
use std::sync::Mutex;

use icmpscope_core::scan::{Scan, TableKind};
use icmpscope_core::source::Limits;
use icmpscope_core::windows::{self, Counted, WindowError};
use icmpscope_core::{reassembly, CaptureError, FileTables, LocalFile, Location, Options, Stream};
use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyFileNotFoundError, PyIsADirectoryError, PyOSError, PyPermissionError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::{PyCapsule, PyDict};
use pyo3_arrow::PyChunkedArray;

create_exception!(_core, CaptureFormatError, PyValueError, "The input is not a pcap or pcapng capture.");

/// The one place where core errors become Python exceptions. A Python exception raised under
/// the reader (by a file object, by fsspec) comes out as it was raised.
fn to_pyerr(error: CaptureError) -> PyErr {
    let message = error.to_string();
    match error {
        CaptureError::NotACapture { .. } => CaptureFormatError::new_err(message),
        CaptureError::Io { source, .. } if source.get_ref().is_some_and(|e| e.is::<PyErr>()) => {
            match source.into_inner().map(|e| e.downcast::<PyErr>()) {
                Some(Ok(raised)) => *raised,
                _ => PyOSError::new_err(message),
            }
        }
        CaptureError::Io { source, .. } => match source.kind() {
            std::io::ErrorKind::NotFound => PyFileNotFoundError::new_err(message),
            std::io::ErrorKind::PermissionDenied => PyPermissionError::new_err(message),
            std::io::ErrorKind::IsADirectory => PyIsADirectoryError::new_err(message),
            _ => PyOSError::new_err(message),
        },
    }
}

/// A Python binary file object, read by chunks of at most what the reader asks for (1 MiB).
struct PyReader {
    file: Py<PyAny>,
    /// Bytes a `read` gave beyond what was asked (a file object that ignores its argument).
    spill: Vec<u8>,
}

impl PyReader {
    fn new(file: Py<PyAny>) -> PyReader {
        PyReader { file, spill: Vec::new() }
    }
}

impl Read for PyReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.spill.is_empty() {
            let chunk = Python::attach(|py| -> PyResult<PyBackedBytes> {
                let data = self.file.bind(py).call_method1("read", (buf.len(),))?;
                data.extract().map_err(|_| {
                    let kind = data.get_type().name().map_or_else(|_| "?".to_owned(), |n| n.to_string());
                    PyTypeError::new_err(format!("read() gave {kind}, not bytes: the file must be opened in binary mode"))
                })
            })
            .map_err(interrupted_or_io)?;
            self.spill.extend_from_slice(&chunk);
        }
        let n = buf.len().min(self.spill.len());
        buf[..n].copy_from_slice(&self.spill[..n]);
        self.spill.drain(..n);
        Ok(n)
    }
}

/// A Ctrl-C (or another exception that is not an `Exception`) met while a reader ran: raised
/// once the read returns, rather than taken for the end of the capture.
static INTERRUPT: Mutex<Option<PyErr>> = Mutex::new(None);

fn interrupted_or_io(e: PyErr) -> io::Error {
    let is_exception = Python::attach(|py| e.is_instance_of::<PyException>(py));
    if is_exception {
        return io::Error::other(e);
    }
    let text = Python::attach(|_py| e.to_string());
    INTERRUPT.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(e);
    io::Error::new(io::ErrorKind::Interrupted, text)
}

/// Raises the interruption a reader met, if any.
fn raise_interrupt() -> PyResult<()> {
    match INTERRUPT.lock().unwrap_or_else(|p| p.into_inner()).take() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// A capture that Python opens at any byte offset: `open_at(offset)` returns a binary file
/// object positioned there (an fsspec file reading by ranged requests); `open_at(offset, len)`
/// one that reads about `len` bytes (a window looked into).
struct PyLocation {
    name: String,
    size: u64,
    open_at: Py<PyAny>,
}

impl Location for PyLocation {
    fn name(&self) -> &str {
        &self.name
    }

    fn size(&self) -> io::Result<u64> {
        Ok(self.size)
    }

    fn open_at(&self, offset: u64) -> io::Result<Box<dyn Read + Send>> {
        let file = Python::attach(|py| self.open_at.bind(py).call1((offset,)).map(Bound::unbind)).map_err(interrupted_or_io)?;
        Ok(Box::new(PyReader::new(file)))
    }

    fn open_window(&self, offset: u64, len: u64) -> io::Result<Box<dyn Read + Send>> {
        let file = Python::attach(|py| self.open_at.bind(py).call1((offset, len)).map(Bound::unbind)).map_err(interrupted_or_io)?;
        Ok(Box::new(PyReader::new(file)))
    }
}

/// Where a capture is, as Python names it: a local path; `(name, size, open_at)` for a capture
/// that opens at any offset; `(name, file)` for a binary file object read once.
#[derive(FromPyObject)]
enum SourceArg {
    Path(PathBuf),
    Ranged(String, u64, Py<PyAny>),
    Stream(String, Py<PyAny>),
}

impl SourceArg {
    fn location(self) -> Box<dyn Location> {
        match self {
            SourceArg::Path(path) => Box::new(LocalFile::new(&path)),
            SourceArg::Ranged(name, size, open_at) => Box::new(PyLocation { name, size, open_at }),
            SourceArg::Stream(name, file) => Box::new(Stream::new(&name, Box::new(PyReader::new(file)))),
        }
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
    /// Dictionary columns without a value leave as Arrow nulls (`capture_table`).
    empty_as_null: bool,
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
        let (schema, batches) = self.exported();
        let batches = RecordBatchIterator::new(batches.into_iter().map(Ok), schema);
        let stream = FFI_ArrowArrayStream::new(Box::new(batches));
        PyCapsule::new_with_value(py, stream, c"arrow_array_stream")
    }

    fn __arrow_c_schema__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyCapsule>> {
        let schema = self.exported_schema(&self.null_columns());
        let schema = FFI_ArrowSchema::try_from(schema.as_ref()).map_err(|e| PyValueError::new_err(e.to_string()))?;
        PyCapsule::new_with_value(py, schema, c"arrow_schema")
    }

    /// The tables of several captures as one (their batches one after another, no copy): polars
    /// then converts one stream, not one per file (a read of 1000 small files spent most of its
    /// time converting and retyping 5000 small frames).
    #[staticmethod]
    fn concat(tables: Vec<PyRef<'_, ArrowTable>>) -> PyResult<ArrowTable> {
        let Some(first) = tables.first() else { return Err(PyValueError::new_err("no table to concatenate")) };
        if let Some(other) = tables.iter().find(|t| t.schema != first.schema || t.empty_as_null != first.empty_as_null) {
            return Err(PyValueError::new_err(format!("tables differ: {:?} and {:?}", first.schema, other.schema)));
        }
        let batches = tables.iter().flat_map(|t| t.batches.iter().cloned()).collect();
        Ok(ArrowTable { schema: first.schema.clone(), batches, empty_as_null: first.empty_as_null })
    }

    fn __len__(&self) -> usize {
        self.num_rows()
    }
}

fn arrow_table(batch: RecordBatch) -> ArrowTable {
    ArrowTable { schema: batch.schema(), batches: vec![batch], empty_as_null: false }
}

/// The record batches of one capture's table (at least one: its schema comes from them), for
/// `read_files`. A dictionary or list column with no value in any batch (gateways, masks, tunnel
/// endpoints, router advertisements of a capture without them) crosses as an Arrow null column,
/// which polars takes as it is; `io.read_pcap` gives it back its type. Polars converts such a
/// column row by row even when every row is null: 12 ms (dictionary) and 17 ms (list of text)
/// per 5M rows.
fn capture_table(batches: Vec<RecordBatch>) -> ArrowTable {
    ArrowTable { schema: batches[0].schema(), batches, empty_as_null: true }
}

impl ArrowTable {
    /// The schema and batches that leave: with `empty_as_null`, decided over all the batches
    /// (so tables concatenated first agree on one schema).
    fn exported(&self) -> (SchemaRef, Vec<RecordBatch>) {
        let nulls = self.null_columns();
        if nulls.is_empty() {
            return (self.schema.clone(), self.batches.clone());
        }
        let schema = self.exported_schema(&nulls);
        let batches = self
            .batches
            .iter()
            .map(|b| {
                let columns = (0..b.num_columns())
                    .map(|i| if nulls.contains(&i) { Arc::new(NullArray::new(b.num_rows())) as ArrayRef } else { b.column(i).clone() })
                    .collect();
                RecordBatch::try_new(schema.clone(), columns).expect("same columns, null ones as nulls")
            })
            .collect();
        (schema, batches)
    }

    /// The dictionary columns that leave as nulls: none unless `empty_as_null`.
    fn null_columns(&self) -> Vec<usize> {
        let empty = |i: usize| self.batches.iter().all(|b| b.column(i).null_count() == b.num_rows());
        (0..self.schema.fields().len())
            .filter(|&i| self.empty_as_null && matches!(self.schema.field(i).data_type(), DataType::Dictionary(..) | DataType::List(_)) && empty(i))
            .collect()
    }

    fn exported_schema(&self, nulls: &[usize]) -> SchemaRef {
        if nulls.is_empty() {
            return self.schema.clone();
        }
        let fields: Vec<Field> = self
            .schema
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| if nulls.contains(&i) { Field::new(f.name(), DataType::Null, true) } else { f.as_ref().clone() })
            .collect();
        Arc::new(Schema::new(fields))
    }
}

fn file_result<'py>(py: Python<'py>, t: FileTables) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("file", &t.name)?;
    d.set_item("icmp", capture_table(t.icmp))?;
    d.set_item("fragments", capture_table(t.fragments))?;
    d.set_item("datagrams", capture_table(t.datagrams))?;
    d.set_item("stats", arrow_table(t.stats))?;
    d.set_item("errors", capture_table(t.errors))?;
    d.set_item("flows", capture_table(vec![t.flows]))?;
    d.set_item("warning", t.ended_early.map(|e| format!("{}: {}", t.name, e)))?;
    Ok(d)
}

/// Decoder options, as keywords shared by `read_files` and `Scanner`.
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
struct PyOptions {
    timeout_v4: f64,
    timeout_v6: f64,
    max_reassembly_bytes: usize,
    max_datagrams: usize,
    max_ext_headers: usize,
    max_tunnel_depth: usize,
    max_record_len: u64,
    max_block_len: u64,
    max_decompression_ratio: u64,
    flows: bool,
    max_flows: usize,
}

impl From<PyOptions> for Options {
    fn from(o: PyOptions) -> Options {
        Options {
            reassembly: reassembly::Config {
                timeout_v4_ns: (o.timeout_v4 * 1e9) as i64,
                timeout_v6_ns: (o.timeout_v6 * 1e9) as i64,
                max_bytes: o.max_reassembly_bytes,
                max_datagrams: o.max_datagrams,
            },
            max_ext_headers: o.max_ext_headers,
            max_tunnel_depth: o.max_tunnel_depth,
            limits: Limits {
                max_record_len: o.max_record_len,
                max_block_len: o.max_block_len,
                max_decompression_ratio: o.max_decompression_ratio,
            },
            flows: o.flows,
            max_flows: o.max_flows,
        }
    }
}

/// Reads captures in parallel (files side by side, a lone big pcap or pcapng in pieces) on `threads`
/// threads (one per core by default). `sources` as `SourceArg` takes them. Returns, in order, one
/// dict of tables per file, or the exception that file raised (the caller decides whether to
/// raise it).
#[pyfunction]
#[pyo3(signature = (sources, options, *, threads=None))]
fn read_files<'py>(py: Python<'py>, sources: Vec<SourceArg>, options: PyOptions, threads: Option<usize>) -> PyResult<Vec<Bound<'py, PyAny>>> {
    let options = Options::from(options);
    let locations: Vec<Box<dyn Location>> = sources.into_iter().map(SourceArg::location).collect();
    let results = py.detach(|| match threads {
        Some(n) => icmpscope_core::read_locations_on_threads(&locations, options, n),
        None => icmpscope_core::read_locations(&locations, options),
    });
    raise_interrupt()?;
    results
        .into_iter()
        .map(|r| match r {
            Ok(t) => Ok(file_result(py, t)?.into_any()),
            Err(e) => Ok(to_pyerr(e).into_value(py).into_bound(py).into_any()),
        })
        .collect()
}

/// One table of several captures, a record batch at a time (the GIL released while decoding).
#[pyclass(module = "icmpscope._core", frozen)]
struct Scanner {
    scan: Mutex<Scan>,
}

#[pymethods]
impl Scanner {
    #[new]
    #[pyo3(signature = (sources, table, options, *, batch_rows=65536, columns=None))]
    fn new(sources: Vec<SourceArg>, table: &str, options: PyOptions, batch_rows: usize, columns: Option<Vec<String>>) -> PyResult<Self> {
        let kind: TableKind = table.parse().map_err(PyValueError::new_err)?;
        let schema = kind.schema();
        let columns = columns
            .map(|names| {
                names
                    .iter()
                    .map(|n| schema.index_of(n).map_err(|_| PyValueError::new_err(format!("table {table} has no column {n:?}"))))
                    .collect::<PyResult<Vec<usize>>>()
            })
            .transpose()?;
        let locations = sources.into_iter().map(SourceArg::location).collect();
        Ok(Scanner { scan: Mutex::new(Scan::new(locations, kind, batch_rows, options.into(), columns)) })
    }

    /// The next batch, or None at the end.
    fn next_batch(&self, py: Python<'_>) -> PyResult<Option<ArrowTable>> {
        let next = py.detach(|| {
            let mut scan = self.scan.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            scan.next()
        });
        raise_interrupt()?;
        match next {
            None => Ok(None),
            Some(Err(e)) => Err(to_pyerr(e)),
            Some(Ok(batch)) => Ok(Some(arrow_table(batch))),
        }
    }

    /// Warnings of files that ended early, taken once.
    fn take_warnings(&self) -> Vec<String> {
        let mut scan = self.scan.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        std::mem::take(&mut scan.warnings)
    }
}

/// An empty table with the schema of `table` (for `scan_pcap`'s schema).
#[pyfunction]
fn empty_table(table: &str) -> PyResult<ArrowTable> {
    let kind: TableKind = table.parse().map_err(PyValueError::new_err)?;
    Ok(arrow_table(RecordBatch::new_empty(kind.schema())))
}

/// One array of `chunked` (polars hands a Series over as a stream of chunks), as `T`.
fn whole_array<T: Array + Clone + 'static>(chunked: PyChunkedArray, what: &str, expected: DataType) -> PyResult<T> {
    let (chunks, _) = chunked.into_inner();
    let refs: Vec<&dyn Array> = chunks.iter().map(|c| c.as_ref()).collect();
    let array = match refs.as_slice() {
        [_] => chunks[0].clone(),
        _ => arrow_select::concat::concat(&refs).map_err(|e| PyValueError::new_err(format!("{what}: {e}")))?,
    };
    array.as_any().downcast_ref::<T>().cloned().ok_or_else(|| {
        PyTypeError::new_err(format!("{what}: expected {expected}, got {}", array.data_type()))
    })
}

/// Capture times (ns) for the window kernels: a null time has no place in a window.
fn times(chunked: PyChunkedArray, what: &str) -> PyResult<Int64Array> {
    let ts: Int64Array = whole_array(chunked, what, DataType::Int64)?;
    match ts.null_count() {
        0 => Ok(ts),
        n => Err(PyValueError::new_err(format!("{what}: {n} null time(s)"))),
    }
}

fn window_table(name: &str, values: ArrayRef) -> ArrowTable {
    let schema = Arc::new(Schema::new(vec![Field::new(name, values.data_type().clone(), true)]));
    arrow_table(RecordBatch::try_new(schema, vec![values]).expect("one column to its own schema"))
}

fn window_error(e: WindowError) -> PyErr {
    PyValueError::new_err(e.to_string())
}

/// Per row (in time order), what a window counts of its group's rows within the trailing
/// `window` (ns): rows; with `sums`, the sum of that column; with `distinct`, its distinct
/// values. A table of one column, `count` (see `icmpscope_core::windows`).
#[pyfunction]
#[pyo3(signature = (groups, ts, window, *, sums=None, distinct=None))]
fn trailing_counts(py: Python<'_>, groups: PyChunkedArray, ts: PyChunkedArray, window: i64, sums: Option<PyChunkedArray>, distinct: Option<PyChunkedArray>) -> PyResult<ArrowTable> {
    let groups: UInt64Array = whole_array(groups, "groups", DataType::UInt64)?;
    let ts = times(ts, "ts")?;
    let column = |c: Option<PyChunkedArray>, what| c.map(|c| whole_array::<UInt64Array>(c, what, DataType::UInt64)).transpose();
    let (sums, distinct) = (column(sums, "sums")?, column(distinct, "distinct")?);
    let counted = match (&sums, &distinct) {
        (None, None) => Counted::Rows,
        (Some(values), None) => Counted::Sum(values),
        (None, Some(values)) => Counted::Distinct(values),
        (Some(_), Some(_)) => return Err(PyValueError::new_err("a window counts sums or distinct values, not both")),
    };
    let counts = py.detach(|| windows::trailing_counts(&groups, counted, ts.values(), window)).map_err(window_error)?;
    Ok(window_table("count", Arc::new(counts)))
}

/// Whether each row's group may total at least `least` rows (or `weights`): a table of one
/// column, `kept`, true for every row of each group that does (see `icmpscope_core::windows`).
#[pyfunction]
#[pyo3(signature = (groups, least, *, weights=None))]
fn at_least(py: Python<'_>, groups: PyChunkedArray, least: u64, weights: Option<PyChunkedArray>) -> PyResult<ArrowTable> {
    let groups: UInt64Array = whole_array(groups, "groups", DataType::UInt64)?;
    let weights = weights.map(|w| whole_array::<UInt64Array>(w, "weights", DataType::UInt64)).transpose()?;
    let kept = py.detach(|| windows::at_least(&groups, weights.as_ref(), least)).map_err(window_error)?;
    Ok(window_table("kept", Arc::new(kept)))
}

/// The episode of each row (in time order) made by the hot times (in time order) of its
/// group: a table of one column, `episode` (see `icmpscope_core::windows`).
#[pyfunction]
fn episodes(py: Python<'_>, hot_groups: PyChunkedArray, hot_ts: PyChunkedArray, groups: PyChunkedArray, ts: PyChunkedArray, window: i64) -> PyResult<ArrowTable> {
    let hot_groups: UInt64Array = whole_array(hot_groups, "hot groups", DataType::UInt64)?;
    let hot_ts = times(hot_ts, "hot ts")?;
    let groups: UInt64Array = whole_array(groups, "groups", DataType::UInt64)?;
    let ts = times(ts, "ts")?;
    let found = py.detach(|| windows::episodes(&hot_groups, hot_ts.values(), &groups, ts.values(), window)).map_err(window_error)?;
    Ok(window_table("episode", Arc::new(found)))
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(read_files, m)?)?;
    m.add_class::<ArrowTable>()?;
    m.add_class::<Scanner>()?;
    m.add_function(wrap_pyfunction!(empty_table, m)?)?;
    m.add_function(wrap_pyfunction!(trailing_counts, m)?)?;
    m.add_function(wrap_pyfunction!(episodes, m)?)?;
    m.add_function(wrap_pyfunction!(at_least, m)?)?;
    m.add("CaptureFormatError", m.py().get_type::<CaptureFormatError>())?;
    Ok(())
}
