//! What the emulator answers: a success body, an error in Alibaba's JSON error shape, or raw bytes
//! (for faults that break the wire format). Error wording follows the real service (reference section 2).

use serde_json::{json, Value};

/// An error answer before rendering: the HTTP status, the `Code` callers branch on, and free-text `Message`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ApiFault {
    pub status: u16,
    pub code: String,
    pub message: String,
}

impl ApiFault {
    pub fn new(status: u16, code: &str, message: impl Into<String>) -> Self {
        ApiFault { status, code: code.to_string(), message: message.into() }
    }

    /// 400 `MissingParameter`, naming the parameter as the real service does.
    pub fn missing(name: &str) -> Self {
        Self::new(
            400,
            "MissingParameter",
            format!("The input parameter \"{name}\" that is mandatory for processing this request is not supplied."),
        )
    }

    /// 400 `InvalidParameter`, naming the parameter and saying why.
    pub fn invalid(name: &str, why: &str) -> Self {
        Self::new(400, "InvalidParameter", format!("The specified parameter \"{name}\" is not valid: {why}."))
    }

    pub fn action_not_found() -> Self {
        Self::new(404, "InvalidAction.NotFound", "Specified api is not found, please check your url and method.")
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Reply {
    /// HTTP 200 with this JSON object; `RequestId` is added unless the body already has one (an idempotent replay).
    Ok(Value),
    Fault(ApiFault),
    /// Bytes sent as they are, e.g. a truncated JSON document.
    Raw {
        status: u16,
        body: String,
    },
}

impl From<Result<Value, ApiFault>> for Reply {
    fn from(r: Result<Value, ApiFault>) -> Self {
        match r {
            Ok(v) => Reply::Ok(v),
            Err(f) => Reply::Fault(f),
        }
    }
}

/// A reply ready for the wire, plus the error code for the call log.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Rendered {
    pub status: u16,
    pub body: String,
    pub code: Option<String>,
}

/// The error code of a business envelope (alikafka, BSS) that failed inside a 200 body.
pub(crate) fn envelope_code(body: &Value) -> Option<String> {
    match (body.get("Success"), body.get("Code")) {
        (Some(Value::Bool(false)), Some(Value::String(c))) => Some(c.clone()),
        (Some(Value::Bool(false)), Some(c)) => Some(c.to_string()),
        _ => None,
    }
}

impl Reply {
    pub fn render(self, request_id: &str, host_id: &str) -> Rendered {
        match self {
            Reply::Ok(mut body) => {
                if let Value::Object(map) = &mut body {
                    map.entry("RequestId").or_insert_with(|| Value::String(request_id.to_string()));
                }
                let code = envelope_code(&body);
                Rendered { status: 200, body: body.to_string(), code }
            }
            Reply::Fault(f) => {
                let body = json!({
                    "RequestId": request_id,
                    "HostId": host_id,
                    "Code": f.code,
                    "Message": f.message,
                    "Recommend": format!("https://api.aliyun.com/troubleshoot?q={}&requestId={}", f.code, request_id),
                });
                Rendered { status: f.status, body: body.to_string(), code: Some(f.code) }
            }
            Reply::Raw { status, body } => Rendered { status, body, code: None },
        }
    }
}

/// A request id shaped like the real ones (`DC7CBB70-4661-50B2-97B6-055B0CB4F75F`).
pub(crate) fn new_request_id() -> String {
    uuid::Uuid::new_v4().to_string().to_ascii_uppercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_document_has_the_real_shape() {
        let r = Reply::Fault(ApiFault::missing("RegionId")).render("R-1", "ecs.cn-hangzhou.aliyuncs.com");
        assert_eq!(r.status, 400);
        assert_eq!(r.code.as_deref(), Some("MissingParameter"));
        let v: Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(v["RequestId"], "R-1");
        assert_eq!(v["HostId"], "ecs.cn-hangzhou.aliyuncs.com");
        assert_eq!(v["Code"], "MissingParameter");
        assert!(v["Message"].as_str().unwrap().contains("\"RegionId\""));
    }

    #[test]
    fn a_business_error_in_a_200_body_is_logged_with_its_code() {
        let r = Reply::Ok(json!({"Success": false, "Code": "BIZ_X"})).render("R", "h");
        assert_eq!((r.status, r.code.as_deref()), (200, Some("BIZ_X")));
        assert_eq!(Reply::Ok(json!({"Success": true, "Code": 200})).render("R", "h").code, None);
    }

    #[test]
    fn success_keeps_a_replayed_request_id() {
        let fresh = Reply::Ok(json!({})).render("R-2", "h");
        assert_eq!(serde_json::from_str::<Value>(&fresh.body).unwrap()["RequestId"], "R-2");
        let replay = Reply::Ok(json!({"RequestId": "R-1"})).render("R-2", "h");
        assert_eq!(serde_json::from_str::<Value>(&replay.body).unwrap()["RequestId"], "R-1");
    }
}
