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
//!         &::rwt::__private::Options::new().secs(1.5).ntries(3).kill(true).grace(0.0),
//!         "exists",
//!         move || -> bool { body },          // runs in the child
//!         |value: &bool| -> bool { /* is it an `Err`? */ },
//!     )
//! }
//! ```
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
    let function = match ast::parse(item.clone()) {
        Ok(f) => f,
        Err(e) => return fallback::unchanged(item, vec![e]),
    };
    let mut errors = Vec::new();
    valid::signature(&function.sig, &mut errors);
    if !errors.is_empty() {
        // The item itself is wrong: keep it as written, and report the
        // option errors too, all in one build.
        let parsed = attr::parse(args, &mut errors);
        valid::options(parsed, &mut errors);
        return fallback::unchanged(function, errors);
    }
    let parsed = attr::parse(args, &mut errors);
    let options = valid::options(parsed, &mut errors);
    // Bad options: still the full rewrite (with defaults where an option is
    // wrong), so call sites written for `Result` type-check and the only
    // errors are the real ones.
    let mut out = rewrite(function, &options);
    out.extend(fallback::errors(errors));
    out
}

fn rewrite(function: syn::ItemFn, options: &valid::Options) -> TokenStream {
    let syn::ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = function;
    // Exhaustive on purpose: a new syn field must be handled, not dropped.
    let syn::Signature {
        constness: _,
        asyncness: _,
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
    let ret_span = ret.span();
    let name = ident.to_string();
    let name = name.strip_prefix("r#").unwrap_or(&name).to_owned();

    let secs = match &options.secs {
        Secs::Value(v) => proc_macro2::Literal::f64_suffixed(*v).into_token_stream(),
        Secs::Const(path) => const_secs(path),
    };
    let ntries = options.ntries;
    let kill = options.kill;
    let grace = proc_macro2::Literal::f64_suffixed(options.grace);
    let entry = match options.mode {
        Mode::Fork => quote_spanned!(ret_span=> ::rwt::__private::call_fork),
    };
    let value = syn::Ident::new("__rwt_value", Span::mixed_site());
    let options = quote! {
        &::rwt::__private::Options::new()
            .secs(#secs)
            .ntries(#ntries)
            .kill(#kill)
            .grace(#grace)
    };
    let failed = quote_spanned! {ret_span=>
        |#value: &#ret| -> bool {
            #[allow(unused_imports)]
            use ::rwt::__private::{OtherProbe as _, ResultProbe as _};
            (&::rwt::__private::Probe(#value)).__rwt_failed()
        }
    };
    // The call is spanned at the user's return type: it is the one place
    // that requires `Serialize + DeserializeOwned` of that type, so a type
    // without them is reported once, there, not at the attribute. (The
    // body keeps its own spans: it is interpolated.)
    let call = quote_spanned! {ret_span=>
        #entry(#options, #name, move || -> #ret #block, #failed)
    };
    quote! {
        #(#outer)*
        #vis #unsafety #fn_token #ident #generics (#inputs)
            -> ::core::result::Result<#ret, ::rwt::Error>
            #where_clause
        {
            #(#inner)*
            #call
        }
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
