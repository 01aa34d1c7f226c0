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
use crate::{ast, attr, exec, fallback};

/// The attribute, end to end.
pub(crate) fn timeout(args: TokenStream, item: TokenStream) -> TokenStream {
    let function = match ast::parse(&item, "#[timeout]") {
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
        Mode::Exec => exec::exec_call(&call, &quote!(::rwt::__private::ExecMode::Exec)),
        Mode::Pool => exec::exec_call(&call, &quote!(::rwt::__private::ExecMode::Pool)),
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
pub(crate) struct Call<'a> {
    /// The name errors give the function.
    pub(crate) name: &'a str,
    pub(crate) is_async: bool,
    pub(crate) generics: &'a syn::Generics,
    pub(crate) inputs: &'a syn::punctuated::Punctuated<syn::FnArg, syn::Token![,]>,
    pub(crate) ret: &'a syn::Type,
    /// The body (an async one already wrapped in `block_on`).
    pub(crate) block: &'a syn::Block,
    /// `&Options::new()` and its setters.
    pub(crate) settings: TokenStream,
    /// `|value: &R| -> bool`: whether a value is an `Err`.
    pub(crate) failed: TokenStream,
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
