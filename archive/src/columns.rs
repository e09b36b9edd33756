//! The columns of a results part and of its texts side table, and the
//! conversion of `JobResult`s to and from them. Every field of a result has
//! a column, so a row turns back into the same result; the system prompt
//! is a hash into the texts table, which holds each text once per part.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arrow_array::builder::{BooleanBuilder, Float64Builder, MapBuilder, StringBuilder, UInt32Builder, UInt64Builder};
use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, UInt32Type, UInt64Type};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use candor_core::{JobResult, Transcript, Usage};

use crate::ArchiveError;

const USAGE: [&str; 5] = [
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
    "reasoning_tokens",
];

fn usage_values(u: &Usage) -> [u64; 5] {
    [
        u.input_tokens,
        u.output_tokens,
        u.cache_creation_input_tokens,
        u.cache_read_input_tokens,
        u.reasoning_tokens,
    ]
}

fn usage_from(v: [u64; 5]) -> Usage {
    Usage {
        input_tokens: v[0],
        output_tokens: v[1],
        cache_creation_input_tokens: v[2],
        cache_read_input_tokens: v[3],
        reasoning_tokens: v[4],
    }
}

/// The texts side table: `sha256` (hex) → `text`.
pub fn texts_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("sha256", DataType::Utf8, false),
        Field::new("text", DataType::Utf8, false),
    ]))
}

fn classifications_field() -> Field {
    let entries = Field::new_struct(
        "entries",
        vec![
            Field::new("key", DataType::Utf8, false),
            Field::new("value", DataType::Boolean, true),
        ],
        false,
    );
    Field::new("classifications", DataType::Map(Arc::new(entries), false), false)
}

/// A results part: one row per result.
pub fn results_schema() -> SchemaRef {
    let s = |n: &str| Field::new(n, DataType::Utf8, false);
    let opt = |n: &str| Field::new(n, DataType::Utf8, true);
    let u64f = |n: &str| Field::new(n, DataType::UInt64, false);
    let u32f = |n: &str| Field::new(n, DataType::UInt32, false);
    let f64f = |n: &str| Field::new(n, DataType::Float64, false);
    let mut fields = vec![
        s("sweep_id"),
        u64f("index"),
        s("job_id"),
        s("model"),
        s("variant"),
        u64f("query_index"),
        s("query"),
        s("condition"),
        u32f("seed"),
        s("status"),
        opt("output"),
        classifications_field(),
        opt("judgements"),
        u32f("turns"),
        u32f("attempt"),
        u32f("cache_hits"),
        f64f("cost_usd"),
        f64f("cache_saving_usd"),
    ];
    fields.extend(USAGE.iter().map(|n| u64f(n)));
    fields.extend(USAGE.iter().map(|n| u64f(&format!("judge_{n}"))));
    fields.extend([
        f64f("latency_ms"),
        u64f("started_at_ms"),
        opt("error"),
        opt("error_kind"),
        s("system_sha256"),
        s("messages"),
    ]);
    Arc::new(Schema::new(fields))
}

/// Hex SHA-256 of a text: its key in the texts table.
pub fn text_hash(text: &str) -> String {
    use sha2::Digest;
    let d = sha2::Sha256::digest(text.as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("results serialize")
}

/// Column builders for one part.
#[derive(Default)]
pub(crate) struct Rows {
    strings: BTreeMap<&'static str, StringBuilder>,
    u64s: BTreeMap<String, UInt64Builder>,
    u32s: BTreeMap<&'static str, UInt32Builder>,
    f64s: BTreeMap<&'static str, Float64Builder>,
    classifications: Option<MapBuilder<StringBuilder, BooleanBuilder>>,
    texts: BTreeMap<String, String>,
    len: usize,
}

impl Rows {
    fn s(&mut self, name: &'static str, v: Option<&str>) {
        self.strings.entry(name).or_default().append_option(v);
    }
    fn u64(&mut self, name: &str, v: u64) {
        if let Some(b) = self.u64s.get_mut(name) {
            b.append_value(v);
        } else {
            let mut b = UInt64Builder::new();
            b.append_value(v);
            self.u64s.insert(name.to_string(), b);
        }
    }
    fn u32(&mut self, name: &'static str, v: u32) {
        self.u32s.entry(name).or_default().append_value(v);
    }
    fn f64(&mut self, name: &'static str, v: f64) {
        self.f64s.entry(name).or_default().append_value(v);
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Adds one result.
    pub(crate) fn push(&mut self, r: &JobResult) {
        self.s("sweep_id", Some(&r.sweep_id));
        self.u64("index", r.index);
        self.s("job_id", Some(&r.job_id));
        self.s("model", Some(&r.model));
        self.s("variant", Some(&r.variant));
        self.u64("query_index", r.query_index);
        self.s("query", Some(&r.query));
        self.s("condition", Some(&r.condition));
        self.u32("seed", r.seed);
        self.s("status", Some(r.status.name()));
        self.s("output", r.output.as_deref());
        let m = self
            .classifications
            .get_or_insert_with(|| MapBuilder::new(None, StringBuilder::new(), BooleanBuilder::new()));
        for (k, v) in &r.classifications {
            m.keys().append_value(k);
            m.values().append_value(*v);
        }
        m.append(true).expect("keys and values stay in step");
        let judgements = (!r.judgements.is_empty()).then(|| json(&r.judgements));
        self.s("judgements", judgements.as_deref());
        self.u32("turns", r.turns);
        self.u32("attempt", r.attempt);
        self.u32("cache_hits", r.cache_hits);
        self.f64("cost_usd", r.cost_usd);
        self.f64("cache_saving_usd", r.cache_saving_usd);
        for (n, v) in USAGE.iter().zip(usage_values(&r.usage)) {
            self.u64(n, v);
        }
        for (n, v) in USAGE.iter().zip(usage_values(&r.judge_usage)) {
            self.u64(&format!("judge_{n}"), v);
        }
        self.f64("latency_ms", r.latency_ms);
        self.u64("started_at_ms", r.started_at_ms);
        self.s("error", r.error.as_deref());
        let kind = r.error_kind.map(|k| json(&k).trim_matches('"').to_string());
        self.s("error_kind", kind.as_deref());
        let hash = text_hash(&r.transcript.system);
        self.s("system_sha256", Some(&hash));
        self.texts.entry(hash).or_insert_with(|| r.transcript.system.clone());
        self.s("messages", Some(&json(&r.transcript.messages)));
        self.len += 1;
    }

    /// The results batch and the texts batch.
    pub(crate) fn finish(mut self) -> (RecordBatch, RecordBatch) {
        let schema = results_schema();
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
        for f in schema.fields() {
            let name = f.name().as_str();
            let col: ArrayRef = match f.data_type() {
                DataType::Utf8 => Arc::new(self.strings.get_mut(name).expect("every column is filled").finish()),
                DataType::UInt64 => Arc::new(self.u64s.get_mut(name).expect("every column is filled").finish()),
                DataType::UInt32 => Arc::new(self.u32s.get_mut(name).expect("every column is filled").finish()),
                DataType::Float64 => Arc::new(self.f64s.get_mut(name).expect("every column is filled").finish()),
                _ => Arc::new(self.classifications.take().expect("every column is filled").finish()),
            };
            columns.push(col);
        }
        let results = RecordBatch::try_new(schema, columns).expect("columns match the schema");
        let (hashes, texts): (Vec<_>, Vec<_>) = std::mem::take(&mut self.texts).into_iter().unzip();
        let t = RecordBatch::try_new(
            texts_schema(),
            vec![
                Arc::new(arrow_array::StringArray::from(hashes)),
                Arc::new(arrow_array::StringArray::from(texts)),
            ],
        )
        .expect("columns match the schema");
        (results, t)
    }
}

/// Reads the texts table into a map.
pub(crate) fn read_texts(batch: &RecordBatch, into: &mut HashMap<String, String>) -> Result<(), ArchiveError> {
    let h = string_col(batch, "sha256")?;
    let t = string_col(batch, "text")?;
    for i in 0..batch.num_rows() {
        into.insert(h.value(i).to_string(), t.value(i).to_string());
    }
    Ok(())
}

fn col<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a ArrayRef, ArchiveError> {
    batch
        .column_by_name(name)
        .ok_or_else(|| ArchiveError::Format(format!("no column {name}")))
}

fn string_col<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a arrow_array::StringArray, ArchiveError> {
    col(batch, name)?
        .as_string_opt::<i32>()
        .ok_or_else(|| ArchiveError::Format(format!("column {name} is not text")))
}

/// Typed views of a results batch's columns.
pub(crate) struct View<'a> {
    batch: &'a RecordBatch,
}

impl<'a> View<'a> {
    pub(crate) fn new(batch: &'a RecordBatch) -> Self {
        View { batch }
    }
    fn s(&self, name: &str, i: usize) -> Result<Option<String>, ArchiveError> {
        let c = string_col(self.batch, name)?;
        Ok((!c.is_null(i)).then(|| c.value(i).to_string()))
    }
    fn req(&self, name: &str, i: usize) -> Result<String, ArchiveError> {
        self.s(name, i)?
            .ok_or_else(|| ArchiveError::Format(format!("column {name} is empty in row {i}")))
    }
    fn u64(&self, name: &str, i: usize) -> Result<u64, ArchiveError> {
        let c = col(self.batch, name)?.as_primitive_opt::<UInt64Type>();
        c.map(|c| c.value(i))
            .ok_or_else(|| ArchiveError::Format(format!("column {name} is not u64")))
    }
    fn u32(&self, name: &str, i: usize) -> Result<u32, ArchiveError> {
        let c = col(self.batch, name)?.as_primitive_opt::<UInt32Type>();
        c.map(|c| c.value(i))
            .ok_or_else(|| ArchiveError::Format(format!("column {name} is not u32")))
    }
    fn f64(&self, name: &str, i: usize) -> Result<f64, ArchiveError> {
        let c = col(self.batch, name)?.as_primitive_opt::<Float64Type>();
        c.map(|c| c.value(i))
            .ok_or_else(|| ArchiveError::Format(format!("column {name} is not f64")))
    }
    fn usage(&self, prefix: &str, i: usize) -> Result<Usage, ArchiveError> {
        let mut v = [0u64; 5];
        for (slot, n) in v.iter_mut().zip(USAGE) {
            *slot = self.u64(&format!("{prefix}{n}"), i)?;
        }
        Ok(usage_from(v))
    }
    fn classifications(&self, i: usize) -> Result<BTreeMap<String, bool>, ArchiveError> {
        let m = col(self.batch, "classifications")?
            .as_map_opt()
            .ok_or_else(|| ArchiveError::Format("column classifications is not a map".into()))?;
        let entries = m.value(i);
        let keys = entries.column(0).as_string_opt::<i32>();
        let values = entries.column(1).as_boolean_opt();
        let (Some(keys), Some(values)) = (keys, values) else {
            return Err(ArchiveError::Format("column classifications is not text → bool".into()));
        };
        Ok((0..keys.len())
            .map(|j| (keys.value(j).to_string(), values.value(j)))
            .collect())
    }

    /// The `index` of row `i`.
    pub(crate) fn index(&self, i: usize) -> Result<u64, ArchiveError> {
        self.u64("index", i)
    }

    /// Row `i` as the result it was made from.
    pub(crate) fn result(&self, i: usize, texts: &HashMap<String, String>) -> Result<JobResult, ArchiveError> {
        fn parse<T: serde::de::DeserializeOwned>(name: &str, i: usize, v: String) -> Result<T, ArchiveError> {
            serde_json::from_str(&v).map_err(|e| ArchiveError::Format(format!("column {name} in row {i}: {e}")))
        }
        let hash = self.req("system_sha256", i)?;
        let system = texts
            .get(&hash)
            .cloned()
            .ok_or_else(|| ArchiveError::Format(format!("row {i}: no text {hash} in the part's texts")))?;
        Ok(JobResult {
            job_id: self.req("job_id", i)?,
            sweep_id: self.req("sweep_id", i)?,
            index: self.index(i)?,
            model: self.req("model", i)?,
            variant: self.req("variant", i)?,
            query_index: self.u64("query_index", i)?,
            query: self.req("query", i)?,
            condition: self.req("condition", i)?,
            seed: self.u32("seed", i)?,
            status: parse("status", i, format!("\"{}\"", self.req("status", i)?))?,
            output: self.s("output", i)?,
            classifications: self.classifications(i)?,
            judgements: match self.s("judgements", i)? {
                Some(j) => parse("judgements", i, j)?,
                None => BTreeMap::new(),
            },
            turns: self.u32("turns", i)?,
            attempt: self.u32("attempt", i)?,
            cache_hits: self.u32("cache_hits", i)?,
            cost_usd: self.f64("cost_usd", i)?,
            cache_saving_usd: self.f64("cache_saving_usd", i)?,
            usage: self.usage("", i)?,
            judge_usage: self.usage("judge_", i)?,
            latency_ms: self.f64("latency_ms", i)?,
            started_at_ms: self.u64("started_at_ms", i)?,
            error: self.s("error", i)?,
            error_kind: match self.s("error_kind", i)? {
                Some(k) => Some(parse("error_kind", i, format!("\"{k}\""))?),
                None => None,
            },
            transcript: Transcript {
                system,
                messages: parse("messages", i, self.req("messages", i)?)?,
            },
        })
    }
}
