//! Parses the attribute's options, keeping each one's name and value with
//! their spans. Every problem is recorded, not just the first.

use proc_macro2::TokenStream;
use syn::parse::Parser;

/// The options the attribute knows.
pub(crate) const KNOWN: [&str; 7] = ["secs", "ntries", "kill", "grace", "mode", "memory", "cpu"];

/// One option's value as written (`name = value`).
pub(crate) struct Opt {
    pub value: syn::Expr,
}

/// The options as written, each at most once.
#[derive(Default)]
pub(crate) struct Args {
    pub secs: Option<Opt>,
    pub ntries: Option<Opt>,
    pub kill: Option<Opt>,
    pub grace: Option<Opt>,
    pub mode: Option<Opt>,
    pub memory: Option<Opt>,
    pub cpu: Option<Opt>,
}

/// Parses `secs = 1.5, ntries = 3, ...`. Problems go into `errors`; what
/// could be read is returned all the same.
pub(crate) fn parse(args: TokenStream, errors: &mut Vec<syn::Error>) -> Args {
    let mut out = Args::default();
    let mut found = Vec::new();
    let parser = syn::meta::parser(|meta| {
        let Some(name) = meta.path.get_ident().cloned() else {
            found.push(syn::Error::new_spanned(
                &meta.path,
                format!("unknown option; expected one of {}", list()),
            ));
            return skip_value(&meta);
        };
        let key = name.to_string();
        if !meta.input.peek(syn::Token![=]) {
            let hint = example(&key).map_or(String::new(), |e| format!(", like `{e}`"));
            found.push(syn::Error::new(
                name.span(),
                format!("`{key}` needs a value{hint}"),
            ));
            return skip_value(&meta);
        }
        let value = ungroup(meta.value()?.parse()?);
        let slot = match key.as_str() {
            "secs" => &mut out.secs,
            "ntries" => &mut out.ntries,
            "kill" => &mut out.kill,
            "grace" => &mut out.grace,
            "mode" => &mut out.mode,
            "memory" => &mut out.memory,
            "cpu" => &mut out.cpu,
            _ => {
                found.push(syn::Error::new(name.span(), unknown(&key)));
                return Ok(());
            }
        };
        if slot.is_some() {
            found.push(syn::Error::new(
                name.span(),
                format!("duplicate option `{key}`; each option may appear once"),
            ));
        } else {
            *slot = Some(Opt { value });
        }
        Ok(())
    });
    if let Err(e) = parser.parse2(args) {
        found.push(e);
    }
    errors.extend(found);
    out
}

/// A value passed through a `macro_rules!` fragment (`$secs:expr`,
/// `$mode:literal`) arrives in an invisible group: look through it, so it
/// means what it would written by hand.
fn ungroup(expr: syn::Expr) -> syn::Expr {
    match expr {
        syn::Expr::Group(g) => ungroup(*g.expr),
        other => other,
    }
}

/// After a problem, consume `= value` or `(...)` so parsing goes on.
fn skip_value(meta: &syn::meta::ParseNestedMeta<'_>) -> syn::Result<()> {
    if meta.input.peek(syn::Token![=]) {
        let _: syn::Expr = meta.value()?.parse()?;
    } else if meta.input.peek(syn::token::Paren) {
        let _group: proc_macro2::Group = meta.input.parse()?;
    }
    Ok(())
}

fn list() -> String {
    let names: Vec<String> = KNOWN.iter().map(|k| format!("`{k}`")).collect();
    names.join(", ")
}

fn example(key: &str) -> Option<&'static str> {
    Some(match key {
        "secs" => "secs = 1.5",
        "ntries" => "ntries = 3",
        "kill" => "kill = true",
        "grace" => "grace = 0.5",
        "mode" => "mode = \"fork\"",
        "memory" => "memory = \"512 MiB\"",
        "cpu" => "cpu = 2.0",
        _ => return None,
    })
}

/// "unknown option `sec`; did you mean `secs`?"
fn unknown(key: &str) -> String {
    match suggest(key) {
        Some(near) => format!("unknown option `{key}`; did you mean `{near}`?"),
        None => format!("unknown option `{key}`; expected one of {}", list()),
    }
}

/// The option a misspelt or borrowed name most likely meant.
fn suggest(key: &str) -> Option<&'static str> {
    let lower = key.to_ascii_lowercase();
    let alias = match lower.as_str() {
        "timeout" | "seconds" | "sec" | "deadline" | "time" | "timeout_secs" | "rwt_timeout" => {
            Some("secs")
        }
        "retries" | "tries" | "attempts" | "retry" | "n_tries" | "rwt_ntries" => Some("ntries"),
        "rwt_kill" | "terminate" => Some("kill"),
        "grace_period" | "grace_secs" => Some("grace"),
        "mem" | "memory_limit" | "max_memory" | "rss" | "ram" => Some("memory"),
        "cpu_secs" | "cpu_time" | "max_cpu" | "cpu_limit" => Some("cpu"),
        _ => None,
    };
    alias.or_else(|| {
        KNOWN
            .iter()
            .map(|k| (distance(&lower, k), *k))
            .filter(|(d, _)| *d <= 2)
            .min_by_key(|(d, _)| *d)
            .map(|(_, k)| k)
    })
}

/// Levenshtein distance, for short option names.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_misses_are_suggested() {
        assert_eq!(suggest("sec"), Some("secs"));
        assert_eq!(suggest("timeout"), Some("secs"));
        assert_eq!(suggest("retries"), Some("ntries"));
        assert_eq!(suggest("ntrie"), Some("ntries"));
        assert_eq!(suggest("mdoe"), Some("mode"));
        assert_eq!(suggest("banana"), None);
    }
}
