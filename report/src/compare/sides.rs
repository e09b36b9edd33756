//! The two reports themselves: each side as the comparison saw it, what
//! makes them reports of different specs, and what else differs.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use super::{Mismatch, Options, Side};
use crate::report::{ModelInfo, Report};

pub(super) fn side(r: &Report, o: &Options) -> Side {
    let p = &r.sweep.provenance;
    Side {
        source: String::new(),
        selector: None,
        id: r.sweep.id.clone(),
        name: r.sweep.name.clone(),
        run_label: p.run_label.clone(),
        spec_hash: p.spec_hash.clone(),
        dataset_hash: p.dataset_hash.clone(),
        candor_version: p.candor_version.clone(),
        jobs_total: r.sweep.jobs_total,
        jobs_done: r.sweep.jobs_done,
        jobs_failed: r.sweep.jobs_failed,
        failed_share: r.sweep.failed_share,
        too_many_failed: r.sweep.failed_share > o.max_failed,
        failures: r.failures.clone(),
    }
}

fn conditions(r: &Report) -> BTreeSet<&str> {
    r.cells.iter().map(|c| c.condition.as_str()).collect()
}

/// What makes the two reports' specs different ones: another name, another
/// dataset (when both reports know theirs), another set of conditions.
pub fn differences(baseline: &Report, candidate: &Report) -> Vec<Mismatch> {
    let mut out = Vec::new();
    if baseline.sweep.name != candidate.sweep.name {
        out.push(Mismatch {
            field: "sweep.name",
            baseline: baseline.sweep.name.clone(),
            candidate: candidate.sweep.name.clone(),
        });
    }
    let (db, dc) = (
        &baseline.sweep.provenance.dataset_hash,
        &candidate.sweep.provenance.dataset_hash,
    );
    if !db.is_empty() && !dc.is_empty() && db != dc {
        out.push(Mismatch {
            field: "provenance.dataset_hash",
            baseline: db.clone(),
            candidate: dc.clone(),
        });
    }
    let (cb, cc) = (conditions(baseline), conditions(candidate));
    if cb != cc {
        let list = |s: &BTreeSet<&str>| s.iter().copied().collect::<Vec<_>>().join(", ");
        out.push(Mismatch {
            field: "conditions",
            baseline: list(&cb),
            candidate: list(&cc),
        });
    }
    out
}

fn model_text(m: &ModelInfo) -> String {
    let mut s = format!("{} ({} {}", m.id, m.backend, m.model);
    if let Some(u) = &m.base_url {
        let _ = write!(s, " at {u}");
    }
    if m.params != candor_core::spec::Params::default() {
        let _ = write!(s, " {}", serde_json::to_string(&m.params).unwrap_or_default());
    }
    s.push(')');
    s
}

/// What differs between two reports of one spec, worth a line.
pub(super) fn notes(baseline: &Report, candidate: &Report) -> Vec<String> {
    let (pb, pc) = (&baseline.sweep.provenance, &candidate.sweep.provenance);
    let mut out = Vec::new();
    if !baseline.sweep.id.is_empty() && baseline.sweep.id == candidate.sweep.id {
        out.push(format!("both reports are of sweep {}", baseline.sweep.id));
    }
    for (which, p) in [("baseline", pb), ("candidate", pc)] {
        if p.spec_hash.is_empty() {
            out.push(format!(
                "the {which} report predates spec and dataset hashes: its dataset is not checked"
            ));
        }
    }
    if !pb.spec_hash.is_empty() && !pc.spec_hash.is_empty() && pb.spec_hash != pc.spec_hash {
        out.push(format!(
            "the specs differ (spec hash {} vs {})",
            pb.spec_hash, pc.spec_hash
        ));
    }
    if pb.models != pc.models && !(pb.models.is_empty() || pc.models.is_empty()) {
        let list = |ms: &[ModelInfo]| ms.iter().map(model_text).collect::<Vec<_>>().join(", ");
        out.push(format!(
            "models under test: {} vs {}",
            list(&pb.models),
            list(&pc.models)
        ));
    }
    if pb.candor_version != pc.candor_version && !pb.candor_version.is_empty() && !pc.candor_version.is_empty() {
        out.push(format!(
            "written by candor {} vs {}",
            pb.candor_version, pc.candor_version
        ));
    }
    let af = |r: &Report| r.cells.iter().any(|c| c.alignment_faking.is_some());
    match (af(baseline), af(candidate)) {
        (true, false) => out.push("only the baseline judged alignment faking: its AF rates are not compared".into()),
        (false, true) => out.push("only the candidate judged alignment faking: its AF rates are not compared".into()),
        _ => {}
    }
    out
}
