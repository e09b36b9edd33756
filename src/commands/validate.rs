use std::path::Path;

use crate::exit;

pub fn validate(spec: &Path) -> i32 {
    let sweep = match super::load_to_run(spec, None, &super::Scale::default()) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let s = &sweep.space;
    println!("{}: ok", spec.display());
    println!("sweep {} (id {})", sweep.spec.name, sweep.id);
    println!(
        "{} jobs = {} model(s) × {} prompt variant(s) × {} queries × {} condition(s) × {} seed(s)",
        sweep.total_jobs(),
        s.models,
        s.variants,
        s.queries,
        s.conditions,
        s.seeds
    );
    let per = sweep.jobs_per_model_condition();
    let w = sweep.spec.models.iter().map(|m| m.id.len()).max().unwrap_or(0).max(5);
    let wc = sweep
        .spec
        .conditions
        .iter()
        .map(|c| c.name.len())
        .max()
        .unwrap_or(0)
        .max(9);
    println!("\n{:w$}  {:wc$}  {:>10}", "model", "condition", "jobs");
    for m in &sweep.spec.models {
        for c in &sweep.spec.conditions {
            println!("{:w$}  {:wc$}  {:>10}", m.id, c.name, per);
        }
    }
    if sweep.simulated() {
        println!("\nnote: the sweep uses the simulated model (backend `sim`); its numbers are simulated");
    }
    exit::OK
}
