//! What the attribute was put on.

use proc_macro2::TokenStream;
use syn::spanned::Spanned;

/// Parses the annotated item as a function with a body, or says what it is
/// instead, pointing at it.
/// `attribute` is how the messages name it (`#[timeout]`, `#[rwt::test]`).
pub(crate) fn parse(item: &TokenStream, attribute: &str) -> syn::Result<syn::ItemFn> {
    if let Ok(function) = syn::parse2::<syn::ItemFn>(item.clone()) {
        return Ok(function);
    }
    if let Ok(MaybeItemFn(function)) = syn::parse2::<MaybeItemFn>(item.clone()) {
        return Ok(function);
    }
    if let Ok(method) = syn::parse2::<syn::TraitItemFn>(item.clone()) {
        if method.default.is_none() {
            let at = method.semi_token.map_or(method.sig.span(), |s| s.span());
            return Err(syn::Error::new(
                at,
                format!(
                    "`{attribute}` needs a function with a body; a trait method without one \
                     has nothing to run (put the attribute on the method in the `impl` instead)"
                ),
            ));
        }
    }
    let at = match syn::parse2::<syn::Item>(item.clone()) {
        Ok(item) => describe(&item),
        Err(_) => None,
    };
    let (span, what) = at.unwrap_or_else(|| (item.span(), "this item".into()));
    Err(syn::Error::new(
        span,
        format!("`{attribute}` goes on a function, not on {what}"),
    ))
}

/// The keyword of a non-function item and how to call it.
fn describe(item: &syn::Item) -> Option<(proc_macro2::Span, String)> {
    Some(match item {
        syn::Item::Struct(s) => (s.struct_token.span, "a struct".into()),
        syn::Item::Enum(e) => (e.enum_token.span, "an enum".into()),
        syn::Item::Union(u) => (u.union_token.span, "a union".into()),
        syn::Item::Trait(t) => (t.trait_token.span, "a trait".into()),
        syn::Item::Impl(i) => (
            i.impl_token.span,
            "an `impl` block (put it on the methods)".into(),
        ),
        syn::Item::Mod(m) => (m.mod_token.span, "a module".into()),
        syn::Item::Const(c) => (c.const_token.span, "a constant".into()),
        syn::Item::Static(s) => (s.static_token.span, "a static".into()),
        syn::Item::Type(t) => (t.type_token.span, "a type alias".into()),
        syn::Item::ForeignMod(f) => (f.abi.extern_token.span, "an `extern` block".into()),
        syn::Item::Use(u) => (u.use_token.span, "a `use`".into()),
        _ => return None,
    })
}

/// `{ tokens }` as a block, without parsing the tokens: for generated
/// blocks that hold the user's body, which may be one syn could not parse
/// ([`MaybeItemFn`]). Parsing it again would panic in the macro instead of
/// leaving the error to rustc.
pub(crate) fn verbatim_block(tokens: TokenStream) -> syn::Block {
    syn::Block {
        brace_token: syn::token::Brace::default(),
        stmts: vec![syn::Stmt::Expr(syn::Expr::Verbatim(tokens), None)],
    }
}

/// A function whose body syn could not parse: its signature parsed, and
/// its body kept as the tokens written. The rewrite puts them back as they
/// are, so a syntax error in the body is rustc's own error at the user's
/// token (not ours about the item), and a body in syntax newer than syn's
/// still compiles.
struct MaybeItemFn(syn::ItemFn);

impl syn::parse::Parse for MaybeItemFn {
    fn parse(input: syn::parse::ParseStream<'_>) -> syn::Result<Self> {
        let attrs = input.call(syn::Attribute::parse_outer)?;
        let vis: syn::Visibility = input.parse()?;
        let sig: syn::Signature = input.parse()?;
        let body: proc_macro2::Group = input.parse()?;
        if body.delimiter() != proc_macro2::Delimiter::Brace || !input.is_empty() {
            return Err(input.error("not a function with a body"));
        }
        let mut block = verbatim_block(body.stream());
        block.brace_token = syn::token::Brace(body.delim_span());
        Ok(MaybeItemFn(syn::ItemFn {
            attrs,
            vis,
            sig,
            block: Box::new(block),
        }))
    }
}
