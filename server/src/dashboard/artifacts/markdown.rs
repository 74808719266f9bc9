//! Markdown to HTML that is safe to insert into the dashboard: pulldown-cmark renders,
//! ammonia keeps only harmless tags and attributes (no scripts, event handlers, styles or
//! relative links into the dashboard), and every link opens without a referrer.

use std::sync::LazyLock;

use ammonia::{Builder, UrlRelative};
use pulldown_cmark::{Options, Parser};

/// One sanitiser for every artifact (building it is not free).
static SANITISER: LazyLock<Builder<'static>> = LazyLock::new(|| {
    let mut builder = Builder::default();
    builder
        .link_rel(Some("noopener noreferrer"))
        // A relative link would point into the dashboard itself.
        .url_relative(UrlRelative::Deny)
        .add_tags(["input"])
        .add_tag_attributes("input", ["checked", "disabled"])
        .set_tag_attribute_value("input", "type", "checkbox")
        .set_tag_attribute_value("input", "disabled", "");
    builder
});

/// `markdown` rendered (tables, strikethrough, task lists) and sanitised.
pub(super) fn to_safe_html(markdown: &str) -> String {
    let options =
        Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS;
    let mut html = String::with_capacity(markdown.len() + markdown.len() / 2);
    pulldown_cmark::html::push_html(&mut html, Parser::new_ext(markdown, options));
    SANITISER.clean(&html).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_and_handlers_are_removed() {
        let html = to_safe_html(
            "# Plan\n\n<script>alert('x')</script>\n\n<img src=\"https://x.test/a.png\" onerror=\"alert(1)\">\n\n[x](javascript:alert(1))",
        );
        assert!(html.contains("<h1>Plan</h1>"), "{html}");
        assert!(
            !html.contains("<script") && !html.contains("alert('x')"),
            "{html}"
        );
        assert!(!html.contains("onerror"), "{html}");
        assert!(!html.contains("javascript:"), "{html}");
        assert!(
            html.contains("<img src=\"https://x.test/a.png\">"),
            "{html}"
        );
    }

    #[test]
    fn links_open_without_referrer_and_relative_ones_are_dropped() {
        let html = to_safe_html("[docs](https://example.com/docs) and [here](/api/logout)");
        assert!(
            html.contains(
                r#"<a href="https://example.com/docs" rel="noopener noreferrer">docs</a>"#
            ),
            "{html}"
        );
        assert!(!html.contains("/api/logout"), "{html}");
    }

    #[test]
    fn tables_code_and_task_lists_survive() {
        let html = to_safe_html(
            "| a | b |\n|---|---|\n| 1 | 2 |\n\n```rust\nfn main() { 1 < 2; }\n```\n\n- [x] done\n- [ ] open\n",
        );
        assert!(
            html.contains("<table>") && html.contains("<td>2</td>"),
            "{html}"
        );
        assert!(
            html.contains("<pre><code>fn main() { 1 &lt; 2; }"),
            "{html}"
        );
        assert!(
            html.contains(r#"type="checkbox""#) && html.contains("checked"),
            "{html}"
        );
        let comment = to_safe_html("<!-- generated -->\n# T\n");
        assert!(!comment.contains("generated"), "{comment}");
    }
}
