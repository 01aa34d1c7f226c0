//! Checks option values and the function's signature. Each problem is an
//! error at the user's token: the value, the `&mut`, the `const`...

use proc_macro2::TokenStream;
use quote::ToTokens;

use crate::attr::{Args, Opt};

/// Smallest `secs`: below a millisecond, starting the child eats it.
const MIN_SECS: f64 = 0.001;
/// Largest `secs` and `grace`: 100 years.
pub(crate) const MAX_SECS: f64 = 100.0 * 365.25 * 24.0 * 3600.0;

/// The deadline as written.
pub(crate) enum Secs {
    /// A number literal, checked here.
    Value(f64),
    /// A path to a `const`, checked at compile time by a generated
    /// assertion.
    Const(syn::Path),
}

/// How the child is made.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Fork,
    Exec,
    Pool,
}

/// Options after their checks: `None` where not written (the runtime's
/// `Options::new()` holds the defaults, in one place), and where wrong
/// (with an error recorded).
pub(crate) struct Options {
    pub secs: Option<Secs>,
    pub ntries: Option<u32>,
    pub kill: Option<bool>,
    pub grace: Option<f64>,
    /// The attribute's own choice, not an option of the runtime's: fork by
    /// default.
    pub mode: Mode,
    /// Bytes one attempt may add (`memory = "512 MiB"`).
    pub memory: Option<u64>,
    /// CPU seconds one attempt may use (`cpu = 2.0`).
    pub cpu: Option<f64>,
}

pub(crate) fn options(args: Args, errors: &mut Vec<syn::Error>) -> Options {
    let mut err = |at: TokenStream, msg: String| errors.push(syn::Error::new_spanned(at, msg));
    let secs = args
        .secs
        .and_then(|opt| secs(&opt).map_err(|(span, msg)| err(span, msg)).ok());
    let ntries = args
        .ntries
        .and_then(|opt| ntries(&opt).map_err(|(span, msg)| err(span, msg)).ok());
    let kill = args.kill.and_then(|opt| match &opt.value {
        syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Bool(b),
            ..
        }) => Some(b.value),
        other => {
            err(
                other.to_token_stream(),
                "`kill` expects `true` or `false`".into(),
            );
            None
        }
    });
    let grace = args
        .grace
        .and_then(|opt| grace(&opt).map_err(|(span, msg)| err(span, msg)).ok());
    let mode = args.mode.map_or(Mode::Fork, |opt| {
        mode(&opt).unwrap_or_else(|(span, msg)| {
            err(span, msg);
            Mode::Fork
        })
    });
    let memory = args.memory.and_then(|opt| {
        crate::limits::memory(&opt)
            .map_err(|(span, msg)| err(span, msg))
            .ok()
    });
    let cpu = args.cpu.and_then(|opt| {
        crate::limits::cpu(&opt)
            .map_err(|(span, msg)| err(span, msg))
            .ok()
    });
    Options {
        secs,
        ntries,
        kill,
        grace,
        mode,
        memory,
        cpu,
    }
}

/// What to underline (first to last token) and what to say.
pub(crate) type Problem = (TokenStream, String);

/// A number literal, possibly negated: its value, or `None` if the value
/// is not a number literal at all.
fn number(expr: &syn::Expr) -> Option<syn::Result<f64>> {
    match expr {
        syn::Expr::Lit(syn::ExprLit { lit, .. }) => match lit {
            syn::Lit::Float(f) => Some(f.base10_parse::<f64>()),
            syn::Lit::Int(i) => Some(i.base10_parse::<f64>()),
            _ => None,
        },
        syn::Expr::Unary(syn::ExprUnary {
            op: syn::UnOp::Neg(_),
            expr,
            ..
        }) => number(expr).map(|r| r.map(|v| -v)),
        syn::Expr::Paren(p) => number(&p.expr),
        _ => None,
    }
}

/// The value of `name`, a number literal (possibly negated), or the
/// problem: `expects` says what is allowed.
pub(crate) fn number_value(opt: &Opt, name: &str, expects: &str) -> Result<f64, Problem> {
    let span = opt.value.to_token_stream();
    match number(&opt.value) {
        Some(Ok(v)) => Ok(v),
        Some(Err(e)) => Err((span, format!("`{name}`: {e}"))),
        None => Err((span, expects.into())),
    }
}

/// The value of a string-literal option, or the problem `expects`.
pub(crate) fn string_value(opt: &Opt, expects: &str) -> Result<String, Problem> {
    match &opt.value {
        syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Str(s),
            ..
        }) => Ok(s.value()),
        other => Err((other.to_token_stream(), expects.into())),
    }
}

fn secs(opt: &Opt) -> Result<Secs, Problem> {
    let span = opt.value.to_token_stream();
    if let syn::Expr::Path(p) = &opt.value {
        if p.qself.is_none() {
            return Ok(Secs::Const(p.path.clone()));
        }
    }
    let value = number_value(
        opt,
        "secs",
        "`secs` expects a number of seconds, like `secs = 1.5`, or a path to a `const` of \
         type `f64`",
    )?;
    let problem = if !value.is_finite() {
        "`secs` must be a finite number"
    } else if value <= 0.0 {
        "`secs` must be greater than 0"
    } else if value < MIN_SECS {
        "`secs` must be at least 0.001 (1 ms)"
    } else if value > MAX_SECS {
        "`secs` must be at most 3155760000 (100 years)"
    } else {
        return Ok(Secs::Value(value));
    };
    Err((span, problem.into()))
}

fn ntries(opt: &Opt) -> Result<u32, Problem> {
    let span = opt.value.to_token_stream();
    let wrong = || {
        (
            span.clone(),
            "`ntries` expects a whole number of attempts, like `ntries = 3`".to_owned(),
        )
    };
    match &opt.value {
        syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Int(i),
            ..
        }) => match i.base10_parse::<u32>() {
            Ok(0) => Err((span, "`ntries` must be at least 1".into())),
            Ok(n) => Ok(n),
            Err(_) => Err((span, format!("`ntries` must be at most {}", u32::MAX))),
        },
        syn::Expr::Unary(syn::ExprUnary {
            op: syn::UnOp::Neg(_),
            expr,
            ..
        }) if matches!(
            **expr,
            syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Int(_),
                ..
            })
        ) =>
        {
            Err((span, "`ntries` must be at least 1".into()))
        }
        _ => Err(wrong()),
    }
}

fn grace(opt: &Opt) -> Result<f64, Problem> {
    let span = opt.value.to_token_stream();
    let value = number_value(
        opt,
        "grace",
        "`grace` expects a number of seconds, like `grace = 0.5`",
    )?;
    if !value.is_finite() {
        Err((span, "`grace` must be a finite number".into()))
    } else if value < 0.0 || (value == 0.0 && value.is_sign_negative()) {
        Err((span, "`grace` must not be negative".into()))
    } else if value > MAX_SECS {
        Err((
            span,
            "`grace` must be at most 3155760000 (100 years)".into(),
        ))
    } else {
        Ok(value)
    }
}

fn mode(opt: &Opt) -> Result<Mode, Problem> {
    let span = opt.value.to_token_stream();
    let value = string_value(
        opt,
        "`mode` expects a string: `\"fork\"`, `\"exec\"` or `\"pool\"`",
    )?;
    match value.as_str() {
        "fork" => Ok(Mode::Fork),
        "exec" => Ok(Mode::Exec),
        "pool" => Ok(Mode::Pool),
        other => Err((
            span,
            format!("unknown mode `\"{other}\"`; expected `\"fork\"`, `\"exec\"` or `\"pool\"`"),
        )),
    }
}

/// What exec (and pool) mode cannot find in a fresh process: a generic
/// function (which instance?) and `self` (the caller's value is not there).
pub(crate) fn exec_signature(sig: &syn::Signature, mode: Mode, errors: &mut Vec<syn::Error>) {
    let mode = if mode == Mode::Pool { "pool" } else { "exec" };
    for param in &sig.generics.params {
        match param {
            syn::GenericParam::Lifetime(_) => {}
            syn::GenericParam::Type(_) | syn::GenericParam::Const(_) => {
                errors.push(syn::Error::new_spanned(
                    param,
                    format!(
                        "{mode} mode cannot run a generic function in a fresh process (which \
                         instance would it be?); make it non-generic, or use `mode = \"fork\"`"
                    ),
                ));
            }
        }
    }
    if let Some(syn::FnArg::Receiver(r)) = sig.inputs.first() {
        errors.push(syn::Error::new_spanned(
            r,
            format!(
                "{mode} mode cannot send `self` to a fresh process; take the value as an \
                 ordinary argument of an associated function, or use `mode = \"fork\"`"
            ),
        ));
    }
}

/// Checks what the signature allows. Errors point at the offending token.
pub(crate) fn signature(sig: &syn::Signature, errors: &mut Vec<syn::Error>) {
    let mut err = |at: TokenStream, msg: &str| errors.push(syn::Error::new_spanned(at, msg));
    if let Some(c) = &sig.constness {
        err(
            c.to_token_stream(),
            "`#[timeout]` cannot go on a `const fn`: a child process cannot run at compile time",
        );
    }
    if let Some(abi) = &sig.abi {
        err(
            abi.to_token_stream(),
            "`#[timeout]` cannot go on an `extern` function: its callers expect the \
             original signature, and rwt changes the return type",
        );
    }
    if let Some(v) = &sig.variadic {
        err(
            v.dots.to_token_stream(),
            "`#[timeout]` cannot go on a variadic function",
        );
    }
    for input in &sig.inputs {
        match input {
            syn::FnArg::Receiver(r) => {
                if r.reference.is_some() && r.mutability.is_some() {
                    err(
                        r.to_token_stream(),
                        "`&mut self` cannot be used: changes made in the child process never \
                         come back; take `&self`, or `self` and return the new value",
                    );
                }
            }
            syn::FnArg::Typed(t) => check_param_type(&t.ty, &mut err),
        }
    }
    if let syn::ReturnType::Type(_, ty) = &sig.output {
        if let syn::Type::ImplTrait(i) = &**ty {
            err(
                i.to_token_stream(),
                "the return type cannot be `impl Trait`: the caller decodes the result, so \
                 it must name the type",
            );
        } else if let Some(r) = find_reference(ty) {
            err(
                r.to_token_stream(),
                "a reference cannot be returned from a child process: it would point into \
                 the child's memory; return an owned type, such as `String` for `&str`",
            );
        }
    }
}

/// The first reference type inside `ty`, if any.
fn find_reference(ty: &syn::Type) -> Option<&syn::TypeReference> {
    match ty {
        syn::Type::Reference(r) => Some(r),
        syn::Type::Paren(p) => find_reference(&p.elem),
        syn::Type::Group(g) => find_reference(&g.elem),
        syn::Type::Tuple(t) => t.elems.iter().find_map(find_reference),
        syn::Type::Array(a) => find_reference(&a.elem),
        syn::Type::Slice(s) => find_reference(&s.elem),
        syn::Type::Path(p) => p.path.segments.iter().find_map(|seg| match &seg.arguments {
            syn::PathArguments::AngleBracketed(args) => args.args.iter().find_map(|a| match a {
                syn::GenericArgument::Type(t) => find_reference(t),
                _ => None,
            }),
            _ => None,
        }),
        _ => None,
    }
}

fn check_param_type(ty: &syn::Type, err: &mut impl FnMut(TokenStream, &str)) {
    match ty {
        syn::Type::Reference(r) => {
            if let Some(m) = &r.mutability {
                let mut at = r.and_token.to_token_stream();
                at.extend(r.lifetime.to_token_stream());
                m.to_tokens(&mut at);
                err(
                    at,
                    "a `&mut` parameter cannot be used: changes made in the child process \
                     never come back; take the value and return the new one",
                );
            } else {
                check_param_type(&r.elem, err);
            }
        }
        syn::Type::ImplTrait(i) => err(
            i.to_token_stream(),
            "`impl Trait` parameters are not supported by `#[timeout]`; use a generic \
             parameter, as in `fn f<T: Trait>(x: T)`",
        ),
        syn::Type::Paren(p) => check_param_type(&p.elem, err),
        syn::Type::Group(g) => check_param_type(&g.elem, err),
        syn::Type::Tuple(t) => t.elems.iter().for_each(|e| check_param_type(e, err)),
        syn::Type::Array(a) => check_param_type(&a.elem, err),
        syn::Type::Slice(s) => check_param_type(&s.elem, err),
        syn::Type::Path(p) => {
            for seg in &p.path.segments {
                if let syn::PathArguments::AngleBracketed(args) = &seg.arguments {
                    for arg in &args.args {
                        if let syn::GenericArgument::Type(t) = arg {
                            check_param_type(t, err);
                        }
                    }
                }
            }
        }
        _ => {}
    }
}
