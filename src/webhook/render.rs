//! Rendering: pure functions of the summary, one request body per platform.

use serde_json::{json, Value};

use super::WebhookFormat;
use crate::report::explain::{self, Markup};
use crate::report::Summary;

/// The unsigned request body for `format` (signatures are added at send time, see [`deliver_all`](super::deliver_all)).
pub fn render(format: WebhookFormat, summary: &Summary) -> Value {
    let text = |markup| explain::message(summary, markup, format.text_limit().unwrap_or(usize::MAX));
    match format {
        WebhookFormat::Json => serde_json::to_value(summary).unwrap_or_else(|_| json!({ "run_id": summary.run_id })),
        WebhookFormat::Slack => json!({ "text": text(Markup::Slack) }),
        WebhookFormat::DingTalk => json!({
            "msgtype": "markdown",
            "markdown": { "title": explain::title(summary), "text": text(Markup::Markdown) }
        }),
        WebhookFormat::Feishu => json!({ "msg_type": "text", "content": { "text": text(Markup::Plain) } }),
        WebhookFormat::WeCom => json!({ "msgtype": "markdown", "markdown": { "content": text(Markup::Markdown) } }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::explain::tests::summary;

    #[test]
    fn render_shapes() {
        let s = summary(2);
        let slack = render(WebhookFormat::Slack, &s);
        assert!(slack["text"].as_str().unwrap().contains("*Would release (2)*"));
        let ding = render(WebhookFormat::DingTalk, &s);
        assert_eq!(ding["msgtype"], "markdown");
        assert_eq!(ding["markdown"]["title"], "aliyun-janitor: dry run, 2 would be released (incomplete)");
        let feishu = render(WebhookFormat::Feishu, &s);
        assert_eq!(feishu["msg_type"], "text");
        assert!(feishu.get("sign").is_none(), "signing happens at send time");
        let wecom = render(WebhookFormat::WeCom, &s);
        assert_eq!(wecom["msgtype"], "markdown");
        assert_eq!(render(WebhookFormat::Json, &s), serde_json::to_value(&s).unwrap());
    }

    #[test]
    fn long_lists_are_cut_and_fit_each_platform() {
        let s = summary(5_000);
        let text = explain::message(&s, Markup::Plain, usize::MAX);
        assert!(text.contains("- … and 4980 more"), "first 20 then a count");
        for format in [WebhookFormat::Slack, WebhookFormat::DingTalk, WebhookFormat::Feishu, WebhookFormat::WeCom] {
            let body = render(format, &s);
            let text = body
                .get("text")
                .or(body["markdown"].get("text"))
                .or(body["markdown"].get("content"))
                .or(body["content"].get("text"));
            let text = text.and_then(Value::as_str).expect("has text");
            assert!(text.len() <= format.text_limit().unwrap(), "{format}: {}", text.len());
            assert!(text.contains("Would release (5000)"), "{format}: counts survive the cut");
        }
    }
}
