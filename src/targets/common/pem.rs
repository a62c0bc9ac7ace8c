//! PEM text of DER data (certificates and keys in bundles and server files).

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

/// `-----BEGIN LABEL-----`, base64 in lines of 64, `-----END LABEL-----`.
pub fn to_pem(label: &str, der: &[u8]) -> String {
    let body = B64.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in body.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}
