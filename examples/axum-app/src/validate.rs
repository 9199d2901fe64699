//! Input limits, checked before anything reaches the database.
//!
//! Every text the API accepts — body fields, query parameters, path segments — has a length
//! limit and may not contain NUL (PostgreSQL text cannot hold it). Limits are counted in
//! characters and chosen so that every value fits the unique B-tree indexes (a B-tree entry
//! holds at most ~2,700 bytes; 4 bytes per character at most): a value past a limit is a 422
//! naming the field, never a database error.

use crate::error::ApiError;

/// Longest username, in characters.
pub const USERNAME_MAX: usize = 64;
/// Longest email (RFC 5321's path limit).
pub const EMAIL_MAX: usize = 254;
/// Longest password. Argon2 hashes any length in the same time, but a bound keeps request
/// bodies and memory small.
pub const PASSWORD_MAX: usize = 256;
/// Longest bio.
pub const BIO_MAX: usize = 4_096;
/// Longest image URL.
pub const IMAGE_MAX: usize = 2_048;
/// Longest article title (its slug is derived from it and uniquely indexed).
pub const TITLE_MAX: usize = 200;
/// Longest article description.
pub const DESCRIPTION_MAX: usize = 1_000;
/// Longest article body.
pub const BODY_MAX: usize = 100_000;
/// Longest comment.
pub const COMMENT_MAX: usize = 10_000;
/// Longest tag name.
pub const TAG_MAX: usize = 64;
/// Most tags on one article.
pub const TAGS_MAX: usize = 20;
/// Longest slug in a path: a title's slug (lower-casing may double a character) plus a
/// suffix.
pub const SLUG_MAX: usize = 2 * TITLE_MAX + 16;
/// Longest request body, in bytes (an article at its limits fits).
pub const REQUEST_BODY_MAX: usize = 1024 * 1024;

/// Collects field errors; [`Checks::finish`] turns them into one 422.
#[derive(Debug, Default)]
pub struct Checks {
    errors: Vec<(&'static str, String)>,
}

impl Checks {
    /// No errors yet.
    pub fn new() -> Self {
        Checks::default()
    }

    /// Records `message` for `field`.
    pub fn push(&mut self, field: &'static str, message: impl Into<String>) {
        self.errors.push((field, message.into()));
    }

    /// Checks an optional text: when present, no NUL and at most `max` characters.
    pub fn text(&mut self, field: &'static str, value: Option<&str>, max: usize) {
        if let Some(v) = value {
            if let Err(message) = text_ok(v, max) {
                self.push(field, message);
            }
        }
    }

    /// A required text: present, not blank, then as [`Checks::text`]. Returns the value (empty
    /// when missing, in which case an error was recorded).
    pub fn required(&mut self, field: &'static str, value: Option<String>, max: usize) -> String {
        match value {
            Some(v) if !v.trim().is_empty() => {
                self.text(field, Some(&v), max);
                v
            }
            _ => {
                self.push(field, "can't be blank");
                String::new()
            }
        }
    }

    /// Checks a tag list: at most [`TAGS_MAX`] tags, each a valid text of at most
    /// [`TAG_MAX`] characters.
    pub fn tags(&mut self, tags: &[String]) {
        if tags.len() > TAGS_MAX {
            self.push(
                "tagList",
                format!("has too many tags (maximum is {TAGS_MAX})"),
            );
            return;
        }
        for t in tags {
            if let Err(message) = text_ok(t, TAG_MAX) {
                self.push("tagList", message);
                return;
            }
        }
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// `Ok` when nothing was recorded, else the 422 with every message.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Validation(self.errors))
        }
    }
}

/// Whether `v` may be stored: no NUL, at most `max` characters.
pub fn text_ok(v: &str, max: usize) -> Result<(), String> {
    if v.contains('\0') {
        return Err("must not contain NUL characters".to_owned());
    }
    // `len()` bounds the character count from above: only count when it could be over.
    if v.len() > max && v.chars().count() > max {
        return Err(format!("is too long (maximum is {max} characters)"));
    }
    Ok(())
}

/// A path segment that names a resource (slug, username): one that no stored value can
/// equal answers 404 without a query.
pub fn path_segment(v: &str, max: usize, what: &'static str) -> Result<(), ApiError> {
    text_ok(v, max).map_err(|_| ApiError::NotFound(what))
}

/// A query parameter naming a value (`tag`, `author`, `favorited`).
pub fn query_param(field: &'static str, v: Option<&str>, max: usize) -> Result<(), ApiError> {
    let mut c = Checks::new();
    c.text(field, v, max);
    c.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_count_characters_and_refuse_nul() {
        assert!(text_ok("ünï", 3).is_ok());
        assert!(text_ok("ünïc", 3).is_err());
        assert!(text_ok("a\0b", 10).is_err());
        let mut c = Checks::new();
        let v = c.required("title", Some("  ".into()), 10);
        assert!(v.is_empty());
        c.tags(&vec!["t".to_owned(); TAGS_MAX + 1]);
        assert!(c.finish().is_err());
    }
}
