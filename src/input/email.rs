//! Email addresses as a directory accepts them: `local@domain.tld`, with
//! international letters allowed, and the usual HR-list mistakes refused.

/// What an email looks like, for messages.
pub(super) const EMAIL_FORMAT: &str = "an address like name@example.org";

/// Check a trimmed email value; the error says what is wrong with it.
pub(super) fn check_email(value: &str) -> Result<(), &'static str> {
    if let Some(c) = value.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(if c == ' ' {
            "contains a space"
        } else {
            "contains a line break or control character"
        });
    }
    let Some((local, domain)) = value.rsplit_once('@') else {
        return Err("no @");
    };
    if local.contains('@') {
        return Err("more than one @");
    }
    if local.is_empty() {
        return Err("nothing before the @");
    }
    if domain.is_empty() {
        return Err("no domain after the @");
    }
    if local.len() > 64 {
        return Err("the part before the @ is longer than 64 characters");
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return Err("misplaced dot before the @");
    }
    if !local.chars().all(local_char) {
        return Err("a character not allowed before the @");
    }
    if !domain.contains('.') {
        return Err("the domain has no dot");
    }
    if domain.len() > 253 {
        return Err("the domain is longer than 253 characters");
    }
    for label in domain.split('.') {
        if label.is_empty() {
            return Err("misplaced dot in the domain");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("a domain part starts or ends with a hyphen");
        }
        if !label.chars().all(|c| c.is_alphanumeric() || c == '-') {
            return Err("a character not allowed in the domain");
        }
    }
    Ok(())
}

/// RFC 5322 `atext`, plus international letters (RFC 6531).
fn local_char(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || "!#$%&'*+/=?^_`{|}~-.".contains(c)
        || (!c.is_ascii() && c.is_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_addresses() {
        for email in [
            "hans.mueller@example.org",
            "Hans.Mueller@Example.ORG",
            "h+homeoffice@stadt.example.de",
            "o'brien@example.ie",
            "jürgen.müller@städte.example",
            "a@b.co",
            "x_y-z@sub-domain.example.org",
        ] {
            assert_eq!(check_email(email), Ok(()), "{email}");
        }
    }

    #[test]
    fn bad_addresses_say_why() {
        for (email, why) in [
            ("hans.mueller(at)example.org", "no @"),
            ("hans@mueller@example.org", "more than one @"),
            ("@example.org", "nothing before the @"),
            ("hans@", "no domain after the @"),
            ("hans mueller@example.org", "contains a space"),
            (
                "hans\n@example.org",
                "contains a line break or control character",
            ),
            ("hans@localhost", "the domain has no dot"),
            ("hans@example..org", "misplaced dot in the domain"),
            ("hans@.example.org", "misplaced dot in the domain"),
            ("hans@example.org.", "misplaced dot in the domain"),
            (".hans@example.org", "misplaced dot before the @"),
            ("hans..m@example.org", "misplaced dot before the @"),
            ("Hans <hans@example.org>", "contains a space"),
            ("<hans@example.org>", "a character not allowed before the @"),
            ("hans@exa_mple.org", "a character not allowed in the domain"),
            (
                "hans@-example.org",
                "a domain part starts or ends with a hyphen",
            ),
            (
                "mailto:hans@example.org",
                "a character not allowed before the @",
            ),
            (
                "hans*)(uid=*@example.org",
                "a character not allowed before the @",
            ),
            (
                "hans,anna@example.org",
                "a character not allowed before the @",
            ),
        ] {
            assert_eq!(check_email(email), Err(why), "{email}");
        }
        let long = format!("{}@example.org", "a".repeat(65));
        assert_eq!(
            check_email(&long),
            Err("the part before the @ is longer than 64 characters")
        );
    }
}
