use std::collections::BTreeMap;

use super::*;
use crate::jobs::JobTuple;

const SPEC: &str = "name: t
models:
  - id: m
    backend: sim
    model: sim
dataset:
  path: data.csv
  field: q
prompts:
  - name: p
    system: \"S {{ condition }}\"
    user: \"{{ query }} {{ tone }}\"
conditions:
  - name: a
    vars: {tone: warm}
  - name: b
    vars: {tone: cold}
seeds: 2
";

fn bundle(spec: &str) -> Bundle {
    Bundle {
        spec_path: "dir/spec.yaml".into(),
        spec: spec.into(),
        files: BTreeMap::from([("data.csv".to_string(), "q\nfirst\nsecond\n".to_string())]),
        run: String::new(),
    }
}

/// What a run reads of a sweep: its ids, and each job's id, seed and prompts.
fn fingerprint(s: &Sweep) -> Vec<String> {
    let mut out = vec![s.id.clone(), s.spec_hash.clone(), s.dataset_hash.clone()];
    for i in 0..s.total_jobs() {
        let t = s.space.decode(i);
        out.push(format!("{:?} {} {:?}", s.job_id(&t), s.sampling_seed(&t), s.render(&t)));
    }
    out
}

#[test]
fn a_checked_bundle_builds_the_sweep_the_check_built() {
    for run in ["", "nightly-1"] {
        let mut b = bundle(SPEC);
        b.run = run.into();
        let checked = Sweep::from_bundle(&b).unwrap();
        let trusted = Sweep::from_checked_bundle(&b, &checked.id).unwrap();
        assert_eq!(fingerprint(&checked), fingerprint(&trusted));
        assert_eq!(checked.compare, trusted.compare);
    }
}

#[test]
fn a_checked_bundle_that_hashes_to_another_id_is_refused() {
    let e = Sweep::from_checked_bundle(&bundle(SPEC), "0123456789abcdef")
        .err()
        .unwrap();
    assert!(e.message.contains("not 0123456789abcdef"), "{e}");
}

#[test]
fn a_checked_bundle_skips_the_checks_but_not_what_a_run_needs() {
    // Only a check refuses this: the coordinator's, at submission.
    let b = bundle(&SPEC.replace("seeds: 2", "seeds: 2\nmax_attempts: 0"));
    assert_eq!(Sweep::from_bundle(&b).err().unwrap().field, "max_attempts");
    let id = identity_of(&b);
    assert!(Sweep::from_checked_bundle(&b, &id).is_ok());
    // A run cannot do without the dataset, the templates or the YAML.
    let mut no_data = bundle(SPEC);
    no_data.files.clear();
    assert_eq!(
        Sweep::from_checked_bundle(&no_data, &id).err().unwrap().field,
        "dataset.path"
    );
    let bad_template = bundle(&SPEC.replace("{{ query }}", "{{ query "));
    assert_eq!(
        Sweep::from_checked_bundle(&bad_template, &id).err().unwrap().field,
        "prompts[0].user"
    );
    let bad_yaml = bundle(&SPEC.replace("seeds: 2", "seeds: [2"));
    assert!(Sweep::from_checked_bundle(&bad_yaml, &id).is_err());
}

/// The id of a bundle that fails a check but builds.
fn identity_of(b: &Bundle) -> String {
    let spec = serde_norway::from_str(&b.spec).unwrap();
    Sweep::resolve(spec, b, Checks::Build).unwrap().id
}

#[test]
fn loading_a_path_and_checking_its_bundle_make_one_sweep() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spec.yaml");
    std::fs::write(&path, SPEC).unwrap();
    std::fs::write(dir.path().join("data.csv"), "q\nfirst\nsecond\n").unwrap();
    let loaded = Sweep::load(&path).unwrap();
    let mut parsed = ParsedBundle::collect(&path).unwrap();
    assert_eq!(parsed.bundle(), &Bundle::collect(&path).unwrap());
    assert_eq!(
        fingerprint(&Sweep::from_bundle(parsed.bundle()).unwrap()),
        fingerprint(&loaded)
    );
    parsed.set_run("r1");
    let run = Sweep::from_parsed(&parsed).unwrap();
    assert_eq!(run.spec_hash, loaded.spec_hash);
    assert_ne!(run.id, loaded.id);
    assert_eq!(
        fingerprint(&run),
        fingerprint(&Sweep::from_bundle(parsed.bundle()).unwrap())
    );
}

#[test]
fn the_first_problem_in_check_order_is_the_one_reported() {
    // A bad seed count is found before a bad classifier, and both before a
    // template that reads an undefined variable.
    let spec = SPEC.replace("{{ tone }}", "{{ nope }}") + "classifiers: []\n";
    assert_eq!(Sweep::from_bundle(&bundle(&spec)).err().unwrap().field, "classifiers");
    let spec = spec.replace("seeds: 2", "seeds: 0");
    let e = Sweep::from_bundle(&bundle(&spec)).err().unwrap();
    assert_eq!((e.field.as_str(), e.line), ("seeds", Some(18)), "{e}");
    let spec = SPEC.replace("{{ tone }}", "{{ nope }}");
    let e = Sweep::from_bundle(&bundle(&spec)).err().unwrap();
    assert_eq!(e.field, "prompts[0].user");
    assert!(e.message.contains("undefined variable `nope`"), "{e}");
    let t = JobTuple {
        model: 0,
        variant: 0,
        query: 0,
        condition: 0,
        seed: 0,
    };
    assert!(Sweep::from_bundle(&bundle(SPEC)).unwrap().render(&t).is_ok());
}
