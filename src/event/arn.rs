//! Alibaba ARNs as events carry them: `[arn:]acs:<service>:<region>:<account>:<type>/<id>`. The product is the
//! catalog's for the service segment (`kvstore` → `r-kvstore`), and the type must be its ARN kind.

use crate::products::catalog;

pub(super) enum Arn {
    Managed { product: &'static str, region: String, id: String, account: String },
    Foreign,
    Malformed(&'static str),
}

pub(super) fn parse(arn: &str) -> Arn {
    let body = arn.strip_prefix("arn:").unwrap_or(arn);
    let parts: Vec<&str> = body.splitn(5, ':').collect();
    if parts.first() != Some(&"acs") {
        return Arn::Foreign;
    }
    let [_, service, region, account, resource] = parts[..] else {
        return Arn::Malformed("expected acs:<product>:<region>:<account>:<type>/<id>");
    };
    let Some((ty, id)) = resource.split_once('/') else {
        return Arn::Malformed("expected <type>/<id> after the account");
    };
    match catalog().by_event_service(service) {
        Some(spec) if ty.eq_ignore_ascii_case(spec.arn.kind) => {
            if region == "*" || region.is_empty() {
                return Arn::Malformed("the region is a wildcard: the resource cannot be re-read");
            }
            Arn::Managed {
                product: spec.code,
                region: region.to_string(),
                id: id.to_string(),
                account: account.to_string(),
            }
        }
        _ => Arn::Foreign,
    }
}

#[cfg(test)]
mod tests {
    use super::{parse as parse_arn, Arn};
    use crate::event::is_resource_id;

    #[test]
    fn arns() {
        assert!(matches!(parse_arn("acs:ecs:cn-hangzhou:123:instance/i-1"), Arn::Managed { product: "ecs", .. }));
        assert!(matches!(parse_arn("arn:acs:ecs:cn-hangzhou:*:instance/i-1"), Arn::Managed { product: "ecs", .. }));
        assert!(matches!(
            parse_arn("arn:acs:alikafka:cn-hangzhou:1:instance/alikafka_post-cn-1"),
            Arn::Managed { product: "alikafka", .. }
        ));
        assert!(matches!(parse_arn("arn:aws:ec2:us-east-1:1:instance/i-0"), Arn::Foreign));
        assert!(matches!(parse_arn("acs:ecs:cn-hangzhou:1:disk/d-1"), Arn::Foreign));
        assert!(matches!(parse_arn("acs:ecs:cn-hangzhou"), Arn::Malformed(_)));
        assert!(matches!(parse_arn(""), Arn::Foreign));
        for ok in ["i-bp1abc", "r-bp1", "alikafka_post-cn-1.x", "kst-hzz6"] {
            assert!(is_resource_id(ok), "{ok}");
        }
        for bad in ["", "-i", "i 1", "i/1", "i-1\n", &"x".repeat(65)] {
            assert!(!is_resource_id(bad), "{bad:?}");
        }
    }
}
