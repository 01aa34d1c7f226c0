//! Generates the rewritten function.
//!
//! ```text
//! // Input:
//! #[timeout(secs = 1.5, ntries = 3)]
//! pub fn exists(path: String) -> bool { body }
//!
//! // Output:
//! pub fn exists(path: String) -> ::core::result::Result<bool, ::rwt::Error> {
//!     ::rwt::__private::call_fork(
//!         &::rwt::__private::Options::new().secs(1.5).ntries(3),  // only what was written
//!         "exists",
//!         move || -> bool { body },          // runs in the child
//!         |value: &bool| -> bool { /* is it an `Err`? */ },
//!     )
//! }
//! ```
//!
//! An `async fn` stays `async`: its body becomes
//! `block_on(async move { body })` (run in the child), the call goes to
//! `call_fork_async` / `call_exec_async` and is awaited, and in fork mode
//! each argument type is checked to be `Send` (the spawner thread forks).
//!
//! Everything generated reaches rwt through `::rwt::__private` and std
//! through `::core`, so no name in the user's scope can shadow it.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;

use crate::valid::{self, Mode, Secs};
use crate::{ast, attr, fallback};

/// The attribute, end to end.
pub(crate) fn timeout(args: TokenStream, item: TokenStream) -> TokenStream {
    let function = match ast::parse(item.clone(), "#[timeout]") {
        Ok(f) => f,
        Err(e) => return fallback::unchanged(item, vec![e]),
    };
    let mut option_errors = Vec::new();
    let parsed = attr::parse(args, &mut option_errors);
    let options = valid::options(parsed, &mut option_errors);
    let mut errors = Vec::new();
    valid::signature(&function.sig, &mut errors);
    if matches!(options.mode, Mode::Exec | Mode::Pool) {
        valid::exec_signature(&function.sig, options.mode, &mut errors);
    }
    if !errors.is_empty() {
        // The item itself is wrong: keep it as written, and report the
        // option errors too, all in one build.
        errors.extend(option_errors);
        return fallback::unchanged(function, errors);
    }
    // Bad options: still the full rewrite (with defaults where an option is
    // wrong), so call sites written for `Result` type-check and the only
    // errors are the real ones.
    let mut out = rewrite(function, &options);
    out.extend(fallback::errors(option_errors));
    out
}

fn rewrite(function: syn::ItemFn, options: &valid::Options) -> TokenStream {
    let name = function.sig.ident.to_string();
    let name = name.strip_prefix("r#").unwrap_or(&name).to_owned();
    rewrite_named(function, options, &name)
}

/// [`rewrite`], with the name that errors give the function.
pub(crate) fn rewrite_named(
    function: syn::ItemFn,
    options: &valid::Options,
    name: &str,
) -> TokenStream {
    let syn::ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = function;
    // Exhaustive on purpose: a new syn field must be handled, not dropped.
    let syn::Signature {
        constness: _,
        asyncness,
        unsafety,
        abi: _,
        fn_token,
        ident,
        generics,
        paren_token: _,
        inputs,
        variadic: _,
        output,
    } = sig;
    let where_clause = &generics.where_clause;
    let (outer, inner): (Vec<_>, Vec<_>) = attrs
        .into_iter()
        .partition(|a| matches!(a.style, syn::AttrStyle::Outer));
    let ret: syn::Type = match output {
        syn::ReturnType::Default => syn::parse_quote!(()),
        syn::ReturnType::Type(_, ty) => *ty,
    };
    let is_async = asyncness.is_some();
    // An async body runs to completion on an executor in the child.
    let block: syn::Block = if is_async {
        ast::verbatim_block(quote!(::rwt::__private::block_on(async move #block)))
    } else {
        *block
    };
    let call = Call {
        name,
        is_async,
        generics: &generics,
        inputs: &inputs,
        ret: &ret,
        block: &block,
        settings: settings(options),
        failed: failed(&ret),
    };
    let (inputs, call) = match options.mode {
        Mode::Fork => (inputs.to_token_stream(), fork_call(&call)),
        Mode::Exec => exec_call(&call, &quote!(::rwt::__private::ExecMode::Exec)),
        Mode::Pool => exec_call(&call, &quote!(::rwt::__private::ExecMode::Pool)),
    };
    quote! {
        #(#outer)*
        #vis #asyncness #unsafety #fn_token #ident #generics (#inputs)
            -> ::core::result::Result<#ret, ::rwt::Error>
            #where_clause
        {
            #(#inner)*
            #call
        }
    }
}

/// The pieces of one call, borrowed from the signature, and the parts
/// every mode's call is made of.
struct Call<'a> {
    /// The name errors give the function.
    name: &'a str,
    is_async: bool,
    generics: &'a syn::Generics,
    inputs: &'a syn::punctuated::Punctuated<syn::FnArg, syn::Token![,]>,
    ret: &'a syn::Type,
    /// The body (an async one already wrapped in `block_on`).
    block: &'a syn::Block,
    /// `&Options::new()` and its setters.
    settings: TokenStream,
    /// `|value: &R| -> bool`: whether a value is an `Err`.
    failed: TokenStream,
}

/// Whether a value of the function is a failed attempt (an `Err`), by
/// autoref specialisation on `Probe`.
fn failed(ret: &syn::Type) -> TokenStream {
    let value = syn::Ident::new("__rwt_value", Span::mixed_site());
    quote_spanned! {ret.span()=>
        |#value: &#ret| -> bool {
            #[allow(unused_imports)]
            use ::rwt::__private::{OtherProbe as _, ResultProbe as _};
            (&::rwt::__private::Probe(#value)).__rwt_failed()
        }
    }
}

/// Fork mode: the body runs in a forked child, as a closure.
///
/// The call is spanned at the user's return type: it is the one place that
/// requires `Serialize + DeserializeOwned` of that type, so a type without
/// them is reported once, there, not at the attribute. (The body keeps its
/// own spans: it is interpolated.)
fn fork_call(call: &Call<'_>) -> TokenStream {
    let Call {
        name,
        ret,
        block,
        settings,
        failed,
        ..
    } = call;
    let ret_span = ret.span();
    if !call.is_async {
        let entry = quote_spanned!(ret_span=> ::rwt::__private::call_fork);
        return quote_spanned! {ret_span=>
            #entry(#settings, #name, move || -> #ret #block, #failed)
        };
    }
    // The spawner thread forks the child: the arguments the body captures
    // must be `Send`, said at each parameter's type.
    let checks = call.inputs.iter().filter_map(|input| match input {
        syn::FnArg::Typed(param) => {
            let ty = &*param.ty;
            Some(quote_spanned! {ty.span()=>
                let () = ::rwt::__private::async_argument::<#ty>();
            })
        }
        syn::FnArg::Receiver(_) => None,
    });
    let entry = quote_spanned!(ret_span=> ::rwt::__private::call_fork_async);
    quote_spanned! {ret_span=>
        #(#checks)*
        #entry(#settings, #name, move || -> #ret #block, #failed).await
    }
}

/// `&Options::new()` with a setter for each option the user wrote: the
/// runtime's `Options::new()` holds the defaults.
fn settings(options: &valid::Options) -> TokenStream {
    let secs = options.secs.as_ref().map(|secs| {
        let secs = match secs {
            Secs::Value(v) => proc_macro2::Literal::f64_suffixed(*v).into_token_stream(),
            Secs::Const(path) => const_secs(path),
        };
        quote! { .secs(#secs) }
    });
    let ntries = options.ntries.map(|n| quote! { .ntries(#n) });
    let kill = options.kill.map(|k| quote! { .kill(#k) });
    let grace = options
        .grace
        .map(proc_macro2::Literal::f64_suffixed)
        .map(|g| quote! { .grace(#g) });
    let memory = options.memory.map(|m| quote! { .memory(#m) });
    let cpu = options
        .cpu
        .map(proc_macro2::Literal::f64_suffixed)
        .map(|c| quote! { .cpu(#c) });
    quote! {
        &::rwt::__private::Options::new() #secs #ntries #kill #grace #memory #cpu
    }
}

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
fn exec_call(call: &Call<'_>, mode: &TokenStream) -> (TokenStream, TokenStream) {
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

/// `secs = SOME_CONST`: its value is checked at compile time. A path through
/// `Self` or a generic needs an inline `const` block (evaluated per use);
/// any other path a `const` item (evaluated by `cargo check` too).
fn const_secs(path: &syn::Path) -> TokenStream {
    let span = path.span();
    let first = path.segments.first().map(|s| s.ident.to_string());
    if first.as_deref() == Some("Self") {
        quote_spanned! {span=> const { ::rwt::__private::checked_secs(#path) } }
    } else {
        quote_spanned! {span=> {
            const __RWT_SECS: f64 = ::rwt::__private::checked_secs(#path);
            __RWT_SECS
        }}
    }
}
