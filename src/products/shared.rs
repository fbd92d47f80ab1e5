//! Small helpers the adapters share: decoding an answer with the failing field named, lenient scalars for
//! APIs whose documentation shows both spellings, and per-id detail reads.

use std::future::Future;

use serde::de::{self, DeserializeOwned, Deserializer};
use serde::Deserialize;
use serde_json::Value;

use super::TagReport;
use crate::aliyun::ApiError;

pub(crate) fn shape(action: &str, detail: impl Into<String>) -> ApiError {
    ApiError::Shape { action: action.into(), detail: detail.into() }
}

/// The `RequestId` of an answer (empty when the service sent none).
pub(crate) fn request_id(v: &Value) -> String {
    v.get("RequestId").and_then(Value::as_str).unwrap_or_default().to_string()
}

/// Most tags one tag call may write or remove (ECS, Redis and Kafka alike: `Tag.N`/`TagKey.N`, N ≤ 20).
pub(crate) const MAX_TAGS_PER_CALL: usize = 20;

/// `Tag.N.Key`/`Tag.N.Value` parameters for `TagResources`, checked against [`MAX_TAGS_PER_CALL`].
pub(crate) fn tag_params(tags: &std::collections::BTreeMap<String, String>) -> Result<Vec<(String, String)>, ApiError> {
    if tags.is_empty() || tags.len() > MAX_TAGS_PER_CALL {
        return Err(shape("TagResources", format!("{} tags: expected 1 to {MAX_TAGS_PER_CALL}", tags.len())));
    }
    Ok(tags
        .iter()
        .enumerate()
        .flat_map(|(i, (k, v))| {
            [(format!("Tag.{}.Key", i + 1), k.clone()), (format!("Tag.{}.Value", i + 1), v.clone())]
        })
        .collect())
}

/// `TagKey.N` parameters for `UntagResources`, checked against [`MAX_TAGS_PER_CALL`].
pub(crate) fn untag_params(keys: &[String]) -> Result<Vec<(String, String)>, ApiError> {
    if keys.is_empty() || keys.len() > MAX_TAGS_PER_CALL {
        return Err(shape("UntagResources", format!("{} keys: expected 1 to {MAX_TAGS_PER_CALL}", keys.len())));
    }
    Ok(keys.iter().enumerate().map(|(i, k)| (format!("TagKey.{}", i + 1), k.clone())).collect())
}

/// Deserializes an answer, naming the offending field (as `Client::call_json` does).
pub(crate) fn decode<T: DeserializeOwned>(action: &str, value: Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(value).map_err(|e| shape(action, format!("at `{}`: {}", e.path(), e.inner())))
}

/// `true`/`false` as a JSON boolean or as the strings `"true"`/`"false"` (Kafka, Redis samples show both).
pub(crate) fn lenient_bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    match Value::deserialize(d)? {
        Value::Bool(b) => Ok(b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
        other => Err(de::Error::custom(format!("expected true or false, found {other}"))),
    }
}

/// An integer given as a JSON number or a decimal string (`"200"`).
pub(crate) fn lenient_i64<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    match Value::deserialize(d)? {
        Value::Number(n) => n.as_i64().ok_or_else(|| de::Error::custom(format!("expected an integer, found {n}"))),
        Value::String(s) => {
            s.trim().parse().map_err(|_| de::Error::custom(format!("expected an integer, found \"{s}\"")))
        }
        other => Err(de::Error::custom(format!("expected an integer, found {other}"))),
    }
}

/// Like [`lenient_i64`] for an optional field: `null` reads as absent.
pub(crate) fn lenient_opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        v => lenient_i64(v).map(Some).map_err(de::Error::custom),
    }
}

/// Reads every id with `read` (at most `parallel` at a time; the client also bounds requests per endpoint),
/// in id order. `Ok(None)` from `read` means the id no longer exists. The first error fails the whole read.
pub(crate) async fn read_each<T, F, Fut>(ids: &[String], parallel: usize, read: F) -> Result<Vec<T>, ApiError>
where
    T: Send + 'static,
    F: Fn(String) -> Fut,
    Fut: Future<Output = Result<Option<T>, ApiError>> + Send + 'static,
{
    let mut out: Vec<(usize, T)> = Vec::with_capacity(ids.len());
    for (chunk_index, chunk) in ids.chunks(parallel.max(1)).enumerate() {
        let mut tasks = tokio::task::JoinSet::new();
        for (i, id) in chunk.iter().enumerate() {
            let fut = read(id.clone());
            let index = chunk_index * parallel.max(1) + i;
            tasks.spawn(async move { (index, fut.await) });
        }
        while let Some(done) = tasks.join_next().await {
            match done {
                Ok((index, Ok(Some(item)))) => out.push((index, item)),
                Ok((_, Ok(None))) => {}
                Ok((_, Err(e))) => return Err(e),
                // A panicked read is a bug; failing the read keeps the scope from being released.
                Err(e) => return Err(shape("detail read", format!("read task failed: {e}"))),
            }
        }
    }
    out.sort_by_key(|(i, _)| *i);
    Ok(out.into_iter().map(|(_, t)| t).collect())
}

/// Reads `FailedResources` from a 200 answer (the Tag service shape, reference 3.6:
/// `{"FailedResources": {"FailedResource": [{"ResourceARN" or "ResourceId", "Result": {"Code", "Message"}}]}}`).
/// A failure that names no id of the call cannot be attributed, so it fails the whole call.
pub(crate) fn failed_resources(
    action: &str,
    v: &Value,
    ids: &[String],
    report: &mut TagReport,
) -> Result<(), ApiError> {
    let list = match v.get("FailedResources") {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::Object(o)) => match o.get("FailedResource") {
            None | Some(Value::Null) => return Ok(()),
            Some(Value::Array(a)) => a,
            Some(_) => return Err(shape(action, "`FailedResources.FailedResource` is not an array")),
        },
        Some(Value::Array(a)) => a,
        Some(_) => return Err(shape(action, "`FailedResources` is not an object")),
    };
    for (i, item) in list.iter().enumerate() {
        let text = |key: &str| item.get(key).and_then(Value::as_str).map(str::to_string);
        let id = text("ResourceId")
            .or_else(|| text("ResourceARN").and_then(|arn| arn.rsplit('/').next().map(str::to_string)));
        let Some(id) = id.filter(|id| ids.contains(id)) else {
            return Err(shape(action, format!("`FailedResources.FailedResource[{i}]` names no resource of the call")));
        };
        let result = item.get("Result").unwrap_or(item);
        let code = result.get("Code").and_then(Value::as_str).unwrap_or("UnknownError").to_string();
        let message = result.get("Message").and_then(Value::as_str).unwrap_or_default().to_string();
        report.failed.insert(id, (code, format!("{action}: {message}")));
    }
    Ok(())
}

/// A tag or untag call's answer, when the call as a whole succeeded: its request id (empty if none) and the
/// ids it reports as failed (a 200 answer can fail some resources).
pub(crate) fn tag_answer(action: &str, v: &Value, ids: &[String]) -> Result<TagReport, ApiError> {
    let mut report = TagReport::default();
    report.request_ids.extend(Some(request_id(v)).filter(|r| !r.is_empty()));
    failed_resources(action, v, ids, &mut report)?;
    Ok(report)
}

/// The whole-call error is about what the call names (an id, a tag count), not about the caller or the service:
/// the same call for each id alone can succeed for most of them. Account-level errors (permission, signature),
/// retryable ones and anything that is not a service answer are not split: repeating would not help.
fn blames_the_content(e: &ApiError) -> bool {
    matches!(e, ApiError::Service { .. }) && !e.is_account_level()
}

/// Runs one tag or untag call per `batch` ids (`call` answers for one chunk). A chunk that fails as a whole
/// because of its content is repeated one id at a time, so an instance released since the listing fails alone
/// instead of taking its batch with it; repeating is safe because writing a tag overwrites its value and
/// removing an absent key is no error.
pub(crate) async fn tag_batches<F, Fut>(ids: &[String], batch: usize, call: F) -> TagReport
where
    F: Fn(Vec<String>) -> Fut,
    Fut: Future<Output = Result<TagReport, ApiError>>,
{
    let mut report = TagReport::default();
    let take = |r: TagReport, report: &mut TagReport| {
        report.request_ids.extend(r.request_ids);
        report.failed.extend(r.failed);
    };
    for chunk in ids.chunks(batch.max(1)) {
        match call(chunk.to_vec()).await {
            Ok(r) => take(r, &mut report),
            Err(e) if chunk.len() > 1 && blames_the_content(&e) => {
                tracing::debug!(
                    code = e.summary_code(),
                    ids = chunk.len(),
                    "a tag call failed as a whole: trying each id alone"
                );
                for id in chunk {
                    let one = std::slice::from_ref(id);
                    match call(one.to_vec()).await {
                        Ok(r) => take(r, &mut report),
                        Err(e) => report.fail_all(one, &e),
                    }
                }
            }
            Err(e) => report.fail_all(chunk, &e),
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Deserialize, Debug)]
    struct T {
        #[serde(deserialize_with = "lenient_bool")]
        b: bool,
        #[serde(deserialize_with = "lenient_i64")]
        n: i64,
    }

    #[test]
    fn lenient_scalars() {
        let t: T = decode("A", json!({"b": "TRUE", "n": "200"})).unwrap();
        assert!(t.b && t.n == 200);
        let t: T = decode("A", json!({"b": false, "n": 7})).unwrap();
        assert!(!t.b && t.n == 7);
        let e = decode::<T>("A", json!({"b": "yes", "n": 1})).unwrap_err().to_string();
        assert!(e.contains("`b`"), "{e}");
        let e = decode::<T>("A", json!({"b": true, "n": 1.5})).unwrap_err().to_string();
        assert!(e.contains("`n`"), "{e}");
    }

    #[tokio::test]
    async fn read_each_keeps_id_order_and_drops_missing() {
        let ids: Vec<String> = (0..7).map(|i| format!("x-{i}")).collect();
        let got = read_each(&ids, 3, |id| async move { Ok((id != "x-3").then_some(id)) }).await.unwrap();
        assert_eq!(got, ["x-0", "x-1", "x-2", "x-4", "x-5", "x-6"]);
        let err = read_each(&ids, 3, |id| async move {
            if id == "x-5" {
                Err(shape("A", "bad"))
            } else {
                Ok(Some(id))
            }
        })
        .await;
        assert!(err.is_err());
    }

    #[tokio::test]
    async fn a_batch_that_fails_because_of_one_id_is_repeated_id_by_id() {
        let ids: Vec<String> = (0..5).map(|i| format!("r-{i}")).collect();
        let svc = |code: &str| ApiError::Service {
            action: "TagResources".into(),
            status: 400,
            code: code.into(),
            message: "m".into(),
            request_id: "E".into(),
        };
        for (code, want_calls, want_failed) in [
            ("InvalidParameter.ResourceId", vec![3, 1, 1, 1, 2], vec!["r-1"]),
            // Not about one id: nothing to gain from repeating, the whole chunk fails.
            ("Forbidden.RAM", vec![3, 2], vec!["r-0", "r-1", "r-2"]),
            ("Throttling.User", vec![3, 2], vec!["r-0", "r-1", "r-2"]),
        ] {
            let calls = std::sync::Mutex::new(Vec::new());
            let err = svc(code);
            let report = tag_batches(&ids, 3, |chunk| {
                calls.lock().unwrap().push(chunk.len());
                let answer = if chunk.iter().any(|id| id == "r-1") {
                    Err(err.clone())
                } else {
                    Ok(TagReport { request_ids: vec!["R".into()], ..TagReport::default() })
                };
                async move { answer }
            })
            .await;
            assert_eq!(*calls.lock().unwrap(), want_calls, "{code}");
            assert_eq!(report.failed.keys().collect::<Vec<_>>(), want_failed, "{code}");
            assert_eq!(report.failed["r-1"].0, code);
        }
    }

    #[test]
    fn tag_answers_read_failed_resources() {
        let ids = vec!["r-1".to_string(), "r-2".to_string()];
        let r = tag_answer("TagResources", &json!({"RequestId": "R"}), &ids).unwrap();
        assert_eq!((r.request_ids, r.failed.len()), (vec!["R".to_string()], 0));
        let partial = json!({"RequestId": "R", "FailedResources": {"FailedResource": [{"ResourceId": "r-2", "Result": {"Code": "X", "Message": "m"}}]}});
        assert_eq!(tag_answer("TagResources", &partial, &ids).unwrap().failed["r-2"].0, "X");
        let stranger = json!({"FailedResources": {"FailedResource": [{"ResourceId": "r-9"}]}});
        assert!(tag_answer("TagResources", &stranger, &ids).is_err());
    }
}
