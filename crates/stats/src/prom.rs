//! Prometheus text exposition with the `prometheus` module's modparams and naming.

use std::fmt::Write as _;

/// How the statistic's group reaches Prometheus (modparam `group_mode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum GroupMode {
    /// 0 (default): the group is not sent.
    #[default]
    None,
    /// 1: the group is part of the name: `opensips_core_rcv_requests`.
    Name,
    /// 2: the group is a label: `opensips_rcv_requests{group="core"}`.
    Label,
}

impl GroupMode {
    /// From the integer modparam; `None` for values other than 0, 1, 2.
    #[must_use]
    pub const fn from_int(v: i64) -> Option<Self> {
        match v {
            0 => Some(Self::None),
            1 => Some(Self::Name),
            2 => Some(Self::Label),
            _ => None,
        }
    }
}

/// The `prometheus` module's parameters, with its defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PromConfig {
    /// HTTP path under httpd, without the slash (default `metrics`).
    pub root: String,
    /// Prefix of every metric (default `opensips`).
    pub prefix: String,
    /// Prefix of the group name (default empty).
    pub group_prefix: String,
    /// Separator between prefix, group and name (default `_`).
    pub delimiter: String,
    /// Label name in [`GroupMode::Label`] (default `group`).
    pub group_label: String,
    /// Where the group goes (default [`GroupMode::None`]).
    pub group_mode: GroupMode,
    /// Values of the repeatable `statistics` modparam: space-separated statistic names,
    /// `group:` for a whole group, or `all`. Empty = nothing exported.
    pub statistics: Vec<String>,
}

impl Default for PromConfig {
    fn default() -> Self {
        Self {
            root: "metrics".into(),
            prefix: "opensips".into(),
            group_prefix: String::new(),
            delimiter: "_".into(),
            group_label: "group".into(),
            group_mode: GroupMode::None,
            statistics: Vec::new(),
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Selection {
    pub(crate) all: bool,
    pub(crate) groups: Vec<String>,
    pub(crate) stats: Vec<String>,
}

impl PromConfig {
    pub(crate) fn selection(&self) -> Selection {
        let mut sel = Selection::default();
        for word in self.statistics.iter().flat_map(|s| s.split_whitespace()) {
            if word == "all" {
                sel.all = true;
            } else if let Some(g) = word.strip_suffix(':') {
                if !g.is_empty() {
                    sel.groups.push(g.to_string());
                }
            } else {
                sel.stats.push(word.to_string());
            }
        }
        sel
    }
}

fn push_sanitized(out: &mut String, name: &str) {
    out.extend(name.chars().map(|c| {
        if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
            c
        } else {
            '_'
        }
    }));
}

fn push_name(out: &mut String, cfg: &PromConfig, group: &str, name: &str) {
    let digit_start = name.starts_with(|c: char| c.is_ascii_digit());
    if cfg.prefix.is_empty()
        && cfg.delimiter.is_empty()
        && cfg.group_mode == GroupMode::None
        && digit_start
    {
        out.push('_');
    } else {
        out.push_str(&cfg.prefix);
    }
    out.push_str(&cfg.delimiter);
    if cfg.group_mode == GroupMode::Name {
        out.push_str(&cfg.group_prefix);
        out.push_str(group);
        out.push_str(&cfg.delimiter);
    }
    push_sanitized(out, name);
}

pub(crate) fn write_stat(
    out: &mut String,
    cfg: &PromConfig,
    group: &str,
    name: &str,
    gauge: bool,
    value: u64,
) {
    out.push_str("# TYPE ");
    push_name(out, cfg, group, name);
    out.push_str(if gauge { " gauge\n" } else { " counter\n" });
    push_name(out, cfg, group, name);
    if cfg.group_mode == GroupMode::Label {
        let _ = write!(
            out,
            "{{{}=\"{}{}\"}}",
            cfg.group_label, cfg.group_prefix, group
        );
    }
    let _ = writeln!(out, " {value}");
}
