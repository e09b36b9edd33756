//! Spec files are outside input: mangled specs must be refused with an error
//! that names a file, never a panic.

use std::path::Path;

use candor_core::Sweep;
use candor_testkit::Rng;

const NOISE: &[&str] = &[
    ":", "-", " ", "\n", "  ", "[", "]", "{", "}", "\"", "'", "#", "{{", "}}", "{%", "0", "-1", "1e9", "x", "ü", "\t",
    "null", "~",
];

fn mutate(src: &str, rng: &mut Rng) -> String {
    let mut lines: Vec<String> = src.lines().map(String::from).collect();
    for _ in 0..1 + rng.below(3) as usize {
        let i = rng.below(lines.len() as u64) as usize;
        match rng.below(6) as usize {
            0 => {
                lines.remove(i);
            }
            1 => {
                let l = lines[i].clone();
                lines.insert(i, l);
            }
            2 => {
                let j = rng.below(lines.len() as u64) as usize;
                lines.swap(i, j);
            }
            _ => {
                let l = &mut lines[i];
                let mut at = rng.below((l.len() + 1) as u64) as usize;
                while !l.is_char_boundary(at) {
                    at -= 1;
                }
                if rng.below(2) as usize == 0 && at < l.len() {
                    let mut end = at + 1;
                    while !l.is_char_boundary(end) {
                        end += 1;
                    }
                    l.replace_range(at..end, "");
                } else {
                    l.insert_str(at, NOISE[rng.below(NOISE.len() as u64) as usize]);
                }
            }
        }
        if lines.is_empty() {
            lines.push(String::new());
        }
    }
    lines.join("\n")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

#[test]
fn mangled_specs_are_refused_or_loaded_never_a_panic() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&examples, dir.path());
    let original = std::fs::read_to_string(dir.path().join("alignment-faking.yaml")).unwrap();
    let path = dir.path().join("mutant.yaml");
    std::fs::write(&path, &original).unwrap();
    Sweep::load(&path).expect("the example itself loads");

    let mut rng = Rng(0x5eed);
    let (mut refused, mut loaded) = (0, 0);
    for _ in 0..400 {
        let text = mutate(&original, &mut rng);
        std::fs::write(&path, &text).unwrap();
        match Sweep::load(&path) {
            Ok(s) => {
                loaded += 1;
                assert!(s.total_jobs() > 0);
            }
            Err(e) => {
                refused += 1;
                assert!(!e.message.is_empty());
                let file = e.file.file_name().unwrap().to_string_lossy().into_owned();
                assert!(
                    ["mutant.yaml", "requests.csv"].contains(&file.as_str()) || file.ends_with(".jinja"),
                    "error names an unexpected file: {e}"
                );
                if let Some(line) = e.line {
                    assert!(line >= 1, "{e}");
                }
            }
        }
    }
    assert!(
        refused > 50 && loaded > 10,
        "refused {refused}, loaded {loaded}: the mutations should do both"
    );
}
