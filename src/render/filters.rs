//! Filters homebase adds to minijinja, so that data stays data wherever it goes.

use ipnet::IpNet;
use minijinja::{Error, ErrorKind, Value};

/// Strict mode stays strict through our filters: an undefined value is an
/// error, `none` (an absent optional value) prints as nothing.
fn text_of(value: &Value, filter: &str) -> Result<String, Error> {
    if value.is_undefined() {
        return Err(Error::new(
            ErrorKind::UndefinedError,
            format!("undefined value passed to `{filter}`"),
        ));
    }
    Ok(if value.is_none() {
        String::new()
    } else {
        value.to_string()
    })
}

/// `md`: escape Markdown so a value is shown as text, not formatting. Line
/// breaks become spaces (a name cannot start a heading or a table row).
pub fn md(value: Value) -> Result<String, Error> {
    let text = text_of(&value, "md")?;
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '#' | '~' | '&' | '!' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    Ok(out)
}

/// `oneline`: control characters (line breaks, tabs, …) become spaces, so a
/// value cannot add lines to a line-based file such as a VPN config.
pub fn oneline(value: Value) -> Result<String, Error> {
    Ok(text_of(&value, "oneline")?
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect())
}

/// `ovpn_route`: a network in CIDR notation as an OpenVPN directive,
/// `route 10.0.0.0 255.0.0.0` or `route-ipv6 fd00::/8`.
pub fn ovpn_route(net: &str) -> Result<String, Error> {
    let parsed: IpNet = net.trim().parse().map_err(|_| {
        Error::new(
            ErrorKind::InvalidOperation,
            format!("ovpn_route: `{net}` is not a network such as 10.0.0.0/8"),
        )
    })?;
    Ok(match parsed {
        IpNet::V4(v4) => format!("route {} {}", v4.network(), v4.netmask()),
        IpNet::V6(v6) => format!("route-ipv6 {}", v6.trunc()),
    })
}

/// `de_date`: an ISO date (`2027-12-04`) as written in German letters
/// (`04.12.2027`); anything else as it is, `none` as nothing.
pub fn de_date(value: Value) -> Result<String, Error> {
    let text = text_of(&value, "de_date")?;
    Ok(match chrono::NaiveDate::parse_from_str(&text, "%Y-%m-%d") {
        Ok(day) => day.format("%d.%m.%Y").to_string(),
        Err(_) => text,
    })
}

/// `device_de`: a device kind of the stock list in German (`notebook` →
/// `Notebook`, `phone` → `Diensthandy`); unknown kinds as written.
pub fn device_de(value: Value) -> Result<String, Error> {
    let text = text_of(&value, "device_de")?;
    let german = match text.trim().to_lowercase().as_str() {
        "notebook" | "laptop" => "Notebook",
        "monitor" | "display" => "Monitor",
        "headset" => "Headset",
        "phone" | "smartphone" | "mobile" => "Diensthandy",
        "tablet" => "Tablet",
        "dock" | "docking" | "docking station" | "docking-station" => "Dockingstation",
        "keyboard" => "Tastatur",
        "mouse" => "Maus",
        "webcam" | "camera" => "Webcam",
        "printer" => "Drucker",
        "token" | "security key" => "Sicherheitsschlüssel",
        _ => return Ok(text),
    };
    Ok(german.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn german_dates_and_device_kinds() {
        assert_eq!(de_date(Value::from("2027-12-04")).unwrap(), "04.12.2027");
        assert_eq!(de_date(Value::from("bald")).unwrap(), "bald");
        assert_eq!(de_date(Value::from(())).unwrap(), "");
        assert!(de_date(Value::UNDEFINED).is_err());
        assert_eq!(device_de(Value::from("notebook")).unwrap(), "Notebook");
        assert_eq!(device_de(Value::from("phone")).unwrap(), "Diensthandy");
        assert_eq!(device_de(Value::from("3D-Brille")).unwrap(), "3D-Brille");
    }

    #[test]
    fn md_escapes_markdown_specials() {
        let md = |value: Value| md(value).unwrap_or_else(|err| panic!("{err}"));
        assert_eq!(md(Value::from("*Weiß*_[x](y)")), r"\*Weiß\*\_\[x\](y)");
        assert_eq!(
            md(Value::from("a|b <b> `c` # ~ & ! \\")),
            r"a\|b \<b\> \`c\` \# \~ \& \! \\"
        );
        assert_eq!(md(Value::from("line\nbreak")), "line break");
        assert_eq!(
            md(Value::from("Müller-Lüdenscheidt")),
            "Müller-Lüdenscheidt"
        );
        assert_eq!(md(Value::from(())), "");
        assert!(super::md(Value::UNDEFINED).is_err());
    }

    #[test]
    fn oneline_removes_line_breaks() {
        assert_eq!(
            oneline(Value::from("x\nPostUp = rm -rf /\r"))
                .ok()
                .as_deref(),
            Some("x PostUp = rm -rf / ")
        );
        assert!(oneline(Value::UNDEFINED).is_err());
    }

    #[test]
    fn ovpn_routes() {
        assert_eq!(
            ovpn_route("10.0.0.0/8").ok(),
            Some("route 10.0.0.0 255.0.0.0".into())
        );
        assert_eq!(
            ovpn_route("172.16.0.0/12").ok(),
            Some("route 172.16.0.0 255.240.0.0".into())
        );
        assert_eq!(
            ovpn_route("fd00:1::/48").ok(),
            Some("route-ipv6 fd00:1::/48".into())
        );
        assert!(ovpn_route("nonsense").is_err());
    }
}
