//! Prompt templates: Jinja2 syntax through minijinja, strict about undefined
//! variables.

use std::collections::BTreeSet;

use minijinja::{Environment, UndefinedBehavior, Value};

use crate::error::RenderError;

/// A compiled set of templates, each addressed by its spec field name
/// (`prompts[0].system`).
pub struct Templates {
    env: Environment<'static>,
}

/// A template that failed to compile: the message and, when minijinja knows
/// it, the line inside the template.
#[derive(Debug)]
pub struct CompileError {
    pub message: String,
    pub line: Option<usize>,
}

impl Default for Templates {
    fn default() -> Self {
        Self::new()
    }
}

impl Templates {
    pub fn new() -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        Templates { env }
    }

    /// Compiles `source` under `name`; returns the variables it reads.
    pub fn add(&mut self, name: &str, source: String) -> Result<BTreeSet<String>, CompileError> {
        self.env
            .add_template_owned(name.to_string(), source)
            .map_err(|e| CompileError {
                message: e.detail().unwrap_or("syntax error").to_string(),
                line: e.line(),
            })?;
        let t = self.env.get_template(name).expect("template was just added");
        Ok(t.undeclared_variables(false).into_iter().collect())
    }

    /// The length in bytes of the source of the template compiled under `name`.
    pub fn source_len(&self, name: &str) -> Option<usize> {
        self.env.get_template(name).ok().map(|t| t.source().len())
    }

    pub fn render(&self, name: &str, ctx: &Value) -> Result<String, RenderError> {
        let err = |line, reason| RenderError {
            template: name.to_string(),
            line,
            reason,
        };
        let t = self.env.get_template(name).map_err(|e| err(None, e.to_string()))?;
        t.render(ctx).map_err(|e| match (e.line(), e.detail()) {
            (Some(l), Some(d)) => err(Some(l), format!("{}: {d}", e.kind())),
            (Some(l), None) => err(Some(l), e.kind().to_string()),
            (None, _) => err(None, e.to_string()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use minijinja::context;

    #[test]
    fn renders_with_row_and_condition_variables() {
        let mut t = Templates::new();
        let vars = t
            .add(
                "u",
                "<is_free_tier_user>{{ 'True' if is_free_tier_user else 'False' }}</is_free_tier_user>\n{{ query }} ({{ category }})".into(),
            )
            .unwrap();
        assert_eq!(
            vars,
            ["category", "is_free_tier_user", "query"].map(String::from).into()
        );
        let row = Value::from_serialize(std::collections::BTreeMap::from([("category", "fraud")]));
        let cond = context! { is_free_tier_user => true };
        let cx = minijinja::value::merge_maps([context! { query => "do x" }, row, cond]);
        let out = t.render("u", &cx).unwrap();
        assert_eq!(out, "<is_free_tier_user>True</is_free_tier_user>\ndo x (fraud)");
    }

    #[test]
    fn undefined_variables_are_errors_not_empty_strings() {
        let mut t = Templates::new();
        t.add("u", "hello {{ nobody }}".into()).unwrap();
        let e = t.render("u", &context! { query => "q" }).unwrap_err();
        assert!(e.to_string().contains("undefined"), "{e}");
    }

    #[test]
    fn syntax_errors_carry_the_template_line() {
        let mut t = Templates::new();
        let e = t.add("u", "line one\n{{ oops \n".into()).unwrap_err();
        assert_eq!(e.line, Some(2));
    }
}
