//! Exec and pool mode's rewrite: the body becomes a nested function that a
//! fresh process finds by id, each parameter crosses as an owned value,
//! and the function registers itself with the runtime.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;

use crate::expand::Call;

/// Exec mode: the body becomes a nested function that a fresh process finds
/// by id; the caller sends the arguments.
///
/// ```text
/// // Input:
/// #[timeout(mode = "exec")]
/// fn count(text: &str, (a, b): (u8, u8)) -> usize { body }
///
/// // Output (inside the rewritten `fn count(text: &str, __rwt_arg1: (u8, u8))`):
/// fn __rwt_body(text: &str, (a, b): (u8, u8)) -> usize { body }
/// fn __rwt_run(args: &[u8]) -> ExecFrame {       // runs in the child
///     run_in_child::<(Box<str>, (u8, u8)), usize>(args, |(v0, v1)| __rwt_body(&*v0, v1), failed)
/// }
/// register_exec_fn!(__rwt_run, "path::count|(sig)|file:line:col|body hash");
///     // defines __RWT_FN and its constructor __RWT_REGISTER (see the runtime)
/// call_exec(&options, "count", &__RWT_FN, &__RWT_REGISTER, &(&text, &__rwt_arg1), ExecMode::Exec)
/// ```
pub(crate) fn exec_call(call: &Call<'_>, mode: &TokenStream) -> (TokenStream, TokenStream) {
    let Call {
        name,
        is_async,
        generics,
        inputs,
        ret,
        block,
        settings: options,
        failed,
    } = call;
    let ExecInputs {
        outer_inputs,
        sent,
        owned,
        vals,
        passed,
        checks,
    } = exec_inputs(inputs);
    let original = inputs;
    let where_clause = &generics.where_clause;
    let signature_text = quote!((#original) -> #ret).to_string();
    let body_hash = format!(
        "{:016x}",
        fnv1a(block.to_token_stream().to_string().as_bytes())
    );
    let ret_span = ret.span();
    let (entry, wait) = if *is_async {
        (
            quote_spanned!(ret_span=> ::rwt::__private::call_exec_async),
            quote!(.await),
        )
    } else {
        (
            quote_spanned!(ret_span=> ::rwt::__private::call_exec),
            quote!(),
        )
    };
    let call = quote_spanned! {ret_span=>
        #[cfg(not(target_os = "linux"))]
        ::core::compile_error!("exec and pool modes are supported on Linux only; use `mode = \"fork\"`");
        #(#checks)*
        fn __rwt_body #generics (#original) -> #ret #where_clause #block
        fn __rwt_run(__rwt_args: &[u8]) -> ::rwt::__private::ExecFrame {
            ::rwt::__private::run_in_child::<(#(#owned,)*), #ret>(
                __rwt_args,
                |(#(#vals,)*)| __rwt_body(#(#passed),*),
                #failed,
            )
        }
        // The id names this definition, not just its name: the module path
        // alone is shared by the methods of two impl blocks and by nested
        // helpers of two functions; the place in the source and the body's
        // text tell them apart. Twins that still collide (one macro_rules!
        // invocation writing the same item twice) are refused at run time.
        ::rwt::__private::register_exec_fn!(
            __rwt_run,
            ::core::concat!(
                ::core::module_path!(), "::", #name, "|", #signature_text, "|",
                ::core::file!(), ":", ::core::line!(), ":", ::core::column!(), "|", #body_hash
            )
        );
        #entry(#options, #name, &__RWT_FN, &__RWT_REGISTER, &(#(#sent,)*), #mode)#wait
    };
    (quote!(#(#outer_inputs),*), call)
}

/// What exec mode makes of each parameter.
struct ExecInputs {
    /// The caller's parameters: a plain name kept, a pattern named by us.
    outer_inputs: Vec<TokenStream>,
    /// What the caller sends: a reference to each parameter.
    sent: Vec<TokenStream>,
    /// The owned type each arrives as in the child (a reference as a box
    /// of what it points to).
    owned: Vec<TokenStream>,
    /// The child's names for them.
    vals: Vec<syn::Ident>,
    /// How the child passes each to the body.
    passed: Vec<TokenStream>,
    /// A compile-time check, at each parameter's type, that it can cross.
    checks: Vec<TokenStream>,
}

fn exec_inputs(inputs: &syn::punctuated::Punctuated<syn::FnArg, syn::Token![,]>) -> ExecInputs {
    let site = Span::mixed_site();
    let mut parts = ExecInputs {
        outer_inputs: Vec::new(),
        sent: Vec::new(),
        owned: Vec::new(),
        vals: Vec::new(),
        passed: Vec::new(),
        checks: Vec::new(),
    };
    for (i, input) in inputs.iter().enumerate() {
        let syn::FnArg::Typed(param) = input else {
            continue; // receivers were refused by `valid::exec_signature`
        };
        let ty = &*param.ty;
        // The caller's parameter keeps its name when it is a plain one (so
        // the docs read the same); a pattern gets a name of ours.
        let arg = match &*param.pat {
            syn::Pat::Ident(p) if p.subpat.is_none() => p.ident.clone(),
            _ => syn::Ident::new(&format!("__rwt_arg{i}"), site),
        };
        parts.outer_inputs.push(quote!(#arg: #ty));
        parts.sent.push(quote!(&#arg));
        let val = syn::Ident::new(&format!("__rwt_v{i}"), site);
        // A reference arrives as a box of what it points to.
        let (target, owned_ty, pass) = match ty {
            syn::Type::Reference(r) => {
                let elem = &*r.elem;
                let owned = erase_lifetimes(elem.to_token_stream());
                (
                    elem.clone(),
                    quote!(::std::boxed::Box<#owned>),
                    quote!(&*#val),
                )
            }
            other => {
                let owned = erase_lifetimes(other.to_token_stream());
                (other.clone(), owned, quote!(#val))
            }
        };
        let span = target.span();
        parts.checks.push(quote_spanned! {span=>
            let () = ::rwt::__private::argument_crosses_processes::<#target>();
        });
        parts.owned.push(owned_ty);
        parts.vals.push(val);
        parts.passed.push(pass);
    }
    parts
}

/// FNV-1a, 64 bits: the body's share of a function's id (the same hash as
/// the runtime's `function_id`, which hashes the rest).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Replaces every named lifetime but `'static` with `'_`: the child-side
/// runner names the argument types outside the function, where the
/// function's lifetime parameters do not exist (the child owns its values).
fn erase_lifetimes(tokens: TokenStream) -> TokenStream {
    use proc_macro2::{Group, Punct, Spacing, TokenTree};
    let mut out = Vec::new();
    let mut iter = tokens.into_iter().peekable();
    while let Some(tt) = iter.next() {
        match tt {
            TokenTree::Punct(p) if p.as_char() == '\'' && p.spacing() == Spacing::Joint => {
                match iter.peek() {
                    Some(TokenTree::Ident(id)) if id != "static" => {
                        let span = id.span();
                        iter.next();
                        let mut tick = Punct::new('\'', Spacing::Joint);
                        tick.set_span(p.span());
                        out.push(TokenTree::Punct(tick));
                        out.push(TokenTree::Ident(proc_macro2::Ident::new("_", span)));
                    }
                    _ => out.push(TokenTree::Punct(p)),
                }
            }
            TokenTree::Group(g) => {
                let mut inner = Group::new(g.delimiter(), erase_lifetimes(g.stream()));
                inner.set_span(g.span());
                out.push(TokenTree::Group(inner));
            }
            other => out.push(other),
        }
    }
    out.into_iter().collect()
}
