//! `#[derive(SqlEnum)]`: a fieldless Rust enum as a native PostgreSQL enum type.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{Data, DeriveInput, Fields, LitStr};

pub(crate) fn expand(ast: &DeriveInput) -> syn::Result<TokenStream> {
    let Data::Enum(data) = &ast.data else {
        return Err(syn::Error::new(
            ast.ident.span(),
            "#[derive(SqlEnum)] works on enums",
        ));
    };
    let ident = &ast.ident;
    let mut type_name = crate::snake_case(&ident.to_string());
    let mut rename_all: Option<String> = None;
    for attr in ast.attrs.iter().filter(|a| a.path().is_ident("aludel")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("type_name") {
                type_name = meta.value()?.parse::<LitStr>()?.value();
            } else if meta.path.is_ident("rename_all") {
                let lit = meta.value()?.parse::<LitStr>()?;
                match lit.value().as_str() {
                    "snake_case" | "lowercase" | "UPPERCASE" | "verbatim" => {
                        rename_all = Some(lit.value());
                    }
                    _ => {
                        return Err(syn::Error::new(
                            lit.span(),
                            "expected \"snake_case\", \"lowercase\", \"UPPERCASE\" or \"verbatim\"",
                        ));
                    }
                }
            } else {
                return Err(
                    meta.error("unknown aludel attribute; expected `type_name` or `rename_all`")
                );
            }
            Ok(())
        })?;
    }
    let mut variants = Vec::new();
    let mut labels = Vec::new();
    for v in &data.variants {
        if !matches!(v.fields, Fields::Unit) {
            return Err(syn::Error::new_spanned(
                &v.fields,
                "SqlEnum variants cannot carry data",
            ));
        }
        let name = v.ident.to_string();
        let mut label = match rename_all.as_deref() {
            Some("snake_case") => crate::snake_case(&name),
            Some("lowercase") => name.to_lowercase(),
            Some("UPPERCASE") => name.to_uppercase(),
            _ => name,
        };
        for attr in v.attrs.iter().filter(|a| a.path().is_ident("aludel")) {
            attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("rename") {
                    label = meta.value()?.parse::<LitStr>()?.value();
                    Ok(())
                } else {
                    Err(meta.error("unknown aludel attribute; expected `rename`"))
                }
            })?;
        }
        variants.push(&v.ident);
        labels.push(label);
    }
    if variants.is_empty() {
        return Err(syn::Error::new(
            ident.span(),
            "an SqlEnum needs at least one variant",
        ));
    }
    let idx: Vec<usize> = (0..variants.len()).collect();
    let p = crate::private();
    Ok(quote! {
        impl #ident {
            const __ALUDEL_LABELS: &'static [&'static str] = &[#(#labels),*];
        }

        impl #p::ToSql for #ident {
            fn to_sql(
                &self,
                _ty: &#p::Type,
                out: &mut #p::BytesMut,
            ) -> ::core::result::Result<#p::IsNull, ::std::boxed::Box<dyn ::std::error::Error + Sync + Send>> {
                let label = match self { #(#ident::#variants => Self::__ALUDEL_LABELS[#idx],)* };
                #p::enum_to_sql(label, out)
            }
            fn accepts(ty: &#p::Type) -> bool {
                ty.name() == #type_name
            }
            fn to_sql_checked(
                &self,
                ty: &#p::Type,
                out: &mut #p::BytesMut,
            ) -> ::core::result::Result<#p::IsNull, ::std::boxed::Box<dyn ::std::error::Error + Sync + Send>> {
                if !<Self as #p::ToSql>::accepts(ty) {
                    return ::core::result::Result::Err(::std::boxed::Box::new(#p::WrongType::new::<Self>(ty.clone())));
                }
                #p::ToSql::to_sql(self, ty, out)
            }
        }

        impl<'a> #p::FromSql<'a> for #ident {
            fn from_sql(
                _ty: &#p::Type,
                raw: &'a [u8],
            ) -> ::core::result::Result<Self, ::std::boxed::Box<dyn ::std::error::Error + Sync + Send>> {
                match #p::enum_from_sql(raw, Self::__ALUDEL_LABELS, #type_name)? {
                    #(#idx => ::core::result::Result::Ok(#ident::#variants),)*
                    _ => ::core::result::Result::Err("enum label out of range".into()),
                }
            }
            fn accepts(ty: &#p::Type) -> bool {
                ty.name() == #type_name
            }
        }

        impl #p::SqlType for #ident {
            fn sql_type() -> #p::Type {
                static TYPE: ::std::sync::OnceLock<#p::Type> = ::std::sync::OnceLock::new();
                TYPE.get_or_init(|| #p::enum_type(#type_name, Self::__ALUDEL_LABELS)).clone()
            }
        }

        #p::custom_type!(#ident);
    })
}

/// `#[derive(SqlNewtype)]`: `struct Email(String);` stored, compared and read as its inner type.
pub(crate) fn expand_newtype(ast: &DeriveInput) -> syn::Result<TokenStream> {
    let ident = &ast.ident;
    let inner = match &ast.data {
        Data::Struct(s) => match &s.fields {
            Fields::Unnamed(f) if f.unnamed.len() == 1 => &f.unnamed[0].ty,
            _ => {
                return Err(syn::Error::new(
                    ident.span(),
                    "#[derive(SqlNewtype)] needs a tuple struct with one field",
                ));
            }
        },
        _ => {
            return Err(syn::Error::new(
                ident.span(),
                "#[derive(SqlNewtype)] works on tuple structs",
            ));
        }
    };
    if !ast.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(
            &ast.generics,
            "#[derive(SqlNewtype)] does not support generics",
        ));
    }
    let p = crate::private();
    Ok(quote! {
        impl #p::ToSql for #ident {
            fn to_sql(
                &self,
                ty: &#p::Type,
                out: &mut #p::BytesMut,
            ) -> ::core::result::Result<#p::IsNull, ::std::boxed::Box<dyn ::std::error::Error + Sync + Send>> {
                <#inner as #p::ToSql>::to_sql(&self.0, ty, out)
            }
            fn accepts(ty: &#p::Type) -> bool {
                <#inner as #p::ToSql>::accepts(ty)
            }
            fn to_sql_checked(
                &self,
                ty: &#p::Type,
                out: &mut #p::BytesMut,
            ) -> ::core::result::Result<#p::IsNull, ::std::boxed::Box<dyn ::std::error::Error + Sync + Send>> {
                <#inner as #p::ToSql>::to_sql_checked(&self.0, ty, out)
            }
        }

        impl<'a> #p::FromSql<'a> for #ident {
            fn from_sql(
                ty: &#p::Type,
                raw: &'a [u8],
            ) -> ::core::result::Result<Self, ::std::boxed::Box<dyn ::std::error::Error + Sync + Send>> {
                <#inner as #p::FromSql<'a>>::from_sql(ty, raw).map(#ident)
            }
            fn accepts(ty: &#p::Type) -> bool {
                <#inner as #p::FromSql<'a>>::accepts(ty)
            }
        }

        impl #p::SqlType for #ident {
            fn sql_type() -> #p::Type {
                <#inner as #p::SqlType>::sql_type()
            }
        }
        #p::custom_type!(#ident);
    })
}
