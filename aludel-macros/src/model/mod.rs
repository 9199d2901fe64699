//! `#[derive(Model)]`: the struct's attributes are parsed (`parse`) into a typed IR (`ir`),
//! which `expand` turns into the impls.

mod expand;
mod ir;
mod parse;

pub(crate) use self::expand::expand;
pub(crate) use self::parse::parse;

#[cfg(test)]
mod tests {
    use super::{expand, parse};
    use crate::snake_case;
    use syn::DeriveInput;

    fn expand_src(src: &str) -> Result<String, String> {
        let ast: DeriveInput = syn::parse_str(src).map_err(|e| e.to_string())?;
        parse(&ast)
            .map(|m| expand(&m).to_string())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn expansion_names_columns_and_table() {
        let out = expand_src(
            "#[aludel(table = \"users\")] struct User { #[aludel(primary_key, identity)] id: Generated<i32>, \
             #[aludel(column = \"full_name\")] name: String, hair: Option<String>, \
             #[aludel(identity = \"always\")] n: Generated<i64> }",
        )
        .unwrap();
        // a Generated<T> field's column handle has type T
        assert!(out.contains("pub const id : :: aludel :: __private :: Column < User , i32 > = :: aludel :: __private :: Column :: new (\"users\" , \"id\")"), "{out}");
        assert!(out.contains("\"full_name\""), "{out}");
        // a BY DEFAULT identity is sent when set; a GENERATED ALWAYS one never
        let insert =
            &out[out.find("fn insert_values").unwrap()..out.find("fn write_identity").unwrap()];
        assert!(
            insert.contains("Generated :: bind (& self . id)"),
            "{insert}"
        );
        assert!(insert.contains("self . name"), "{insert}");
        assert!(!insert.contains("self . n)"), "{insert}");
        assert!(out.contains(". always ()"), "{out}");
    }

    fn pretty(src: &str) -> String {
        let out = expand_src(src).unwrap();
        let file: syn::File = syn::parse_str(&out).unwrap();
        prettyplease::unparse(&file)
    }

    #[test]
    fn expansion_snapshot_model() {
        insta::assert_snapshot!(pretty(
            "#[aludel(table = \"posts\", index(user_id, title), check(name = \"title_not_blank\", expr = \"title <> ''\"))] \
             struct Post { #[aludel(primary_key, identity)] id: Generated<i32>, \
             #[aludel(references = \"User::id\", on_delete = \"cascade\")] user_id: i32, \
             #[aludel(unique)] title: String, body: Option<String>, \
             #[aludel(server_default = \"now()\", sql_type = \"timestamptz\")] created_at: Generated<i64> }"
        ));
    }

    #[test]
    fn expansion_snapshot_relations() {
        insta::assert_snapshot!(pretty(
            "#[aludel(table = \"users\")] struct User { #[aludel(primary_key, identity)] id: Generated<i64>, \
             #[aludel(one_to_many(fk = Post::user_id, back_populates = author, cascade = \"all, delete-orphan\", order_by = \"id desc\"))] \
             posts: Many<Post>, \
             #[aludel(many_to_many(secondary = Follow, local = Follow::follower_id, remote = Follow::followee_id, lazy = \"selectin\"))] \
             following: Many<User> }"
        ));
    }

    #[test]
    fn expansion_snapshot_deferred() {
        insta::assert_snapshot!(pretty(
            "#[aludel(table = \"books\")] struct Book { #[aludel(primary_key)] id: i64, \
             summary: Deferred<String>, title: String, \
             #[aludel(group = \"media\")] cover: Deferred<Option<Vec<u8>>>, \
             #[aludel(server_default = \"''\")] note: Deferred<Generated<String>> }"
        ));
    }

    #[test]
    fn expansion_snapshot_enum() {
        let ast: DeriveInput = syn::parse_str(
            "#[aludel(type_name = \"mood\", rename_all = \"snake_case\")] enum Mood { Happy, #[aludel(rename = \"meh\")] SoSo }",
        )
        .unwrap();
        let file: syn::File = syn::parse2(crate::enums::expand(&ast).unwrap()).unwrap();
        insta::assert_snapshot!(prettyplease::unparse(&file));
    }

    #[test]
    fn misuse_is_reported() {
        assert!(
            expand_src("struct A { id: i32 }")
                .unwrap_err()
                .contains("primary key")
        );
        assert!(
            expand_src("struct A { #[aludel(primry_key)] id: i32 }")
                .unwrap_err()
                .contains("unknown aludel field attribute")
        );
        assert!(
            expand_src("#[aludel(tabel = \"x\")] struct A { #[aludel(primary_key)] id: i32 }")
                .unwrap_err()
                .contains("unknown aludel attribute")
        );
        assert!(
            expand_src("struct A { #[aludel(primary_key)] id: Option<i32> }")
                .unwrap_err()
                .contains("cannot be an Option")
        );
        assert!(
            expand_src("struct A { #[aludel(primary_key)] id: Deferred<i32> }")
                .unwrap_err()
                .contains("cannot be Deferred")
        );
        assert!(
            expand_src(
                "struct A { #[aludel(primary_key)] id: i32, #[aludel(group = \"g\")] b: String }"
            )
            .unwrap_err()
            .contains("`group` is for Deferred")
        );
        assert!(
            expand_src(
                "struct A { #[aludel(primary_key)] id: i32, #[aludel(references = \"B::id\")] b: Deferred<i32> }"
            )
            .unwrap_err()
            .contains("foreign-key field cannot be Deferred")
        );
        assert!(
            expand_src("struct A { #[aludel(primary_key, identity)] id: i32 }")
                .unwrap_err()
                .contains("needs a `Generated<T>` field")
        );
        assert!(
            expand_src("struct A { #[aludel(primary_key)] id: i32, n: Generated<i32> }")
                .unwrap_err()
                .contains("`Generated<T>` is for columns the server fills")
        );
        assert!(
            expand_src(
                "struct A { #[aludel(primary_key)] id: i32, #[aludel(server_default = \"1\")] n: Generated<Deferred<i32>> }"
            )
            .unwrap_err()
            .contains("Deferred<Generated<T>>")
        );
        assert!(
            expand_src(
                "struct A { #[aludel(primary_key, identity = \"sometimes\")] id: Generated<i32> }"
            )
            .unwrap_err()
            .contains("expected `identity`")
        );
        assert_eq!(snake_case("UserProfile"), "user_profile");
    }
}
