//! Structured fuzzing of the two parsers that take outside input: policies (YAML) and trigger events (JSON).
//! Documents are built from valid fragments and then mutated (wrong types, hostile strings, huge numbers,
//! YAML tags and aliases, dropped or doubled keys), so most cases get deep into validation instead of failing
//! at the first byte. The property: no panic, and every answer is either a policy/trigger that keeps the
//! invariants or an error that names a field. (cargo-fuzz needs a nightly toolchain and the cargo-fuzz
//! binary; CI has neither, so proptest does this job. The byte-level proptests live beside each parser.)

use aliyun_janitor::event::{self, Trigger};
use aliyun_janitor::policy::{Policy, MAX_DURATION};
use proptest::prelude::*;
use serde_json::{json, Value};

fn hostile_scalar() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("-1".to_string()),
        Just("0".to_string()),
        Just("18446744073709551616".to_string()),
        Just("1e309".to_string()),
        Just(".nan".to_string()),
        Just("-.inf".to_string()),
        Just("~".to_string()),
        Just("\"\"".to_string()),
        Just("[]".to_string()),
        Just("{}".to_string()),
        Just("!!binary aGVsbG8=".to_string()),
        Just("!!str 7d".to_string()),
        Just("\"\\u0000\"".to_string()),
        Just("\"cn-hangzhou; rm -rf /\"".to_string()),
        Just("\"$(curl evil)\"".to_string()),
        Just("\"\\n{\\\"level\\\":\\\"ERROR\\\"}\"".to_string()),
        Just("*undefined_alias".to_string()),
        Just("&anchor yes".to_string()),
        "[a-z0-9:-]{0,12}".prop_map(|s| s),
        "\"[ -~]{0,20}\"".prop_map(|s| s.replace('\\', "")),
        (0u32..5).prop_map(|n| format!("\"{}\"", "x".repeat(10usize.pow(n)))),
    ]
}

fn duration() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("7d".to_string()),
        Just("1d12h".to_string()),
        Just("30m".to_string()),
        Just("-7d".to_string()),
        Just("0s".to_string()),
        Just("3651d".to_string()),
        Just("99999999999999999999w".to_string()),
        Just("12h1d".to_string()),
        Just("7 d".to_string()),
        "[0-9]{1,22}[smhdwy]".prop_map(|s| s),
    ]
}

/// A value for a key: usually a plausible one, sometimes a hostile scalar.
fn value_for(key: &'static str) -> BoxedStrategy<String> {
    let plausible: BoxedStrategy<String> = match key {
        "apply" | "force" => {
            prop_oneof![Just("true".to_string()), Just("false".to_string()), Just("\"yes\"".to_string())].boxed()
        }
        "regions" => prop_oneof![
            Just("[cn-hangzhou]".to_string()),
            Just("[cn-hangzhou, cn-shanghai]".to_string()),
            Just("[cn-hangzhou, cn-hangzhou]".to_string()),
            Just("[CN-HANGZHOU]".to_string()),
            Just("cn-hangzhou".to_string()),
        ]
        .boxed(),
        "products" => prop_oneof![
            Just("[ecs]".to_string()),
            Just("[ecs, kms]".to_string()),
            Just("[rds]".to_string()),
            Just("[]".to_string())
        ]
        .boxed(),
        "limits" => (hostile_scalar(), hostile_scalar(), 0u64..200)
            .prop_map(|(a, b, n)| {
                format!("{{ max_releases_per_run: {a}, max_release_percent: {b} }}")
                    .replace("{ max_releases_per_run: 0,", &format!("{{ max_releases_per_run: {n},"))
            })
            .boxed(),
        "concurrency" => {
            (0i64..100, 0i64..100).prop_map(|(a, b)| format!("{{ regions: {a}, per_endpoint: {b} }}")).boxed()
        }
        "protect" => prop_oneof![
            Just("{ tags: { \"janitor:keep\": \"true\", \"do-not-delete\": null } }".to_string()),
            Just("{ tags: [ {key: k, value: v}, {key: k2} ] }".to_string()),
            Just("{ instance_ids: [i-abc, \"\"] }".to_string()),
            Just("{ names: [\"prod-*\", \"[\"] }".to_string()),
        ]
        .boxed(),
        "endpoints" => prop_oneof![
            Just("{ ecs: \"http://127.0.0.1:8931\" }".to_string()),
            Just("{ ecs: \"file:///etc/passwd\" }".to_string()),
            Just("{ s3: \"http://x\" }".to_string()),
        ]
        .boxed(),
        _ => hostile_scalar().boxed(),
    };
    prop_oneof![4 => plausible, 1 => hostile_scalar()].boxed()
}

fn filter() -> impl Strategy<Value = String> {
    prop_oneof![
        duration().prop_map(|d| format!("created_older_than: {d}")),
        duration().prop_map(|d| format!("expired_for: \"{d}\"")),
        Just("expire_at_tag: expire-at".to_string()),
        Just("ttl_tag: ttl".to_string()),
        Just("ttl_tag: \"\"".to_string()),
        Just("charge_type: pay-as-you-go".to_string()),
        Just("charge_type: PrePaid".to_string()),
        Just("status: [Stopped]".to_string()),
        Just("status: []".to_string()),
        Just("tag: { env: dev }".to_string()),
        Just("tag_exists: [owner]".to_string()),
        Just("tag_absent: [\"janitor:keep\"]".to_string()),
        Just("name: \"ci-*\"".to_string()),
        Just("products: [ecs]".to_string()),
        Just("regions: [cn-hangzhou]".to_string()),
        hostile_scalar().prop_map(|v| format!("expire_at_tag: {v}")),
        hostile_scalar().prop_map(|v| format!("unknown_filter: {v}")),
    ]
}

fn rule() -> impl Strategy<Value = String> {
    (
        prop_oneof![Just("r1".to_string()), Just("r2".to_string()), Just("\"\"".to_string()), hostile_scalar()],
        prop::collection::vec(filter(), 0..4),
        any::<bool>(),
    )
        .prop_map(|(name, filters, force)| {
            let mut r = format!("  - name: {name}\n    filters:\n");
            for f in filters {
                r.push_str(&format!("      {f}\n"));
            }
            if force {
                r.push_str("    force: true\n");
            }
            r
        })
}

const TOP_KEYS: [&str; 8] =
    ["apply", "regions", "products", "endpoints", "concurrency", "protect", "limits", "typo_key"];

fn policy_text() -> impl Strategy<Value = String> {
    let top = prop::collection::vec(
        prop::sample::select(TOP_KEYS.to_vec())
            .prop_flat_map(|k| value_for(k).prop_map(move |v| format!("{k}: {v}\n"))),
        0..7,
    );
    let rules = prop::collection::vec(rule(), 0..4);
    let mutation = prop_oneof![
        6 => Just(0u8), // none
        1 => Just(1u8), // drop a random line
        1 => Just(2u8), // tabs for indentation
        1 => Just(3u8), // truncate
        1 => Just(4u8), // double the document
    ];
    (top, rules, mutation, any::<prop::sample::Index>()).prop_map(|(top, rules, mutation, at)| {
        let mut text = String::from("regions: [cn-hangzhou]\n");
        for t in top {
            text.push_str(&t);
        }
        if !rules.is_empty() {
            text.push_str("rules:\n");
            for r in rules {
                text.push_str(&r);
            }
        }
        match mutation {
            1 => {
                let lines: Vec<&str> = text.lines().collect();
                let drop = at.index(lines.len().max(1));
                lines.iter().enumerate().filter(|(i, _)| *i != drop).map(|(_, l)| format!("{l}\n")).collect()
            }
            2 => text.replace("  ", "\t"),
            3 => {
                let cut = at.index(text.len().max(1));
                let mut cut = cut.min(text.len());
                while !text.is_char_boundary(cut) {
                    cut -= 1;
                }
                text[..cut].to_string()
            }
            4 => format!("{text}{text}"),
            _ => text,
        }
    })
}

fn check_policy(text: &str) -> Result<(), TestCaseError> {
    match Policy::from_yaml(text, "fuzz.yaml") {
        Ok(p) => {
            prop_assert!(p.validate().is_ok(), "accepted but invalid: {text}");
            prop_assert!(!p.regions.is_empty() && !p.rules.is_empty() && !p.products.is_empty());
            prop_assert!(p.limits.max_release_percent > 0.0 && p.limits.max_release_percent <= 100.0);
            for r in &p.rules {
                prop_assert!(r.has_selecting_filter(), "a rule that selects everything: {text}");
                for d in [r.created_older_than, r.expired_for].into_iter().flatten() {
                    prop_assert!(!d.is_zero() && d <= MAX_DURATION);
                }
            }
        }
        Err(e) => {
            prop_assert!(!e.path.is_empty() && !e.message.is_empty(), "{e:?}");
            prop_assert!(e.to_string().starts_with("fuzz.yaml: "), "{e}");
        }
    }
    Ok(())
}

fn region() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!("cn-hangzhou")),
        Just(json!("ap-southeast-1")),
        Just(json!("CN-HANGZHOU")),
        Just(json!("cn-hangzhou\n")),
        Just(json!("")),
        Just(json!(7)),
        Just(json!(null)),
        "[a-z-]{0,70}".prop_map(Value::from),
    ]
}

fn time() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!("2026-11-25T12:00:00Z")),
        Just(json!("2026-11-25T12:00Z")),
        Just(json!("0000-01-01T00:00:00Z")),
        Just(json!("9999-12-31T23:59:59Z")),
        Just(json!("+275760-09-13T00:00:00Z")),
        Just(json!("2026-02-30T00:00:00Z")),
        Just(json!(1700000000)),
        Just(json!(null)),
        "[0-9T:Z+-]{0,30}".prop_map(Value::from),
    ]
}

fn manual() -> impl Strategy<Value = Value> {
    (
        prop::option::of(prop_oneof![Just(json!(true)), Just(json!(false)), Just(json!("true")), Just(json!(1))]),
        prop::option::of(prop::collection::vec(region(), 0..4)),
        prop::option::of(prop::collection::vec(
            prop_oneof![
                Just(json!("ecs")),
                Just(json!("kms")),
                Just(json!("ECS")),
                Just(json!("../x")),
                Just(json!(1))
            ],
            0..3,
        )),
        prop::option::of(prop_oneof![
            Just(json!("run-1")),
            Just(json!("a b")),
            Just(json!("x".repeat(200))),
            Just(json!(5))
        ]),
        prop::option::of(prop_oneof![Just("apply"), Just("policy"), Just("rules")]),
    )
        .prop_map(|(dry, regions, products, id, extra)| {
            let mut m = serde_json::Map::new();
            if let Some(d) = dry {
                m.insert("dry_run".into(), d);
            }
            if let Some(r) = regions {
                m.insert("regions".into(), Value::Array(r));
            }
            if let Some(p) = products {
                m.insert("products".into(), Value::Array(p));
            }
            if let Some(i) = id {
                m.insert("id".into(), i);
            }
            if let Some(k) = extra {
                m.insert(k.into(), json!(true));
            }
            Value::Object(m)
        })
}

fn event_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        manual(),
        (time(), prop_oneof![Just(json!("e-1")), Just(json!(null)), Just(json!("bad id\""))], prop_oneof![Just("Scheduled Event"), Just("Other")]).prop_map(|(t, id, dt)| {
            json!({"version": "0", "id": id, "detail-type": dt, "source": "aws.events", "account": "1", "time": t, "region": "us-east-1", "resources": [], "detail": {}})
        }),
        (time(), prop_oneof![Just(json!("nightly")), Just(json!("")), Just(json!(3))], manual()).prop_map(|(t, name, payload)| {
            json!({"triggerTime": t, "triggerName": name, "payload": payload.to_string()})
        }),
    ]
}

fn check_event(body: &[u8]) -> Result<(), TestCaseError> {
    match event::parse(body) {
        Ok(trigger) => {
            let req = trigger.request();
            for r in req.regions.iter().flatten() {
                prop_assert!(event::is_region(r), "accepted region {r:?}");
            }
            for p in req.products.iter().flatten() {
                prop_assert!(event::is_product_code(p), "accepted product {p:?}");
            }
            if let Trigger::Scheduled { time: Some(t), .. } = &trigger {
                prop_assert!((2000..2100).contains(&chrono::Datelike::year(t)), "accepted trigger time {t}");
            }
        }
        Err(e) => prop_assert!(!e.to_string().is_empty()),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn policies_built_from_mutated_fragments_never_panic(text in policy_text()) {
        check_policy(&text)?;
    }

    #[test]
    fn events_built_from_mutated_shapes_never_panic(v in event_value(), cut in any::<prop::sample::Index>(), truncate in any::<bool>()) {
        let body = v.to_string();
        check_event(body.as_bytes())?;
        if truncate {
            let at = cut.index(body.len().max(1));
            check_event(&body.as_bytes()[..at.min(body.len())])?;
        }
    }
}
