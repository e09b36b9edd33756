//! The page's markup: minijinja templates (`*.html.j2` next to this file)
//! with HTML auto-escaping and strict undefined values, and the filters and
//! functions they format numbers with.
//!
//! Everything a template writes is escaped as HTML text, except the page's
//! own style, script and policy (safe strings) and the data block, which is
//! JSON escaped for a script block (see `script::DataBlock`).

use std::io;

use minijinja::{AutoEscape, Environment, Error, Output, State, UndefinedBehavior, Value, escape_formatter};

use super::format::{ci, ci_pts, clip, esc, fixed, pct, pts, thousands, usd};
use super::script::{DataBlock, SCRIPT, content_security_policy};
use crate::report::{NO_DATA, NOT_COMPUTABLE};

const STYLE: &str = include_str!("report.css");

const TEMPLATES: [(&str, &str); 6] = [
    ("page.html.j2", include_str!("page.html.j2")),
    ("macros.html.j2", include_str!("macros.html.j2")),
    ("header.html.j2", include_str!("header.html.j2")),
    ("chart.html.j2", include_str!("chart.html.j2")),
    ("tables.html.j2", include_str!("tables.html.j2")),
    ("transcripts.html.j2", include_str!("transcripts.html.j2")),
];

/// Renders the template `name` with `ctx` into `out`.
pub(super) fn render(name: &str, ctx: Value, out: &mut impl io::Write) -> io::Result<()> {
    let env = environment().map_err(io::Error::other)?;
    let template = env.get_template(name).map_err(io::Error::other)?;
    template.render_captured_to(ctx, out).map_err(io_error)?;
    Ok(())
}

fn environment() -> Result<Environment<'static>, Error> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| AutoEscape::Html);
    env.set_formatter(formatter);
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    // Markup reads as it is written: a line holding only a block tag
    // writes nothing, and a template's last line end is kept.
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.set_keep_trailing_newline(true);
    for (name, source) in TEMPLATES {
        env.add_template(name, source)?;
    }
    env.add_global("STYLE", Value::from_safe_string(STYLE.to_string()));
    env.add_global("SCRIPT", Value::from_safe_string(SCRIPT.to_string()));
    env.add_global("CSP", Value::from_safe_string(content_security_policy()));
    env.add_global("NO_DATA", NO_DATA);
    env.add_global("NOT_COMPUTABLE", NOT_COMPUTABLE);
    env.add_filter("pct", pct);
    env.add_filter("pts", pts);
    env.add_filter("thousands", thousands);
    env.add_filter("usd", usd);
    env.add_filter("fixed", fixed);
    env.add_filter("clip", |s: &str, max: usize| clip(s, max).into_owned());
    env.add_function("ci", ci);
    env.add_function("ci_pts", ci_pts);
    Ok(env)
}

/// Writes a value into the page: the data block as it renders itself,
/// anything else escaped as HTML text unless it is a safe string. The
/// escaping is the page's own (`format::esc`): minijinja's also escapes `/`,
/// which HTML text and quoted attributes do not need.
fn formatter(out: &mut Output, state: &State, value: &Value) -> Result<(), Error> {
    if value.downcast_object_ref::<DataBlock>().is_some() {
        return out.write_fmt(format_args!("{value}")).map_err(Error::from);
    }
    if state.auto_escape() != AutoEscape::Html || value.is_safe() {
        return escape_formatter(out, state, value);
    }
    out.write_str(&esc(&value.to_string())).map_err(Error::from)
}

/// A failed write as the error that failed it; a template's own error as is.
fn io_error(e: Error) -> io::Error {
    match std::error::Error::source(&e).and_then(|s| s.downcast_ref::<io::Error>()) {
        Some(io) => io::Error::new(io.kind(), io.to_string()),
        None => io::Error::other(e),
    }
}
