//! What to emit when there are errors: the errors, and the user's item so
//! that call sites and IDEs keep working.

use proc_macro2::TokenStream;
use quote::ToTokens;

/// All errors as one stream of `compile_error!`s.
pub(crate) fn errors(errors: Vec<syn::Error>) -> TokenStream {
    let mut all = errors.into_iter();
    let Some(mut first) = all.next() else {
        return TokenStream::new();
    };
    for e in all {
        first.combine(e);
    }
    first.to_compile_error()
}

/// The item exactly as written, with the errors: for problems with the item
/// itself (not a function, `const fn`, `extern`...), where no rewrite could
/// be right.
pub(crate) fn unchanged(item: impl ToTokens, errs: Vec<syn::Error>) -> TokenStream {
    let mut out = item.into_token_stream();
    out.extend(errors(errs));
    out
}
