//! Small helpers the adapters share: decoding an answer with the failing field named, lenient scalars for
//! APIs whose documentation shows both spellings, and per-id detail reads.

use std::future::Future;

use serde::de::{self, DeserializeOwned, Deserializer};
use serde::Deserialize;
use serde_json::Value;

use crate::aliyun::ApiError;

pub(crate) fn shape(action: &str, detail: impl Into<String>) -> ApiError {
    ApiError::Shape { action: action.into(), detail: detail.into() }
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
        Value::String(s) => s.trim().parse().map_err(|_| de::Error::custom(format!("expected an integer, found \"{s}\""))),
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

/// The error is the service's "no such instance" answer to a call that was retried: an earlier attempt whose
/// answer was lost most likely did the release (reference section 2: a delete may be retried when "not found"
/// counts as success). A first-attempt "not found" is not success: someone else removed it.
pub(crate) fn not_found_on_retry(e: &ApiError, is_not_found: impl Fn(&str) -> bool) -> bool {
    matches!(e, ApiError::Exhausted { attempts, last, .. } if *attempts > 1 && last.code().is_some_and(&is_not_found))
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
        let err = read_each(&ids, 3, |id| async move { if id == "x-5" { Err(shape("A", "bad")) } else { Ok(Some(id)) } }).await;
        assert!(err.is_err());
    }

    #[test]
    fn not_found_counts_only_on_a_retry() {
        let nf = ApiError::Service { action: "D".into(), status: 404, code: "InvalidInstanceId.NotFound".into(), message: String::new(), request_id: String::new() };
        let is_nf = |c: &str| c == "InvalidInstanceId.NotFound";
        assert!(!not_found_on_retry(&nf, is_nf));
        let retried = ApiError::Exhausted { action: "D".into(), attempts: 2, last: Box::new(nf) };
        assert!(not_found_on_retry(&retried, is_nf));
    }
}
