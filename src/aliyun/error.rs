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
    /// Retries stopped because the total time budget ran out.
    #[error("{action}: gave up after {attempts} attempts: {last}")]
    Exhausted { action: String, attempts: u32, last: Box<ApiError> },
}

impl ApiError {
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
            ApiError::Exhausted { last, .. } => last.summary_code(),
        }
    }

    /// Throttling, server-side and transport errors can succeed on a later attempt (reference section 2).
    pub fn is_retryable(&self) -> bool {
        match self {
            ApiError::Service { code, status, .. } => is_retryable_code(code) || *status >= 500,
            ApiError::Http { status, .. } => *status >= 500 || *status == 429,
            ApiError::Transport { .. } => true,
            ApiError::Shape { .. } | ApiError::Exhausted { .. } => false,
        }
    }

    pub fn is_throttling(&self) -> bool {
        match self.code() {
            Some(code) => code.starts_with("Throttling") || code == "Rejected.Throttling",
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

pub(crate) fn is_retryable_code(code: &str) -> bool {
    code.starts_with("Throttling")
        || code == "Rejected.Throttling"
        || code == "ServiceUnavailable"
        || code == "InternalError"
        || code == "UnknownError"
        || code == "SerivceUnvailableTemporary"
        || code == "IncorrectInstanceStatus.Initializing"
}

#[cfg(test)]
mod tests {
    use super::*;

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
