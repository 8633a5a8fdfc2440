//! productpage's HTML, rendered from the upstreams' JSON.
//!
//! The strings learners and Istio's doc tests look for are exact: the title, the
//! section headings, the error lines and the `glyphicon glyphicon-star` marker on
//! every filled star (spec §1.7). The look is our own; the stylesheet is served by
//! productpage itself because the lab has no internet.

use serde_json::{Value, json};

use super::Upstream;

/// The one book Bookinfo sells.
pub(super) struct Product {
    id: u32,
    title: &'static str,
    description_html: &'static str,
}

impl Default for Product {
    fn default() -> Self {
        Product {
            id: 0,
            title: "The Comedy of Errors",
            description_html: "<a href=\"https://en.wikipedia.org/wiki/The_Comedy_of_Errors\">Wikipedia Summary</a>: The Comedy of Errors is one of <b>William Shakespeare's</b> early plays. It is his shortest and one of his most farcical comedies, with a major part of the humour coming from slapstick and mistaken identity, in addition to puns and word play.",
        }
    }
}

impl Product {
    pub(super) fn to_json(&self) -> Value {
        json!({ "id": self.id, "title": self.title, "descriptionHtml": self.description_html })
    }
}

/// The landing page at `/`: what Bookinfo is made of.
pub(super) fn index() -> String {
    let tree = service_table(&json!({
        "name": "http://productpage:9080",
        "endpoint": "productpage",
        "children": [
            { "name": "http://details:9080", "endpoint": "details", "children": [] },
            { "name": "http://reviews:9080", "endpoint": "reviews", "children": [
                { "name": "http://ratings:9080", "endpoint": "ratings", "children": [] }
            ] }
        ]
    }));
    format!(
        "<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n<link rel=\"stylesheet\" href=\"static/bookinfo.css\">\n</head>\n<body class=\"landing\">\n\
         <h3>Hello! This is a simple bookstore application consisting of three services as shown below</h3>\n\
         {tree}\n\
         <p>Click on one of the links below to auto generate a request to the backend as a real user or a tester</p>\n\
         <p><a href=\"/productpage?u=normal\">Normal user</a></p>\n\
         <p><a href=\"/productpage?u=test\">Test user</a></p>\n\
         </body>\n</html>\n"
    )
}

fn service_table(node: &Value) -> String {
    let children: String = node["children"]
        .as_array()
        .map(|c| c.iter().map(service_table).collect())
        .unwrap_or_default();
    format!(
        "<table class=\"tree\"><tr><th>name</th><td>{}</td></tr><tr><th>endpoint</th><td>{}</td></tr><tr><th>children</th><td>{children}</td></tr></table>",
        escape(node["name"].as_str().unwrap_or_default()),
        escape(node["endpoint"].as_str().unwrap_or_default()),
    )
}

/// The product page for `user` (None when nobody is logged in).
pub(super) fn productpage(
    product: &Product,
    user: Option<&str>,
    details: &Upstream,
    reviews: &Upstream,
) -> String {
    format!(
        "<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n<title>Simple Bookstore App</title>\n\
         <link rel=\"stylesheet\" href=\"static/bookinfo.css\">\n</head>\n<body>\n{nav}\n\
         <main>\n<h1>{title}</h1>\n<p class=\"description\">{description}</p>\n\
         <p class=\"learn-more\">Learn more about Istio</p>\n\
         <div class=\"columns\">\n<section class=\"details\">\n{details}</section>\n\
         <section class=\"reviews\">\n{reviews}</section>\n</div>\n</main>\n</body>\n</html>\n",
        nav = navbar(user),
        title = escape(product.title),
        description = product.description_html,
        details = details_section(details),
        reviews = reviews_section(reviews),
    )
}

fn navbar(user: Option<&str>) -> String {
    let account = match user {
        Some(user) => format!(
            "<span class=\"user\">{}</span> <a class=\"button\" href=\"logout\">Sign out</a>",
            escape(user)
        ),
        None => "<details class=\"sign-in\"><summary class=\"button\">Sign in</summary>\
                 <form method=\"post\" action=\"login\"><h2>Sign in to BookInfo</h2>\
                 <label>Username <input type=\"text\" name=\"username\"></label>\
                 <label>Password <input type=\"password\" name=\"passwd\"></label>\
                 <button type=\"submit\">Sign in</button></form></details>"
            .to_owned(),
    };
    format!(
        "<nav><a class=\"brand\" href=\"#\">BookInfo Sample</a><div class=\"account\">{account}</div></nav>"
    )
}

fn details_section(details: &Upstream) -> String {
    if !details.status.is_success() {
        return error_block("Error fetching product details", &details.body);
    }
    let field = |key: &str| match &details.body[key] {
        Value::String(s) => escape(s),
        Value::Null => String::new(),
        other => escape(&other.to_string()),
    };
    format!(
        "<h4>Book Details</h4>\n<table>\n\
         <tr><th>ISBN-10</th><td>{}</td></tr>\n<tr><th>Publisher</th><td>{}</td></tr>\n\
         <tr><th>Pages</th><td>{}</td></tr>\n<tr><th>Type</th><td>{}</td></tr>\n\
         <tr><th>Language</th><td>{}</td></tr>\n</table>\n",
        field("ISBN-10"),
        field("publisher"),
        field("pages"),
        field("type"),
        field("language"),
    )
}

fn reviews_section(reviews: &Upstream) -> String {
    if !reviews.status.is_success() {
        return error_block("Error fetching product reviews", &reviews.body);
    }
    let body = &reviews.body;
    let mut html = String::from("<h4>Book Reviews</h4>\n");
    for review in body["reviews"].as_array().into_iter().flatten() {
        html.push_str("<blockquote class=\"review\">\n");
        html.push_str(&format!(
            "<p>\"{}\"</p>\n<footer>{}</footer>\n",
            escape(review["text"].as_str().unwrap_or_default()),
            escape(review["reviewer"].as_str().unwrap_or_default()),
        ));
        html.push_str(&rating(&review["rating"]));
        html.push_str("</blockquote>\n");
    }
    let podname = body["podname"].as_str().unwrap_or_default();
    let cluster = match body["clustername"].as_str() {
        Some(name) if name != "null" => format!(" on cluster {}", escape(name)),
        _ => String::new(),
    };
    html.push_str(&format!(
        "<p class=\"served-by\">Reviews served by: <strong>{}</strong>{cluster}</p>\n",
        escape(podname)
    ));
    html
}

/// Stars for a rating: `stars` filled ones, then outlines up to five, in the
/// rating's colour; or the rating's error in red.
fn rating(rating: &Value) -> String {
    if let Some(error) = rating["error"].as_str() {
        return format!("<p class=\"error\">{}</p>\n", escape(error));
    }
    let stars = rating["stars"].as_u64().unwrap_or(0).min(5);
    if stars == 0 {
        return String::new();
    }
    let color = rating["color"].as_str().unwrap_or("black");
    let color: String = color.chars().filter(char::is_ascii_alphanumeric).collect();
    let mut html = format!("<div class=\"stars text-{color}-500\">");
    for _ in 0..stars {
        html.push_str(
            "<svg id=\"glyphicon glyphicon-star\" class=\"star filled\" viewBox=\"0 0 24 24\"><path d=\"M12 2l3 7h7l-5.5 4.5 2 7.5-6.5-4.5-6.5 4.5 2-7.5-5.5-4.5h7z\"/></svg>",
        );
    }
    for _ in stars..5 {
        html.push_str(
            "<svg class=\"star outline\" viewBox=\"0 0 24 24\"><path d=\"M12 2l3 7h7l-5.5 4.5 2 7.5-6.5-4.5-6.5 4.5 2-7.5-5.5-4.5h7z\"/></svg>",
        );
    }
    html.push_str("</div>\n");
    html
}

fn error_block(heading: &str, body: &Value) -> String {
    format!(
        "<h4 class=\"error\">{heading}</h4>\n<p class=\"error\">{}</p>\n",
        escape(body["error"].as_str().unwrap_or_default())
    )
}

/// Escapes text for HTML element content and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
