use std::io::Write;

use futures_util::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use plinth_audit::action::Action;
use plinth_audit::{AuditFilter, ExportFormat, VerifyReport};
use plinth_core::Timestamp;
use plinth_core::config::Config;
use plinth_tenancy::Tenancy;

/// Verifies every chain (or one tenant's), reporting each broken chain's first break.
pub async fn verify(config: &Config, tenant: Option<&str>) -> Result<(), String> {
    let db = super::open(config).await?;
    // Its keys verify the checkpoints of pruned chains.
    let identity = super::identity(config, &db, config.public_base_url()).await?;
    let chains = match tenant {
        Some(reference) => {
            let id = Tenancy::new(db.clone())
                .tenant_id_of(reference)
                .await
                .map_err(|e| format!("tenant {reference}: {e}"))?;
            vec![plinth_audit::chain_of(Some(id))]
        }
        None => plinth_audit::chains(&db).await.map_err(|e| e.to_string())?,
    };
    let bar = ProgressBar::new(chains.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} chains {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut broken: Vec<VerifyReport> = Vec::new();
    let mut records = 0u64;
    for chain in &chains {
        bar.set_message(chain.clone());
        // Each chain is verified to its first break; the others are still checked.
        let (report, _) = plinth_audit::verify_named(&db, chain, None, identity.keys())
            .await
            .map_err(|e| e.to_string())?;
        records += report.records;
        if !report.is_intact() {
            broken.push(report);
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    db.close().await;
    for report in &broken {
        if let Some(first_break) = &report.first_break {
            eprintln!(
                "chain {}: {} at record {}: {first_break}",
                report.chain,
                first_break.kind(),
                first_break.seq()
            );
        }
    }
    if broken.is_empty() {
        println!("{} audit chain(s) intact: {records} records verified.", chains.len());
        Ok(())
    } else {
        Err(format!("{} of {} audit chain(s) broken", broken.len(), chains.len()))
    }
}

/// Verifies an NDJSON export without the database.
pub fn verify_file(path: &std::path::Path) -> Result<(), String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let check =
        plinth_audit::verify_export(std::io::BufReader::new(file)).map_err(|e| format!("{}: {e}", path.display()))?;
    match check.problem {
        Some(problem) => Err(format!(
            "{}: broken after {} intact records: {problem}",
            path.display(),
            check.records
        )),
        None => {
            let start = if check.from_genesis {
                "from the chain's first record"
            } else {
                "from a later record (its predecessor is not in the file)"
            };
            println!(
                "{}: {} records intact in {} run(s) of consecutive records, {start}.",
                path.display(),
                check.records,
                check.runs
            );
            Ok(())
        }
    }
}

pub struct ExportRequest {
    pub tenant: Option<String>,
    pub format: String,
    pub since: Option<String>,
    pub until: Option<String>,
    pub action: Option<String>,
}

/// Streams a chain's records to standard output.
pub async fn export(config: &Config, request: ExportRequest) -> Result<(), String> {
    let format = ExportFormat::parse(&request.format)
        .ok_or_else(|| format!("--format {}: use ndjson or csv", request.format))?;
    let time = |flag: &str, value: Option<&str>| {
        value
            .map(Timestamp::parse_rfc3339)
            .transpose()
            .map_err(|e| format!("--{flag}: not an RFC 3339 time ({e})"))
    };
    let filter = AuditFilter {
        since: time("since", request.since.as_deref())?,
        until: time("until", request.until.as_deref())?,
        actions: request
            .action
            .as_deref()
            .map(|a| Action::matching(a).ok_or_else(|| format!("--action {a}: not an action of the catalogue")))
            .transpose()?,
        ..AuditFilter::default()
    };
    let db = super::open(config).await?;
    let tenant = match &request.tenant {
        Some(reference) => Some(
            Tenancy::new(db.clone())
                .tenant_id_of(reference)
                .await
                .map_err(|e| format!("tenant {reference}: {e}"))?,
        ),
        None => None,
    };
    let mut chunks = Box::pin(plinth_audit::export_as_platform(
        &db,
        plinth_audit::chain_of(tenant),
        filter,
        format,
    ));
    let mut out = std::io::stdout().lock();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|e| e.to_string())?;
        out.write_all(&chunk).map_err(|e| format!("writing the export: {e}"))?;
    }
    out.flush().map_err(|e| format!("writing the export: {e}"))?;
    drop(out);
    db.close().await;
    Ok(())
}

/// Prunes every chain past its retention, as the server does daily.
pub async fn prune(config: &Config) -> Result<(), String> {
    let db = super::open_migrated(config).await?;
    let identity = super::identity(config, &db, config.public_base_url()).await?;
    let report = plinth_server::state::tenancy(config, &db)
        .prune_audit(identity.keys(), Timestamp::now())
        .await
        .map_err(|e| e.to_string())?;
    db.close().await;
    println!(
        "{} audit chain(s) checked: {} record(s) past retention pruned.",
        report.chains, report.pruned
    );
    for (chain, why) in &report.refused {
        eprintln!("chain {chain}: {why}");
    }
    if report.refused.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} chain(s) kept whole: their records past retention do not verify",
            report.refused.len()
        ))
    }
}

/// Prints the newest signed head of every chain, signing moved heads first with `sign`.
pub async fn heads(config: &Config, sign: bool) -> Result<(), String> {
    let db = super::open_migrated(config).await?;
    if sign {
        let identity = super::identity(config, &db, config.public_base_url()).await?;
        identity.sign_audit_heads().await.map_err(|e| e.to_string())?;
    }
    let heads = plinth_audit::latest_signed(&db).await.map_err(|e| e.to_string())?;
    db.close().await;
    println!("{}", serde_json::to_string_pretty(&heads).map_err(|e| e.to_string())?);
    Ok(())
}

/// Checks every chain named in a file of signed heads: the signature holds, and the chain
/// still holds the signed record, unchanged and intact up to it.
pub async fn verify_against(config: &Config, path: &std::path::Path) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let heads: Vec<plinth_audit::SignedHead> =
        serde_json::from_str(&text).map_err(|e| format!("{}: not a list of signed heads: {e}", path.display()))?;
    let db = super::open_migrated(config).await?;
    let identity = super::identity(config, &db, config.public_base_url()).await?;
    let mut problems = 0;
    for head in &heads {
        let problem = if !identity.audit_head_signature_holds(head).await {
            Some(format!(
                "the signature (key {}) does not hold: the file was altered, or the key is no longer held here",
                head.kid
            ))
        } else {
            plinth_audit::check_against(&db, head, identity.keys())
                .await
                .map_err(|e| e.to_string())?
        };
        match problem {
            Some(problem) => {
                problems += 1;
                eprintln!("chain {} at record {}: {problem}", head.chain, head.seq);
            }
            None => println!("chain {}: record {} matches its signed head", head.chain, head.seq),
        }
    }
    db.close().await;
    if problems == 0 {
        Ok(())
    } else {
        Err(format!("{problems} of {} signed head(s) do not hold", heads.len()))
    }
}
