//! Unit tests of the SCIM mapping: account ↔ user, diffs, PATCH and PUT
//! bodies, membership changes, discovery. The protocol itself is tested
//! against a real server in `tests/it/scim.rs`.

use serde_json::json;

use super::model::*;
use super::*;

fn account() -> Account {
    Account {
        username: "tmeyer".into(),
        given_name: "Thomas".into(),
        family_name: "Meyer".into(),
        display_name: "Thomas Meyer".into(),
        email: "thomas.meyer@example.org".into(),
        department: Some("Kämmerei".into()),
        groups: vec!["homeoffice".into(), "staff".into()],
        ou: Some("ou=Benutzer".into()),
        expires: chrono::NaiveDate::from_ymd_opt(2027, 3, 1),
        enabled: true,
    }
}

fn server_copy(user: &User) -> User {
    let mut user: User = serde_json::from_value(serde_json::to_value(user).unwrap()).unwrap();
    user.id = Some("abc".into());
    user
}

#[test]
fn a_new_user_carries_every_attribute_and_the_password() {
    let mut user = desired_user("P100001", &account());
    user.password = Some(Secret::new("s3cret!"));
    let body = serde_json::to_value(&user).unwrap();
    assert_eq!(
        body,
        json!({
            "schemas": [USER_SCHEMA, ENTERPRISE_SCHEMA],
            "externalId": "P100001",
            "userName": "tmeyer",
            "name": {"givenName": "Thomas", "familyName": "Meyer"},
            "displayName": "Thomas Meyer",
            "emails": [{"value": "thomas.meyer@example.org", "type": "work", "primary": true}],
            "active": true,
            "password": "s3cret!",
            ENTERPRISE_SCHEMA: {"department": "Kämmerei"}
        })
    );
    // Never printed.
    assert!(!format!("{user:?}").contains("s3cret"));
}

#[test]
fn without_department_no_extension() {
    let mut a = account();
    a.department = None;
    let body = serde_json::to_value(desired_user("P1", &a)).unwrap();
    assert_eq!(body["schemas"], json!([USER_SCHEMA]));
    assert!(body.get(ENTERPRISE_SCHEMA).is_none());
}

#[test]
fn a_user_read_back_is_the_same_account() {
    let a = account();
    let user = server_copy(&desired_user("P1", &a));
    let stored = a.clone();
    assert_eq!(account_of(&user, a.groups.clone(), Some(&stored)), a);
    // Without the store's record, ou and expires are unknown.
    let read = account_of(&user, a.groups.clone(), None);
    assert_eq!((read.ou, read.expires), (None, None));
    assert!(diff(&user, &desired_user("P1", &a)).is_empty());
}

#[test]
fn diff_patches_only_what_changed() {
    let a = account();
    let current = server_copy(&desired_user("P1", &a));
    let mut b = a.clone();
    b.department = Some("Stadtkasse".into());
    assert_eq!(
        diff(&current, &desired_user("P1", &b)),
        vec![PatchOperation::replace(
            DEPARTMENT_PATH,
            json!("Stadtkasse")
        )]
    );

    let mut c = a.clone();
    c.department = None;
    c.family_name = "Meyer-Ahlers".into();
    c.email = "t.ma@example.org".into();
    c.enabled = false;
    let ops = diff(&current, &desired_user("P1", &c));
    let paths: Vec<(&str, &str)> = ops
        .iter()
        .map(|o| (o.op, o.path.as_deref().unwrap()))
        .collect();
    assert_eq!(
        paths,
        vec![
            ("replace", "name.familyName"),
            ("replace", "emails"),
            ("remove", DEPARTMENT_PATH),
            ("replace", "active"),
        ]
    );
    // Groups, ou and expires are no user attributes.
    let mut d = a.clone();
    d.groups = vec!["it-admins".into()];
    d.ou = None;
    d.expires = None;
    assert!(diff(&current, &desired_user("P1", &d)).is_empty());
}

#[test]
fn adopting_sets_the_external_id() {
    let a = account();
    let mut current = server_copy(&desired_user("P1", &a));
    current.external_id = None;
    assert_eq!(
        diff(&current, &desired_user("P1", &a)),
        vec![PatchOperation::replace("externalId", json!("P1"))]
    );
}

#[test]
fn patch_request_shape() {
    let ops = vec![PatchOperation::replace("active", json!(false))];
    assert_eq!(
        serde_json::to_value(PatchRequest::new(&ops)).unwrap(),
        json!({
            "schemas": [PATCH_SCHEMA],
            "Operations": [{"op": "replace", "path": "active", "value": false}]
        })
    );
}

#[test]
fn membership_changes_in_one_patch_with_escaped_removals() {
    let changes = vec![
        MemberChange {
            user_id: "a".into(),
            add: true,
        },
        MemberChange {
            user_id: "b\"c".into(),
            add: false,
        },
        MemberChange {
            user_id: "d".into(),
            add: true,
        },
    ];
    let ops = member_operations(&changes);
    assert_eq!(
        serde_json::to_value(&ops).unwrap(),
        json!([
            {"op": "add", "path": "members", "value": [{"value": "a"}, {"value": "d"}]},
            {"op": "remove", "path": r#"members[value eq "b\"c"]"#}
        ])
    );

    let mut group = json!({
        "schemas": [GROUP_SCHEMA], "id": "g", "displayName": "staff",
        "members": [{"value": "b\"c"}, {"value": "a"}],
        "meta": {"version": "W/\"3\""}
    });
    apply_member_changes(&mut group, &changes);
    assert_eq!(group["members"], json!([{"value": "a"}, {"value": "d"}]));
    assert!(group.get("meta").is_none());
}

#[test]
fn a_user_changed_twice_in_one_batch_counts_once_with_the_last_change() {
    let change = |user_id: &str, add| MemberChange {
        user_id: user_id.into(),
        add,
    };
    let changes = vec![
        change("a", true),
        change("b", true),
        change("a", true),
        change("b", false),
        change("c", false),
        change("c", true),
    ];
    assert_eq!(
        serde_json::to_value(member_operations(&changes)).unwrap(),
        json!([
            {"op": "add", "path": "members", "value": [{"value": "a"}, {"value": "c"}]},
            {"op": "remove", "path": r#"members[value eq "b"]"#}
        ])
    );
}

#[test]
fn put_keeps_foreign_attributes_and_sets_ours() {
    let mut a = account();
    a.enabled = false;
    a.department = None;
    let server = json!({
        "schemas": [USER_SCHEMA, ENTERPRISE_SCHEMA],
        "id": "abc",
        "userName": "tmeyer",
        "name": {"givenName": "Tom", "familyName": "Meyer", "honorificPrefix": "Dr."},
        "phoneNumbers": [{"value": "+49 421 1"}],
        ENTERPRISE_SCHEMA: {"department": "Alt", "costCenter": "42"},
        "meta": {"version": "W/\"1\""}
    });
    let body = put_body(server, &desired_user("P1", &a), None);
    assert_eq!(body["name"]["givenName"], "Thomas");
    assert_eq!(body["name"]["honorificPrefix"], "Dr.");
    assert_eq!(body["phoneNumbers"][0]["value"], "+49 421 1");
    assert_eq!(body["active"], false);
    assert_eq!(body["externalId"], "P1");
    assert_eq!(body[ENTERPRISE_SCHEMA], json!({"costCenter": "42"}));
    assert!(body.get("meta").is_none() && body.get("password").is_none());
}

#[test]
fn discovery_reads_support_and_limits() {
    let spc: ServiceProviderConfig = serde_json::from_value(json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "patch": {"supported": true},
        "bulk": {"supported": true, "maxOperations": 1000, "maxPayloadSize": 1048576},
        "filter": {"supported": true, "maxResults": 200},
        "etag": {"supported": false}
    }))
    .unwrap();
    let f = Features::from_config(&spc);
    assert!(f.patch && f.filter && !f.etag);
    assert_eq!(f.max_results, Some(200));
    assert_eq!(
        f.bulk,
        Some(bulk::Limits {
            max_operations: 1000,
            max_payload_size: 1_048_576
        })
    );
    // An empty configuration: nothing supported.
    let f = Features::from_config(&serde_json::from_value(json!({})).unwrap());
    assert!(!f.patch && !f.filter && !f.etag && f.bulk.is_none());
}

#[test]
fn error_bodies_with_string_or_number_status() {
    let a: ErrorBody =
        serde_json::from_str(r#"{"status":"409","scimType":"uniqueness","detail":"x"}"#).unwrap();
    let b: ErrorBody = serde_json::from_str(r#"{"status":429}"#).unwrap();
    assert_eq!(
        (a.status, a.scim_type.as_deref(), b.status),
        (Some(409), Some("uniqueness"), Some(429))
    );
}

#[test]
fn not_implemented_is_501_405_or_a_400_that_says_so() {
    use super::client::ScimError;
    let err = |status, scim_type: Option<&str>, detail: Option<&str>| ScimError::Status {
        request: "PATCH /Users/1".into(),
        status,
        scim_type: scim_type.map(str::to_string),
        detail: detail.map(str::to_string),
        retry_after: None,
    };
    assert!(not_implemented(&err(501, None, None)));
    assert!(not_implemented(&err(405, None, None)));
    assert!(not_implemented(&err(
        400,
        Some("invalidPath"),
        Some("Operation on displayName not supported")
    )));
    assert!(!not_implemented(&err(
        400,
        Some("invalidValue"),
        Some("bad e-mail")
    )));
    assert!(!not_implemented(&err(503, None, None)));
    assert!(!not_implemented(&err(409, Some("uniqueness"), None)));
    assert!(!err(501, None, None).is_transient());
}

#[test]
fn unstored_attributes_are_neither_sent_nor_compared() {
    use super::capabilities::Stored;
    let mut a = account();
    a.department = Some("Kämmerei".into());
    let stored = Stored {
        missing: ["department".to_string(), "display_name".to_string()].into(),
    };
    let mut desired = desired_user("P1", &a);
    leave_out_unstored(&mut desired, &stored);
    let body = serde_json::to_value(&desired).unwrap();
    assert!(body.get(ENTERPRISE_SCHEMA).is_none(), "{body}");
    assert!(body.get("displayName").is_none(), "{body}");
    assert_eq!(body["schemas"], json!([USER_SCHEMA]));
    // The server holds neither: nothing to change.
    let mut held = server_copy(&desired_user("P1", &a));
    held.enterprise = None;
    held.display_name = None;
    assert!(diff_with(&held, &desired, &stored).is_empty());
    assert!(!diff(&held, &desired_user("P1", &a)).is_empty());
}
