//! Response bodies, in the API's camelCase shape.

use serde::Serialize;

/// `profile`: a user as others see them, with the viewer's `following` flag.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Profile {
    /// Username.
    pub username: String,
    /// Bio, `null` when unset.
    pub bio: Option<String>,
    /// Image URL, `null` when unset.
    pub image: Option<String>,
    /// Whether the viewer follows this user (`false` for anonymous viewers).
    pub following: bool,
}

/// `article`: in lists `body` is left out entirely (the key is absent, not `null`).
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ArticleView {
    /// URL key.
    pub slug: String,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Body; `None` in list items, where the key is omitted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Tag names, alphabetical.
    pub tag_list: Vec<String>,
    /// RFC 3339, milliseconds, UTC.
    pub created_at: String,
    /// RFC 3339, milliseconds, UTC.
    pub updated_at: String,
    /// Whether the viewer favorited it.
    pub favorited: bool,
    /// How many users favorited it.
    pub favorites_count: i64,
    /// The author's profile.
    pub author: Profile,
}

/// `comment`.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CommentView {
    /// Integer id.
    pub id: i64,
    /// RFC 3339, milliseconds, UTC.
    pub created_at: String,
    /// RFC 3339, milliseconds, UTC.
    pub updated_at: String,
    /// Text.
    pub body: String,
    /// The author's profile.
    pub author: Profile,
}

/// `user`: the authenticated user, with a fresh token.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct UserView {
    /// Email.
    pub email: String,
    /// JWT for `Authorization: Token …`.
    pub token: String,
    /// Username.
    pub username: String,
    /// Bio, `null` when unset.
    pub bio: Option<String>,
    /// Image URL, `null` when unset.
    pub image: Option<String>,
}
