//! Checks of the deployment files that `cfn-lint`, `sam validate --lint` and `s preview` do not make: runtime
//! name, architecture, handler, concurrency, that every schedule expression parses, that no secret can
//! be a template value, and that the files agree with the packaging targets in mk/deploy.mk.

use std::path::Path;
use std::str::FromStr;

use serde_json::Value;

fn read(rel: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn yaml(rel: &str) -> Value {
    serde_norway::from_str(&read(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// An EventBridge schedule expression: `rate(N unit)` or the six-field `cron(min hour dom month dow year)`.
fn check_aws_schedule(expr: &str) -> Result<(), String> {
    let expr = expr.trim();
    if let Some(inner) = expr.strip_prefix("rate(").and_then(|s| s.strip_suffix(')')) {
        let mut parts = inner.split_whitespace();
        let (Some(n), Some(unit), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(format!("`{expr}`: rate(value unit) expected"));
        };
        let n: u32 = n.parse().map_err(|_| format!("`{expr}`: the value must be a positive integer"))?;
        let singular = match unit {
            "minute" | "hour" | "day" => true,
            "minutes" | "hours" | "days" => false,
            _ => return Err(format!("`{expr}`: unit must be minute(s), hour(s) or day(s)")),
        };
        return match (n, singular) {
            (0, _) => Err(format!("`{expr}`: the value must be positive")),
            (1, false) | (2.., true) => Err(format!("`{expr}`: use the singular unit exactly when the value is 1")),
            _ => Ok(()),
        };
    }
    let inner = expr
        .strip_prefix("cron(")
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(|| format!("`{expr}`: rate(...) or cron(...) expected"))?;
    let fields: Vec<&str> = inner.split_whitespace().collect();
    if fields.len() != 6 {
        return Err(format!(
            "`{expr}`: AWS cron has 6 fields (minutes hours day-of-month month day-of-week year), found {}",
            fields.len()
        ));
    }
    // AWS: exactly one of day-of-month and day-of-week is `?`.
    if (fields[2] == "?") == (fields[4] == "?") {
        return Err(format!("`{expr}`: exactly one of day-of-month and day-of-week must be `?`"));
    }
    if fields.iter().any(|f| f.contains(['L', 'W', '#'])) {
        return Err(format!(
            "`{expr}`: L, W and # are valid on AWS but not checked here: avoid them or extend this test"
        ));
    }
    // The cron crate takes seconds first and `*` for "no specific value" (weekdays 1=SUN..7=SAT, as AWS).
    let seven = format!("0 {}", fields.iter().map(|f| if *f == "?" { "*" } else { f }).collect::<Vec<_>>().join(" "));
    let schedule = cron::Schedule::from_str(&seven).map_err(|e| format!("`{expr}` (as `{seven}`): {e}"))?;
    schedule.upcoming(chrono::Utc).next().map(|_| ()).ok_or_else(|| format!("`{expr}`: never fires"))
}

/// A Function Compute timer expression: `[CRON_TZ=Area/City ]` + six-field cron (seconds first), or `@every 1h30m`.
fn check_fc_cron(expr: &str) -> Result<(), String> {
    let mut rest = expr.trim();
    if let Some(every) = rest.strip_prefix("@every ") {
        let ok = !every.is_empty()
            && every.split_inclusive(['h', 'm']).all(|g| {
                g.len() > 1 && g[..g.len() - 1].bytes().all(|b| b.is_ascii_digit()) && g.ends_with(['h', 'm'])
            });
        return if ok { Ok(()) } else { Err(format!("`{expr}`: @every takes a duration like 1h30m")) };
    }
    if let Some(tz_and_rest) = rest.strip_prefix("CRON_TZ=") {
        let (tz, cron) =
            tz_and_rest.split_once(' ').ok_or_else(|| format!("`{expr}`: CRON_TZ=<zone> <cron> expected"))?;
        jiff::tz::TimeZone::get(tz).map_err(|e| format!("`{expr}`: time zone `{tz}`: {e}"))?;
        rest = cron.trim();
    }
    let fields = rest.split_whitespace().count();
    if fields != 6 {
        return Err(format!(
            "`{expr}`: FC cron has 6 fields (seconds minutes hours day-of-month month day-of-week), found {fields}"
        ));
    }
    let schedule = cron::Schedule::from_str(rest).map_err(|e| format!("`{expr}`: {e}"))?;
    schedule.upcoming(chrono::Utc).next().map(|_| ()).ok_or_else(|| format!("`{expr}`: never fires"))
}

#[test]
fn schedule_checkers_accept_good_and_reject_bad_expressions() {
    for good in [
        "cron(0 19 * * ? *)",
        "cron(15 10 ? * MON-FRI *)",
        "cron(0 3 1 * ? *)",
        "rate(1 day)",
        "rate(5 minutes)",
        "rate(12 hours)",
    ] {
        assert_eq!(check_aws_schedule(good), Ok(()), "{good}");
    }
    for bad in [
        "cron(0 19 * * *)",   // five fields (Unix cron)
        "cron(0 19 * * * *)", // no `?`
        "cron(0 19 ? * ? *)", // two `?`
        "cron(0 25 * * ? *)", // hour 25
        "cron(0 3 L * ? *)",  // not checked here
        "rate(1 days)",
        "rate(2 day)",
        "rate(0 minutes)",
        "rate(5 weeks)",
        "every day",
    ] {
        assert!(check_aws_schedule(bad).is_err(), "{bad} must be rejected");
    }
    for good in ["CRON_TZ=Asia/Shanghai 0 0 3 * * *", "0 0/30 * * * *", "@every 1h30m", "@every 10m"] {
        assert_eq!(check_fc_cron(good), Ok(()), "{good}");
    }
    for bad in [
        "CRON_TZ=Mars/Olympus 0 0 3 * * *",
        "0 3 * * *",
        "CRON_TZ=Asia/Shanghai",
        "0 0 25 * * *",
        "@every",
        "@every 5s",
    ] {
        assert!(check_fc_cron(bad).is_err(), "{bad} must be rejected");
    }
}

fn resources_of_type<'a>(t: &'a Value, ty: &str) -> Vec<(&'a String, &'a Value)> {
    t["Resources"].as_object().expect("Resources").iter().filter(|(_, r)| r["Type"] == ty).collect()
}

#[test]
fn sam_template_function_settings() {
    let text = read("template.yaml");
    for short in ["!Ref", "!Sub", "!GetAtt", "!If", "!Equals", "!Not", "!Join", "!Select"] {
        assert!(!text.contains(short), "template.yaml: use the long form instead of `{short}`");
    }
    let t = yaml("template.yaml");
    assert_eq!(t["Transform"], "AWS::Serverless-2016-10-31");
    let functions = resources_of_type(&t, "AWS::Serverless::Function");
    assert_eq!(functions.len(), 1, "exactly one function");
    let p = &functions[0].1["Properties"];
    assert_eq!(p["Runtime"], "provided.al2023");
    assert_eq!(p["Architectures"], serde_json::json!(["arm64"]));
    assert_eq!(p["Handler"], "bootstrap");
    // Issue 13 item 10: a fixed reservation of 1 failed the deploy on low-quota accounts; it is a parameter, 0 = none.
    assert_eq!(
        p["ReservedConcurrentExecutions"]["Fn::If"],
        serde_json::json!(["HasReservedConcurrency", {"Ref": "ReservedConcurrency"}, {"Ref": "AWS::NoValue"}])
    );
    assert_eq!(t["Parameters"]["ReservedConcurrency"]["Default"], 0);
    let memory = p["MemorySize"].as_u64().expect("MemorySize");
    assert!((128..=10240).contains(&memory), "MemorySize {memory}");
    let timeout = p["Timeout"].as_u64().expect("Timeout");
    assert!((1..=900).contains(&timeout), "Timeout {timeout}");

    // The package the template deploys is the one `make lambda` builds.
    let code = p["CodeUri"].as_str().expect("CodeUri");
    assert!(read("mk/deploy.mk").contains(code), "mk/deploy.mk does not build {code}");

    // Failures go somewhere: an on-failure destination or a dead-letter queue.
    let on_failure = &p["EventInvokeConfig"]["DestinationConfig"]["OnFailure"];
    assert!(on_failure.is_object() || p["DeadLetterQueue"].is_object(), "no on-failure destination or DLQ");

    // Log retention.
    let logs = resources_of_type(&t, "AWS::Logs::LogGroup");
    assert!(logs.iter().any(|(_, l)| !l["Properties"]["RetentionInDays"].is_null()), "no log group with a retention");
}

#[test]
fn sam_template_triggers_and_schedule_expressions() {
    let t = yaml("template.yaml");
    let functions = resources_of_type(&t, "AWS::Serverless::Function");
    let events = functions[0].1["Properties"]["Events"].as_object().expect("Events");
    let mut schedules = 0;
    for (name, e) in events {
        match e["Type"].as_str() {
            Some("Schedule") | Some("ScheduleV2") => {
                schedules += 1;
                let key = if e["Type"] == "Schedule" { "Schedule" } else { "ScheduleExpression" };
                let expr = &e["Properties"][key];
                // Either a literal, or a parameter whose default must parse.
                let literal = match expr["Ref"].as_str() {
                    Some(param) => t["Parameters"][param]["Default"]
                        .as_str()
                        .unwrap_or_else(|| panic!("parameter {param} needs a default"))
                        .to_string(),
                    None => expr
                        .as_str()
                        .unwrap_or_else(|| panic!("{name}: schedule is neither a string nor a Ref"))
                        .to_string(),
                };
                check_aws_schedule(&literal).unwrap_or_else(|e| panic!("{name}: {e}"));
            }
            // Issue 13 item 12: `aws.` sources are AWS's own: an Alibaba tag change never arrives as `aws.tag`, and
            // that rule fired on every AWS tag change. Tag-change triggers are a Function Compute feature.
            Some("EventBridgeRule") => {
                panic!("{name}: no EventBridge rule (an aws.tag rule never carries Alibaba events)")
            }
            other => panic!("{name}: unexpected event type {other:?}"),
        }
    }
    assert_eq!(schedules, 1, "one scheduled run");
    assert_eq!(events.len(), 1, "the schedule is Lambda's only trigger");
    // Issue 13 item 15c: SAM's recommended ScheduleV2 (EventBridge Scheduler, `source: aws.scheduler`), no retries.
    let nightly = &events["Nightly"];
    assert_eq!(nightly["Type"], "ScheduleV2");
    assert_eq!(nightly["Properties"]["RetryPolicy"]["MaximumRetryAttempts"], 0);
    // Every parameter that looks like a schedule parses too (a default someone might switch to).
    for (name, param) in t["Parameters"].as_object().unwrap() {
        if name.contains("Schedule") {
            check_aws_schedule(param["Default"].as_str().unwrap_or("")).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}

#[test]
fn sam_template_parameters_hold_no_secret() {
    let t = yaml("template.yaml");
    let params = t["Parameters"].as_object().expect("Parameters");
    for needed in ["ScheduleExpression", "ApplyMode", "AlibabaCredentialsSecretArn", "WebhookSecretArn", "PolicyPath"] {
        assert!(params.contains_key(needed), "parameter {needed} is missing");
    }
    assert_eq!(params["ApplyMode"]["AllowedValues"], serde_json::json!(["false", "true"]));
    assert_eq!(params["ApplyMode"]["Default"], "false", "dry run unless asked");
    assert!(params["AlibabaCredentialsSecretArn"].get("Default").is_none(), "the credentials secret has no default");
    for (name, p) in params {
        let lower = name.to_lowercase();
        if (lower.contains("secret") || lower.contains("key") || lower.contains("token") || lower.contains("webhook"))
            && !name.ends_with("Arn")
        {
            panic!("parameter {name} would hold a secret in the stack: take a secret ARN instead");
        }
        if name.ends_with("SecretArn") {
            let default = p["Default"].as_str().unwrap_or("");
            assert!(default.is_empty(), "{name}: no default secret ARN");
        }
    }
    // Issue 13 item 11: the Alibaba key is read at invocation time through the Parameters and Secrets extension,
    // never resolved into the environment at deploy time (CloudFormation would not re-resolve it after a rotation).
    let functions = resources_of_type(&t, "AWS::Serverless::Function");
    let f = &functions[0].1["Properties"];
    let vars = f["Environment"]["Variables"].as_object().expect("Variables");
    for resolved in ["ALIBABA_CLOUD_ACCESS_KEY_SECRET", "ALIBABA_CLOUD_ACCESS_KEY_ID"] {
        assert!(!vars.contains_key(resolved), "{resolved} must not be resolved into the environment at deploy time");
    }
    assert!(!read("template.yaml").contains("${AlibabaCredentialsSecretArn}:SecretString"));
    assert_eq!(vars["JANITOR_CREDENTIALS_SECRET_ARN"], serde_json::json!({"Ref": "AlibabaCredentialsSecretArn"}));
    let ttl: u64 = vars["SECRETS_MANAGER_TTL"].as_str().and_then(|v| v.parse().ok()).expect("SECRETS_MANAGER_TTL");
    assert!((60..=900).contains(&ttl), "a rotated key must arrive within minutes: {ttl} s");
    assert_eq!(f["Layers"], serde_json::json!([{"Ref": "SecretsExtensionLayerArn"}]));
    let layer = params["SecretsExtensionLayerArn"]["AllowedPattern"].as_str().expect("the layer ARN is checked");
    assert!(layer.contains("Extension-Arm64"), "the function is arm64: {layer}");
    let grants = f["Policies"].as_array().expect("Policies");
    assert!(
        grants.contains(&serde_json::json!({"AWSSecretsManagerGetSecretValuePolicy":
            {"SecretArn": {"Ref": "AlibabaCredentialsSecretArn"}}})),
        "the function must be allowed to read the credentials secret: {grants:?}"
    );
    assert!(!vars.contains_key("ALIBABA_CLOUD_SECURITY_TOKEN"));
    // The mark key is generated by the stack, never a parameter or a literal.
    let key = vars["JANITOR_MARK_KEY"]["Fn::Sub"].as_str().expect("JANITOR_MARK_KEY is a dynamic reference");
    assert_eq!(key, "{{resolve:secretsmanager:${MarkKeySecret}:SecretString}}");
    let secret = &t["Resources"]["MarkKeySecret"];
    assert_eq!(secret["Type"], "AWS::SecretsManager::Secret");
    assert!(secret["Properties"]["GenerateSecretString"]["PasswordLength"].as_u64().unwrap_or(0) >= 32);
}

#[test]
fn serverless_devs_function_and_triggers() {
    let s = yaml("s.yaml");
    assert_eq!(s["edition"], "3.0.0");
    let resources = s["resources"].as_object().expect("resources");
    assert_eq!(resources.len(), 1);
    let (_, r) = resources.iter().next().unwrap();
    assert_eq!(r["component"], "fc3");
    let p = &r["props"];
    let runtime = p["runtime"].as_str().expect("runtime");
    assert!(["custom.debian10", "custom.debian11", "custom.debian12"].contains(&runtime), "runtime {runtime}");
    assert_eq!(p["customRuntimeConfig"]["command"], serde_json::json!(["/code/bootstrap"]));
    // Issue 13 item 14: fc3 treats the reservation as declared state; without it `s deploy` removes the limit.
    assert_eq!(p["concurrencyConfig"]["reservedConcurrency"], 1);
    assert_eq!(p["instanceConcurrency"], 1);
    assert_eq!(p["customRuntimeConfig"]["port"], 9000);
    assert_eq!(p["instanceConcurrency"], 1, "one request per instance");
    let code = p["code"].as_str().expect("code");
    assert!(read("mk/deploy.mk").contains(code.trim_start_matches("./")), "mk/deploy.mk does not build {code}");
    let env = p["environmentVariables"].as_object().expect("environmentVariables");
    for k in env.keys() {
        assert!(
            !k.starts_with("ALIBABA_CLOUD_"),
            "{k}: FC passes the role's credentials per request; never put keys in s.yaml"
        );
    }

    let triggers = p["triggers"].as_array().expect("triggers");
    let timers: Vec<&Value> = triggers.iter().filter(|t| t["triggerType"] == "timer").collect();
    assert_eq!(timers.len(), 1, "one timer trigger");
    let cron = timers[0]["triggerConfig"]["cronExpression"].as_str().expect("cronExpression");
    check_fc_cron(cron).unwrap();
    let bridges: Vec<&Value> = triggers.iter().filter(|t| t["triggerType"] == "eventbridge").collect();
    // Issue 13 item 15b: ECS state changes were claimed as a trigger, but only ActionTrail calls were matched.
    assert_eq!(bridges.len(), 2, "tag changes (ActionTrail calls) and ECS state changes");
    let mut types = Vec::new();
    for b in &bridges {
        // Issue 13 item 15d: the shape of fc3's own default-bus trigger (devsapp/fc3 `__tests__/e2e/trigger/eb/s.yaml`,
        // `defaultTrigger`), which fc3 sends to FC's CreateTrigger as it is (`src/resources/fc/index.ts`,
        // `deployTrigger`). No `invocationRole`: then fc3 creates the service-linked roles the trigger needs
        // (`src/base.ts`, `_handleDefaultTriggerRole`). No `runOptions`: a default-bus trigger is `event-driven`,
        // one event per invocation, and takes no batch window (FC 3.0 `RunOptions`).
        let mut keys: Vec<&str> =
            b["triggerConfig"].as_object().expect("triggerConfig").keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["asyncInvocationType", "eventRuleFilterPattern", "eventSourceConfig", "triggerEnable"]);
        assert!(b.get("invocationRole").is_none(), "{b}");
        assert_eq!(b["qualifier"], "LATEST");
        let pattern = b["triggerConfig"]["eventRuleFilterPattern"].as_str().expect("eventRuleFilterPattern");
        let pattern: Value = serde_json::from_str(pattern).expect("eventRuleFilterPattern is JSON");
        assert!(pattern.is_object());
        assert_eq!(b["triggerConfig"]["eventSourceConfig"]["eventSourceType"], "Default");
        types.push(pattern["type"].clone());
    }
    assert!(types.contains(&serde_json::json!(["ecs:Instance:StateChange"])), "{types:?}");
    // The state-change type the pattern matches is the one the parser accepts (from the catalog).
    let parsed = aliyun_janitor::event::parse(&read("events/alibaba-ecs-state-change.json").into_bytes());
    assert!(parsed.is_ok_and(|t| t.resources().is_some_and(|r| !r.targets.is_empty())));
}

/// Issue 13 item 9: the policy granted `alikafka:GetInstanceList`, which does not exist (Kafka listings were denied
/// on every run), plus actions nothing calls. The policy grants exactly the RAM actions of `deploy/ram-actions.json`,
/// and that table covers every API action the code names.
#[test]
fn ram_policy_grants_exactly_what_the_code_calls() {
    let table: Value = serde_json::from_str(&read("deploy/ram-actions.json")).expect("deploy/ram-actions.json is JSON");
    let rows = table["actions"].as_array().expect("actions");
    let policy: Value = serde_json::from_str(&read("deploy/ram-policy.json")).expect("JSON");
    let granted: std::collections::BTreeSet<String> = policy["Statement"]
        .as_array()
        .expect("Statement")
        .iter()
        .flat_map(|st| st["Action"].as_array().cloned().unwrap_or_default())
        .filter_map(|a| a.as_str().map(String::from))
        .collect();
    let needed: std::collections::BTreeSet<String> =
        rows.iter().filter_map(|r| r["ram"].as_str().map(String::from)).collect();
    assert_eq!(granted, needed, "the policy grants exactly the table's RAM actions");
    // Every action a product file (or billing) names is in the table for that file, and every row is still called.
    let verbs = ["Describe", "Delete", "Release", "Get", "List", "Tag", "Untag", "Modify", "Query"];
    let files: std::collections::BTreeSet<&str> = rows.iter().filter_map(|r| r["file"].as_str()).collect();
    for file in files {
        let text = read(file);
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        let listed: Vec<&str> = rows.iter().filter(|r| r["file"] == file).filter_map(|r| r["api"].as_str()).collect();
        for api in &listed {
            assert!(code.contains(&format!("\"{api}\"")), "{file} no longer calls {api}: drop its row");
        }
        for word in code.split('"').skip(1).step_by(2) {
            let action = verbs
                .iter()
                .any(|v| word.starts_with(v) && word[v.len()..].starts_with(|c: char| c.is_ascii_uppercase()))
                && word.chars().all(|c| c.is_ascii_alphanumeric())
                && !matches!(word, "TagVO" | "TagKey" | "TagValue");
            if action {
                assert!(
                    listed.contains(&word),
                    "{file} calls {word}, which deploy/ram-actions.json does not map to a RAM action"
                );
            }
        }
    }
}

#[test]
fn ram_policy_is_least_privilege() {
    let policy: Value = serde_json::from_str(&read("deploy/ram-policy.json")).expect("deploy/ram-policy.json is JSON");
    assert_eq!(policy["Version"], "1");
    let mut actions = Vec::new();
    for st in policy["Statement"].as_array().expect("Statement") {
        assert_eq!(st["Effect"], "Allow");
        for a in st["Action"].as_array().expect("Action list") {
            let a = a.as_str().unwrap();
            assert!(!a.contains('*'), "no wildcard actions: {a}");
            actions.push(a.to_string());
        }
    }
    for needed in [
        "ecs:DescribeInstances",
        "ecs:DeleteInstances",
        "ecs:TagResources",
        "kvstore:DeleteInstance",
        "kvstore:TagResources",
        "kvstore:UntagResources",
        "alikafka:ReleaseInstance",
        "alikafka:TagResources",
        "alikafka:UntagResources",
        "kms:ReleaseKmsInstance",
    ] {
        assert!(actions.iter().any(|a| a == needed), "{needed} is missing");
    }
    // Nothing that creates, starts, modifies access or reads data.
    for a in &actions {
        let verb = a.split(':').nth(1).unwrap_or("");
        assert!(
            ["Describe", "List", "Get", "Query", "Delete", "Release", "Tag", "Untag", "ModifyInstanceAutoReleaseTime"]
                .iter()
                .any(|p| verb.starts_with(p)),
            "{a} is more than the janitor needs"
        );
    }
}

#[test]
fn shipped_policy_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/policy.yaml");
    let policy = aliyun_janitor::policy::Policy::from_file(&path).unwrap_or_else(|e| panic!("{e}"));
    assert!(!policy.apply, "the shipped policy starts as a dry run");
}

/// Issue 15: the management identity's policy (deploy/ram-org-policy.json) grants exactly what an organisation run
/// calls with it: Resource Manager's listings (src/org/discovery.rs) and STS AssumeRole into each member's role
/// (the default role name of the policy's `accounts:`); each member's role needs deploy/ram-policy.json.
#[test]
fn ram_org_policy_grants_exactly_what_the_org_code_calls() {
    let policy: Value = serde_json::from_str(&read("deploy/ram-org-policy.json")).expect("deploy/ram-org-policy.json");
    assert_eq!(policy["Version"], "1");
    let mut granted = std::collections::BTreeMap::new();
    for st in policy["Statement"].as_array().expect("Statement") {
        assert_eq!(st["Effect"], "Allow");
        for a in st["Action"].as_array().expect("Action list") {
            granted.insert(a.as_str().unwrap().to_string(), st["Resource"].clone());
        }
    }
    let discovery = read("src/org/discovery.rs");
    let code = discovery.split("#[cfg(test)]").next().unwrap_or("");
    assert!(code.contains("ApiRequest::new(\"resourcemanager\""), "discovery no longer calls Resource Manager");
    let mut needed: Vec<String> = ["ListAccounts", "ListAccountsForParent"]
        .iter()
        .map(|api| {
            assert!(code.contains(&format!("\"{api}\"")), "src/org/discovery.rs no longer calls {api}: drop it");
            format!("resourcemanager:{api}")
        })
        .collect();
    // Every Resource Manager action the discovery names is granted (GetResourceDirectory is not called).
    for word in code.split('"').skip(1).step_by(2) {
        if ["List", "Get", "Describe"].iter().any(|v| word.starts_with(v))
            && word.chars().all(|c| c.is_ascii_alphanumeric())
        {
            assert!(granted.contains_key(&format!("resourcemanager:{word}")), "discovery calls {word}, not granted");
        }
    }
    assert!(read("src/credentials/sts.rs").contains("\"AssumeRole\""));
    needed.push("sts:AssumeRole".into());
    let mut keys: Vec<String> = granted.keys().cloned().collect();
    needed.sort();
    keys.sort();
    assert_eq!(keys, needed, "the org policy grants exactly the calls the organisation code makes");
    // AssumeRole only into the members' role, in any account of the directory.
    let role = aliyun_janitor::policy::accounts::DEFAULT_ROLE_NAME;
    assert_eq!(granted["sts:AssumeRole"], serde_json::json!(format!("acs:ram::*:role/{role}")));
}
