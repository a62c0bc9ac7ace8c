//! Creating users through the Bulk endpoint (RFC 7644 §3.7): the batcher
//! hands in the users of concurrent actions, this module sends them in as
//! few requests as `maxOperations` and `maxPayloadSize` allow, and maps each
//! operation's result back to its user by `bulkId`. A 413 halves the batch
//! (and the batches after it); an operation that fails is reported as the
//! error of its own person only.

use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};

use reqwest::Method;
use serde_json::Value;

use super::client::{Call, Client, Reply, ScimError};
use super::model::BULK_REQUEST_SCHEMA;
use super::model::{status_of, BulkOperation, BulkRequest, BulkResponse, ErrorBody, User};

/// What the server advertises.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub max_operations: usize,
    pub max_payload_size: usize,
}

/// The limits, with the operation count lowered after a 413.
pub struct AdaptiveLimits {
    limits: Limits,
    operations: AtomicUsize,
}

impl AdaptiveLimits {
    pub fn new(limits: Limits) -> AdaptiveLimits {
        AdaptiveLimits {
            operations: AtomicUsize::new(limits.max_operations),
            limits,
        }
    }

    pub fn max_operations(&self) -> usize {
        self.operations.load(Ordering::Relaxed).max(1)
    }

    fn shrink_to(&self, n: usize) {
        self.operations.fetch_min(n.max(1), Ordering::Relaxed);
    }
}

const REQUEST: &str = "POST /Bulk";
/// Bytes of a Bulk request besides its operations (schemas, brackets).
const ENVELOPE: usize = 128;

/// Create `users`; one result (the new SCIM id, or why not) per user.
pub async fn post_users(
    client: &Client,
    limits: &AdaptiveLimits,
    users: Vec<User>,
) -> Vec<Result<String, ScimError>> {
    let operations: Vec<BulkOperation> = users
        .iter()
        .enumerate()
        .map(|(i, user)| BulkOperation {
            method: "POST",
            bulk_id: format!("u{i}"),
            path: "/Users".into(),
            data: serde_json::to_value(user).unwrap_or(Value::Null),
        })
        .collect();
    let sizes: Vec<usize> = operations
        .iter()
        .map(|op| serde_json::to_vec(op).map_or(0, |v| v.len() + 1))
        .collect();
    let mut results: Vec<Option<Result<String, ScimError>>> = vec![None; operations.len()];
    let mut work: Vec<Range<usize>> = chunks(
        &sizes,
        limits.max_operations(),
        limits.limits.max_payload_size,
    );
    work.reverse();
    while let Some(range) = work.pop() {
        let request = BulkRequest {
            schemas: [BULK_REQUEST_SCHEMA],
            operations: &operations[range.clone()],
        };
        let call = Call::new(Method::POST, &["Bulk"]).json(&request);
        match client.send::<BulkResponse>(&call).await {
            Ok(reply) => map_results(reply, range, &mut results),
            Err(err) if err.status() == Some(413) && range.len() > 1 => {
                let half = range.len() / 2;
                limits.shrink_to(half);
                work.push(range.start + half..range.end);
                work.push(range.start..range.start + half);
            }
            Err(err) => {
                for slot in &mut results[range] {
                    *slot = Some(Err(err.clone()));
                }
            }
        }
    }
    results
        .into_iter()
        .map(|r| {
            r.unwrap_or_else(|| {
                Err(ScimError::Transport {
                    request: REQUEST.into(),
                    message: "the server returned no result for this operation".into(),
                })
            })
        })
        .collect()
}

/// Consecutive ranges of at most `max_operations` operations and
/// `max_payload` bytes (an operation larger than that goes alone).
pub fn chunks(sizes: &[usize], max_operations: usize, max_payload: usize) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut bytes = ENVELOPE;
    for (i, size) in sizes.iter().enumerate() {
        let full = i - start >= max_operations.max(1) || (i > start && bytes + size > max_payload);
        if full {
            out.push(start..i);
            start = i;
            bytes = ENVELOPE;
        }
        bytes += size;
    }
    if start < sizes.len() {
        out.push(start..sizes.len());
    }
    out
}

fn map_results(
    reply: Reply<BulkResponse>,
    range: Range<usize>,
    results: &mut [Option<Result<String, ScimError>>],
) {
    for op in reply.body.map(|b| b.operations).unwrap_or_default() {
        let Some(index) = op
            .bulk_id
            .as_deref()
            .and_then(|id| id.strip_prefix('u'))
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|i| range.contains(i))
        else {
            continue;
        };
        let status = status_of(&op.status).unwrap_or(0);
        let result = if (200..300).contains(&status) {
            op.response
                .as_ref()
                .and_then(|r| r.get("id"))
                .and_then(Value::as_str)
                .map(str::to_string)
                .or_else(|| {
                    op.location
                        .as_deref()
                        .and_then(|l| l.trim_end_matches('/').rsplit('/').next())
                        .filter(|id| !id.is_empty())
                        .map(str::to_string)
                })
                .ok_or_else(|| ScimError::Payload {
                    request: "POST /Bulk: POST /Users".into(),
                    message: "neither an id nor a location in the result".into(),
                })
        } else {
            let body: ErrorBody = op
                .response
                .and_then(|r| serde_json::from_value(r).ok())
                .unwrap_or_default();
            Err(ScimError::Status {
                request: "POST /Bulk: POST /Users".into(),
                status,
                scim_type: body.scim_type,
                detail: body.detail,
                retry_after: None,
            })
        };
        results[index] = Some(result);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_respect_count_and_payload() {
        assert_eq!(chunks(&[10; 5], 2, 10_000), vec![0..2, 2..4, 4..5]);
        assert_eq!(chunks(&[100; 4], 10, ENVELOPE + 250), vec![0..2, 2..4]);
        // An operation larger than the payload limit still goes (alone).
        assert_eq!(chunks(&[10, 5000, 10], 10, 1000), vec![0..1, 1..2, 2..3]);
        assert_eq!(chunks(&[], 10, 1000), Vec::<Range<usize>>::new());
    }

    #[test]
    fn results_map_back_by_bulk_id() {
        let body: BulkResponse = serde_json::from_value(serde_json::json!({
            "Operations": [
                {"method": "POST", "bulkId": "u3", "status": "409",
                 "response": {"status": "409", "scimType": "uniqueness", "detail": "taken"}},
                {"method": "POST", "bulkId": "u2", "status": 201,
                 "location": "https://idp/v2/Users/abc"},
                {"method": "POST", "bulkId": "u9", "status": "201"}
            ]
        }))
        .unwrap();
        let reply = Reply {
            status: reqwest::StatusCode::OK,
            etag: None,
            body: Some(body),
        };
        let mut results = vec![None, None, None, None];
        map_results(reply, 2..4, &mut results);
        assert!(results[0].is_none() && results[1].is_none());
        assert_eq!(results[2].clone().unwrap().unwrap(), "abc");
        let err = results[3].clone().unwrap().unwrap_err();
        assert_eq!(
            (err.status(), err.scim_type()),
            (Some(409), Some("uniqueness"))
        );
    }
}
