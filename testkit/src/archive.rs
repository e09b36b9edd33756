//! The archive checker: which result of each job is live (the part Redis
//! names for it), read straight from the part files of a `file://` archive,
//! and which part files are garbage (no job names them).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use candor_archive::JobResult;

/// Part number → part name, and each job's part number, from Redis.
pub fn part_refs(con: &mut redis::Connection, id: &str, total: u64) -> (HashMap<u32, String>, Vec<u32>) {
    let names: HashMap<u32, String> = redis::cmd("HGETALL")
        .arg(format!("candor:s:{id}:parts"))
        .query(con)
        .unwrap();
    let bytes: Vec<u8> = redis::cmd("GET")
        .arg(format!("candor:s:{id}:partof"))
        .query(con)
        .unwrap_or_default();
    let mut refs = vec![0u32; total as usize];
    for (i, b) in bytes.chunks_exact(4).enumerate().take(total as usize) {
        refs[i] = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    }
    (names, refs)
}

/// The names of a sweep's results parts in the archive directory.
pub fn part_files(archive: &Path, id: &str) -> Vec<String> {
    let dir = archive.join(id).join("results");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut out: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.strip_suffix(".parquet").map(String::from))
        .collect();
    out.sort();
    out
}

/// Every row of a part: (index, result).
pub fn read_part(archive: &Path, id: &str, part: &str) -> Vec<(u64, JobResult)> {
    let read = |table: &str| {
        let p = archive.join(id).join(table).join(format!("{part}.parquet"));
        bytes::Bytes::from(std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
    };
    let mut rows = Vec::new();
    candor_archive::decode(part, read("results"), read("texts"), |i, r| {
        rows.push((i, r));
        Ok(())
    })
    .unwrap();
    rows
}

/// Each job's live result: the one row of the part Redis names for it.
/// Panics when a job is named in a part that is missing or holds it twice
/// or not at all.
pub fn live_results(con: &mut redis::Connection, archive: &Path, id: &str, total: u64) -> BTreeMap<u64, JobResult> {
    let (names, refs) = part_refs(con, id, total);
    let files = part_files(archive, id);
    let mut live = BTreeMap::new();
    for (number, name) in &names {
        assert!(
            files.contains(name),
            "part {name} is named in Redis but not in the archive"
        );
        let mut seen = std::collections::HashSet::new();
        for (i, r) in read_part(archive, id, name) {
            assert!(seen.insert(i), "part {name} holds job {i} twice");
            if refs.get(i as usize) == Some(number) {
                live.insert(i, r);
            }
        }
    }
    for (i, n) in refs.iter().enumerate() {
        if *n != 0 {
            assert!(
                live.contains_key(&(i as u64)),
                "job {i} is named in part {n}, which does not hold it"
            );
        }
    }
    live
}

/// The part files no job names.
pub fn garbage(con: &mut redis::Connection, archive: &Path, id: &str, total: u64) -> Vec<String> {
    let (names, _) = part_refs(con, id, total);
    let named: std::collections::HashSet<&String> = names.values().collect();
    part_files(archive, id)
        .into_iter()
        .filter(|f| !named.contains(f))
        .collect()
}
