//! Verifying every chain over and over, cheaply: the server's background verifier.
//!
//! A watch remembers, per chain, the last record it found intact. An incremental pass
//! verifies only what was appended since (and that the remembered record still has its
//! hash, so a rewritten tail is caught); a full pass re-reads every chain from its first
//! record, catching edits deep in history. A chain found broken stays broken until a
//! full pass finds it intact again (after a restore, say).

use std::collections::HashMap;

use plinth_store::{Db, StoreResult};

use crate::retention::Seal;
use crate::verify::{ChainBreak, Verified, chains, verify_named};

#[derive(Debug, Default)]
pub struct ChainWatch {
    chains: HashMap<String, Watched>,
}

#[derive(Debug, Default, Clone)]
struct Watched {
    verified: Option<Verified>,
    broken: Option<ChainBreak>,
}

/// What one pass found.
#[derive(Debug, Default)]
pub struct PassReport {
    pub chains: usize,
    /// Records read and recomputed in this pass.
    pub records: u64,
    /// Chains found broken in this pass that were not known to be.
    pub newly_broken: Vec<(String, ChainBreak)>,
    /// Chains a full pass found intact again.
    pub repaired: Vec<String>,
}

impl ChainWatch {
    /// Verifies every chain: from its first record when `full`, otherwise from the last
    /// record a pass found intact.
    pub async fn pass(&mut self, db: &Db, full: bool, seal: &dyn Seal) -> StoreResult<PassReport> {
        let mut report = PassReport::default();
        for chain in chains(db).await? {
            report.chains += 1;
            let watched = self.chains.entry(chain.clone()).or_default();
            if watched.broken.is_some() && !full {
                continue;
            }
            let from = if full { None } else { watched.verified.clone() };
            let (result, verified) = verify_named(db, &chain, from.as_ref(), seal).await?;
            report.records += result.records;
            match result.first_break {
                Some(first_break) => {
                    if watched.broken.is_none() {
                        report.newly_broken.push((chain.clone(), first_break.clone()));
                    }
                    watched.broken = Some(first_break);
                }
                None => {
                    if watched.broken.take().is_some() {
                        report.repaired.push(chain.clone());
                    }
                    watched.verified = verified;
                }
            }
        }
        Ok(report)
    }

    /// The chains known to be broken, with their first break.
    pub fn broken(&self) -> impl Iterator<Item = (&str, &ChainBreak)> {
        self.chains
            .iter()
            .filter_map(|(chain, w)| w.broken.as_ref().map(|b| (chain.as_str(), b)))
    }
}
