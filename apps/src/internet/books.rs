//! `www.googleapis.com`: the Google Books volume search that Bookinfo's details v2
//! makes (`GET /books/v1/volumes?q=isbn:0486424618`).
//!
//! The answer has the shape of Google Books' `books#volumes` (the fields details v2
//! maps, and a few around them), but the values are representative data written for
//! meshlab — a plausible record of Shakespeare's *The Comedy of Errors* under the
//! ISBN Bookinfo asks for — not a copy of Google's data. Any other ISBN finds nothing
//! (`totalItems: 0`), and so does any query without an ISBN.

use std::collections::BTreeMap;

use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use serde_json::json;

/// The one book on the simulated shelf: its ISBN-10, as Bookinfo asks for it.
const ISBN_10: &str = "0486424618";

/// The same book's ISBN-13.
const ISBN_13: &str = "9780486424613";

/// The routes of `www.googleapis.com`.
pub(super) fn router() -> Router {
    Router::new()
        .route("/books/v1/volumes", get(volumes))
        .fallback(not_found)
}

/// A search result, in Google Books' field order.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Volumes {
    kind: &'static str,
    total_items: u32,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    items: Vec<Volume>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Volume {
    kind: &'static str,
    volume_info: VolumeInfo,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct VolumeInfo {
    title: &'static str,
    authors: [&'static str; 1],
    publisher: &'static str,
    published_date: &'static str,
    description: &'static str,
    industry_identifiers: [Identifier; 2],
    page_count: u32,
    print_type: &'static str,
    language: &'static str,
}

#[derive(Serialize)]
struct Identifier {
    #[serde(rename = "type")]
    kind: &'static str,
    identifier: &'static str,
}

/// The record details v2 turns into Bookinfo's "Book Details".
fn comedy_of_errors() -> Volume {
    Volume {
        kind: "books#volume",
        volume_info: VolumeInfo {
            title: "The Comedy of Errors",
            authors: ["William Shakespeare"],
            publisher: "Dover Publications",
            published_date: "2002",
            description: "Two pairs of identical twins, parted by a shipwreck, spend one \
                          long day in the same city without knowing it: wrong masters, \
                          wrong wives, a gold chain and an arrest, until everyone meets \
                          at the abbey and the family is whole again.",
            industry_identifiers: [
                Identifier {
                    kind: "ISBN_10",
                    identifier: ISBN_10,
                },
                Identifier {
                    kind: "ISBN_13",
                    identifier: ISBN_13,
                },
            ],
            page_count: 80,
            print_type: "BOOK",
            language: "en",
        },
    }
}

async fn volumes(Query(params): Query<BTreeMap<String, String>>) -> Response {
    let Some(query) = params.get("q").filter(|q| !q.trim().is_empty()) else {
        let error = json!({ "error": {
            "code": 400,
            "message": "missing query (ask for /books/v1/volumes?q=isbn:<isbn>)",
        }});
        return (StatusCode::BAD_REQUEST, Json(error)).into_response();
    };
    let items = if asks_for_our_book(query) {
        vec![comedy_of_errors()]
    } else {
        Vec::new()
    };
    Json(Volumes {
        kind: "books#volumes",
        total_items: u32::try_from(items.len()).unwrap_or(u32::MAX),
        items,
    })
    .into_response()
}

/// Whether a search names our book: a term `isbn:<ISBN-10 or ISBN-13>`, hyphens and
/// case aside.
fn asks_for_our_book(query: &str) -> bool {
    query.split_whitespace().any(|term| {
        let term = term.to_ascii_lowercase();
        term.strip_prefix("isbn:").is_some_and(|isbn| {
            let isbn = isbn.replace('-', "");
            isbn == ISBN_10 || isbn == ISBN_13
        })
    })
}

async fn not_found() -> (StatusCode, &'static str) {
    (
        StatusCode::NOT_FOUND,
        "meshlab's simulated www.googleapis.com serves only /books/v1/volumes?q=isbn:<isbn>\n",
    )
}
