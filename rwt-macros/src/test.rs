//! `#[rwt::test]`: a `#[test]` whose body runs in a child process with a
//! deadline, one call per attempt.
//!
//! ```text
//! // Input:
//! #[rwt::test(secs = 5, ntries = 2)]
//! #[should_panic(expected = "bad")]
//! fn parses() { body }
//!
//! // Output:
//! #[test]
//! fn parses() {
//!     // What `#[timeout(secs = 5, ntries = 1, mode = "exec")]` makes of:
//!     fn __rwt_attempt() -> () {
//!         fn __rwt_test() -> () { body }   // runs in the child
//!         __rwt_test()
//!     }
//!     run_test(&TestSpec { ntries: 2, should_panic: Expected("bad"), fork: false }, __rwt_attempt).unwrap()
//! }
//! ```
//!
//! A `-> Result<(), E>` test's child returns `Result<(), String>` (its `E`
//! formatted with `{:?}`, so `E` need only be `Debug`), and the outer test
//! returns `Result<(), TestError>`, which libtest prints as it would the
//! test's own. `#[should_panic]` is taken off and judged by `run_test`, so
//! that a timeout or a crash fails the test instead of counting as the
//! panic it expected.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;

use crate::valid::{self, Mode};
use crate::{ast, attr, expand, fallback};

const NAME: &str = "#[rwt::test]";

/// The attribute, end to end.
pub(crate) fn test(args: TokenStream, item: TokenStream) -> TokenStream {
    let function = match ast::parse(&item, NAME) {
        Ok(f) => f,
        Err(e) => return fallback::unchanged(item, vec![e]),
    };
    let mut errors = Vec::new();
    let parsed = attr::parse(args, &mut errors);
    let mode_given = parsed.mode.as_ref().map(|m| m.value.to_token_stream());
    let kill_given = parsed.kill.as_ref().map(|k| k.value.to_token_stream());
    let mut options = valid::options(parsed, &mut errors);
    if let (Some(at), Some(false)) = (&kill_given, options.kill) {
        errors.push(syn::Error::new_spanned(
            at,
            "a test cannot use `kill = false`: its child would run on after the test \
             failed, and after the whole run; a test's child is always killed",
        ));
    }
    match (&mode_given, options.mode) {
        // Exec by default: libtest runs tests on several threads, and a
        // fork there copies other threads' locks.
        (None, _) => options.mode = Mode::Exec,
        (Some(at), Mode::Pool) => errors.push(syn::Error::new_spanned(
            at,
            "a test cannot run in pool mode: a worker serves many tests, so neither its \
             output nor what it leaves behind would be this test's alone; use `\"exec\"` \
             (the default) or `\"fork\"`",
        )),
        _ => {}
    }
    let mut sig_errors = Vec::new();
    signature(&function.sig, &mut sig_errors);
    let (attrs, should_panic) = attributes(function.attrs.clone(), &mut sig_errors);
    let kind = returns(&function.sig.output, &mut sig_errors);
    if let (Some((at, _)), Returns::Result(_)) = (&should_panic, &kind) {
        sig_errors.push(syn::Error::new_spanned(
            at,
            "`#[should_panic]` needs a test that returns `()`, as libtest's does",
        ));
    }
    if !sig_errors.is_empty() {
        sig_errors.extend(errors);
        return fallback::unchanged(function, sig_errors);
    }
    let mut out = generate(function, &attrs, should_panic, &kind, options);
    out.extend(fallback::errors(errors));
    out
}

/// What the test returns.
enum Returns {
    Unit,
    /// `Result<(), E>` (or an alias such as `io::Result<()>`), as written.
    Result(Box<syn::Type>),
}

/// A test takes nothing and stands alone: libtest calls it with no
/// arguments, one instance, on a thread of its own.
fn signature(sig: &syn::Signature, errors: &mut Vec<syn::Error>) {
    let mut err = |at: &dyn ToTokens, msg: &str| errors.push(syn::Error::new_spanned(at, msg));
    if let Some(c) = &sig.constness {
        err(c, "a test cannot be a `const fn`");
    }
    if let Some(u) = &sig.unsafety {
        err(
            u,
            "a test cannot be an `unsafe fn`: libtest calls it as a safe one",
        );
    }
    if let Some(abi) = &sig.abi {
        err(abi, "a test cannot be an `extern` function");
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        err(
            &sig.generics,
            "a test cannot be generic: libtest calls one instance, with nothing to infer it from",
        );
    }
    for input in &sig.inputs {
        match input {
            syn::FnArg::Receiver(r) => err(r, "a test cannot take `self`: it is not a method"),
            syn::FnArg::Typed(t) => err(
                t,
                "a test takes no arguments: libtest calls it with none (build the value \
                 in the body)",
            ),
        }
    }
    if let Some(v) = &sig.variadic {
        err(&v.dots, "a test takes no arguments");
    }
}

fn returns(output: &syn::ReturnType, errors: &mut Vec<syn::Error>) -> Returns {
    let syn::ReturnType::Type(_, ty) = output else {
        return Returns::Unit;
    };
    match &**ty {
        syn::Type::Tuple(t) if t.elems.is_empty() => Returns::Unit,
        syn::Type::Path(p) if is_result_of_unit(&p.path) => Returns::Result(ty.clone()),
        other => {
            errors.push(syn::Error::new_spanned(
                other,
                "a test returns `()` or `Result<(), E>` (where `E: Debug`)",
            ));
            Returns::Unit
        }
    }
}

/// `Result<(), E>`, `io::Result<()>`, `anyhow::Result<()>`...: a path whose
/// last segment is `Result` with `()` as its first type argument.
fn is_result_of_unit(path: &syn::Path) -> bool {
    let Some(last) = path.segments.last() else {
        return false;
    };
    if last.ident != "Result" {
        return false;
    }
    let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
        return false;
    };
    matches!(
        args.args.first(),
        Some(syn::GenericArgument::Type(syn::Type::Tuple(t))) if t.elems.is_empty()
    )
}

/// What the runtime is told `#[should_panic]` asked for.
fn expectation(should_panic: ShouldPanic) -> TokenStream {
    match should_panic {
        None => quote!(::rwt::__private::ShouldPanic::No),
        Some((_, None)) => quote!(::rwt::__private::ShouldPanic::Any),
        Some((_, Some(want))) => quote!(::rwt::__private::ShouldPanic::Expected(#want)),
    }
}

/// `#[should_panic]` as written: the attribute (for spans) and what it
/// asks for (`None`: any panic; `Some`: a message containing it).
type ShouldPanic = Option<(syn::Attribute, Option<syn::LitStr>)>;

/// The attributes to keep (everything but `#[should_panic]`, which rwt
/// judges itself; inner ones become outer, for the whole test), and
/// `#[should_panic]`'s request.
fn attributes(
    attrs: Vec<syn::Attribute>,
    errors: &mut Vec<syn::Error>,
) -> (Vec<syn::Attribute>, ShouldPanic) {
    let mut kept = Vec::new();
    let mut should_panic: ShouldPanic = None;
    for mut attr in attrs {
        if attr.path().is_ident("test") {
            errors.push(syn::Error::new_spanned(
                &attr,
                "`#[rwt::test]` already makes this a `#[test]`; remove this one",
            ));
            continue;
        }
        if !attr.path().is_ident("should_panic") {
            attr.style = syn::AttrStyle::Outer;
            kept.push(attr);
            continue;
        }
        if should_panic.is_some() {
            errors.push(syn::Error::new_spanned(
                &attr,
                "`#[should_panic]` may appear once",
            ));
            continue;
        }
        match expected(&attr) {
            Ok(want) => should_panic = Some((attr, want)),
            Err(e) => errors.push(e),
        }
    }
    (kept, should_panic)
}

/// `#[should_panic]`, `#[should_panic = "..."]`,
/// `#[should_panic(expected = "...")]`.
fn expected(attr: &syn::Attribute) -> syn::Result<Option<syn::LitStr>> {
    let bad = |at: &dyn ToTokens| {
        syn::Error::new_spanned(
            at,
            "expected `#[should_panic]` or `#[should_panic(expected = \"...\")]`",
        )
    };
    match &attr.meta {
        syn::Meta::Path(_) => Ok(None),
        syn::Meta::NameValue(nv) => match &nv.value {
            syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(s),
                ..
            }) => Ok(Some(s.clone())),
            other => Err(bad(other)),
        },
        syn::Meta::List(list) => {
            let mut want = None;
            list.parse_nested_meta(|meta| {
                if meta.path.is_ident("expected") && want.is_none() {
                    want = Some(meta.value()?.parse::<syn::LitStr>()?);
                    Ok(())
                } else {
                    Err(bad(&meta.path))
                }
            })?;
            want.map(Some).ok_or_else(|| bad(list))
        }
    }
}

fn generate(
    function: syn::ItemFn,
    attrs: &[syn::Attribute],
    should_panic: ShouldPanic,
    kind: &Returns,
    mut options: valid::Options,
) -> TokenStream {
    let syn::ItemFn {
        vis, sig, block, ..
    } = function;
    let ident = &sig.ident;
    let name = ident.to_string();
    let name = name.strip_prefix("r#").unwrap_or(&name).to_owned();
    let asyncness = &sig.asyncness;
    let site = Span::mixed_site();
    let body = syn::Ident::new("__rwt_test", site);
    let attempt = syn::Ident::new("__rwt_attempt", site);

    // In the child: the test's body as a function of its own (so `return`
    // and `?` mean what they meant), run to its end.
    let (user_ret, child_ret, outer_ret) = match kind {
        Returns::Unit => (quote!(()), quote!(()), quote!()),
        Returns::Result(ty) => (
            ty.to_token_stream(),
            quote!(::core::result::Result<(), ::std::string::String>),
            quote!(-> ::core::result::Result<(), ::rwt::__private::TestError>),
        ),
    };
    let run = if asyncness.is_some() {
        quote!(::rwt::__private::block_on(#body()))
    } else {
        quote!(#body())
    };
    let run = match kind {
        Returns::Unit => run,
        // Spanned at the return type: `E: Debug` is required there.
        Returns::Result(ty) => quote_spanned!(ty.span()=> ::rwt::__private::test_result(#run)),
    };
    // Built around the body's tokens without parsing them again: a body
    // syn could not parse is rustc's to report.
    let child_block = ast::verbatim_block(quote! {
        #asyncness fn #body() -> #user_ret #block
        #run
    });
    let mut child: syn::ItemFn = syn::parse_quote!(fn #attempt() -> #child_ret {});
    child.block = Box::new(child_block);

    // One attempt per call: the attempts are `run_test`'s, so that a panic
    // `#[should_panic]` expected is not retried, and the note says how many.
    let ntries = options
        .ntries
        .replace(1)
        .map_or_else(|| quote!(::rwt::__private::DEFAULT_NTRIES), |n| quote!(#n));
    let fork = options.mode == Mode::Fork;
    let call = expand::rewrite_named(child, &options, &name);
    let expect = expectation(should_panic);
    // Spanned at the test's name: a failure that is not the child's own
    // panic points there.
    let run_test = quote_spanned! {ident.span()=>
        ::rwt::__private::run_test(
            &::rwt::__private::TestSpec { ntries: #ntries, should_panic: #expect, fork: #fork },
            #attempt,
        )
    };
    let finish = match kind {
        Returns::Unit => quote!(::core::result::Result::unwrap(#run_test)),
        Returns::Result(_) => run_test,
    };
    // The built-in `#[test]` by its full path: a `use rwt::test;` in the
    // user's module would otherwise make `#[test]` this attribute again.
    quote! {
        #[::core::prelude::v1::test]
        #(#attrs)*
        #vis fn #ident() #outer_ret {
            #call
            #finish
        }
    }
}
