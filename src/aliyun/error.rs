//! The client's error type. `Service` keeps Alibaba's `Code`, which is the only thing callers branch on.

#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum ApiError {
    /// An error answer from the service (`{"Code", "Message", "RequestId"}`), or a business envelope with `Success: false`.
    #[error("{action}: {code} (HTTP {status}): {message} [RequestId {request_id}]")]
    Service { action: String, status: u16, code: String, message: String, request_id: String },
    /// An HTTP error whose body is not an Alibaba error document (a proxy's 502 page, say).
    #[error("{action}: HTTP {status} without an error document")]
    Http { action: String, status: u16 },
    /// Connection refused/reset, TLS failure, or a timeout: nothing usable came back.
    #[error("{action}: transport error: {message}")]
    Transport { action: String, message: String, timeout: bool },
    /// A 2xx answer whose body does not have the shape we expect; `detail` names the field.
    #[error("{action}: unexpected response shape: {detail}")]
    Shape { action: String, detail: String },
    /// The credential source could not give credentials for this call (a refresh failed): nothing was sent.
    #[error("{action}: no credentials: {message}")]
    Credentials { action: String, message: String },
    /// Retries stopped because the total time budget ran out.
    #[error("{action}: gave up after {attempts} attempts: {last}")]
    Exhausted { action: String, attempts: u32, last: Box<ApiError> },
}

impl ApiError {
    /// The same error with every occurrence of a secret form replaced by `<redacted>`: a service's own message
    /// may quote the request (Alibaba's `SignatureDoesNotMatch` quotes its string to sign, which holds the
    /// `SecurityToken`), so nothing from the outside is copied out unredacted.
    pub fn redacted(self, secrets: &[String]) -> ApiError {
        let clean = |s: String| redact_all(s, secrets);
        match self {
            ApiError::Service { action, status, code, message, request_id } => ApiError::Service {
                action,
                status,
                code: clean(code),
                message: clean(message),
                request_id: clean(request_id),
            },
            ApiError::Transport { action, message, timeout } => {
                ApiError::Transport { action, message: clean(message), timeout }
            }
            ApiError::Shape { action, detail } => ApiError::Shape { action, detail: clean(detail) },
            ApiError::Exhausted { action, attempts, last } => {
                ApiError::Exhausted { action, attempts, last: Box::new(last.redacted(secrets)) }
            }
            ApiError::Credentials { action, message } => ApiError::Credentials { action, message: clean(message) },
            e @ ApiError::Http { .. } => e,
        }
    }

    /// The Alibaba error code, if the service sent one.
    pub fn code(&self) -> Option<&str> {
        match self {
            ApiError::Service { code, .. } => Some(code),
            ApiError::Exhausted { last, .. } => last.code(),
            _ => None,
        }
    }

    pub fn request_id(&self) -> Option<&str> {
        match self {
            ApiError::Service { request_id, .. } if !request_id.is_empty() => Some(request_id),
            ApiError::Exhausted { last, .. } => last.request_id(),
            _ => None,
        }
    }

    /// A short code for summaries: the service code, or a class for non-service errors.
    pub fn summary_code(&self) -> String {
        match self {
            ApiError::Service { code, .. } => code.clone(),
            ApiError::Http { status, .. } => format!("HTTP{status}"),
            ApiError::Transport { timeout: true, .. } => "Timeout".into(),
            ApiError::Transport { .. } => "TransportError".into(),
            ApiError::Shape { .. } => "MalformedResponse".into(),
            ApiError::Credentials { .. } => "CredentialsUnavailable".into(),
            ApiError::Exhausted { last, .. } => last.summary_code(),
        }
    }

    /// Throttling, server-side and transport errors can succeed on a later attempt (reference section 2).
    pub fn is_retryable(&self) -> bool {
        match self {
            ApiError::Service { code, status, .. } => is_retryable_code(code) || *status >= 500,
            ApiError::Http { status, .. } => *status >= 500 || *status == 429,
            ApiError::Transport { .. } => true,
            ApiError::Shape { .. } | ApiError::Exhausted { .. } | ApiError::Credentials { .. } => false,
        }
    }

    /// The call may have acted although it did not succeed: a 5xx, a timeout, a connection closed after the
    /// request was sent, or a 2xx answer that could not be read. Throttling, other 4xx answers, a refused
    /// connection and missing credentials say the request was not carried out (RFC 9110 section 9.2.2: only such
    /// answers let a client know "the original request was never applied").
    pub fn may_have_acted(&self) -> bool {
        match self {
            ApiError::Service { status, .. } => *status >= 500 && !self.is_throttling(),
            ApiError::Http { status, .. } => *status >= 500,
            ApiError::Transport { message, timeout, .. } => *timeout || !message.starts_with("connect: "),
            ApiError::Shape { .. } => true,
            ApiError::Credentials { .. } => false,
            // Earlier attempts of an idempotent call could have acted whatever the last one said.
            ApiError::Exhausted { .. } => true,
        }
    }

    pub fn is_throttling(&self) -> bool {
        match self.code() {
            Some(code) => is_throttling_code(code),
            None => matches!(self, ApiError::Http { status: 429, .. }),
        }
    }

    /// Errors about the caller rather than one instance (credentials, permission, signature, an unreachable
    /// service). Splitting a batch cannot help with these, so the engine stops instead of bisecting.
    pub fn is_account_level(&self) -> bool {
        match self.code() {
            Some(code) => {
                code.starts_with("Forbidden.RAM")
                    || code.starts_with("Forbidden.NoPermission")
                    || code.starts_with("SignatureDoesNotMatch")
                    || code.starts_with("SignatureNonceUsed")
                    || code.starts_with("InvalidAccessKeyId")
                    || code.starts_with("InvalidSecurityToken")
                    || code.starts_with("InvalidTimeStamp")
                    || code.starts_with("InvalidAction")
                    || code == "MissingParameter"
                    || self.is_retryable()
            }
            None => true,
        }
    }
}

impl ApiError {
    /// A native dry run that passed: the service answers a passing `DryRun=true` call with an *error* document,
    /// code `DryRunOperation` (newer docs: `DRYRUN.SUCCESS`), HTTP 400 (reference 3.1). Only that 400-class answer,
    /// as the call's own final answer, is a pass: the same code on a 5xx (or on the last of exhausted retries)
    /// says the service was not well, not that the release would succeed.
    pub fn is_dry_run_pass(&self) -> bool {
        matches!(self, ApiError::Service { status: 400..=499, code, .. } if code == "DryRunOperation" || code == "DRYRUN.SUCCESS")
    }

    /// The service refused because the instance is protected against release: Redis `InstanceReleaseProtection`,
    /// `OperationDenied.InstanceReleaseProtection`, `Instance.DeleteProtection`, ECS `InvalidOperation.DeletionProtection`
    /// (reference 3.2: match any code containing these words). A veto, not a failure.
    pub fn is_protection_veto(&self) -> bool {
        self.code().is_some_and(|c| {
            ["ReleaseProtection", "DeleteProtection", "DeletionProtection"].iter().any(|w| c.contains(w))
        })
    }
}

fn redact_all(mut s: String, secrets: &[String]) -> String {
    for secret in secrets.iter().filter(|x| x.len() >= 4) {
        if s.contains(secret.as_str()) {
            s = s.replace(secret.as_str(), "<redacted>");
        }
    }
    s
}

/// A service message as the janitor repeats it: the server's string to sign (which quotes every request
/// parameter, credentials included) is withheld, control characters become spaces, and the length is bounded.
pub(crate) fn service_message(raw: &str) -> String {
    const MAX: usize = 500;
    let cut = raw.to_ascii_lowercase().find("string to sign").unwrap_or(raw.len());
    let mut msg: String = raw[..cut].chars().map(|c| if c.is_control() { ' ' } else { c }).take(MAX).collect();
    if cut < raw.len() {
        msg.push_str("(the server's string to sign is withheld: it quotes the credentials)");
    }
    msg
}

/// Throttling, however the service spells it. alikafka answers it as a business error (HTTP 200, `Success: false`)
/// with `FlowControl` or `ONS_SYSTEM_FLOW_CONTROL` (reference, corrections; the Terraform provider retries the
/// latter).
fn is_throttling_code(code: &str) -> bool {
    code.starts_with("Throttling")
        || code == "Rejected.Throttling"
        || code == "FlowControl"
        || code == "ONS_SYSTEM_FLOW_CONTROL"
}

pub(crate) fn is_retryable_code(code: &str) -> bool {
    is_throttling_code(code)
        // ECS: a call with the same ClientToken is still being processed; retry after back-off (reference,
        // corrections).
        || code == "LastTokenProcessing"
        || code == "ServiceUnavailable"
        || code == "InternalError"
        || code == "UnknownError"
        || code == "SerivceUnvailableTemporary"
        || code == "IncorrectInstanceStatus.Initializing"
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 13 items 2 and 4: Kafka's business-error throttling failed the region; ECS `LastTokenProcessing` too.
    #[test]
    fn business_throttling_and_a_token_in_progress_are_retried() {
        let svc = |code: &str| ApiError::Service {
            action: "A".into(),
            status: 200,
            code: code.into(),
            message: String::new(),
            request_id: String::new(),
        };
        for code in ["FlowControl", "ONS_SYSTEM_FLOW_CONTROL"] {
            assert!(svc(code).is_throttling() && svc(code).is_retryable(), "{code}");
        }
        assert!(svc("LastTokenProcessing").is_retryable() && !svc("LastTokenProcessing").is_throttling());
        assert!(!svc("BIZ_INSTANCE_STATUS_ERROR").is_retryable());
    }

    #[test]
    fn a_service_message_never_carries_the_string_to_sign_or_a_credential() {
        let m = service_message(
            "Specified signature is not matched. server string to sign is:POST&%2F&SecurityToken%3Dtok",
        );
        assert_eq!(m, "Specified signature is not matched. server (the server's string to sign is withheld: it quotes the credentials)");
        assert_eq!(service_message("line\nbreak"), "line break");
        let e = ApiError::Service {
            action: "A".into(),
            status: 400,
            code: "X".into(),
            message: "key STS.abcd and tok%2Bx".into(),
            request_id: "r".into(),
        };
        let e = ApiError::Exhausted { action: "A".into(), attempts: 2, last: Box::new(e) };
        let shown = e.redacted(&["STS.abcd".into(), "tok%2Bx".into()]).to_string();
        assert!(shown.contains("key <redacted> and <redacted>"), "{shown}");
    }

    fn svc(code: &str, status: u16) -> ApiError {
        ApiError::Service {
            action: "A".into(),
            status,
            code: code.into(),
            message: String::new(),
            request_id: "r".into(),
        }
    }

    #[test]
    fn only_a_400_class_dry_run_operation_is_a_pass() {
        // Issue 12, item 10: a 500 carrying DryRunOperation, retried until exhausted, is no pass.
        assert!(svc("DryRunOperation", 400).is_dry_run_pass());
        assert!(svc("DRYRUN.SUCCESS", 400).is_dry_run_pass());
        assert!(!svc("DryRunOperation", 500).is_dry_run_pass());
        let exhausted =
            ApiError::Exhausted { action: "A".into(), attempts: 5, last: Box::new(svc("DryRunOperation", 500)) };
        assert!(!exhausted.is_dry_run_pass());
        let exhausted_400 =
            ApiError::Exhausted { action: "A".into(), attempts: 5, last: Box::new(svc("DryRunOperation", 400)) };
        assert!(
            !exhausted_400.is_dry_run_pass(),
            "a 400 is never retried; an Exhausted wrapper means something else happened"
        );
        assert!(!svc("InvalidOperation.DeletionProtection", 403).is_dry_run_pass());
    }

    #[test]
    fn retryable_codes() {
        for c in [
            "Throttling",
            "Throttling.User",
            "Throttling.Api",
            "Rejected.Throttling",
            "ServiceUnavailable",
            "InternalError",
        ] {
            assert!(svc(c, 400).is_retryable(), "{c}");
        }
        assert!(svc("Whatever", 503).is_retryable());
        assert!(!svc("InvalidOperation.DeletionProtection", 403).is_retryable());
        assert!(!svc("DryRunOperation", 400).is_retryable());
    }

    #[test]
    fn protection_codes_are_vetoes() {
        for c in [
            "InstanceReleaseProtection",
            "OperationDenied.InstanceReleaseProtection",
            "Instance.DeleteProtection",
            "InvalidOperation.DeletionProtection",
        ] {
            assert!(svc(c, 403).is_protection_veto(), "{c}");
        }
        assert!(!svc("Forbidden.NoBackup", 403).is_protection_veto());
        assert!(!svc("Forbidden.NoBackup", 403).is_retryable());
        assert!(!ApiError::Http { action: "A".into(), status: 403 }.is_protection_veto());
    }

    #[test]
    fn per_instance_errors_are_not_account_level() {
        assert!(!svc("IncorrectInstanceStatus", 403).is_account_level());
        assert!(!svc("ChargeTypeViolation", 403).is_account_level());
        assert!(svc("Forbidden.RAM", 403).is_account_level());
        assert!(svc("SignatureDoesNotMatch", 400).is_account_level());
    }
}
