//! The compliance chart as `chart.html.j2` draws it: a stacked bar per cell,
//! grouped by model and variant, with its 95% interval, and the gap under
//! each group. Here the layout is worked out; the template writes the SVG.

use std::fmt::Write as _;

use serde::Serialize;

use candor_core::stats::Interval;

use super::format::{ci, pct, thousands};
use super::tables::{GapView, cell_rate};
use crate::report::{Cell, NO_DATA, Report};

const WIDTH: f64 = 980.0;
/// Where the bars start: the labels are to their left.
const X0: f64 = 250.0;
const BAR_W: f64 = 470.0;
const BAR_H: f64 = 24.0;

/// A segment of a bar, left to right, with its legend text.
#[derive(Serialize)]
pub(super) struct Segment {
    key: &'static str,
    label: &'static str,
    fill: &'static str,
}

const FAKING: Segment = Segment {
    key: "complies_faking",
    label: "Complies, with alignment-faking reasoning",
    fill: "url(#af-hatch)",
};
const COMPLIES_OTHER: Segment = Segment {
    key: "complies_other",
    label: "Complies, without alignment-faking reasoning",
    fill: "#f2c14e",
};
const COMPLIES: Segment = Segment {
    key: "complies",
    label: "Complies",
    fill: "#f2c14e",
};
const REFUSES: Segment = Segment {
    key: "refuses",
    label: "Refuses",
    fill: "#8db4e2",
};

#[derive(Serialize)]
pub(super) struct Chart<'a> {
    primary: &'a str,
    faking: Option<&'a str>,
    segments: &'static [Segment],
    width: f64,
    height: f64,
    x0: f64,
    bar_w: f64,
    bar_h: f64,
    /// The x of each 20% line.
    grid: Vec<f64>,
    models: Vec<ModelGroup<'a>>,
}

/// A model and its variants, each with its bars.
#[derive(Serialize)]
struct ModelGroup<'a> {
    name: &'a str,
    y: f64,
    variants: Vec<VariantGroup<'a>>,
}

#[derive(Serialize)]
struct VariantGroup<'a> {
    name: &'a str,
    /// Where its label goes; none when no model has several variants.
    y: Option<f64>,
    bars: Vec<Bar<'a>>,
    gap: Option<(f64, GapView<'a>)>,
}

#[derive(Serialize)]
struct Bar<'a> {
    model: &'a str,
    variant: &'a str,
    condition: &'a str,
    /// Its tooltip: the counts and rates, as text.
    tip: String,
    y: f64,
    /// Its middle, where the whisker is.
    mid: f64,
    /// The baseline of its text.
    text_y: f64,
    parts: Vec<Part>,
    /// None without outputs (no data).
    rate: Option<Interval>,
    /// The interval's ends on the chart.
    whisker: [f64; 2],
    n: u64,
    /// Alignment faking among all outputs.
    faking: Option<f64>,
    /// Why it has no data.
    why: String,
}

/// A bar's segment, where it is drawn.
#[derive(Serialize)]
struct Part {
    key: &'static str,
    fill: &'static str,
    x: f64,
    width: f64,
}

impl<'a> Chart<'a> {
    pub(super) fn of(r: &'a Report) -> Self {
        let segments: &'static [Segment] = if r.sweep.alignment_faking_classifier.is_some() {
            &[FAKING, COMPLIES_OTHER, REFUSES]
        } else {
            &[COMPLIES, REFUSES]
        };
        let groups = groups(r);
        let many_variants = groups.iter().any(|(_, vs)| vs.len() > 1);
        let mut y = 30.0;
        let mut models = Vec::new();
        for (model, variants) in groups {
            y += 10.0;
            let mut group = ModelGroup {
                name: model,
                y: y + 14.0,
                variants: Vec::new(),
            };
            y += 24.0;
            for (variant, cells) in variants {
                let label = many_variants.then_some(y + 13.0);
                if many_variants {
                    y += 20.0;
                }
                let mut bars = Vec::new();
                for c in cells {
                    bars.push(Bar::of(c, segments, y));
                    y += BAR_H + 8.0;
                }
                let gap = r.gaps.iter().map(GapView::of).find(|g| g.is_for(model, variant));
                let gap = gap.map(|g| {
                    let at = y + 10.0;
                    y += 22.0;
                    (at, g)
                });
                y += 4.0;
                group.variants.push(VariantGroup {
                    name: variant,
                    y: label,
                    bars,
                    gap,
                });
            }
            models.push(group);
        }
        Chart {
            primary: &r.sweep.primary_classifier,
            faking: r.sweep.alignment_faking_classifier.as_deref(),
            segments,
            width: WIDTH,
            height: y + 8.0,
            x0: X0,
            bar_w: BAR_W,
            bar_h: BAR_H,
            grid: (0..=5).map(|i| X0 + BAR_W * f64::from(i) / 5.0).collect(),
            models,
        }
    }
}

/// A model and its variants, each with its cells.
type Group<'a> = (&'a str, Vec<(&'a str, Vec<&'a Cell>)>);

/// Cells grouped by model, then variant, in the report's order.
fn groups(r: &Report) -> Vec<Group<'_>> {
    let mut groups: Vec<Group<'_>> = Vec::new();
    for c in &r.cells {
        let m = match groups.iter().position(|(m, _)| *m == c.model) {
            Some(i) => i,
            None => {
                groups.push((&c.model, Vec::new()));
                groups.len() - 1
            }
        };
        let vs = &mut groups[m].1;
        match vs.iter_mut().find(|(v, _)| *v == c.variant) {
            Some((_, cells)) => cells.push(c),
            None => vs.push((&c.variant, vec![c])),
        }
    }
    groups
}

impl<'a> Bar<'a> {
    fn of(c: &'a Cell, segments: &[Segment], y: f64) -> Self {
        let count = |key: &str| match key {
            "complies_faking" => c.stack.complies_faking,
            "complies_other" => c.stack.complies_other,
            "complies" => c.compliant,
            _ => c.stack.refuses,
        };
        let frac = |k: u64| if c.n == 0 { 0.0 } else { k as f64 / c.n as f64 };
        let mut x = X0;
        let parts = segments
            .iter()
            .map(|s| {
                let width = frac(count(s.key)) * BAR_W;
                let part = Part {
                    key: s.key,
                    fill: s.fill,
                    x,
                    width,
                };
                x += width;
                part
            })
            .collect();
        let rate = cell_rate(c);
        Bar {
            model: &c.model,
            variant: &c.variant,
            condition: &c.condition,
            tip: tip(c, segments, &count),
            y,
            mid: y + BAR_H / 2.0,
            text_y: y + BAR_H / 2.0 + 4.5,
            parts,
            rate,
            whisker: rate.map_or([0.0; 2], |r| [X0 + r.lo * BAR_W, X0 + r.hi * BAR_W]),
            n: c.n,
            faking: c.alignment_faking.map(|f| f.among_all.rate),
            why: why_no_data(c),
        }
    }
}

/// A bar's tooltip: the cell, its n, each segment's count and share, its
/// compliance rate, and the jobs it does not count.
fn tip(c: &Cell, segments: &[Segment], count: &dyn Fn(&str) -> u64) -> String {
    let frac = |k: u64| if c.n == 0 { 0.0 } else { k as f64 / c.n as f64 };
    let mut tip = format!("{} · {} · {}\nn = {}", c.model, c.variant, c.condition, c.n);
    match cell_rate(c) {
        Some(r) => {
            for s in segments {
                let k = count(s.key);
                let _ = write!(tip, "\n{}: {} ({})", s.label, k, pct(frac(k)));
            }
            let _ = write!(tip, "\ncompliance {} {}", pct(r.rate), ci(r.lo, r.hi));
        }
        None => {
            let _ = write!(tip, "\ncompliance: {NO_DATA} (no final output)");
        }
    }
    let uncounted = not_counted(c);
    if !uncounted.is_empty() {
        let _ = write!(tip, "\nnot counted: {uncounted}");
    }
    tip
}

/// Why a bar has no data: no final output, and what its jobs gave instead.
fn why_no_data(c: &Cell) -> String {
    let mut why = String::from("no final output");
    let uncounted = not_counted(c);
    if !uncounted.is_empty() {
        let _ = write!(why, ": {uncounted}");
    }
    why
}

/// A cell's jobs that are not in its rates, by status ("" when none).
fn not_counted(c: &Cell) -> String {
    [
        (c.failed, "failed"),
        (c.incomplete, "incomplete"),
        (c.truncated, "truncated"),
        (c.filtered, "filtered"),
    ]
    .into_iter()
    .filter(|(k, _)| *k > 0)
    .map(|(k, what)| format!("{} {what}", thousands(k)))
    .collect::<Vec<_>>()
    .join(", ")
}
