//! What a job asks: the dataset the queries come from, the conditions and
//! their variables, the prompt variants and their templates, and rendering
//! a job's prompts from them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use minijinja::{Value as JValue, context};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Ctx, MAX_TEMPLATE_BYTES, SpecFile, Sweep, check_unique, identity};
use crate::dataset::{self, Format, Row};
use crate::error::{RenderError, SpecError};
use crate::hash::Hash;
use crate::jobs::JobTuple;
use crate::template::Templates;

/// Variables every template sees besides the dataset row and the condition's
/// variables.
pub const BUILTIN_VARS: [&str; 5] = ["query", "model", "variant", "condition", "seed"];

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetSpec {
    /// Relative to the spec file.
    pub path: String,
    /// The field that holds the query.
    pub field: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<Format>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PromptVariant {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_file: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    pub name: String,
    #[serde(default)]
    pub vars: BTreeMap<String, Value>,
}

/// Checks the list `conditions`: at least one, named by unique labels.
pub(super) fn check_conditions(cx: &Ctx<'_>, conditions: &[Condition]) -> Result<(), SpecError> {
    if conditions.is_empty() {
        return Err(cx.err("conditions", "at least one condition is needed"));
    }
    check_unique(cx, "conditions", "name", conditions.iter().map(|c| c.name.as_str()))
}

/// Reads the dataset from the bundle's files: its format is known (from
/// `format` or the file name), the file is there, `field` and `limit` make
/// sense, and every row parses and has the query field.
pub(super) fn read_dataset(
    cx: &Ctx<'_>,
    d: &DatasetSpec,
    files: &BTreeMap<String, String>,
) -> Result<Vec<Row>, SpecError> {
    let dpath = cx.base().join(&d.path);
    let Some(format) = d.format.or_else(|| Format::from_path(&dpath)) else {
        return Err(cx.err(
            "dataset.path",
            format!(
                "cannot tell the format of `{}`; name it .csv or .jsonl, or set dataset.format",
                d.path
            ),
        ));
    };
    let Some(dtext) = files.get(&d.path) else {
        return Err(cx.err("dataset.path", format!("no such file: {}", dpath.display())));
    };
    if d.field.is_empty() {
        return Err(cx.err("dataset.field", "must name the field that holds the query"));
    }
    if d.limit == Some(0) {
        return Err(cx.err("dataset.limit", "must be at least 1"));
    }
    dataset::parse(&dpath, dtext, format, &d.field, d.limit)
}

/// The fields every row has: the ones templates may use.
pub(super) fn row_fields(rows: &[Row]) -> BTreeSet<String> {
    let mut fields: BTreeSet<String> = rows[0].fields.keys().cloned().collect();
    for r in &rows[1..] {
        if r.fields.len() != fields.len() || !fields.iter().all(|k| r.fields.contains_key(k)) {
            fields.retain(|k| r.fields.contains_key(k));
        }
    }
    fields
}

/// Checks the conditions' variable names: none is set by candor itself or
/// is a field of the dataset, so that a template's variable means one thing.
pub(super) fn check_condition_vars(
    cx: &Ctx<'_>,
    conditions: &[Condition],
    row_fields: &BTreeSet<String>,
) -> Result<(), SpecError> {
    for (i, c) in conditions.iter().enumerate() {
        for k in c.vars.keys() {
            let field = format!("conditions[{i}].vars.{k}");
            if BUILTIN_VARS.contains(&k.as_str()) {
                return Err(cx.err(&field, format!("`{k}` is set by candor itself; choose another name")));
            }
            if row_fields.contains(k) {
                return Err(cx.err(
                    &field,
                    format!("`{k}` is also a field of the dataset; choose another name"),
                ));
            }
        }
    }
    Ok(())
}

/// The two condition indices of `compare`: the ones it names (two different
/// conditions of the spec), else the only two there are.
pub(super) fn compare(cx: &Ctx<'_>, spec: &SpecFile) -> Result<Option<(usize, usize)>, SpecError> {
    let Some(pair) = &spec.compare else {
        return Ok((spec.conditions.len() == 2).then_some((0, 1)));
    };
    if pair.len() != 2 || pair[0] == pair[1] {
        return Err(cx.err(
            "compare",
            "must name two different conditions, e.g. [training, unmonitored]",
        ));
    }
    let mut idx = [0usize; 2];
    for (k, n) in pair.iter().enumerate() {
        idx[k] = spec
            .conditions
            .iter()
            .position(|c| &c.name == n)
            .ok_or_else(|| cx.err(&format!("compare[{k}]"), format!("`{n}` is not one of the conditions")))?;
    }
    Ok(Some((idx[0], idx[1])))
}

/// The prompt variants, compiled.
pub(super) struct Variants {
    /// Per variant: the hash of its two templates' sources.
    pub hashes: Vec<Hash>,
    /// Per variant: the variables its system template reads.
    pub system_vars: Vec<BTreeSet<String>>,
}

/// One template's source, and the file it came from (None: written inline).
struct Source {
    text: String,
    file: Option<PathBuf>,
}

/// Compiles every prompt variant's system and user templates. With
/// `row_fields` (a spec being checked), it first checks the list `prompts`
/// (at least one, unique labels) and then that each template reads only
/// variables every row and condition defines; without (a bundle the
/// coordinator checked), it only compiles.
pub(super) fn compile_variants(
    cx: &Ctx<'_>,
    spec: &SpecFile,
    files: &BTreeMap<String, String>,
    row_fields: Option<&BTreeSet<String>>,
    templates: &mut Templates,
) -> Result<Variants, SpecError> {
    if row_fields.is_some() {
        if spec.prompts.is_empty() {
            return Err(cx.err("prompts", "at least one prompt variant is needed"));
        }
        check_unique(cx, "prompts", "name", spec.prompts.iter().map(|p| p.name.as_str()))?;
    }
    let mut out = Variants {
        hashes: Vec::new(),
        system_vars: Vec::new(),
    };
    for (i, p) in spec.prompts.iter().enumerate() {
        let mut sources = Vec::new();
        for (key, inline, file, required) in [
            ("system", &p.system, &p.system_file, false),
            ("user", &p.user, &p.user_file, true),
        ] {
            let field = format!("prompts[{i}].{key}");
            let source = prompt_source(cx, files, i, key, inline, file, required)?;
            let vars = add_template(cx, templates, &field, &source)?;
            if let Some(row_fields) = row_fields {
                check_template_vars(cx, &field, &source, &vars, &spec.conditions, row_fields)?;
            }
            if key == "system" {
                out.system_vars.push(vars);
            }
            sources.push(source.text);
        }
        out.hashes.push(identity::variant_hash(&sources[0], &sources[1]));
    }
    Ok(out)
}

/// The source of template `key` (`system` or `user`) of variant `i`: written
/// inline or in a file of the bundle (within the size limit), not both; the
/// system prompt may be left out (empty), the user prompt not.
fn prompt_source(
    cx: &Ctx<'_>,
    files: &BTreeMap<String, String>,
    i: usize,
    key: &str,
    inline: &Option<String>,
    file: &Option<String>,
    required: bool,
) -> Result<Source, SpecError> {
    let field = format!("prompts[{i}].{key}");
    match (inline, file) {
        (Some(_), Some(_)) => Err(cx.err(&field, format!("give either `{key}` or `{key}_file`, not both"))),
        (Some(s), None) => Ok(Source {
            text: s.clone(),
            file: None,
        }),
        (None, Some(f)) => {
            let fp = cx.base().join(f);
            let s = files
                .get(f)
                .ok_or_else(|| cx.err(&format!("{field}_file"), format!("no such file: {}", fp.display())))?;
            if s.len() as u64 > MAX_TEMPLATE_BYTES {
                return Err(cx.err(
                    &format!("{field}_file"),
                    format!(
                        "`{}` is {} bytes; the limit is {MAX_TEMPLATE_BYTES}",
                        fp.display(),
                        s.len()
                    ),
                ));
            }
            Ok(Source {
                text: s.clone(),
                file: Some(fp),
            })
        }
        (None, None) if required => Err(cx.err(&format!("prompts[{i}]"), format!("`{key}` or `{key}_file` is needed"))),
        (None, None) => Ok(Source {
            text: String::new(),
            file: None,
        }),
    }
}

/// Compiles a prompt template under its field name; returns the variables it
/// reads. An error in a template file names that file and the line in it.
fn add_template(
    cx: &Ctx<'_>,
    templates: &mut Templates,
    field: &str,
    source: &Source,
) -> Result<BTreeSet<String>, SpecError> {
    templates
        .add(field, source.text.clone())
        .map_err(|e| match &source.file {
            Some(fp) => SpecError::new(fp, field, format!("template error: {}", e.message)).at_line(e.line),
            None => cx.err(
                field,
                match e.line {
                    Some(l) => format!("template error on line {l} of the template: {}", e.message),
                    None => format!("template error: {}", e.message),
                },
            ),
        })
}

/// Checks that a prompt template reads only variables that are defined for
/// every job under every condition: the built-ins, the fields every row
/// has, and the condition's variables.
fn check_template_vars(
    cx: &Ctx<'_>,
    field: &str,
    source: &Source,
    vars: &BTreeSet<String>,
    conditions: &[Condition],
    row_fields: &BTreeSet<String>,
) -> Result<(), SpecError> {
    for (ci, c) in conditions.iter().enumerate() {
        let missing = vars
            .iter()
            .find(|v| !BUILTIN_VARS.contains(&v.as_str()) && !row_fields.contains(*v) && !c.vars.contains_key(*v));
        if let Some(v) = missing {
            let defined: Vec<&str> = BUILTIN_VARS
                .iter()
                .copied()
                .chain(row_fields.iter().map(String::as_str))
                .chain(c.vars.keys().map(String::as_str))
                .collect();
            let err = format!(
                "the template uses the undefined variable `{v}` (condition `{}` at conditions[{ci}]; defined: {})",
                c.name,
                defined.join(", ")
            );
            return Err(match &source.file {
                Some(fp) => SpecError::new(fp, field, err),
                None => cx.err(field, err),
            });
        }
    }
    Ok(())
}

/// Renders the system prompts that read only the model, variant and
/// condition once here instead of once per job: [model][variant][condition],
/// None where a prompt reads the row or the seed.
pub(super) fn static_system(
    cx: &Ctx<'_>,
    spec: &SpecFile,
    templates: &Templates,
    cond_values: &[JValue],
    system_vars: &[BTreeSet<String>],
) -> Result<Vec<Option<String>>, SpecError> {
    let mut out = Vec::new();
    for m in &spec.models {
        for (vi, p) in spec.prompts.iter().enumerate() {
            for (ci, c) in spec.conditions.iter().enumerate() {
                let is_static = system_vars[vi]
                    .iter()
                    .all(|v| matches!(v.as_str(), "model" | "variant" | "condition") || c.vars.contains_key(v));
                if !is_static {
                    out.push(None);
                    continue;
                }
                let field = format!("prompts[{vi}].system");
                let cx_vars =
                    context! { model => &m.id, variant => &p.name, condition => &c.name, ..cond_values[ci].clone() };
                out.push(Some(templates.render(&field, &cx_vars).map_err(|e| cx.err(&field, e))?));
            }
        }
    }
    Ok(out)
}

impl Sweep {
    /// The system prompt and the first user turn of a job.
    pub fn render(&self, t: &JobTuple) -> Result<(String, String), RenderError> {
        let m = &self.spec.models[t.model];
        let p = &self.spec.prompts[t.variant];
        let c = &self.spec.conditions[t.condition];
        let cx = minijinja::value::merge_maps([
            context! {
                query => &self.rows[t.query].query,
                model => &m.id,
                variant => &p.name,
                condition => &c.name,
                seed => t.seed,
            },
            self.row_values[t.query].clone(),
            self.cond_values[t.condition].clone(),
        ]);
        let cell = self.space.cell_of(t);
        let system = match &self.static_system[cell] {
            Some(s) => s.clone(),
            None => self.templates.render(&format!("prompts[{}].system", t.variant), &cx)?,
        };
        let user = self.templates.render(&format!("prompts[{}].user", t.variant), &cx)?;
        Ok((system, user))
    }

    /// Renders every variant under every model and condition with the first
    /// row: catches what the check of the variables cannot (a filter applied
    /// to the wrong type, say).
    pub(super) fn trial_render(&self, cx: &Ctx<'_>) -> Result<(), SpecError> {
        for m in 0..self.spec.models.len() {
            for v in 0..self.spec.prompts.len() {
                for c in 0..self.spec.conditions.len() {
                    let t = JobTuple {
                        model: m,
                        variant: v,
                        query: 0,
                        condition: c,
                        seed: 0,
                    };
                    self.render(&t).map_err(|e| cx.err(&format!("prompts[{v}]"), e))?;
                }
            }
        }
        Ok(())
    }
}
