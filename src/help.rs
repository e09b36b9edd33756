//! What `--help` shows beyond clap's own: the commands in groups, the exit
//! codes, and every environment variable in one form — those that set a
//! flag (`[env: …]` on the flag, as clap prints it) and those that have no
//! flag (secrets, the log filter, the providers' keys).

use std::collections::BTreeMap;
use std::fmt::Write;

use clap::Command;

use crate::config::ENV_ONLY;

/// The commands by what they are for; every subcommand is in one group.
const GROUPS: &[(&str, &[&str])] = &[
    (
        "Local",
        &[
            "init",
            "run",
            "validate",
            "list",
            "view",
            "compare",
            "calibrate",
            "export",
        ],
    ),
    (
        "Distributed",
        &[
            "submit",
            "status",
            "watch",
            "report",
            "cancel",
            "resume",
            "delete",
            "coordinator",
            "worker",
        ],
    ),
    ("Operations", &["sim-server", "probe"]),
];

/// The widest a help line is made: a terminal of 100 columns.
const WIDTH: usize = 100;

/// `cmd` with the grouped command list, the exit codes and the variables
/// in its help, and each subcommand with the variables it reads that have
/// no flag.
pub fn decorate(cmd: Command) -> Command {
    let (groups, env) = (grouped(&cmd), environment(&cmd));
    let mut cmd = cmd
        .max_term_width(WIDTH)
        .mut_subcommands(|s| s.max_term_width(WIDTH).mut_args(hide_value))
        .help_template(format!(
            "{{about-with-newline}}\n{{usage-heading}} {{usage}}\n\n{groups}\nOptions:\n{{options}}{{after-help}}"
        ))
        .after_help(exit_codes())
        .after_long_help(format!("{}\n{env}", exit_codes()));
    let names: Vec<String> = cmd.get_subcommands().map(|s| s.get_name().to_string()).collect();
    for name in names {
        let lines: Vec<String> = ENV_ONLY
            .iter()
            .filter(|e| e.read_by.contains(&name.as_str()))
            .map(|e| env_line(e.name, e.help))
            .collect();
        if !lines.is_empty() {
            cmd = cmd.mut_subcommand(&name, |s| {
                s.after_help(format!("Environment (no flag):\n{}", lines.join("\n")))
            });
        }
    }
    cmd
}

/// Every variable is shown as `[env: NAME]`, without its value: some are secrets.
fn hide_value(arg: clap::Arg) -> clap::Arg {
    if arg.get_env().is_some() {
        arg.hide_env_values(true)
    } else {
        arg
    }
}

/// One variable without a flag, as a help line: clap's `[env: NAME]` as on a flag's.
fn env_line(name: &str, what: &str) -> String {
    wrap(&format!("{what} [env: {name}]"), &format!("  {name:<22}"), WIDTH)
}

/// `text` after `head`, wrapped at `width` columns under its first word.
fn wrap(text: &str, head: &str, width: usize) -> String {
    let indent = head.chars().count();
    let (mut out, mut col) = (head.to_string(), indent);
    for word in text.split(' ') {
        let n = word.chars().count();
        if col > indent && col + 1 + n > width {
            out.push('\n');
            out.push_str(&" ".repeat(indent));
            col = indent;
        } else if col > indent {
            out.push(' ');
            col += 1;
        }
        out.push_str(word);
        col += n;
    }
    out
}

/// The subcommands under their groups' headings, each with its one-line about.
fn grouped(cmd: &Command) -> String {
    let mut out = String::new();
    for (group, names) in GROUPS {
        let _ = writeln!(out, "{group} commands:");
        for name in *names {
            let Some(sub) = cmd.find_subcommand(name) else { continue };
            let about = sub.get_about().map(|a| a.to_string()).unwrap_or_default();
            let _ = writeln!(out, "  {}", fit(&format!("{name:<12} {about}"), WIDTH - 2));
        }
        out.push('\n');
    }
    out.pop();
    out
}

/// `line` cut to `width` characters, ending in `…` when cut.
fn fit(line: &str, width: usize) -> String {
    if line.chars().count() <= width {
        return line.to_string();
    }
    let mut s: String = line.chars().take(width - 1).collect();
    s.push('…');
    s
}

fn exit_codes() -> String {
    let mut out = String::from("Exit codes:\n");
    for (code, what) in crate::exit::CODES {
        let _ = writeln!(out, "  {code:<4} {what}");
    }
    out
}

/// Every variable candor reads: those of flags, with the flag, then those
/// without one.
fn environment(cmd: &Command) -> String {
    let mut flags = BTreeMap::new();
    for arg in cmd.get_subcommands().flat_map(|s| s.get_arguments()) {
        if let (Some(env), Some(long)) = (arg.get_env(), arg.get_long()) {
            flags.insert(env.to_string_lossy().into_owned(), format!("--{long}"));
        }
    }
    let mut out = String::from("Environment (a flag wins over its variable; a .env file is read too):\n");
    for (name, flag) in &flags {
        let _ = writeln!(out, "  {name:<28} {flag}");
    }
    for v in ENV_ONLY.iter().filter(|v| !v.help.is_empty()) {
        let _ = writeln!(out, "{}", wrap(v.help, &format!("  {:<28} ", v.name), WIDTH));
    }
    out
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn every_command_is_in_one_group_and_every_group_name_is_a_command() {
        let cmd = crate::Cli::command();
        let listed: Vec<&str> = GROUPS.iter().flat_map(|g| g.1.iter().copied()).collect();
        for sub in cmd.get_subcommands() {
            let n = listed.iter().filter(|l| **l == sub.get_name()).count();
            assert_eq!(n, 1, "{} is in {n} groups", sub.get_name());
        }
        for name in &listed {
            assert!(cmd.find_subcommand(name).is_some(), "{name} is not a command");
        }
        for v in ENV_ONLY {
            for s in v.read_by {
                assert!(cmd.find_subcommand(s).is_some(), "{}: {s} is not a command", v.name);
            }
        }
    }

    #[test]
    fn the_help_fits_100_columns_and_lists_codes_and_variables() {
        let mut cmd = decorate(crate::Cli::command());
        let long = cmd.render_long_help().to_string();
        for line in long.lines() {
            assert!(
                line.chars().count() <= WIDTH,
                "{} columns: {line}",
                line.chars().count()
            );
        }
        for (code, _) in crate::exit::CODES {
            assert!(
                long.contains(&format!("\n  {code} ")),
                "exit code {code} missing:\n{long}"
            );
        }
        for needle in [
            "Local commands:",
            "Distributed commands:",
            "CANDOR_TOKEN",
            "CANDOR_STORE",
            "--store",
        ] {
            assert!(long.contains(needle), "{needle} missing:\n{long}");
        }
    }

    #[test]
    fn every_commands_help_fits_and_shows_variables_alike() {
        let mut cmd = decorate(crate::Cli::command());
        cmd.build();
        for sub in cmd.get_subcommands_mut() {
            let name = sub.get_name().to_string();
            let help = sub.render_long_help().to_string();
            for line in help.lines() {
                assert!(line.chars().count() <= WIDTH, "candor {name} --help: {line}");
            }
            assert!(
                !help.contains("=]"),
                "candor {name} --help shows a variable's value:\n{help}"
            );
        }
        let submit = cmd
            .find_subcommand_mut("submit")
            .unwrap()
            .render_long_help()
            .to_string();
        let submit = submit.split_whitespace().collect::<Vec<_>>().join(" ");
        for needle in ["[env: CANDOR_TOKEN]", "[env: CANDOR_RUN]", "[env: ANTHROPIC_API_KEY]"] {
            assert!(submit.contains(needle), "{needle}:\n{submit}");
        }
    }
}
