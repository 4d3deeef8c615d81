//! Streaming: one table of many captures as a sequence of record batches, with memory bounded by
//! the batch size (and the reassembly budget) whatever the capture size.
use std::str::FromStr;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;

use crate::error::CaptureError;
use crate::flows::flows_schema;
use crate::pipeline::{stats_schema, FileDecoder, Options};
use crate::source::{CaptureReader, Location};
use crate::table::{datagrams_schema, errors_schema, fragments_schema, icmp_schema, ColumnSet};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableKind {
    Icmp,
    Fragments,
    Datagrams,
    Stats,
    Errors,
    Flows,
}

impl FromStr for TableKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "icmp" => TableKind::Icmp,
            "fragments" => TableKind::Fragments,
            "datagrams" => TableKind::Datagrams,
            "stats" => TableKind::Stats,
            "errors" => TableKind::Errors,
            "flows" => TableKind::Flows,
            other => return Err(format!("unknown table {other:?}: icmp, fragments, datagrams, flows, stats or errors")),
        })
    }
}

impl TableKind {
    pub fn schema(self) -> SchemaRef {
        match self {
            TableKind::Icmp => icmp_schema(),
            TableKind::Fragments => fragments_schema(),
            TableKind::Datagrams => datagrams_schema(),
            TableKind::Stats => stats_schema(),
            TableKind::Errors => errors_schema(),
            TableKind::Flows => flows_schema(),
        }
    }
}

struct Open {
    reader: CaptureReader,
    decoder: FileDecoder,
    file: String,
}

pub struct Scan {
    locations: std::vec::IntoIter<Box<dyn Location>>,
    current: Option<Open>,
    kind: TableKind,
    batch_rows: usize,
    options: Options,
    /// Schema positions of the columns wanted (all when None).
    columns: Option<Vec<usize>>,
    /// Files that ended early (cut short, corrupt), as warning text.
    pub warnings: Vec<String>,
}

impl Scan {
    /// A scan of one table; `columns` (schema positions) projects it. The `icmp` table, the large
    /// one, never builds the columns left out; the others are projected batch by batch.
    pub fn new(locations: Vec<Box<dyn Location>>, kind: TableKind, batch_rows: usize, options: Options, columns: Option<Vec<usize>>) -> Scan {
        Scan { locations: locations.into_iter(), current: None, kind, batch_rows: batch_rows.max(1), options, columns, warnings: Vec::new() }
    }

    fn open(&mut self, location: &dyn Location) -> Result<(), CaptureError> {
        let reader = CaptureReader::open_location(location, self.options.limits)?;
        let name = location.name().to_owned();
        let mut decoder = FileDecoder::new(&name, self.options, &reader);
        decoder.icmp.skip = self.kind != TableKind::Icmp;
        if let Some(columns) = &self.columns {
            decoder.icmp.columns = ColumnSet::of(columns);
        }
        decoder.fragments.skip = self.kind != TableKind::Fragments;
        decoder.datagrams.skip = self.kind != TableKind::Datagrams;
        decoder.errors.skip = self.kind != TableKind::Errors;
        self.current = Some(Open { reader, decoder, file: name });
        Ok(())
    }

    fn rows(&self, d: &FileDecoder) -> usize {
        match self.kind {
            TableKind::Icmp => d.icmp.len(),
            TableKind::Fragments => d.fragments.len(),
            TableKind::Datagrams => d.datagrams.len(),
            TableKind::Errors => d.errors.len(),
            // Known only at the end of the file.
            TableKind::Stats | TableKind::Flows => 0,
        }
    }

    fn batch_of(&self, open: &mut Open) -> RecordBatch {
        let batch = Scan::take_all(self.kind, open);
        match (&self.columns, self.kind) {
            // Positions were checked against this table's schema by the caller.
            (Some(columns), kind) if kind != TableKind::Icmp => batch.project(columns).expect("projected columns in range"),
            _ => batch,
        }
    }

    fn take_all(kind: TableKind, open: &mut Open) -> RecordBatch {
        let d = &mut open.decoder;
        match kind {
            TableKind::Icmp => d.icmp.finish(&open.file),
            TableKind::Fragments => d.fragments.finish(&open.file),
            TableKind::Datagrams => d.datagrams.finish(&open.file),
            TableKind::Errors => d.errors.finish(&open.file),
            TableKind::Stats => d.stats_batch(&open.file),
            TableKind::Flows => d.flows.take().finish(&open.file),
        }
    }
}

impl Iterator for Scan {
    type Item = Result<RecordBatch, CaptureError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let Some(mut open) = self.current.take() else {
                let location = self.locations.next()?;
                if let Err(e) = self.open(location.as_ref()) {
                    return Some(Err(e));
                }
                continue;
            };
            let mut more = true;
            while more && self.rows(&open.decoder) < self.batch_rows {
                more = open.decoder.step(&mut open.reader);
            }
            if more {
                let batch = self.batch_of(&mut open);
                self.current = Some(open);
                return Some(Ok(batch));
            }
            open.decoder.finish();
            if let Some(e) = &open.decoder.ended_early {
                self.warnings.push(format!("{}: {}", open.decoder.name, e));
            }
            let batch = self.batch_of(&mut open);
            if batch.num_rows() > 0 {
                return Some(Ok(batch));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_table_is_named() {
        assert!(TableKind::from_str("flow").unwrap_err().contains("flows"));
        assert_eq!(TableKind::from_str("flows"), Ok(TableKind::Flows));
        assert_eq!(TableKind::from_str("icmp"), Ok(TableKind::Icmp));
    }
}
