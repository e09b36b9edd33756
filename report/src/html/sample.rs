//! The results report.html embeds for its transcript browser, chosen as
//! they are read: within the limits, the first results of every model ×
//! variant × condition, as evenly as the limits allow.

use std::collections::{BTreeSet, HashMap};

use serde_json::Value;

use super::script::Data;
use super::{Embedded, Limits};
use crate::lines::{Line, Record};
use crate::report::{Report, classifier_names};

/// Where a kept result belongs.
struct CellKey {
    model: String,
    variant: String,
    condition: String,
}

struct Kept {
    /// Its line among the readable ones, from 1.
    seq: u64,
    query_index: u64,
    seed: u64,
    system: Option<usize>,
    /// The result as embedded (compact JSON): its transcript's system prompt
    /// replaced by an index into the table of system prompts.
    json: String,
}

/// The results a page embeds, chosen as they are read: within the limits,
/// the first results of every model × variant × condition, as evenly as the
/// limits allow.
pub struct Sample {
    limits: Limits,
    /// Per cell, in the order first seen: its place and its kept results.
    cells: Vec<(CellKey, Vec<Kept>)>,
    /// model, variant and condition, NUL-separated → cell.
    index: HashMap<String, usize>,
    key: String,
    /// (kept results, cell): the fullest cell is the last.
    fullness: BTreeSet<(usize, usize)>,
    jobs: usize,
    bytes: usize,
    systems: Vec<String>,
    system_index: HashMap<String, usize>,
    total: u64,
    unreadable: u64,
}

impl Sample {
    pub fn new(limits: Limits) -> Self {
        Sample {
            limits,
            cells: Vec::new(),
            index: HashMap::new(),
            key: String::new(),
            fullness: BTreeSet::new(),
            jobs: 0,
            bytes: 0,
            systems: Vec::new(),
            system_index: HashMap::new(),
            total: 0,
            unreadable: 0,
        }
    }

    /// Reads one line of results.jsonl: keeps the result if the limits allow,
    /// making room by dropping the last kept result of the fullest cell. An
    /// unreadable line is counted.
    pub fn offer(&mut self, line: &Line<'_>) {
        match line {
            Line::Record(r) => self.keep(r),
            Line::Unreadable => self.unreadable += 1,
        }
    }

    /// Keeps `r` as [`Sample::offer`] says, rewritten for the page: its
    /// system prompt moved to the table of system prompts.
    fn keep(&mut self, r: &Record<'_>) {
        let (model, variant, condition) = (&r.fields.model, &r.fields.variant, &r.fields.condition);
        self.total += 1;
        let seq = self.total;
        let cell = self.cell(model, variant, condition);
        // A result of one of the fullest cells would be the first to go.
        let full = self.jobs >= self.limits.jobs || self.bytes >= self.limits.bytes;
        if full && self.cells[cell].1.len() >= self.fullest() {
            return;
        }
        let Ok(Value::Object(mut r)) = serde_json::from_slice::<Value>(r.json) else {
            return;
        };
        let num = |v: Option<&Value>| v.and_then(Value::as_u64).unwrap_or(u64::MAX);
        let (query_index, seed) = (num(r.get("query_index")), num(r.get("seed")));
        r.remove("sweep_id");
        r.remove("index");
        let mut system = None;
        if let Some(Value::Object(mut t)) = r.remove("transcript") {
            if let Some(Value::String(text)) = t.remove("system") {
                let next = self.systems.len();
                let i = *self.system_index.entry(text.clone()).or_insert(next);
                if i == next {
                    self.bytes += text.len();
                    self.systems.push(text);
                }
                system = Some(i);
                r.insert("system".into(), Value::from(i));
            }
            if let Some(m) = t.remove("messages") {
                r.insert("messages".into(), m);
            }
        }
        let json = Value::Object(r).to_string();
        self.bytes += json.len();
        self.jobs += 1;
        self.push(
            cell,
            Kept {
                seq,
                query_index,
                seed,
                system,
                json,
            },
        );
        while self.jobs > self.limits.jobs || self.bytes > self.limits.bytes {
            let victim = if self.cells[cell].1.len() == self.fullest() {
                cell
            } else {
                self.fullness.last().expect("a kept result").1
            };
            let gone = self.pop(victim);
            self.jobs -= 1;
            self.bytes -= gone.json.len();
            if gone.seq == seq {
                break;
            }
        }
    }

    fn cell(&mut self, model: &str, variant: &str, condition: &str) -> usize {
        self.key.clear();
        for part in [model, variant, condition] {
            self.key.push_str(part);
            self.key.push('\0');
        }
        if let Some(&c) = self.index.get(self.key.as_str()) {
            return c;
        }
        let c = self.cells.len();
        self.index.insert(self.key.clone(), c);
        let key = CellKey {
            model: model.to_string(),
            variant: variant.to_string(),
            condition: condition.to_string(),
        };
        self.cells.push((key, Vec::new()));
        self.fullness.insert((0, c));
        c
    }

    fn fullest(&self) -> usize {
        self.fullness.last().map_or(0, |&(n, _)| n)
    }

    fn push(&mut self, cell: usize, kept: Kept) {
        let n = self.cells[cell].1.len();
        self.fullness.remove(&(n, cell));
        self.fullness.insert((n + 1, cell));
        self.cells[cell].1.push(kept);
    }

    fn pop(&mut self, cell: usize) -> Kept {
        let n = self.cells[cell].1.len();
        self.fullness.remove(&(n, cell));
        self.fullness.insert((n - 1, cell));
        self.cells[cell].1.pop().expect("the fullest cell holds a result")
    }

    /// The data the page's script reads: the kept results ordered by model,
    /// variant, query, seed and condition (so that a query's conditions sit
    /// together).
    pub(super) fn finish(self, report: &Report) -> Data {
        let order = Order::of(report, self.cells.iter().map(|(p, _)| p));
        let mut places = Vec::with_capacity(self.cells.len());
        let mut kept: Vec<(usize, Kept)> = Vec::with_capacity(self.jobs);
        for (i, (place, ks)) in self.cells.into_iter().enumerate() {
            places.push(place);
            kept.extend(ks.into_iter().map(|k| (i, k)));
        }
        kept.sort_by_key(|(i, k)| {
            let p = &places[*i];
            (
                order.model(&p.model),
                order.variant(&p.variant),
                k.query_index,
                k.seed,
                order.condition(&p.condition),
                k.seq,
            )
        });
        // System prompts no kept result refers to are left out (as null, so
        // that the indices hold).
        let used: BTreeSet<usize> = kept.iter().filter_map(|(_, k)| k.system).collect();
        let systems = self
            .systems
            .into_iter()
            .enumerate()
            .map(|(i, s)| {
                if used.contains(&i) {
                    Value::String(s)
                } else {
                    Value::Null
                }
            })
            .collect();
        let embedded = Embedded {
            shown: kept.len() as u64,
            total: self.total,
            unreadable: self.unreadable,
        };
        let meta = serde_json::json!({
            "primary": report.sweep.primary_classifier,
            "alignment_faking": report.sweep.alignment_faking_classifier,
            "classifiers": classifier_names(report),
            "models": order.models,
            "variants": order.variants,
            "conditions": order.conditions,
            "shown": embedded.shown,
            "total": embedded.total,
        });
        Data {
            meta,
            systems: Value::Array(systems),
            jobs: kept.into_iter().map(|(_, k)| k.json).collect(),
            embedded,
        }
    }
}

/// The order of models, variants and conditions: the report's, then any
/// others by name.
struct Order {
    models: Vec<String>,
    variants: Vec<String>,
    conditions: Vec<String>,
}

impl Order {
    fn of<'a>(report: &Report, seen: impl Iterator<Item = &'a CellKey>) -> Order {
        let mut o = Order {
            models: Vec::new(),
            variants: Vec::new(),
            conditions: Vec::new(),
        };
        for c in &report.cells {
            push_new(&mut o.models, &c.model);
            push_new(&mut o.variants, &c.variant);
            push_new(&mut o.conditions, &c.condition);
        }
        let (m, v, c) = (o.models.len(), o.variants.len(), o.conditions.len());
        for p in seen {
            push_new(&mut o.models, &p.model);
            push_new(&mut o.variants, &p.variant);
            push_new(&mut o.conditions, &p.condition);
        }
        o.models[m..].sort();
        o.variants[v..].sort();
        o.conditions[c..].sort();
        o
    }
    fn rank(list: &[String], s: &str) -> usize {
        list.iter().position(|x| x == s).unwrap_or(usize::MAX)
    }
    fn model(&self, s: &str) -> usize {
        Self::rank(&self.models, s)
    }
    fn variant(&self, s: &str) -> usize {
        Self::rank(&self.variants, s)
    }
    fn condition(&self, s: &str) -> usize {
        Self::rank(&self.conditions, s)
    }
}

fn push_new(v: &mut Vec<String>, s: &str) {
    if !v.iter().any(|x| x == s) {
        v.push(s.to_string());
    }
}
