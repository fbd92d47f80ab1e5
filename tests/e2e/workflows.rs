//! The organisation workflows against the janitor's shard contract (src/org/contract.rs): the Step Functions state
//! machine in template.yaml and the CloudFlow flow in deploy/cloudflow.yaml are run here by a small interpreter of
//! the part of each language they use (ASL JSONPath: Parameters, ItemSelector, ResultSelector, ResultPath,
//! OutputPath, Map, Catch, Pass; CloudFlow FDL: Parameters, OutputConstructor, Map, Catch, Pass). The function each
//! Task invokes is the contract itself: every document a Task sends must deserialise as the right `Step`, and
//! every answer is what the step answers (the plan sized for the engine, a shard's result cut to its budget, the
//! real merge step). Every state's input and output is measured against the engine's limit for a large
//! organisation (200 accounts x 20 regions, every answer at the contract's maximum ids per list), and one shard
//! fails to check the catch path: the merge still runs and names it.

use std::collections::BTreeMap;
use std::path::Path;

use aliyun_janitor::org::contract::{
    AccountResult, AccountStatus, Plan, PlanSummary, ShardResult, Step, WorkflowEngine, WorkflowPlan,
    CLOUDFLOW_PAYLOAD_LIMIT, MAX_IDS, STEP_FUNCTIONS_PAYLOAD_LIMIT,
};
use aliyun_janitor::org::shards::{self, Sizing};
use serde_json::{json, Map, Value};

fn read(rel: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn yaml(rel: &str) -> Value {
    serde_norway::from_str(&read(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

const FUNCTION_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:aliyun-janitor";
const ACCOUNTS: usize = 200;
const REGIONS: usize = 20;
/// The shard that fails as a whole in every run here (its function invocation errors).
const FAILING_SHARD: &str = "shard-0003";

fn template() -> Value {
    yaml("template.yaml")
}

/// The state machine's definition: the Fn::Sub text with the template's own substitutions made.
fn asl() -> Value {
    let t = template();
    let sm = &t["Resources"]["OrgStateMachine"];
    assert_eq!(sm["Type"], "AWS::StepFunctions::StateMachine");
    assert_eq!(sm["Condition"], "HasOrgWorkflow");
    let text = sm["Properties"]["DefinitionString"]["Fn::Sub"].as_str().expect("DefinitionString is an Fn::Sub");
    let concurrency = t["Parameters"]["MaxConcurrency"]["Default"].as_u64().expect("MaxConcurrency default");
    let text = text
        .replace("${AWS::Partition}", "aws")
        .replace("${JanitorFunction.Arn}", FUNCTION_ARN)
        .replace("${MaxConcurrency}", &concurrency.to_string());
    assert!(!text.contains("${"), "an unsubstituted reference is left: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("the state machine definition is not JSON: {e}"))
}

/// The flow definition with its two placeholders made.
fn fdl() -> Value {
    let text = read("deploy/cloudflow.yaml")
        .replace("${ALIBABA_CLOUD_REGION}", "cn-hangzhou")
        .replace("${ALIBABA_CLOUD_ACCOUNT_ID}", "1234567890123456");
    assert!(!text.contains("${"), "an unsubstituted placeholder is left in deploy/cloudflow.yaml");
    serde_norway::from_str(&text).expect("deploy/cloudflow.yaml is YAML")
}

fn size(v: &Value) -> usize {
    serde_json::to_vec(v).unwrap().len()
}

// ---------------------------------------------------------------------------------------------------------------
// The function: the contract's answers, as large as the contract lets them be.

fn account_ids() -> Vec<String> {
    (0..ACCOUNTS).map(|i| format!("{}", 1_200_000_000_000_000u64 + i as u64)).collect()
}

fn regions() -> Vec<String> {
    (0..REGIONS).map(|i| format!("ap-southeast-{i}")).collect()
}

fn big_plan() -> Plan {
    let accounts = account_ids();
    let shards = shards::plan(&accounts, &regions(), &BTreeMap::new(), &Sizing::default(), Some(500));
    Plan {
        org_run_id: "0b7c6f1e-8f5a-4c52-9d0e-5a6f3d2c1b00".into(),
        now: "2026-12-01T19:00:00Z".into(),
        summary: PlanSummary {
            accounts: accounts.len(),
            shards: shards.len(),
            excluded: Vec::new(),
            planned_by: "1999999999999999".into(),
            mode: "apply".into(),
        },
        shards,
    }
}

/// One account's result at the contract's maxima: `MAX_IDS` ids in every list, every scope scanned, long notes.
fn full_account(account: &str, regions: &[String]) -> AccountResult {
    let lists = ["released", "would_release", "marked", "unmarked", "finished", "held", "failed"];
    AccountResult {
        account_id: account.to_string(),
        status: AccountStatus::Ran,
        reason: None,
        counts: lists.iter().map(|k| (k.to_string(), 250)).chain([("kept".to_string(), 4000)]).collect(),
        scanned: ["ecs", "redis", "kafka", "kms"]
            .iter()
            .flat_map(|p| regions.iter().map(move |r| (format!("{p}/{r}"), 1000)))
            .collect(),
        ids: lists
            .iter()
            .map(|k| (k.to_string(), (0..MAX_IDS).map(|n| format!("ecs:{}/i-t4n{n:017}", regions[0])).collect()))
            .collect(),
        truncated: true,
        limit_breach: Some(format!("{} eligible of 6000 scanned: more than 25% of the fleet", 1750)),
        skipped_scopes: regions.iter().take(3).map(|r| format!("kms/{r}: Forbidden.RAM")).collect(),
        degraded: true,
    }
}

/// What the janitor's function answers to a step document, as `handle_step` does (src/org/mod.rs), or the error
/// name the platform reports when the invocation fails.
async fn invoke(payload: &Value, engine: WorkflowEngine) -> Result<Value, String> {
    let step: Step = serde_json::from_value(payload.clone())
        .unwrap_or_else(|e| panic!("a Task sent a document that is not a step ({e}): {payload}"));
    match step {
        Step::Plan { counts, for_workflow } => {
            assert!(counts.is_empty());
            assert_eq!(for_workflow, Some(engine), "the plan step must be asked for this engine's sizes");
            let sized: WorkflowPlan = big_plan().for_workflow(engine).expect("200 accounts fit both engines");
            Ok(serde_json::to_value(sized).unwrap())
        }
        Step::RunShard { org_run_id, now, shard } => {
            let plan = big_plan();
            assert_eq!((org_run_id.as_str(), now.as_str()), (plan.org_run_id.as_str(), plan.now.as_str()));
            assert!(plan.shards.iter().any(|s| s.id == shard.id && s.accounts == shard.accounts));
            if shard.id == FAILING_SHARD {
                return Err(match engine {
                    WorkflowEngine::StepFunctions => "Lambda.Unknown".into(),
                    WorkflowEngine::CloudFlow => "FC.Unknown".into(),
                });
            }
            let mut result = ShardResult {
                shard_id: shard.id.clone(),
                accounts: shard.accounts.iter().map(|a| full_account(a, &shard.regions)).collect(),
                elapsed_ms: 95_000,
            };
            let budget = shard.answer_bytes.expect("a workflow's shard carries its answer budget");
            assert!(result.fit(budget), "{} cannot answer within {budget} bytes", shard.id);
            Ok(serde_json::to_value(result).unwrap())
        }
        Step::Merge { for_workflow, .. } => {
            assert_eq!(for_workflow, Some(engine));
            // The real merge step, through the binary's step entry point (`aliyun-janitor org -`), as Lambda and
            // FC run it; no webhook is configured and no call leaves loopback.
            Ok(merge_in_binary(payload).await)
        }
    }
}

async fn merge_in_binary(payload: &Value) -> Value {
    let dir = tempfile_dir();
    let policy = dir.join("org.yaml");
    std::fs::write(
        &policy,
        "regions: [cn-hangzhou]\naccounts: { discovery: resource-directory }\nrules:\n  - name: r\n    filters: { ttl_tag: ttl }\n",
    )
    .unwrap();
    let step = dir.join("merge.json");
    std::fs::write(&step, serde_json::to_vec(payload).unwrap()).unwrap();
    let mut cmd = std::process::Command::new(crate::support::BIN);
    cmd.arg("org").arg(&step).arg("--policy").arg(&policy);
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", &dir)
        .env("JANITOR_ENDPOINT", crate::support::NO_METADATA)
        .env("JANITOR_ECS_METADATA_ENDPOINT", crate::support::NO_METADATA)
        .env("ALIBABA_CLOUD_ACCESS_KEY_ID", crate::support::KEY_ID)
        .env("ALIBABA_CLOUD_ACCESS_KEY_SECRET", crate::support::SECRET)
        .env("RUST_LOG", "warn");
    let out = tokio::task::spawn_blocking(move || cmd.output()).await.unwrap().expect("the binary runs");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(out.status.success(), "merge failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("the merge answers JSON")
}

fn tempfile_dir() -> std::path::PathBuf {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("janitor-workflows-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Every step document sent, every state's input and output size, per run.
#[derive(Default)]
struct Trace {
    steps: Vec<Value>,
    /// (state, input bytes, output bytes)
    sizes: Vec<(String, usize, usize)>,
    merge_answer: Option<Value>,
}

impl Trace {
    fn largest(&self) -> usize {
        self.sizes.iter().map(|(_, i, o)| *i.max(o)).max().unwrap_or(0)
    }

    fn check(&self, limit: usize, engine: &str) {
        for (state, i, o) in &self.sizes {
            assert!(*i <= limit && *o <= limit, "{engine} state {state}: input {i} / output {o} bytes > {limit}");
        }
        let (mut plans, mut shards, mut merges) = (0, 0, 0);
        for s in &self.steps {
            match s["janitor_step"].as_str() {
                Some("plan") => plans += 1,
                Some("run_shard") => shards += 1,
                Some("merge") => merges += 1,
                other => panic!("{other:?}"),
            }
        }
        let planned = big_plan().shards.len();
        assert_eq!((plans, shards, merges), (1, planned, 1), "{engine}: one plan, every shard once, one merge");
        let merged = self.merge_answer.as_ref().expect("the merge ran");
        assert_eq!(merged["accounts_planned"], ACCOUNTS);
        assert_eq!(merged["shards_failed"][0]["account_id"], FAILING_SHARD, "{engine}: {merged}");
        assert_eq!(merged["shards_failed"].as_array().unwrap().len(), 1);
        let failed_accounts = big_plan().shards.iter().find(|s| s.id == FAILING_SHARD).unwrap().accounts.len();
        assert_eq!(merged["accounts_ran"], ACCOUNTS - failed_accounts, "{engine}: every other account merged");
        assert_eq!(merged["degraded"], true);
        // The merge decides nothing: its totals are the shards' counts.
        assert_eq!(merged["totals"]["released"], (ACCOUNTS - failed_accounts) * 250);
        println!(
            "{engine}: {planned} shards, largest state {} bytes of {limit} ({:.0}%), merge input {} bytes",
            self.largest(),
            100.0 * self.largest() as f64 / limit as f64,
            self.sizes.iter().find(|(s, ..)| s == "Merge").map_or(0, |(_, i, _)| *i)
        );
    }
}

// ---------------------------------------------------------------------------------------------------------------
// ASL (JSONPath): the subset the state machine uses.

/// A path: `$`, `$.a.b` into `data`, or `$$.a.b` into the context object.
fn asl_path(path: &str, data: &Value, context: &Value) -> Value {
    let (root, rest) = if let Some(r) = path.strip_prefix("$$") {
        (context, r)
    } else if let Some(r) = path.strip_prefix('$') {
        (data, r)
    } else {
        panic!("not a path: {path}")
    };
    let mut v = root;
    for key in rest.split('.').filter(|k| !k.is_empty()) {
        v = v.get(key).unwrap_or_else(|| panic!("{path}: no `{key}` in {}", short(v)));
    }
    v.clone()
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    s.chars().take(300).collect()
}

/// Parameters / ItemSelector / ResultSelector: a template whose `key.$` fields take a path's value.
fn asl_template(t: &Value, data: &Value, context: &Value) -> Value {
    match t {
        Value::Object(fields) => {
            let mut out = Map::new();
            for (k, v) in fields {
                match k.strip_suffix(".$") {
                    Some(name) => {
                        let path = v.as_str().expect("a .$ field holds a path");
                        assert!(!path.starts_with("States."), "intrinsic functions are not used: {path}");
                        out.insert(name.to_string(), asl_path(path, data, context));
                    }
                    None => {
                        out.insert(k.clone(), asl_template(v, data, context));
                    }
                }
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

/// ResultPath: `$` replaces the input, `$.x` sets one field of it.
fn asl_result_path(state: &Value, input: &Value, result: Value) -> Value {
    match state.get("ResultPath").and_then(Value::as_str).unwrap_or("$") {
        "$" => result,
        path => {
            let key = path.strip_prefix("$.").expect("ResultPath $ or $.field");
            assert!(!key.contains('.'), "one level: {path}");
            let mut out = input.clone();
            out.as_object_mut().expect("the input is an object").insert(key.to_string(), result);
            out
        }
    }
}

fn asl_output_path(state: &Value, v: Value) -> Value {
    match state.get("OutputPath").and_then(Value::as_str) {
        None => v,
        Some(p) => asl_path(p, &v, &Value::Null),
    }
}

async fn asl_run(machine: &Value, input: Value, context: &Value, trace: &mut Trace) -> Value {
    let states = machine["States"].as_object().expect("States");
    let mut name = machine["StartAt"].as_str().expect("StartAt").to_string();
    let mut data = input;
    loop {
        let state = &states[&name];
        let input_bytes = size(&data);
        let output = match state["Type"].as_str() {
            Some("Task") => {
                assert_eq!(state["Resource"], "arn:aws:states:::lambda:invoke", "{name}");
                let params = asl_template(&state["Parameters"], &data, context);
                assert_eq!(params["FunctionName"], FUNCTION_ARN, "{name} invokes the janitor function");
                let payload = params["Payload"].clone();
                assert!(size(&payload) <= STEP_FUNCTIONS_PAYLOAD_LIMIT, "{name}: the invocation payload");
                trace.steps.push(payload.clone());
                match Box::pin(invoke(&payload, WorkflowEngine::StepFunctions)).await {
                    Ok(answer) => {
                        // The lambda:invoke integration's result (Step Functions "Invoke Lambda"): the function's
                        // answer under Payload, with the call's metadata.
                        let raw = json!({"ExecutedVersion": "$LATEST", "Payload": answer, "StatusCode": 200,
                                         "SdkHttpMetadata": {"HttpStatusCode": 200}});
                        assert!(size(&raw) <= STEP_FUNCTIONS_PAYLOAD_LIMIT, "{name}: the task result");
                        if payload["janitor_step"] == "merge" {
                            trace.merge_answer = Some(raw["Payload"].clone());
                        }
                        let selected = match state.get("ResultSelector") {
                            Some(sel) => asl_template(sel, &raw, context),
                            None => raw,
                        };
                        let out = asl_output_path(state, asl_result_path(state, &data, selected));
                        trace.sizes.push((name.clone(), input_bytes, size(&out)));
                        out
                    }
                    Err(error) => {
                        let catcher = state["Catch"]
                            .as_array()
                            .and_then(|c| {
                                c.iter().find(|c| {
                                    c["ErrorEquals"]
                                        .as_array()
                                        .unwrap()
                                        .iter()
                                        .any(|e| e == "States.ALL" || e == &error)
                                })
                            })
                            .unwrap_or_else(|| panic!("{name}: {error} is not caught"));
                        let caught = json!({"Error": error, "Cause": "{\"errorMessage\": \"...\"}"});
                        data = asl_result_path(catcher, &data, caught);
                        trace.sizes.push((name.clone(), input_bytes, size(&data)));
                        name = catcher["Next"].as_str().expect("Catch Next").to_string();
                        continue;
                    }
                }
            }
            Some("Map") => {
                let items = asl_path(state["ItemsPath"].as_str().unwrap_or("$"), &data, context);
                let items = items.as_array().expect("ItemsPath is an array").clone();
                let processor = &state["ItemProcessor"];
                assert_eq!(processor["ProcessorConfig"]["Mode"], "INLINE");
                let mut results = Vec::new();
                for (index, item) in items.into_iter().enumerate() {
                    let ctx = json!({"Map": {"Item": {"Index": index, "Value": item}}});
                    let iteration = asl_template(&state["ItemSelector"], &data, &ctx);
                    results.push(Box::pin(asl_run(processor, iteration, &ctx, trace)).await);
                }
                let out = asl_output_path(state, asl_result_path(state, &data, Value::Array(results)));
                trace.sizes.push((name.clone(), input_bytes, size(&out)));
                out
            }
            Some("Pass") => {
                let out = match state.get("Parameters") {
                    Some(p) => asl_template(p, &data, context),
                    None => data.clone(),
                };
                let out = asl_output_path(state, asl_result_path(state, &data, out));
                trace.sizes.push((name.clone(), input_bytes, size(&out)));
                out
            }
            other => panic!("{name}: state type {other:?} is not used here"),
        };
        data = output;
        if state["End"] == true {
            return data;
        }
        name = state["Next"].as_str().unwrap_or_else(|| panic!("{name}: neither Next nor End")).to_string();
    }
}

#[tokio::test]
async fn step_functions_states_match_the_shard_contract_within_256_kib() {
    let machine = asl();
    let mut trace = Trace::default();
    let out = asl_run(&machine, json!({}), &Value::Null, &mut trace).await;
    trace.check(STEP_FUNCTIONS_PAYLOAD_LIMIT, "Step Functions");
    // The execution's output is the merge's short summary, not the per-account detail.
    assert_eq!(out["org_run_id"], big_plan().org_run_id);
    assert!(out.get("accounts").is_none() && size(&out) < STEP_FUNCTIONS_PAYLOAD_LIMIT, "{}", short(&out));
    // Every shard document the Map sent carries the plan's id and clock and one planned shard.
    for s in trace.steps.iter().filter(|s| s["janitor_step"] == "run_shard") {
        assert!(s["shard"]["answer_bytes"].as_u64().unwrap() > 0);
    }
}

#[test]
fn step_functions_retries_catches_and_limits() {
    let machine = asl();
    let t = template();
    let states = machine["States"].as_object().unwrap();
    let transient = [
        "Lambda.TooManyRequestsException",
        "Lambda.ServiceException",
        "Lambda.AWSLambdaException",
        "Lambda.SdkClientException",
    ];
    let function_timeout = t["Resources"]["JanitorFunction"]["Properties"]["Timeout"].as_u64().unwrap();
    let retried = |state: &Value| -> Vec<String> {
        state["Retry"]
            .as_array()
            .unwrap_or_else(|| panic!("no Retry: {state}"))
            .iter()
            .flat_map(|r| {
                assert!(r["BackoffRate"].as_f64().unwrap() >= 2.0 && r["JitterStrategy"] == "FULL", "{r}");
                r["ErrorEquals"].as_array().unwrap().iter().map(|e| e.as_str().unwrap().to_string()).collect::<Vec<_>>()
            })
            .collect()
    };
    for name in ["Plan", "Merge"] {
        assert_eq!(retried(&states[name]), transient, "{name} retries every transient Lambda error");
        assert!(states[name].get("Catch").is_none(), "a failed {name} fails the execution (nothing is released)");
    }
    let map = &states["Shards"];
    let max_concurrency = t["Parameters"]["MaxConcurrency"].clone();
    assert!(max_concurrency["MaxValue"].as_u64().unwrap() <= 40, "the inline Map's practical concurrency");
    assert_eq!(map["MaxConcurrency"], max_concurrency["Default"]);
    let run = &map["ItemProcessor"]["States"]["RunShard"];
    // Only a refused invocation is retried: a shard that may have run must not spend its budget twice.
    assert_eq!(retried(run), ["Lambda.TooManyRequestsException"]);
    assert_eq!(run["Catch"][0]["ErrorEquals"], json!(["States.ALL"]));
    for state in [&states["Plan"], run, &states["Merge"]] {
        let timeout = state["TimeoutSeconds"].as_u64().expect("a task timeout");
        assert!(timeout > function_timeout, "the task outlives the function's own timeout");
    }
    // Least privilege: the state machine may invoke the one function, the schedule may start the one machine.
    let role = &t["Resources"]["OrgStateMachineRole"]["Properties"];
    assert_eq!(role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["Service"], "states.amazonaws.com");
    let grants = role["Policies"].as_array().unwrap();
    assert_eq!(grants.len(), 1);
    assert_eq!(
        grants[0]["PolicyDocument"]["Statement"],
        json!([{"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": {"Fn::GetAtt": ["JanitorFunction", "Arn"]}}])
    );
    let schedule = &t["Resources"]["OrgSchedule"]["Properties"];
    assert_eq!(schedule["Target"]["Arn"], json!({"Ref": "OrgStateMachine"}));
    assert_eq!(schedule["ScheduleExpression"], json!({"Ref": "OrgScheduleExpression"}));
    assert_eq!(schedule["Target"]["RetryPolicy"]["MaximumRetryAttempts"], 0);
    let scheduler = &t["Resources"]["OrgScheduleRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"];
    assert_eq!(
        scheduler,
        &json!([{"Effect": "Allow", "Action": "states:StartExecution", "Resource": {"Ref": "OrgStateMachine"}}])
    );
    // Every organisation resource exists only with the workflow on, and the function's own schedule is then off.
    for (id, r) in t["Resources"].as_object().unwrap() {
        if id.starts_with("Org") {
            assert_eq!(r["Condition"], "HasOrgWorkflow", "{id}");
        }
    }
    let nightly = &t["Resources"]["JanitorFunction"]["Properties"]["Events"]["Nightly"]["Properties"];
    assert_eq!(nightly["State"], json!({"Fn::If": ["HasOrgWorkflow", "DISABLED", "ENABLED"]}));
    assert_eq!(t["Parameters"]["OrgWorkflow"]["Default"], "false", "the organisation workflow is opt-in");
}

// ---------------------------------------------------------------------------------------------------------------
// CloudFlow FDL: the subset the flow uses.

/// `$Input.a.b`, `$Output.a.b`, `$Context.a.b`.
fn fdl_expr(expr: &str, input: &Value, output: &Value, context: &Value) -> Value {
    let mut parts = expr.split('.');
    let mut v = match parts.next() {
        Some("$Input") => input,
        Some("$Output") => output,
        Some("$Context") => context,
        other => panic!("not an expression the flow should use: {other:?} in {expr}"),
    };
    for key in parts {
        v = v.get(key).unwrap_or_else(|| panic!("{expr}: no `{key}` in {}", short(v)));
    }
    v.clone()
}

fn fdl_construct(t: &Value, input: &Value, output: &Value, context: &Value) -> Value {
    match t {
        Value::Object(fields) => {
            let mut out = Map::new();
            for (k, v) in fields {
                match k.strip_suffix(".$") {
                    Some(name) => {
                        out.insert(name.into(), fdl_expr(v.as_str().expect("expression"), input, output, context))
                    }
                    None => out.insert(k.clone(), fdl_construct(v, input, output, context)),
                };
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

const FC_ARN: &str = "acs:fc:cn-hangzhou:1234567890123456:functions/aliyun-janitor/LATEST";

async fn fdl_run(states: &[Value], start: &str, input: Value, trace: &mut Trace) -> Value {
    let by_name: BTreeMap<&str, &Value> = states.iter().map(|s| (s["Name"].as_str().expect("Name"), s)).collect();
    let mut name = start.to_string();
    let mut data = input;
    loop {
        let state = by_name[name.as_str()];
        let input_bytes = size(&data);
        let output = match state["Type"].as_str() {
            Some("Task") => {
                assert_eq!(state["Action"], "FC:InvokeFunction", "{name}");
                assert_eq!(state["TaskMode"], "RequestComplete", "{name}");
                let params = fdl_construct(&state["Parameters"], &data, &Value::Null, &Value::Null);
                assert_eq!(params["invocationType"], "Sync", "{name}");
                assert_eq!(params["resourceArn"], FC_ARN, "{name}");
                let body = params["body"].clone();
                assert!(size(&body) <= CLOUDFLOW_PAYLOAD_LIMIT);
                trace.steps.push(body.clone());
                match Box::pin(invoke(&body, WorkflowEngine::CloudFlow)).await {
                    Ok(answer) => {
                        if body["janitor_step"] == "merge" {
                            trace.merge_answer = Some(answer.clone());
                        }
                        // "Integrate CloudFlow with Function Compute": the function's answer is read as $Output.Body.
                        let raw = json!({"Body": answer, "StatusCode": 200});
                        assert!(size(&raw) <= CLOUDFLOW_PAYLOAD_LIMIT, "{name}: the task's output event");
                        let out = fdl_construct(&state["OutputConstructor"], &data, &raw, &Value::Null);
                        trace.sizes.push((name.clone(), input_bytes, size(&out)));
                        out
                    }
                    Err(code) => {
                        let catcher = state["Catch"]
                            .as_array()
                            .and_then(|c| {
                                c.iter().find(|c| {
                                    c["Errors"].as_array().unwrap().iter().any(|e| e == "FnF.ALL" || e == &code)
                                })
                            })
                            .unwrap_or_else(|| panic!("{name}: {code} is not caught"));
                        let context = json!({"Current": {"Error": {"Code": code, "Detail": "..."}}});
                        data = fdl_construct(&catcher["OutputConstructor"], &data, &Value::Null, &context);
                        trace.sizes.push((name.clone(), input_bytes, size(&data)));
                        name = catcher["Next"].as_str().expect("Catch Next").to_string();
                        continue;
                    }
                }
            }
            Some("Map") => {
                let items =
                    fdl_expr(state["ItemsPath"].as_str().expect("ItemsPath"), &data, &Value::Null, &Value::Null);
                let processor = &state["Processor"];
                let sub = processor["States"].as_array().expect("Processor.States").clone();
                let start = processor["StartAt"].as_str().expect("Processor.StartAt").to_string();
                let mut results = Vec::new();
                for item in items.as_array().expect("ItemsPath is an array") {
                    results.push(Box::pin(fdl_run(&sub, &start, item.clone(), trace)).await);
                }
                // "Map state: inline mode": the iterations' outputs are collected under Items.
                let raw = json!({"Items": results});
                let out = fdl_construct(&state["OutputConstructor"], &data, &raw, &Value::Null);
                trace.sizes.push((name.clone(), input_bytes, size(&out)));
                out
            }
            Some("Pass") => {
                trace.sizes.push((name.clone(), input_bytes, input_bytes));
                data.clone()
            }
            other => panic!("{name}: state type {other:?} is not used here"),
        };
        data = output;
        if state["End"] == true {
            return data;
        }
        name = state["Next"].as_str().unwrap_or_else(|| panic!("{name}: neither Next nor End")).to_string();
    }
}

#[tokio::test]
async fn cloudflow_states_match_the_shard_contract_within_64_kib() {
    let flow = fdl();
    assert_eq!((flow["Type"].as_str(), flow["SpecVersion"].as_str()), (Some("StateMachine"), Some("v1")));
    let states = flow["States"].as_array().expect("States").clone();
    let mut trace = Trace::default();
    let out = fdl_run(&states, flow["StartAt"].as_str().unwrap(), json!({}), &mut trace).await;
    trace.check(CLOUDFLOW_PAYLOAD_LIMIT, "CloudFlow");
    assert_eq!(out["org_run_id"], big_plan().org_run_id);
    assert!(out.get("accounts").is_none());
}

#[test]
fn cloudflow_retries_catches_and_deployment_files() {
    let flow = fdl();
    let states = flow["States"].as_array().unwrap();
    let by_name = |list: &[Value], n: &str| list.iter().find(|s| s["Name"] == n).cloned().unwrap();
    let map = by_name(states, "Shards");
    assert_eq!(map["Type"], "Map");
    let concurrency = map["MaxConcurrency"].as_u64().expect("MaxConcurrency");
    assert!((1..=100).contains(&concurrency));
    let run = by_name(map["Processor"]["States"].as_array().unwrap(), "RunShard");
    let retried = |s: &Value| -> Vec<Value> {
        s["Retry"].as_array().unwrap().iter().flat_map(|r| r["Errors"].as_array().unwrap().clone()).collect()
    };
    assert_eq!(retried(&run), [json!("FC.ResourceThrottled")], "only a refused call is retried");
    assert_eq!(run["Catch"][0]["Errors"], json!(["FnF.ALL"]));
    for s in ["Plan", "Merge"] {
        assert!(retried(&by_name(states, s)).contains(&json!("FC.ResourceThrottled")), "{s}");
    }
    // The flow invokes the function s.yaml deploys.
    let s = yaml("s.yaml");
    let function = s["vars"]["functionName"].as_str().unwrap();
    assert!(FC_ARN.ends_with(&format!("functions/{function}/LATEST")));
    // The flow's role: trusted by CloudFlow only, allowed to invoke that one function only.
    let trust: Value = serde_json::from_str(&read("deploy/cloudflow-trust-policy.json")).unwrap();
    assert_eq!(trust["Statement"][0]["Principal"]["Service"], json!(["fnf.aliyuncs.com"]));
    assert_eq!(trust["Statement"].as_array().unwrap().len(), 1);
    let invoke: Value = serde_json::from_str(&read("deploy/cloudflow-invoke-policy.json")).unwrap();
    assert_eq!(invoke["Statement"].as_array().unwrap().len(), 1);
    assert_eq!(invoke["Statement"][0]["Action"], json!(["fc:InvokeFunction"]));
    let resource = invoke["Statement"][0]["Resource"][0].as_str().unwrap();
    assert!(resource.ends_with(&format!(":functions/{function}")), "{resource}");
    // docs/workflows.md shows the commands that deploy these files.
    let docs = read("docs/workflows.md");
    for needed in ["aliyun fnf CreateFlow", "aliyun fnf CreateSchedule", "deploy/cloudflow.yaml", "ListExecutions"] {
        assert!(docs.contains(needed), "docs/workflows.md does not mention {needed}");
    }
}
