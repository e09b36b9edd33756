//! The example sweep's cost per 1,000 jobs on a Claude-priced model entry:
//! realtime without and with the provider's prompt cache, then through the
//! batch API without and with it, from the usage a `candor sim-server`
//! reports (the example's long system prompt is the same for every job of a
//! condition). The batched runs' results must equal the realtime ones.

use std::collections::BTreeMap;

use candor_testkit::{Sandbox, SimServer, repo};

use crate::Failed;

/// One way of running the example.
struct Way {
    name: &'static str,
    cache: bool,
    batch: bool,
}

const WAYS: [Way; 4] = [
    Way {
        name: "realtime, uncached",
        cache: false,
        batch: false,
    },
    Way {
        name: "realtime, cached",
        cache: true,
        batch: false,
    },
    Way {
        name: "batch, uncached",
        cache: false,
        batch: true,
    },
    Way {
        name: "batch + caching",
        cache: true,
        batch: true,
    },
];

/// Runs the example (50 queries × 2 variants × 2 conditions × 5 seeds =
/// 1,000 jobs) one way and returns its results by job: variant, query,
/// condition and seed.
fn run(sb: &Sandbox, base: &str, way: &Way, i: usize) -> Result<BTreeMap<String, serde_json::Value>, Failed> {
    let example = std::fs::read_to_string(repo().join("examples/alignment-faking.yaml"))?;
    let start = example.find("models:").ok_or("the example has no models")?;
    let end = example.find("\ndataset:").ok_or("the example has no dataset")?;
    let batch = if way.batch {
        ", batch: {window_secs: 1, poll_secs: 0.5}"
    } else {
        ""
    };
    let model = format!(
        "models:\n  - {{id: claude, backend: anthropic, model: claude-sonnet-4-5, base_url: \"{base}\", \
         api_key_env: SIM_KEY, prompt_cache: {}, params: {{max_tokens: 4096}}{batch}}}\n",
        way.cache
    );
    let spec = format!("{}{model}{}", &example[..start], &example[end..]).replace("seeds: 3", "seeds: 5");
    let name = format!("way{i}");
    sb.file(&format!("{name}.yaml"), &spec);
    let o = sb
        .cmd(&[
            "run",
            &format!("{name}.yaml"),
            "--out",
            &name,
            "--store",
            &format!("{name}-store"),
            "--concurrency",
            "1000",
            "--quiet",
        ])
        .env("SIM_KEY", "sim-key")
        .output()?;
    if !o.status.success() {
        return Err(format!("candor run: {}", String::from_utf8_lossy(&o.stderr)).into());
    }
    Ok(sb
        .jsonl(&format!("{name}/results.jsonl"))
        .into_iter()
        .map(|r| {
            let job = format!("{}/{}/{}/{}", r["variant"], r["query_index"], r["condition"], r["seed"]);
            (job, r)
        })
        .collect())
}

/// The fields a batched result must share with the realtime one.
fn same(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    ["status", "output", "classifications", "turns"]
        .iter()
        .all(|f| a[f] == b[f])
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
    println!(
        "cost bench: the example sweep on claude-sonnet-4-5 prices ($3 in, $3.75 cache write, $0.30 cache read, \
         $15 out per million; batched at half of each)"
    );
    let mut per_1000 = Vec::new();
    let mut reference = None;
    // A server of its own per way, so its counts are this way's, on one
    // port: the URL is part of job ids, and the example's simulated judge
    // draws its votes from them.
    let port = candor_testkit::free_port();
    for (i, way) in WAYS.iter().enumerate() {
        let server = SimServer::start_on(&sb, port, &["--batch-delay-ms", "500"], &[]);
        let results = run(&sb, &server.base(), way, i)?;
        let reference = reference.get_or_insert_with(|| results.clone());
        if results.len() != reference.len()
            || results
                .iter()
                .any(|(id, r)| !reference.get(id).is_some_and(|x| same(r, x)))
        {
            return Err(format!("{}: the results differ from the realtime run's", way.name).into());
        }
        let n = results.len() as f64;
        let sum = |f: &dyn Fn(&serde_json::Value) -> f64| results.values().map(f).sum::<f64>();
        let cost = sum(&|r| r["cost_usd"].as_f64().unwrap_or(0.0));
        let input = sum(&|r| r["usage"]["input_tokens"].as_f64().unwrap_or(0.0));
        let read = sum(&|r| r["usage"]["cache_read_input_tokens"].as_f64().unwrap_or(0.0));
        let usd = cost * 1000.0 / n;
        per_1000.push(usd);
        let stats = server.stats();
        println!(
            "{:>18}: {n:.0} jobs, ${usd:.4} per 1,000 jobs ({:.3}× realtime uncached), {:.1}% of input tokens read \
             from the cache; {} batches of {} requests, {} custom_ids submitted twice",
            way.name,
            usd / per_1000[0],
            read * 100.0 / input.max(1.0),
            stats["batches_anthropic"],
            stats["batch_requests"],
            stats["batch_resubmitted"]
        );
    }
    Ok(())
}
