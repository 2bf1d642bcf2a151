//! Exporting a chain, and verifying an export away from the database.
//!
//! An export is streamed oldest first in batches (constant memory, whatever the chain's
//! size) as NDJSON or CSV. Each record carries every hashed field in its stored form
//! (`changes` as the exact JSON text that was hashed, times in microseconds) with `seq`,
//! `prev_hash` and `hash`, so [`verify_export`] can recompute every record's hash and
//! the links between consecutive records without the database.

use std::io::BufRead;

use futures_util::{Stream, StreamExt};
use plinth_store::{Conn, ReadConn, StoreResult, on};
use serde::Serialize;

use crate::GENESIS_HASH;
use crate::query::{AuditFilter, SeqRange, bind_all, select, seq_range};
use crate::record::{STORED_COLUMNS, StoredRecord};

/// Records per batch: one query, one chunk of the response.
const BATCH: i64 = 1_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Ndjson,
    Csv,
}

impl ExportFormat {
    pub fn parse(text: &str) -> Option<ExportFormat> {
        match text {
            "ndjson" => Some(ExportFormat::Ndjson),
            "csv" => Some(ExportFormat::Csv),
            _ => None,
        }
    }

    pub fn content_type(&self) -> &'static str {
        match self {
            ExportFormat::Ndjson => "application/x-ndjson",
            ExportFormat::Csv => "text/csv; charset=utf-8",
        }
    }

    pub fn extension(&self) -> &'static str {
        match self {
            ExportFormat::Ndjson => "ndjson",
            ExportFormat::Csv => "csv",
        }
    }
}

/// One record as exported: every hashed field in its stored form.
pub type ExportRecord = StoredRecord;

/// The records of `chain` matching `filter` after `after_seq`, oldest first.
pub async fn export_batch(
    mut conn: Conn<'_>,
    chain: &str,
    filter: &AuditFilter,
    after_seq: i64,
    limit: i64,
) -> StoreResult<Vec<ExportRecord>> {
    let within = SeqRange {
        from: after_seq.saturating_add(1),
        before: i64::MAX,
    };
    let seqs = seq_range(conn.reborrow(), chain, filter, within).await?;
    let (sql, binds) = select(chain, filter, STORED_COLUMNS, seqs, "ASC", limit);
    Ok(on!(conn, c => bind_all!(
        sqlx::query_as::<_, StoredRecord>(sqlx::AssertSqlSafe(sql.clone())), &binds
    ).fetch_all(c).await)?)
}

const CSV_HEADER: [&str; 19] = [
    "id",
    "chain",
    "seq",
    "tenant_id",
    "occurred_at_us",
    "actor_kind",
    "actor_id",
    "impersonator_id",
    "action",
    "target_type",
    "target_id",
    "outcome",
    "ip",
    "user_agent",
    "request_id",
    "changes",
    "reason",
    "prev_hash",
    "hash",
];

/// `records` in `format`; with `header`, a CSV export's first line too.
pub fn encode(records: &[ExportRecord], format: ExportFormat, header: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(records.len() * 512);
    match format {
        ExportFormat::Ndjson => {
            for record in records {
                // A record of strings, numbers and ids always serialises.
                if serde_json::to_writer(&mut out, record).is_ok() {
                    out.push(b'\n');
                }
            }
        }
        ExportFormat::Csv => {
            let mut writer = csv::WriterBuilder::new().has_headers(false).from_writer(&mut out);
            if header {
                let _ = writer.write_record(CSV_HEADER);
            }
            for record in records {
                let _ = writer.serialize(record);
            }
            let _ = writer.flush();
        }
    }
    out
}

/// Streams the export of `chain` (records matching `filter`, oldest first), opening a
/// read connection per batch with `open` so no connection is held while the client
/// reads.
pub fn export_stream<O, F, R>(
    open: O,
    chain: String,
    filter: AuditFilter,
    format: ExportFormat,
) -> impl Stream<Item = StoreResult<Vec<u8>>> + Send + 'static
where
    O: Fn() -> F + Send + Sync + 'static,
    F: std::future::Future<Output = StoreResult<R>> + Send,
    R: ReadConn + Send,
{
    let state = (Some(0i64), true);
    // An empty chunk would end a chunked HTTP body early: batches with nothing to say
    // are dropped.
    let shared = std::sync::Arc::new((open, chain, filter));
    let chunks = futures_util::stream::unfold(state, move |(after, first)| {
        let shared = shared.clone();
        async move {
            let after = after?;
            let (open, chain, filter) = &*shared;
            let batch = async {
                let mut read = open().await?;
                export_batch(read.conn(), chain, filter, after, BATCH).await
            };
            match batch.await {
                Ok(records) => {
                    let next = match records.last() {
                        Some(last) if records.len() as i64 == BATCH => Some(last.seq),
                        _ => None,
                    };
                    Some((Ok(encode(&records, format, first)), (next, false)))
                }
                // The answer has begun: the error ends it, and the client sees a cut
                // export (which does not verify).
                Err(e) => Some((Err(e), (None, false))),
            }
        }
    });
    // Fused: a body may be polled once more after its end, which an unfold does not allow.
    chunks
        .filter(|chunk| std::future::ready(!matches!(chunk, Ok(bytes) if bytes.is_empty())))
        .fuse()
}

/// What verifying an export found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ExportCheck {
    pub records: u64,
    /// Runs of consecutive records (a filtered export has several; a whole chain one).
    pub runs: u64,
    /// The first problem: a line that does not parse, a record whose hash does not
    /// recompute, or consecutive records that do not link.
    pub problem: Option<String>,
    /// Whether the first record is the chain's first (so the export starts at genesis).
    pub from_genesis: bool,
}

/// Verifies an NDJSON export: each record's hash recomputes from its fields and its
/// `prev_hash`, and each record that follows its predecessor by number links to it.
pub fn verify_export(input: impl BufRead) -> std::io::Result<ExportCheck> {
    let mut check = ExportCheck::default();
    let mut previous: Option<ExportRecord> = None;
    for (index, line) in input.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let record: ExportRecord = match serde_json::from_str(&line) {
            Ok(r) => r,
            Err(e) => {
                check.problem = Some(format!("line {}: not an exported record: {e}", index + 1));
                return Ok(check);
            }
        };
        if previous.is_none() {
            check.from_genesis = record.seq == 1 && record.prev_hash == GENESIS_HASH;
        }
        if record.computed_hash() != record.hash {
            check.problem = Some(format!(
                "record {} ({}) of chain {}: edited",
                record.seq, record.id, record.chain
            ));
            return Ok(check);
        }
        match &previous {
            Some(p) if p.chain == record.chain && record.seq == p.seq + 1 => {
                if record.prev_hash != p.hash {
                    check.problem = Some(format!(
                        "record {} of chain {} does not follow record {}: reordered or replaced",
                        record.seq, record.chain, p.seq
                    ));
                    return Ok(check);
                }
            }
            Some(p) if p.chain == record.chain && record.seq <= p.seq => {
                check.problem = Some(format!(
                    "record {} of chain {} comes after record {}: out of order",
                    record.seq, record.chain, p.seq
                ));
                return Ok(check);
            }
            _ => check.runs += 1,
        }
        check.records += 1;
        previous = Some(record);
    }
    Ok(check)
}
