//! The example sweep's cost per 1,000 jobs on a Claude-priced model entry
//! with and without the provider's prompt cache, from the usage a
//! `candor sim-server` reports (the example's long system prompt is the
//! same for every job of a condition).

use candor_testkit::{Sandbox, SimServer, repo};

use crate::Failed;

/// Runs the example (50 queries × 2 variants × 2 conditions × 5 seeds =
/// 1,000 jobs) with `prompt_cache` and returns its results.
fn run(sb: &Sandbox, base: &str, cache: bool) -> Result<Vec<serde_json::Value>, Failed> {
    let example = std::fs::read_to_string(repo().join("examples/alignment-faking.yaml"))?;
    let start = example.find("models:").ok_or("the example has no models")?;
    let end = example.find("\ndataset:").ok_or("the example has no dataset")?;
    let model = format!(
        "models:\n  - {{id: claude, backend: anthropic, model: claude-sonnet-4-5, base_url: \"{base}\", \
         api_key_env: SIM_KEY, prompt_cache: {cache}, params: {{max_tokens: 4096}}}}\n"
    );
    let spec = format!("{}{model}{}", &example[..start], &example[end..]).replace("seeds: 3", "seeds: 5");
    let name = if cache { "cached" } else { "uncached" };
    sb.file(&format!("{name}.yaml"), &spec);
    let o = sb
        .cmd(&[
            "run",
            &format!("{name}.yaml"),
            "--out",
            name,
            "--store",
            &format!("{name}-store"),
            "--quiet",
        ])
        .env("SIM_KEY", "sim-key")
        .output()?;
    if !o.status.success() {
        return Err(format!("candor run: {}", String::from_utf8_lossy(&o.stderr)).into());
    }
    Ok(sb.jsonl(&format!("{name}/results.jsonl")))
}

pub fn bench() -> Result<(), Failed> {
    let sb = Sandbox::new();
    for f in [
        "requests.csv",
        "prompts/system.jinja",
        "prompts/system-no-training-details.jinja",
        "prompts/user.jinja",
    ] {
        sb.file(f, &std::fs::read_to_string(repo().join("examples").join(f))?);
    }
    let server = SimServer::start(&sb, &[], &[]);
    println!(
        "prompt-cache bench: the example sweep on claude-sonnet-4-5 prices ($3 in, $3.75 cache write, $0.30 cache read, $15 out per million)"
    );
    let mut per_1000 = Vec::new();
    for cache in [false, true] {
        let results = run(&sb, &server.base(), cache)?;
        let n = results.len() as f64;
        let sum = |f: &dyn Fn(&serde_json::Value) -> f64| results.iter().map(f).sum::<f64>();
        let cost = sum(&|r| r["cost_usd"].as_f64().unwrap_or(0.0));
        let input = sum(&|r| r["usage"]["input_tokens"].as_f64().unwrap_or(0.0));
        let read = sum(&|r| r["usage"]["cache_read_input_tokens"].as_f64().unwrap_or(0.0));
        let usd = cost * 1000.0 / n;
        per_1000.push(usd);
        println!(
            "{:>9}: {n:.0} jobs, ${usd:.4} per 1,000 jobs, {:.1}% of input tokens read from the cache",
            if cache { "cached" } else { "uncached" },
            read * 100.0 / input.max(1.0)
        );
    }
    println!("cached / uncached cost: {:.3}", per_1000[1] / per_1000[0]);
    Ok(())
}
