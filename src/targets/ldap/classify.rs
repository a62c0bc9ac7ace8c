//! LDAP outcomes classified once: what is worth retrying, what is final, and
//! how the server's diagnostic message reaches the person's failure line.

use ldap3::{LdapError, LdapResult};

use crate::targets::TargetError;

/// Result codes of RFC 4511 §4.1.9 that homebase looks at by name.
pub mod rc {
    pub const SUCCESS: u32 = 0;
    pub const TIME_LIMIT_EXCEEDED: u32 = 3;
    pub const NO_SUCH_ATTRIBUTE: u32 = 16;
    pub const ATTRIBUTE_OR_VALUE_EXISTS: u32 = 20;
    pub const NO_SUCH_OBJECT: u32 = 32;
    pub const INVALID_CREDENTIALS: u32 = 49;
    pub const BUSY: u32 = 51;
    pub const UNAVAILABLE: u32 = 52;
    pub const OBJECT_CLASS_VIOLATION: u32 = 65;
    pub const ENTRY_ALREADY_EXISTS: u32 = 68;
}

/// The name RFC 4511 gives a result code.
pub fn code_name(code: u32) -> &'static str {
    match code {
        0 => "success",
        1 => "operationsError",
        2 => "protocolError",
        3 => "timeLimitExceeded",
        4 => "sizeLimitExceeded",
        7 => "authMethodNotSupported",
        8 => "strongerAuthRequired",
        10 => "referral",
        11 => "adminLimitExceeded",
        12 => "unavailableCriticalExtension",
        13 => "confidentialityRequired",
        16 => "noSuchAttribute",
        17 => "undefinedAttributeType",
        18 => "inappropriateMatching",
        19 => "constraintViolation",
        20 => "attributeOrValueExists",
        21 => "invalidAttributeSyntax",
        32 => "noSuchObject",
        34 => "invalidDNSyntax",
        48 => "inappropriateAuthentication",
        49 => "invalidCredentials",
        50 => "insufficientAccessRights",
        51 => "busy",
        52 => "unavailable",
        53 => "unwillingToPerform",
        54 => "loopDetect",
        64 => "namingViolation",
        65 => "objectClassViolation",
        66 => "notAllowedOnNonLeaf",
        67 => "notAllowedOnRDN",
        68 => "entryAlreadyExists",
        69 => "objectClassModsProhibited",
        71 => "affectsMultipleDSAs",
        80 => "other",
        _ => "unknown",
    }
}

/// Whether a result code says "try again later": the server is busy, shutting
/// down, or ran out of time — not that the request is wrong.
pub fn is_transient_code(code: u32) -> bool {
    matches!(code, rc::TIME_LIMIT_EXCEEDED | rc::BUSY | rc::UNAVAILABLE)
}

/// `constraintViolation (19): <server text>`; AD's texts start with a hex
/// Windows error code and carry `DSID-…` noise, which stays: admins search for it.
pub fn describe_result(result: &LdapResult) -> String {
    let text = result.text.trim().trim_end_matches('\0').trim();
    let mut out = format!("{} ({})", code_name(result.rc), result.rc);
    if !text.is_empty() {
        out.push_str(": ");
        out.push_str(text);
    }
    out
}

/// The failure of an operation on `what` (a DN or a description).
pub fn classify(what: &str, err: LdapError) -> TargetError {
    match err {
        LdapError::LdapResult { result } => {
            let message = format!("{what}: {}", describe_result(&result));
            if is_transient_code(result.rc) {
                TargetError::transient(message)
            } else {
                TargetError::permanent(message)
            }
        }
        other if is_transport(&other) => {
            TargetError::transient(format!("{what}: connection failed: {other}"))
        }
        other => TargetError::permanent(format!("{what}: {other}")),
    }
}

/// Errors of the connection rather than of the request: the connection is
/// gone (or never came) and a new one may succeed.
pub fn is_transport(err: &LdapError) -> bool {
    matches!(
        err,
        LdapError::Io { .. }
            | LdapError::OpSend { .. }
            | LdapError::ResultRecv { .. }
            | LdapError::IdScrubSend { .. }
            | LdapError::MiscSend { .. }
            | LdapError::Timeout { .. }
            | LdapError::EndOfStream
    )
}

/// The result code of an error, if the server answered.
pub fn code_of(err: &LdapError) -> Option<u32> {
    match err {
        LdapError::LdapResult { result } => Some(result.rc),
        _ => None,
    }
}

/// `Ok` for success, else the result as an error.
pub fn check(result: LdapResult) -> Result<LdapResult, LdapError> {
    if result.rc == rc::SUCCESS {
        Ok(result)
    } else {
        Err(LdapError::LdapResult { result })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(rc: u32, text: &str) -> LdapError {
        LdapError::LdapResult {
            result: LdapResult {
                rc,
                matched: String::new(),
                text: text.into(),
                refs: Vec::new(),
                ctrls: Vec::new(),
            },
        }
    }

    #[test]
    fn busy_unavailable_and_time_limits_are_transient() {
        for code in [3, 51, 52] {
            assert!(classify("x", result(code, "")).is_transient(), "{code}");
        }
        for code in [17, 19, 32, 49, 50, 53, 65, 68, 80] {
            assert!(!classify("x", result(code, "")).is_transient(), "{code}");
        }
    }

    #[test]
    fn connection_errors_are_transient() {
        let io = LdapError::Io {
            source: std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused"),
        };
        let err = classify("uid=a,dc=x", io);
        assert!(err.is_transient());
        assert!(err.to_string().contains("connection failed"));
        assert!(classify("x", LdapError::EndOfStream).is_transient());
        assert!(!classify("x", LdapError::FilterParsing).is_transient());
    }

    #[test]
    fn the_servers_message_is_kept() {
        let err = classify(
            "CN=a,CN=Users,DC=test,DC=lan",
            result(
                19,
                "0000052D: Constraint violation - check_password_restrictions: the password does not meet the complexity criteria!\0",
            ),
        );
        assert_eq!(
            err.to_string(),
            "CN=a,CN=Users,DC=test,DC=lan: constraintViolation (19): 0000052D: Constraint violation - check_password_restrictions: the password does not meet the complexity criteria!"
        );
    }
}
